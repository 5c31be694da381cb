import DataLoader from 'dataloader'

/**
 * Rows by key, read after they are asked for, the keys asked in one turn of the event loop in one
 * query (`dataloader`, its cache off: nothing is kept between turns). `read` gets the distinct
 * keys and returns their rows; each caller gets the row whose `keyOf` is its key, or undefined.
 * A burst of requests (a thousand browsers opening a build page at once) is then a query per turn
 * on the pool, not one per request queued ahead of every other request's.
 *
 * A turn is one pass of the event loop: the batch goes out from `setImmediate`, after every socket
 * that had data in this pass has been read. With dataloader's default (once the current callback's
 * promises settle) each socket's message was its own callback and its own query: 1,645 token reads
 * in one second of a thousand browsers connecting, one per connection.
 */
export function batchedRows<K extends string | number, Row>(read: (keys: K[]) => Promise<Row[]>, keyOf: (row: Row) => K): DataLoader<K, Row | undefined> {
  return new DataLoader<K, Row | undefined>(
    async (keys) => {
      const byKey = new Map((await read([...new Set(keys)])).map((row) => [keyOf(row), row]))
      return keys.map((key) => byKey.get(key))
    },
    { cache: false, batchScheduleFn: (dispatch) => setImmediate(dispatch) },
  )
}
