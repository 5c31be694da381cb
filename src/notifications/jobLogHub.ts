import DataLoader from 'dataloader'
import type { Database } from '../db/database.ts'
import { sql } from '../db/sql.ts'
import { isFinished, jobStreamId } from '../domain/job/job.ts'
import type { Logger } from '../log.ts'
import { pushEvents, type EventSink, type Pushable } from './push.ts'
import { markShareable } from './shareable.ts'
import { jobLogKey, type ChangeFeed } from './changeFeed.ts'

export type LogLine = Readonly<{ jobId: number; position: number; stream: string; text: string; at: Date }>

/** Lines a follower may read from the shared window; one further behind reads the database. */
const windowLines = 5_000
/** How many followers are woken in one turn of the event loop. */
const wakeSlice = 50
/** How many lines one catch-up query reads. */
const pageLines = 1_000

/**
 * One reader per followed job in this process, however many subscribers follow it. A log-line
 * notification makes the reader fetch the new lines once (one query) into a window shared by
 * every follower; a job-stream notification makes it read the job's status once. Followers wait
 * on the reader, not on the database: a line written is one read however many browsers show it
 * (it was two reads per subscriber per line). A follower that starts behind the window, or falls
 * behind it, catches up from the database by itself, then joins the window. The database stays
 * the truth: a notification only says "look again", so a lost or merged one delays, never loses.
 */
export function createJobLogHub(deps: { query: Database['query']; changes: Pick<ChangeFeed, 'onChange'>; log: Logger }) {
  const readers = new Map<number, Reader>()

  type Reader = {
    jobId: number
    followers: number
    /** Lines after `start`, in order, without gaps, up to `lastRead`. */
    lines: LogLine[]
    start: number
    lastRead: number
    /** Set once the job has finished and every line it logged has been read. */
    completeAt: number | null
    finished: { logLines: number | null } | null
    statusWanted: boolean
    reading: Promise<void> | null
    again: boolean
    waiters: (() => void)[]
    stop: () => void
    /**
     * The batches handed to followers up to the window's end `to`, by where they start: followers
     * that stood at the same place get the same array, marked shareable, so the GraphQL edge
     * executes `jobLogLines` once per batch for all of them. One per start, not a single one:
     * live followers and late joiners woken in turn would otherwise replace it for each other,
     * and each replacement is one more execution (on PGlite, 256–266 distinct arrays in 5,000
     * deliveries of the int test, where 31 writes need 62).
     */
    batches: { to: number; byFrom: Map<number, LogLine[]> }
  }

  // On the driver's connection, not through Prisma: with a hundred jobs logging at once this is a
  // read per job per write, thousands a second, and Prisma's query engine around each cost the
  // API a tenth of its time (a profile of bench:watchers with BENCH_JOBS=100).
  const linesAfter = (jobId: number, after: number, take: number) =>
    deps.query<LogLine>(sql`
      SELECT job_id AS "jobId", position, stream, text, at FROM job_log_lines
      WHERE job_id = ${jobId} AND position > ${after} ORDER BY position LIMIT ${take}`.prepare())
  /**
   * The readers' own reads of what is new, batched: the readers woken in one turn (a worker's
   * write announces every job it grew at once) read in one query, each job's page through its own
   * index scan. With a hundred jobs logging at once that was a query per job per write.
   */
  const newLines = new DataLoader<{ jobId: number; after: number }, LogLine[]>(
    async (wanted) => {
      if (wanted.length === 1) return [await linesAfter(wanted[0]!.jobId, wanted[0]!.after, pageLines)]
      const rows = await deps.query<LogLine>(sql`
        SELECT l.job_id AS "jobId", l.position, l.stream, l.text, l.at
        FROM unnest(${wanted.map((key) => String(key.jobId))}::int[], ${wanted.map((key) => String(key.after))}::int[]) AS r(job_id, after)
        CROSS JOIN LATERAL (
          SELECT * FROM job_log_lines WHERE job_id = r.job_id AND position > r.after ORDER BY position LIMIT ${pageLines}
        ) AS l
        ORDER BY l.job_id, l.position`.prepare())
      const byJob = new Map<number, LogLine[]>()
      for (const row of rows) {
        let lines = byJob.get(row.jobId)
        if (!lines) byJob.set(row.jobId, (lines = []))
        lines.push(row)
      }
      return wanted.map((key) => byJob.get(key.jobId) ?? [])
    },
    // A reader has one read in flight at most, so a batch names each job once; nothing is kept.
    { cache: false },
  )
  const jobStatus = async (jobId: number) =>
    (await deps.query<{ status: string; logLines: number | null }>(sql`SELECT status, log_lines AS "logLines" FROM jobs WHERE id = ${jobId}`.prepare()))[0] ?? null

  /**
   * Wakes the followers a slice per turn of the event loop: each woken follower sends its batch
   * in the microtasks that follow, so a thousand at once would hold the loop (and every other
   * request) until all had sent.
   */
  function wakeFollowers(reader: Reader): void {
    const waiters = reader.waiters.splice(0)
    const wake = (from: number) => {
      for (const waiter of waiters.slice(from, from + wakeSlice)) waiter()
      if (from + wakeSlice < waiters.length) setImmediate(wake, from + wakeSlice)
    }
    wake(0)
  }

  /** Reads what is new (status first when asked: a finished job's count tells when the log is whole). */
  function refresh(reader: Reader, withStatus: boolean): Promise<void> {
    if (withStatus) reader.statusWanted = true
    if (reader.reading) {
      reader.again = true
      return reader.reading
    }
    reader.reading = (async () => {
      try {
        do {
          reader.again = false
          if (reader.statusWanted && !reader.finished) {
            reader.statusWanted = false
            const job = await jobStatus(reader.jobId)
            if (!job || isFinished(job.status)) reader.finished = { logLines: job?.logLines ?? null }
          }
          for (;;) {
            const page = await newLines.load({ jobId: reader.jobId, after: reader.lastRead })
            for (const line of page) reader.lines.push(markShareable(line))
            if (page.length) reader.lastRead = page.at(-1)!.position
            if (page.length < pageLines) break
          }
          if (reader.lines.length > windowLines) {
            const dropped = reader.lines.splice(0, reader.lines.length - windowLines)
            reader.start = dropped.at(-1)!.position
          }
          // Lines logged while the outcome was recorded land just after it: complete once the
          // recorded count has been read (no count: cancelled before it ran, whole now).
          if (reader.finished && (reader.finished.logLines === null || reader.lastRead >= reader.finished.logLines)) reader.completeAt = reader.lastRead
          wakeFollowers(reader)
        } while (reader.again)
      } catch (error) {
        deps.log.warn({ err: error, jobId: reader.jobId }, 'could not read the job log for its followers; the next change tries again')
        wakeFollowers(reader)
      } finally {
        reader.reading = null
      }
    })()
    return reader.reading
  }

  function attach(jobId: number, after: number): Reader {
    let reader = readers.get(jobId)
    if (!reader) {
      const created: Reader = {
        jobId,
        followers: 0,
        lines: [],
        start: after,
        lastRead: after,
        completeAt: null,
        finished: null,
        statusWanted: false,
        reading: null,
        again: false,
        waiters: [],
        stop: () => {},
        batches: { to: after, byFrom: new Map() },
      }
      const offLines = deps.changes.onChange([jobLogKey(jobId)], () => void refresh(created, false))
      const offJob = deps.changes.onChange([jobStreamId(jobId)], () => void refresh(created, true))
      created.stop = () => {
        offLines()
        offJob()
      }
      readers.set(jobId, created)
      reader = created
      void refresh(created, true)
    }
    reader.followers += 1
    return reader
  }

  function detach(reader: Reader): void {
    reader.followers -= 1
    if (reader.followers > 0) return
    reader.stop()
    readers.delete(reader.jobId)
    wakeFollowers(reader)
  }

  /**
   * What a follower at `cursor`, inside the shared window, gets next: a page of its own when it is
   * far behind the window's end (a late joiner), else the rest of the window, one array for every
   * follower that stood at the same place (marked shareable); null when it has read everything.
   */
  function windowBatch(reader: Reader, cursor: number, maxBatch: number): LogLine[] | null {
    // Positions have no gaps: the window's line i is at position start + 1 + i.
    const index = cursor - reader.start
    if (reader.lines.length - index > maxBatch) return reader.lines.slice(index, index + maxBatch)
    if (index >= reader.lines.length) return null
    const to = reader.lines.at(-1)!.position
    if (reader.batches.to !== to) reader.batches = { to, byFrom: new Map() }
    let batch = reader.batches.byFrom.get(cursor)
    if (!batch) reader.batches.byFrom.set(cursor, (batch = markShareable(reader.lines.slice(index))))
    return batch
  }

  return {
    /**
     * The lines after `after`, in order, none twice, in batches as they come; ends after the last
     * line of a finished job, in batches of at most `maxBatch` lines. Ending the iteration (the
     * subscriber left) releases the reader.
     */
    follow(jobId: number, after: number, maxBatch = pageLines): AsyncIterableIterator<LogLine[]> & Pushable<LogLine[]> {
      let stopped = false
      /** The wait in progress, ended by a new batch or by the subscriber leaving. */
      let wake: (() => void) | null = null
      /**
       * The follower: hands each batch to `emit`, waiting when it asks to, until the last line of
       * a finished job or until the subscriber leaves. Pushed (`pushEvents`), `emit` is the
       * receiver itself; pulled, it hands the batch to the waiting `next()`.
       */
      async function run(emit: EventSink<LogLine[]>): Promise<void> {
        const reader = attach(jobId, after)
        let cursor = after
        try {
          while (!stopped) {
            let batch: LogLine[] | null
            if (cursor < reader.start) {
              // Behind the shared window: read from the database up to where the window begins.
              batch = (await linesAfter(jobId, cursor, Math.min(maxBatch, reader.start - cursor))).filter((line) => line.position <= reader.start)
              if (batch.length === 0) {
                cursor = reader.start
                continue
              }
            } else {
              batch = windowBatch(reader, cursor, maxBatch)
              if (!batch) {
                if (reader.completeAt !== null && cursor >= reader.completeAt) break
                await new Promise<void>((resolve) => {
                  wake = resolve
                  reader.waiters.push(resolve)
                })
                wake = null
                continue
              }
            }
            cursor = batch.at(-1)!.position
            const waiting = emit(batch)
            if (waiting) await waiting
          }
        } finally {
          detach(reader)
        }
      }
      let running: Promise<void> | null = null
      // Pulled: one batch handed over per `next()`; the loop goes on when the next one is asked for.
      let taker: { resolve: (result: IteratorResult<LogLine[]>) => void; reject: (error: unknown) => void } | null = null
      let resumeLoop: (() => void) | null = null
      let ended = false
      const handOver: EventSink<LogLine[]> = (batch) => {
        const waiting = taker!
        taker = null
        waiting.resolve({ value: batch, done: false })
        return new Promise<void>((resolve) => (resumeLoop = resolve))
      }
      // A wait for new lines would see the subscriber leave only when the next batch came, and a
      // quiet job may be quiet for an hour: leaving ends the wait first, so the reader is let go
      // at once.
      const leave = async () => {
        stopped = true
        wake?.()
        resumeLoop?.()
        await running?.catch(() => {})
      }
      const done = { value: undefined, done: true } as const
      const follower: AsyncIterableIterator<LogLine[]> & Pushable<LogLine[]> = {
        next: () => {
          if (ended) return Promise.resolve(done)
          return new Promise<IteratorResult<LogLine[]>>((resolve, reject) => {
            taker = { resolve, reject }
            if (resumeLoop) {
              const resume = resumeLoop
              resumeLoop = null
              resume()
            } else if (!running) {
              running = run(handOver).then(
                () => {
                  ended = true
                  taker?.resolve(done)
                },
                (error: unknown) => {
                  ended = true
                  taker?.reject(error)
                },
              )
            }
          })
        },
        return: async () => {
          ended = true
          await leave()
          return done
        },
        throw: async (error?: unknown) => {
          ended = true
          await leave()
          throw error
        },
        [pushEvents]: (sink) => {
          if (running) throw new Error('this follower is already being read')
          running = run(sink)
          return running
        },
        [Symbol.asyncIterator]() {
          return this
        },
      }
      return follower
    },
    /** How many jobs have a reader in this process (for tests and metrics). */
    get followedJobs() {
      return readers.size
    },
  }
}

export type JobLogHub = ReturnType<typeof createJobLogHub>
