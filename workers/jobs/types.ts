import type { Config } from '../../src/config/config.ts'
import type { JobKind } from '../../src/domain/job/job.ts'
import type { Decider } from '../../src/domain/shared/messages.ts'
import type { DomainEvent } from '../../src/domain/events.ts'
import type { IdSequence, UnitOfWork } from '../../src/eventStore/unitOfWork.ts'
import type { PrismaClient } from '../../src/generated/prisma/client.ts'
import type { JobPayload } from '../../src/jobs/kinds.ts'
import type { ClaimedJob } from '../../src/jobs/queue.ts'
import type { Logger } from '../../src/log.ts'
import type { JobLog } from '../jobLog.ts'

export type JobContext<K extends JobKind = JobKind> = Readonly<{
  job: ClaimedJob
  /** The job's contents, checked against its kind's schema (src/jobs/kinds.ts). */
  payload: JobPayload<K>
  log: JobLog
  logger: Logger
  signal: AbortSignal
  config: Config
  prisma: PrismaClient
  /** The next id of a sequence, for files made before the unit that records them (a mirrored build's). */
  nextId: (sequence: IdSequence) => Promise<number>
  /** An aggregate's state as its events say now (a repo's deltas waiting to be retired). */
  read: <S, C, E extends DomainEvent>(decider: Decider<S, C, E>, streamId: string, streamType: string) => Promise<S>
}>

/**
 * What a handler did. A handler does the effect (ostree, flatpak, hooks) and says what it means
 * for its aggregate in `record`; it never queues jobs: the pipeline's process manager reacts to
 * the facts `record` decides, in the same unit of work. A failure's meaning for the build is the
 * process manager's too (it reacts to JobFailed).
 */
export type JobOutcome = Readonly<{
  results: Record<string, unknown>
  /** Decided in the same transaction as the job's success: the domain outcome; may add results. */
  record?: (unit: UnitOfWork) => Promise<void | Record<string, unknown>>
  /** Clean-up after the outcome is recorded (losing it to a crash only leaves garbage). */
  after?: () => Promise<void>
}>

export type JobHandler<K extends JobKind> = Readonly<{
  run: (context: JobContext<K>) => Promise<JobOutcome>
}>

