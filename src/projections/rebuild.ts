import type { Database } from '../db/database.ts'
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
  await db.prisma.$transaction(
    async (tx) => {
      await tx.$executeRawUnsafe('LOCK TABLE events IN SHARE MODE')
      for (const table of readModelTables) await tx.$executeRawUnsafe(`DELETE FROM ${table}`)
      let checkpoint = logStart
      for (;;) {
        // Under the lock every event writer has finished, so the in-flight guard is not needed (and
        // an unrelated long transaction would otherwise hide later events from the replay).
        const batch = await readAll(tx, checkpoint, { limit: batchSize, onlyFinishedTransactions: false })
        for (const event of batch) {
          for (const handler of handlers) await handler.handle(tx, event)
        }
        replayed += batch.length
        const last = batch.at(-1)
        if (!last) break
        checkpoint = last.checkpoint
      }
    },
    { timeout: 10 * 60_000, maxWait: 60_000 },
  )
  return { events: replayed }
}
