import type { PrismaClient } from '../src/generated/prisma/client.ts'
import type { Logger } from '../src/log.ts'

export const jobLogChannel = 'flatdepot_job_log'

export type LogStream = 'flatdepot' | 'stdout' | 'stderr'

/**
 * A job's durable log: flatdepot's own messages and the output of the commands it runs, line by
 * line, in order. Lines are written in small batches (every 50 ms at most) and each batch is
 * announced by NOTIFY with the job id only. A re-run after a crash continues the numbering.
 */
export class JobLog {
  #next: number | null = null
  #pending: { stream: LogStream; text: string; at: Date }[] = []
  #flushing: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | null = null

  constructor(
    private readonly prisma: PrismaClient,
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
    this.#timer ??= setTimeout(() => void this.flush(), 50)
  }

  /** Resolves when every line so far is stored. */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    const batch = this.#pending.splice(0)
    this.#flushing = this.#flushing.then(async () => {
      if (batch.length === 0) return
      try {
        if (this.#next === null) {
          const last = await this.prisma.jobLogLine.aggregate({ where: { jobId: this.jobId }, _max: { position: true } })
          this.#next = (last._max.position ?? 0) + 1
        }
        const first = this.#next
        this.#next += batch.length
        await this.prisma.$transaction([
          this.prisma.jobLogLine.createMany({
            data: batch.map((line, index) => ({ jobId: this.jobId, position: first + index, stream: line.stream, text: line.text, at: line.at })),
          }),
          this.prisma.$executeRaw`SELECT pg_notify(${jobLogChannel}, ${String(this.jobId)})`,
        ])
      } catch (error) {
        this.log.error({ err: error, jobId: this.jobId }, 'could not store job log lines')
      }
    })
    return this.#flushing
  }
}
