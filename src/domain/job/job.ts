import { ConflictError, NotFoundError, WrongStateError } from '../shared/errors.ts'
import { assertNever, type Command, type Decider, type Event } from '../shared/messages.ts'

export const jobKinds = ['commit', 'check', 'publish', 'update-repo', 'republish', 'prune', 'delta', 'mirror-sync', 'purge', 'delete', 'rollback', 'export', 'oci-export'] as const
export type JobKind = (typeof jobKinds)[number]

export const jobStatuses = ['Queued', 'Running', 'Succeeded', 'Failed', 'Cancelled'] as const
export type JobStatus = (typeof jobStatuses)[number]

export type JobQueued = Event<
  'JobQueued',
  {
    jobId: number
    kind: JobKind
    /** Jobs that change one repo run one at a time per repo; null for build-local jobs. */
    repo: string | null
    buildId: number | null
    contents: Record<string, unknown>
    startAfter: string | null
    /** A debounced kind's key (see src/jobs/kinds.ts); absent in events recorded before it existed. */
    debounceKey?: string | null
  }
>
export type JobStarted = Event<'JobStarted', { jobId: number; workerId: string; attempt: number }>
/** `logLines`: how many lines the job's log has in all (the last may be stored just after). */
export type JobSucceeded = Event<'JobSucceeded', { jobId: number; results: Record<string, unknown>; logLines?: number }>
export type JobFailed = Event<'JobFailed', { jobId: number; error: string; logLines?: number }>
export type JobCancelled = Event<'JobCancelled', { jobId: number; reason: string }>
export type JobEvent = JobQueued | JobStarted | JobSucceeded | JobFailed | JobCancelled

export type QueueJob = Command<'QueueJob', JobQueued['data']>
/** `attempt`: the queue's count of claims, which also counts attempts killed before they recorded their start. */
export type StartJob = Command<'StartJob', { workerId: string; attempt?: number }>
export type SucceedJob = Command<'SucceedJob', { results: Record<string, unknown>; logLines?: number }>
export type FailJob = Command<'FailJob', { error: string; logLines?: number }>
export type CancelJob = Command<'CancelJob', { reason: string }>
export type JobCommand = QueueJob | StartJob | SucceedJob | FailJob | CancelJob

export type JobState =
  | Readonly<{ status: 'Nonexistent' }>
  | Readonly<{ status: JobStatus; id: number; kind: JobKind; attempts: number; buildId: number | null; contents: Readonly<Record<string, unknown>> }>

export const initialState = (): JobState => ({ status: 'Nonexistent' })

/** A job in one of these states never runs again. */
export const isFinished = (status: string): boolean => status === 'Succeeded' || status === 'Failed' || status === 'Cancelled'

export function decide(command: JobCommand, state: JobState): JobEvent[] {
  if (command.type === 'QueueJob') {
    if (state.status !== 'Nonexistent') throw new ConflictError(`Job ${state.id} already exists`)
    return [{ type: 'JobQueued', data: command.data }]
  }
  if (state.status === 'Nonexistent') throw new NotFoundError('Job not found')
  const jobId = state.id
  const wrong = (message: string, expected: JobStatus) =>
    new WrongStateError(message, 'job', expected.toLowerCase(), state.status.toLowerCase())
  switch (command.type) {
    case 'StartJob':
      // Started again after a lease expired: delivery is at least once, so the attempt counts up;
      // an attempt killed before its start was recorded still counts (the queue's claim count).
      if (isFinished(state.status)) throw wrong(`Job ${jobId} has already ended`, 'Queued')
      return [{ type: 'JobStarted', data: { jobId, workerId: command.data.workerId, attempt: Math.max(state.attempts + 1, command.data.attempt ?? 0) } }]
    case 'SucceedJob':
      if (state.status === 'Succeeded') return []
      if (state.status !== 'Running') throw wrong(`Job ${jobId} is not running`, 'Running')
      return [{ type: 'JobSucceeded', data: { jobId, results: command.data.results, logLines: command.data.logLines } }]
    case 'FailJob':
      if (state.status === 'Failed') return []
      if (state.status !== 'Running') throw wrong(`Job ${jobId} is not running`, 'Running')
      return [{ type: 'JobFailed', data: { jobId, error: command.data.error, logLines: command.data.logLines } }]
    case 'CancelJob':
      if (state.status === 'Cancelled') return []
      if (isFinished(state.status)) throw wrong(`Job ${jobId} has already ended`, 'Queued')
      return [{ type: 'JobCancelled', data: { jobId, reason: command.data.reason } }]
    default:
      return assertNever(command)
  }
}

export function evolve(state: JobState, event: JobEvent): JobState {
  switch (event.type) {
    case 'JobQueued':
      return { status: 'Queued', id: event.data.jobId, kind: event.data.kind, attempts: 0, buildId: event.data.buildId, contents: event.data.contents }
    case 'JobStarted':
      return state.status === 'Nonexistent' ? state : { ...state, status: 'Running', attempts: event.data.attempt }
    case 'JobSucceeded':
      return state.status === 'Nonexistent' ? state : { ...state, status: 'Succeeded' }
    case 'JobFailed':
      return state.status === 'Nonexistent' ? state : { ...state, status: 'Failed' }
    case 'JobCancelled':
      return state.status === 'Nonexistent' ? state : { ...state, status: 'Cancelled' }
    default:
      return assertNever(event)
  }
}

export const jobDecider: Decider<JobState, JobCommand, JobEvent> = { decide, evolve, initialState }
export const jobStreamId = (jobId: number) => `job-${jobId}`
