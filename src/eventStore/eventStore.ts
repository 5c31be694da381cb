import type { Database, WriteTransaction } from '../db/database.ts'
import { json, sql } from '../db/sql.ts'
import type { DomainEvent } from '../domain/events.ts'
import { ConcurrencyError, type AppendGuard, type EventMetadata, type StoredEvent, type StreamAppend } from './types.ts'

export const eventsChannel = 'flatdepot_events'

/** Runs inside the append transaction: read models and the job outbox change with the events. */
export type InlineHandler = Readonly<{
  name: string
  /** False for operational tables (the job queue) that a read-model rebuild must not touch. */
  rebuildable: boolean
  handle: (tx: WriteTransaction, event: StoredEvent) => Promise<void>
}>

export type EventStore = Readonly<{
  readStream: (streamId: string) => Promise<{ version: number; events: StoredEvent[] }>
  /** All appends commit together or not at all; a stream that moved on raises ConcurrencyError. */
  append: (appends: readonly StreamAppend[], metadata: EventMetadata, guards?: readonly AppendGuard[]) => Promise<StoredEvent[]>
}>

export const toStoredEvent = (row: {
  type: string
  data: unknown
  metadata: unknown
  streamId: string
  streamPosition: number
}): StoredEvent =>
  ({
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    streamId: row.streamId,
    streamPosition: row.streamPosition,
  }) as StoredEvent

/** NOTIFY payloads must stay under 8,000 bytes; ours stay well under, whatever a unit touches. */
export const maxNotificationBytes = 7000
/** The payload that wakes every watcher: used for a stream id too long to name on its own. */
export const wakeEveryone = '*'

/**
 * The changed stream ids as JSON lists, each under maxNotificationBytes: a unit of work over many
 * streams (a bulk revocation) sends several notifications in its transaction, never one too large.
 */
export function notificationPayloads(streamIds: readonly string[]): string[] {
  const payloads: string[] = []
  let current: string[] = []
  let bytes = 2
  for (const id of streamIds) {
    const size = Buffer.byteLength(JSON.stringify(id)) + 1
    const item = size + 2 > maxNotificationBytes ? wakeEveryone : id
    const itemSize = item === id ? size : 4
    if (current.length && bytes + itemSize > maxNotificationBytes) {
      payloads.push(JSON.stringify(current))
      current = []
      bytes = 2
    }
    current.push(item)
    bytes += itemSize
  }
  if (current.length) payloads.push(JSON.stringify(current))
  return payloads
}

/** The SQLSTATE `flatdepot_claim_stream` raises for a stream that moved on (migrations 0009, 0011). */
const streamMovedOn = 'FD409'

export function createEventStore(
  db: Database,
  handlers: readonly InlineHandler[],
  options: { onAppended?: (streamType: string, count: number) => void } = {},
): EventStore {
  return {
    async readStream(streamId) {
      const rows = await db.query<{ type: string; data: unknown; metadata: unknown; stream_id: string; stream_position: number }>(sql`
        SELECT type, data, metadata, stream_id, stream_position FROM events WHERE stream_id = ${streamId} ORDER BY stream_position`.prepare())
      return {
        version: rows.at(-1)?.stream_position ?? 0,
        events: rows.map((row) => toStoredEvent({ ...row, streamId: row.stream_id, streamPosition: row.stream_position })),
      }
    },

    async append(appends, metadata, guards = []) {
      const nonEmpty = appends.filter((append) => append.events.length > 0)
      if (nonEmpty.length === 0) return []
      const stored: StoredEvent[] = nonEmpty.flatMap((append) =>
        append.events.map((event: DomainEvent, index) =>
          toStoredEvent({
            ...event,
            metadata,
            streamId: append.streamId,
            streamPosition: append.expectedVersion + index + 1,
          }),
        ),
      )
      try {
        // Without guards or projections that read, this is one script: one round trip.
        await db.transaction(async (tx) => {
          for (const guard of guards) {
            if (!(await guard.holds(tx))) throw new ConcurrencyError(guard.name, 0)
          }
          // One call (migration 0011): each stream's version claim, in order, then the events. A
          // concurrent writer either blocks on the stream's row until it commits (and then the
          // version has moved) or already moved it: the claim raises either way and nothing
          // commits. Events are stamped when written, not when the transaction began (now()): a
          // command that read first must not carry an earlier time than an event another
          // transaction wrote before it, or the audit log's newest-first order by position would
          // show times out of order.
          const claims = nonEmpty.map((append) => ({
            stream_id: append.streamId,
            stream_type: append.streamType,
            expected: append.expectedVersion,
            next: append.expectedVersion + append.events.length,
          }))
          const rows = stored.map((event) => ({
            stream_id: event.streamId,
            stream_position: event.streamPosition,
            type: event.type,
            data: event.data,
            metadata: event.metadata,
          }))
          tx.write(sql`SELECT flatdepot_append(${json(claims)}, ${json(rows)})`)
          for (const event of stored) {
            for (const handler of handlers) await handler.handle(tx, event)
          }
          // Delivered at commit, to every process listening: ids only, readers fetch the rows.
          for (const payload of notificationPayloads(nonEmpty.map((append) => append.streamId))) {
            tx.write(sql`SELECT pg_notify(${eventsChannel}, ${payload})`)
          }
        })
      } catch (error) {
        const { code, detail, hint } = error as { code?: string; detail?: string; hint?: string }
        if (code === streamMovedOn) throw new ConcurrencyError(detail ?? '?', Number(hint), { cause: error })
        throw error
      }
      for (const append of nonEmpty) options.onAppended?.(append.streamType, append.events.length)
      return stored
    },
  }
}
