import { isUniqueViolation, type Database } from '../src/db/database.ts'
import { json, sql } from '../src/db/sql.ts'
import type { Logger } from '../src/log.ts'
import { jobLogChannel } from '../src/notifications/changeFeed.ts'

export type LogStream = 'flatdepot' | 'stdout' | 'stderr'

/**
 * A job's durable log: flatdepot's own messages and the output of the commands it runs, line by
 * line, in order. A line is written as soon as the previous write is done (lines that arrive
 * meanwhile go together in the next), and each write is announced by NOTIFY with the job id
 * only. A re-run after a crash continues the numbering.
 */
export class JobLog {
  #next: number | null = null
  #pending: { stream: LogStream; text: string; at: Date }[] = []
  #flushing: Promise<void> = Promise.resolve()
  #scheduled = false

  constructor(
    private readonly db: Pick<Database, 'query'>,
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
    this.#pending.push({ stream, text, at: new Date() })
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      void this.flush()
    })
  }

  /**
   * How many lines the log has, counting those not stored yet. Recorded with the job's outcome,
   * so a follower knows to wait for lines logged while the outcome was decided.
   */
  async lineCount(): Promise<number> {
    await this.#flushing
    return (await this.#firstFree()) - 1 + this.#pending.length
  }

  async #firstFree(): Promise<number> {
    if (this.#next === null) {
      const [last] = await this.db.query<{ position: number | null }>(sql`SELECT max(position) AS position FROM job_log_lines WHERE job_id = ${this.jobId}`)
      this.#next = (last?.position ?? 0) + 1
    }
    return this.#next
  }

  async #insert(batch: { stream: LogStream; text: string; at: Date }[]): Promise<void> {
    const first = await this.#firstFree()
    // One statement, so one round trip: the lines and the wake-up commit together.
    const rows = batch.map((line, index) => ({ position: first + index, stream: line.stream, text: line.text, at: line.at.toISOString() }))
    await this.db.query(sql`
      WITH inserted AS (
        INSERT INTO job_log_lines (job_id, position, stream, text, at)
        SELECT ${this.jobId}, position, stream, text, at
        FROM jsonb_to_recordset(${json(rows)}) AS line(position int, stream text, text text, at timestamptz)
        RETURNING 1
      )
      SELECT pg_notify(${jobLogChannel}, ${String(this.jobId)}) FROM (SELECT count(*) FROM inserted) AS done`)
    this.#next = first + batch.length
  }

  /** Resolves when every line so far is stored. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      // Taken when the previous write is done: lines that came during it go out together.
      const batch = this.#pending.splice(0)
      if (batch.length === 0) return
      try {
        // Another writer of the same job's log (an attempt whose lease ran out while it still
        // ran) may take the same positions: on a clash, read the end again and append after it.
        for (let tries = 0; ; tries++) {
          try {
            await this.#insert(batch)
            break
          } catch (error) {
            if (tries >= 5 || !isUniqueViolation(error)) throw error
            this.#next = null
          }
        }
      } catch (error) {
        this.log.error({ err: error, jobId: this.jobId }, 'could not store job log lines')
      }
    })
    return this.#flushing
  }
}
