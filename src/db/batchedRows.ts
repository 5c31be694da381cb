import DataLoader from 'dataloader'

/**
 * Rows by key, read after they are asked for, the keys asked in one turn of the event loop in one
 * query (`dataloader`, its cache off: nothing is kept between turns). `read` gets the distinct
 * keys and returns their rows; each caller gets the row whose `keyOf` is its key, or undefined.
 * A burst of requests (a thousand browsers opening a build page at once) is then a query per turn
 * on the pool, not one per request queued ahead of every other request's.
 */
export function batchedRows<K extends string | number, Row>(read: (keys: K[]) => Promise<Row[]>, keyOf: (row: Row) => K): DataLoader<K, Row | undefined> {
  return new DataLoader<K, Row | undefined>(
    async (keys) => {
      const byKey = new Map((await read([...new Set(keys)])).map((row) => [keyOf(row), row]))
      return keys.map((key) => byKey.get(key))
    },
    { cache: false },
  )
}
