import { sql, type Statement } from '../db/sql.ts'
import type { StoredEvent } from './types.ts'
import { toStoredEvent } from './eventStore.ts'

/** Where a reader of the whole log has got to: the last event's transaction id and position. */
export type LogCheckpoint = Readonly<{ transactionId: string; position: bigint }>

export const logStart: LogCheckpoint = { transactionId: '0', position: 0n }

export type LogEvent = StoredEvent & { readonly checkpoint: LogCheckpoint }

type Row = {
  global_position: bigint
  transaction_text: string
  stream_id: string
  stream_position: number
  type: string
  data: unknown
  metadata: unknown
}

/**
 * Events after `after` in commit-safe order. `global_position` comes from a sequence, so a
 * transaction can take a lower position and commit after a higher one: a reader that went by
 * position alone would step past it for good. Only transactions older than the oldest one still
 * running (pg_snapshot_xmin) are read, in (transaction id, position) order, and the checkpoint is
 * that pair, so every event is read once, after everything that could precede it has committed.
 */
export async function readAll(
  /** A Database's `query`, or a transaction's `read`. */
  read: (statement: Statement) => Promise<unknown[]>,
  after: LogCheckpoint,
  { limit = 500, onlyFinishedTransactions = true }: { limit?: number; onlyFinishedTransactions?: boolean } = {},
): Promise<LogEvent[]> {
  const guard = onlyFinishedTransactions ? 1 : 0
  const rows = (await read(sql`
    SELECT global_position, transaction_id::text AS transaction_text, stream_id, stream_position, type, data, metadata
    FROM events
    WHERE (transaction_id, global_position) > (${after.transactionId}::xid8, ${after.position}::bigint)
      AND (${guard} = 0 OR transaction_id < pg_snapshot_xmin(pg_current_snapshot()))
    -- The column, qualified: a bare name here would sort by a text alias ("1000" before "999").
    ORDER BY events.transaction_id, events.global_position
    LIMIT ${limit}`)) as Row[]
  return rows.map((row) => ({
    ...toStoredEvent({
      type: row.type,
      data: row.data,
      metadata: row.metadata,
      streamId: row.stream_id,
      streamPosition: row.stream_position,
    }),
    checkpoint: { transactionId: row.transaction_text, position: BigInt(row.global_position) },
  }))
}
