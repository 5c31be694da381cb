import type { Config } from '../../src/config/config.ts'
import type { CommandRunner, UnitOfWork } from '../../src/eventStore/unitOfWork.ts'
import type { PrismaClient } from '../../src/generated/prisma/client.ts'
import type { ClaimedJob } from '../../src/jobs/queue.ts'
import type { Logger } from '../../src/log.ts'
import type { JobLog } from '../jobLog.ts'

export type JobContext = Readonly<{
  job: ClaimedJob
  log: JobLog
  logger: Logger
  signal: AbortSignal
  config: Config
  prisma: PrismaClient
  run: CommandRunner
}>

export type JobOutcome = Readonly<{
  results: Record<string, unknown>
  /** Decided in the same transaction as the job's success: the domain outcome, follow-up jobs; may add results. */
  record?: (unit: UnitOfWork) => Promise<void | Record<string, unknown>>
  /** Clean-up after the outcome is recorded (losing it to a crash only leaves garbage). */
  after?: () => Promise<void>
}>

export type JobHandler = Readonly<{
  run: (context: JobContext) => Promise<JobOutcome>
  /** Decided with the job's failure: what the failure means for the build. */
  recordFailure?: (unit: UnitOfWork, context: JobContext, message: string) => Promise<void>
}>

export function contentsNumber(job: ClaimedJob, key: string): number {
  const value = job.contents[key]
  if (typeof value !== 'number') throw new Error(`job ${job.jobId} has no "${key}" in its contents`)
  return value
}

export function contentsString(job: ClaimedJob, key: string): string | null {
  const value = job.contents[key]
  return typeof value === 'string' ? value : null
}
