import type { WriteTransaction } from '../db/database.ts'
import type { DomainEvent } from '../domain/events.ts'

export type EventMetadata = Readonly<{
  actor: Readonly<{ name: string | null; jti: string | null }>
  requestId: string | null
  /** ISO time the command was decided (command metadata `now`). */
  at: string
}>

export type StoredEvent = DomainEvent &
  Readonly<{
    metadata: EventMetadata
    streamId: string
    streamPosition: number
  }>

/** A stream's new events and the version the writer read before deciding them. */
export type StreamAppend = Readonly<{
  streamId: string
  streamType: string
  expectedVersion: number
  events: readonly DomainEvent[]
}>

export class ConcurrencyError extends Error {
  readonly code = 'CONCURRENCY'
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
    options?: ErrorOptions,
  ) {
    super(`stream ${streamId} is no longer at version ${expectedVersion}`, options)
  }
}

/**
 * A condition read outside the append that must still hold when it commits (a waiting job that
 * this unit joins instead of queueing its own): checked, with row locks, in the append
 * transaction; false there means another writer got in between, and the unit is decided again.
 */
export type AppendGuard = Readonly<{ name: string; holds: (tx: WriteTransaction) => Promise<boolean> }>
