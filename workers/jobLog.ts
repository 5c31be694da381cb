import { isUniqueViolation, type Database } from '../src/db/database.ts'
import { json, sql } from '../src/db/sql.ts'
import { notificationPayloads } from '../src/eventStore/eventStore.ts'
import type { Logger } from '../src/log.ts'
import { jobLogChannel } from '../src/notifications/changeFeed.ts'

export type LogStream = 'flatdepot' | 'stdout' | 'stderr'

type Line = { jobId: number; stream: LogStream; text: string; at: Date }

/**
 * The durable logs of the jobs a worker process runs: flatdepot's own messages and the output of
 * the commands it runs, line by line, in order. One writer serves every job of the process, one
 * write at a time: the lines of every job that arrived since the previous write go together in
 * the next, as one transaction that also announces the jobs whose logs grew (one NOTIFY naming
 * them). With a hundred jobs printing at once that is a commit per write, not one per job per
 * line: PostgreSQL's commits of notifying transactions are serialized on one lock, and each cost
 * the database more than the few rows it stored. A re-run after a crash continues the numbering.
 */
export class JobLogWriter {
  /** Per job: the next free position, once known (read from the table the first time). */
  readonly #next = new Map<number, number>()
  #pending: Line[] = []
  /** Writes (and the reads that must see none in flight) run one after another on this chain. */
  #chain: Promise<void> = Promise.resolve()
  #scheduled = false
  /** When the last write began (performance.now()), to space the writes that add() starts. */
  #lastWrite = -Infinity

  constructor(
    private readonly db: Pick<Database, 'query' | 'transaction'>,
    private readonly log: Logger,
    /**
     * The least time between the starts of two writes that new lines set off (flush() does not
     * wait for it). A job printing a line every 50 ms is written as it prints; a hundred jobs
     * printing at once are written 50 times a second with many lines each, not 500 times with a
     * few: each write is a commit and a wake-up of every API process.
     */
    private readonly minGapMs = 20,
  ) {}

  /** The log of one job, written through this writer. */
  open(jobId: number): JobLog {
    return new JobLog(this, jobId, this.log)
  }

  add(jobId: number, stream: LogStream, text: string): void {
    this.#pending.push({ jobId, stream, text, at: new Date() })
    if (this.#scheduled) return
    this.#scheduled = true
    const start = () => {
      this.#scheduled = false
      void this.flush()
    }
    const wait = this.#lastWrite + this.minGapMs - performance.now()
    if (wait > 0) setTimeout(start, wait)
    else setImmediate(start)
  }

  /** Resolves when every line so far, of every job, is stored. */
  flush(): Promise<void> {
    return this.#then(async () => {
      // Taken when the previous write is done: lines that came during it go out together.
      const batch = this.#pending.splice(0)
      if (batch.length === 0) return
      this.#lastWrite = performance.now()
      try {
        // Another writer of the same job's log (an attempt whose lease ran out while it still
        // ran) may take the same positions: on a clash, read the ends again and append after them.
        for (let tries = 0; ; tries++) {
          try {
            await this.#insert(batch)
            break
          } catch (error) {
            if (tries >= 5 || !isUniqueViolation(error)) throw error
            for (const line of batch) this.#next.delete(line.jobId)
          }
        }
      } catch (error) {
        const jobIds = [...new Set(batch.map((line) => line.jobId))]
        this.log.error({ err: error, jobIds }, 'could not store job log lines')
      }
    })
  }

  /**
   * How many lines a job's log has, counting those not stored yet. Read between writes, so no
   * line is counted twice or missed while one is in flight.
   */
  lineCount(jobId: number): Promise<number> {
    return this.#then(async () => {
      const [first] = (await this.#firstFree([jobId])).values()
      return first! - 1 + this.#pending.filter((line) => line.jobId === jobId).length
    })
  }

  /** Drops what the writer knows of a job's log (the job has ended here). */
  forget(jobId: number): Promise<void> {
    return this.#then(async () => void this.#next.delete(jobId))
  }

  #then<T>(step: () => Promise<T>): Promise<T> {
    const done = this.#chain.then(step)
    this.#chain = done.then(
      () => {},
      () => {},
    )
    return done
  }

  /** The next free position of each job, read in one query for those not known yet. */
  async #firstFree(jobIds: readonly number[]): Promise<Map<number, number>> {
    const unknown = jobIds.filter((jobId) => !this.#next.has(jobId))
    if (unknown.length) {
      const rows = await this.db.query<{ jobId: number; position: number }>(
        sql`SELECT job_id AS "jobId", max(position) AS position FROM job_log_lines WHERE job_id = ANY(${unknown.map(String)}::int[]) GROUP BY job_id`,
      )
      for (const jobId of unknown) this.#next.set(jobId, 1)
      for (const row of rows) this.#next.set(row.jobId, row.position + 1)
    }
    return new Map(jobIds.map((jobId) => [jobId, this.#next.get(jobId)!]))
  }

  async #insert(batch: readonly Line[]): Promise<void> {
    const next = await this.#firstFree([...new Set(batch.map((line) => line.jobId))])
    const rows = batch.map((line) => {
      const position = next.get(line.jobId)!
      next.set(line.jobId, position + 1)
      return { job_id: line.jobId, position, stream: line.stream, text: line.text, at: line.at.toISOString() }
    })
    // One script, so one round trip: the lines and the wake-up commit together.
    await this.db.transaction(async (tx) => {
      // A transaction that notifies holds PostgreSQL's database-wide notify lock from its commit
      // until its WAL is flushed. Log lines are not acknowledged uploads: their commit does not
      // wait for the flush. Nothing is reordered by it: the job's outcome, committed after its
      // last lines, flushes them too.
      tx.write(sql`SET LOCAL synchronous_commit = off`)
      tx.write(sql`
        INSERT INTO job_log_lines (job_id, position, stream, text, at)
        SELECT job_id, position, stream, text, at
        FROM jsonb_to_recordset(${json(rows)}) AS line(job_id int, position int, stream text, text text, at timestamptz)`)
      // One notification names every job that grew (a JSON list, split only past PostgreSQL's
      // payload limit): each notification is a message to every listening API process.
      for (const payload of notificationPayloads([...next.keys()].map(String))) tx.write(sql`SELECT pg_notify(${jobLogChannel}, ${payload})`)
    })
    for (const [jobId, position] of next) this.#next.set(jobId, position)
  }
}

/** One job's log, written through the process's JobLogWriter. */
export class JobLog {
  constructor(
    private readonly writer: JobLogWriter,
    readonly jobId: number,
    private readonly log: Logger,
  ) {}

  message(text: string): void {
    this.log.info({ jobId: this.jobId }, text)
    this.line(text, 'flatdepot')
  }

  /** For RunOptions.onLine: each line a command prints, as it prints it. */
  readonly output = (text: string, stream: 'stdout' | 'stderr'): void => this.line(text, stream)

  line(text: string, stream: LogStream): void {
    this.writer.add(this.jobId, stream, text)
  }

  /**
   * How many lines the log has, counting those not stored yet. Recorded with the job's outcome,
   * so a follower knows to wait for lines logged while the outcome was decided.
   */
  lineCount(): Promise<number> {
    return this.writer.lineCount(this.jobId)
  }

  /** Resolves when every line so far is stored. */
  flush(): Promise<void> {
    return this.writer.flush()
  }
}
