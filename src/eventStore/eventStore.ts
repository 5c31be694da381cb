import type { Database, PrismaTx } from '../db/database.ts'
import type { DomainEvent } from '../domain/events.ts'
import { ConcurrencyError, type AppendGuard, type EventMetadata, type StoredEvent, type StreamAppend } from './types.ts'

export const eventsChannel = 'flatdepot_events'

/** Runs inside the append transaction: read models and the job outbox change with the events. */
export type InlineHandler = Readonly<{
  name: string
  /** False for operational tables (the job queue) that a read-model rebuild must not touch. */
  rebuildable: boolean
  handle: (tx: PrismaTx, event: StoredEvent) => Promise<void>
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

export function createEventStore(
  db: Database,
  handlers: readonly InlineHandler[],
  options: { onAppended?: (streamType: string, count: number) => void } = {},
): EventStore {
  const { prisma } = db

  async function claimVersion(tx: PrismaTx, append: StreamAppend): Promise<void> {
    const next = append.expectedVersion + append.events.length
    // One round trip each; a concurrent writer either blocks here until we commit (and then
    // finds the version moved) or already moved it: zero rows either way means we lost.
    const count =
      append.expectedVersion === 0
        ? await tx.$executeRaw`
            INSERT INTO streams (id, type, version) VALUES (${append.streamId}, ${append.streamType}, ${next})
            ON CONFLICT (id) DO NOTHING`
        : await tx.$executeRaw`
            UPDATE streams SET version = ${next} WHERE id = ${append.streamId} AND version = ${append.expectedVersion}`
    if (count !== 1) throw new ConcurrencyError(append.streamId, append.expectedVersion)
  }

  return {
    async readStream(streamId) {
      const rows = await prisma.event.findMany({
        where: { streamId },
        orderBy: { streamPosition: 'asc' },
        select: { type: true, data: true, metadata: true, streamId: true, streamPosition: true },
      })
      return { version: rows.at(-1)?.streamPosition ?? 0, events: rows.map(toStoredEvent) }
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
      await prisma.$transaction(async (tx) => {
        for (const guard of guards) {
          if (!(await guard.holds(tx))) throw new ConcurrencyError(guard.name, 0)
        }
        for (const append of nonEmpty) await claimVersion(tx, append)
        const rows = stored.map((event) => ({
          stream_id: event.streamId,
          stream_position: event.streamPosition,
          type: event.type,
          data: event.data,
          metadata: event.metadata,
        }))
        await tx.$executeRaw`
          INSERT INTO events (stream_id, stream_position, type, data, metadata)
          SELECT stream_id, stream_position, type, data, metadata
          FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
            AS row(stream_id text, stream_position int, type text, data jsonb, metadata jsonb)
          ORDER BY stream_id, stream_position`
        for (const event of stored) {
          for (const handler of handlers) await handler.handle(tx, event)
        }
        // Delivered at commit, to every process listening: ids only, readers fetch the rows.
        for (const payload of notificationPayloads(nonEmpty.map((append) => append.streamId))) {
          await tx.$executeRaw`SELECT pg_notify(${eventsChannel}, ${payload})`
        }
      })
      for (const append of nonEmpty) options.onAppended?.(append.streamType, append.events.length)
      return stored
    },
  }
}
