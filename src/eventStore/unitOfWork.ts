import pRetry, { AbortError } from 'p-retry'
import { isUniqueViolation, type Database } from '../db/database.ts'
import { sql, type Statement } from '../db/sql.ts'
import type { DomainEvent } from '../domain/events.ts'
import type { Command, CommandMetadata, Decider } from '../domain/shared/messages.ts'
import type { EventStore } from './eventStore.ts'
import { ConcurrencyError, type AppendGuard, type EventMetadata, type StoredEvent, type StreamAppend } from './types.ts'

/** A command as the application layer writes it: the unit of work adds the metadata. */
export type Intent<C> = C extends Command<string, unknown> ? Omit<C, 'metadata'> : never

type Tracked = {
  streamType: string
  expectedVersion: number
  state: unknown
  events: DomainEvent[]
}

export type IdSequence = 'build_ids' | 'job_ids' | 'build_ref_ids'

/**
 * The next id of a sequence. Outside a transaction too: a job that makes a build's files before
 * it records the build takes the id first (ids may have gaps). On the driver, prepared: every
 * queued job and new build takes one, on the way to its command's append.
 */
export async function nextSequenceValue(db: Pick<Database, 'query'>, sequence: IdSequence): Promise<number> {
  const rows = await db.query<{ id: string | number }>(sql`SELECT nextval(${sequence}::regclass) AS id`.prepare())
  return Number(rows[0]?.id)
}

/**
 * Reacts to the events a unit of work decided by deciding more in the same unit (the pipeline's
 * process manager queues follow-up jobs): they commit together or not at all. Returns what it
 * did, for the caller to report.
 */
export type Reactor = (unit: UnitOfWork, events: readonly DomainEvent[]) => Promise<readonly Reaction[]>
export type Reaction = Readonly<{ kind: string; jobId: number; joined: boolean; note: string }>

/**
 * One attempt at a command that may touch several streams (a build and the job it queues):
 * load each stream, decide, and keep the new events; `runCommand` appends them all at once.
 */
export class UnitOfWork {
  readonly #streams = new Map<string, Tracked>()
  readonly #guards: AppendGuard[] = []
  /** Events the reactor has seen, per stream. */
  readonly #reacted = new Map<string, number>()
  readonly #reactions: Reaction[] = []

  constructor(
    private readonly store: EventStore,
    private readonly db: Database,
    readonly metadata: CommandMetadata,
    private readonly reactor: Reactor | null = null,
  ) {}

  /** For reads that a decision depends on (the read models, the job queue). */
  get prisma(): Database['prisma'] {
    return this.db.prisma
  }

  /** The same reads on the driver connection, for the hot paths (see Statement.prepare). */
  query<Row>(statement: Statement): Promise<Row[]> {
    return this.db.query<Row>(statement)
  }

  /** See AppendGuard. */
  guard(guard: AppendGuard): void {
    this.#guards.push(guard)
  }

  /**
   * A decision that read a stream without writing to it (a publish reads the repo's locks): the
   * stream must still be at the version read when the unit commits, else the unit is decided again.
   */
  dependsOn(streamId: string): void {
    const tracked = this.#streams.get(streamId)
    if (!tracked) throw new Error(`dependsOn(${streamId}): the unit has not read that stream`)
    const version = tracked.expectedVersion
    this.guard({
      name: streamId,
      holds: async (tx) =>
        version === 0
          ? (await tx.read(sql`SELECT 1 FROM streams WHERE id = ${streamId}`)).length === 0
          : (await tx.read(sql`SELECT 1 FROM streams WHERE id = ${streamId} AND version = ${version} FOR SHARE`)).length === 1,
    })
  }

  get guards(): readonly AppendGuard[] {
    return this.#guards
  }

  /**
   * Runs the reactor over the events decided since it last ran, until it decides nothing more,
   * and returns everything it has done in this unit. The command runner settles every unit before
   * appending; a caller that wants the reactions in its own decisions (a job's results) settles
   * first.
   */
  async settle(): Promise<readonly Reaction[]> {
    if (!this.reactor) return this.#reactions
    for (;;) {
      const fresh: DomainEvent[] = []
      for (const [streamId, tracked] of this.#streams) {
        const seen = this.#reacted.get(streamId) ?? 0
        fresh.push(...tracked.events.slice(seen))
        this.#reacted.set(streamId, tracked.events.length)
      }
      if (fresh.length === 0) return this.#reactions
      this.#reactions.push(...(await this.reactor(this, fresh)))
    }
  }

  async state<S, C, E extends DomainEvent>(decider: Decider<S, C, E>, streamId: string, streamType: string): Promise<S> {
    return (await this.#track(decider, streamId, streamType)).state as S
  }

  /** Decides `intent` against the stream's current state and returns the new events. */
  async decide<S, C extends Command<string, unknown>, E extends DomainEvent>(
    decider: Decider<S, C, E>,
    streamId: string,
    streamType: string,
    intent: Intent<C>,
  ): Promise<E[]> {
    const tracked = await this.#track(decider, streamId, streamType)
    const command = { ...intent, metadata: this.metadata } as unknown as C
    const events = decider.decide(command, tracked.state as S)
    tracked.state = events.reduce(decider.evolve, tracked.state as S)
    tracked.events.push(...events)
    return events
  }

  async nextId(sequence: IdSequence): Promise<number> {
    return nextSequenceValue(this.db, sequence)
  }

  get appends(): StreamAppend[] {
    return [...this.#streams].map(([streamId, tracked]) => ({ streamId, ...tracked }))
  }

  async #track<S, C, E extends DomainEvent>(decider: Decider<S, C, E>, streamId: string, streamType: string) {
    let tracked = this.#streams.get(streamId)
    if (!tracked) {
      const { version, events } = await this.store.readStream(streamId)
      const state = (events as unknown as E[]).reduce(decider.evolve, decider.initialState())
      tracked = { streamType, expectedVersion: version, state, events: [] }
      this.#streams.set(streamId, tracked)
    }
    return tracked
  }
}

export type CommandRunner = <T>(
  metadata: CommandMetadata,
  work: (unit: UnitOfWork) => Promise<T>,
) => Promise<{ result: T; events: StoredEvent[] }>

/**
 * Load → decide → append, retried from scratch when another writer got to a stream first
 * (optimistic concurrency). Domain errors are not retried: they are answers. The budget lets a
 * dozen writers racing for one stream on a loaded machine all get through (8 retries did not:
 * one lost nine times in a CI run); backoff is randomized, 5 ms growing to 200 ms.
 */
export function createCommandRunner(
  store: EventStore,
  db: Database,
  { retries = 16, onConflict, reactor = null }: { retries?: number; onConflict?: (error: Error) => void; reactor?: Reactor | null } = {},
): CommandRunner {
  return async (metadata, work) =>
    pRetry(
      async () => {
        const unit = new UnitOfWork(store, db, metadata, reactor)
        const result = await work(unit)
        await unit.settle()
        try {
          const events = await store.append(unit.appends, eventMetadata(metadata), unit.guards)
          return { result, events }
        } catch (error) {
          if (error instanceof ConcurrencyError || isUniqueViolation(error)) throw error
          throw new AbortError(error as Error)
        }
      },
      {
        retries,
        minTimeout: 5,
        maxTimeout: 200,
        randomize: true,
        shouldRetry: (error) => error instanceof ConcurrencyError || isUniqueViolation(error),
        onFailedAttempt: (error) => {
          if (error instanceof ConcurrencyError || isUniqueViolation(error)) onConflict?.(error)
        },
      },
    )
}

export const eventMetadata = (metadata: CommandMetadata): EventMetadata => ({
  actor: metadata.actor,
  requestId: metadata.requestId,
  at: metadata.now.toISOString(),
})
