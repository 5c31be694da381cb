import type { Database } from '../db/database.ts'
import { Statement, sql } from '../db/sql.ts'
import { readAll, logStart } from '../eventStore/readAll.ts'
import { inlineHandlers, readModelTables } from './index.ts'

/**
 * Empties every read model and replays the whole log through the projections, in one
 * transaction: readers see the old models until the new ones are complete. Appends wait on the
 * table lock meanwhile, so no event can slip in between the replay and the commit.
 */
export async function rebuildReadModels(db: Database, batchSize = 1000): Promise<{ events: number }> {
  const handlers = inlineHandlers.filter((handler) => handler.rebuildable)
  let replayed = 0
  await db.transaction(async (tx) => {
    await tx.read(sql`LOCK TABLE events IN SHARE MODE`)
    // The table names are constants of this module.
    for (const table of readModelTables) tx.write(new Statement([`DELETE FROM ${table}`], []))
    let checkpoint = logStart
    for (;;) {
      // Under the lock every event writer has finished, so the in-flight guard is not needed (and
      // an unrelated long transaction would otherwise hide later events from the replay). The
      // read also sends the previous batch's writes.
      const batch = await readAll((statement) => tx.read(statement), checkpoint, { limit: batchSize, onlyFinishedTransactions: false })
      for (const event of batch) {
        for (const handler of handlers) await handler.handle(tx, event)
      }
      replayed += batch.length
      const last = batch.at(-1)
      if (!last) break
      checkpoint = last.checkpoint
    }
  })
  return { events: replayed }
}
