import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Config } from '../src/config/config.ts'
import type { Database } from '../src/db/database.ts'
import { jobDecider, jobStreamId, type JobKind } from '../src/domain/job/job.ts'
import { nextSequenceValue, type CommandRunner, type Reaction } from '../src/eventStore/unitOfWork.ts'
import { jobKindSpecs, parsePayload, type RetryPolicy } from '../src/jobs/kinds.ts'
import { claimJob, jobsChannel, releaseJob, renewLease, type ClaimedJob } from '../src/jobs/queue.ts'
import { retryTransient } from '../src/jobs/retry.ts'
import type { Logger } from '../src/log.ts'
import { stopGpgAgent } from '../src/ostree/flatpak.ts'
import { commandMetadata } from '../src/services/actor.ts'
import { jobHandlers, type JobHandlers } from './handlers.ts'
import type { JobContext, JobHandler, JobOutcome } from './jobs/types.ts'
import { JobLogWriter } from './jobLog.ts'

/** A follow-up job in the results of the job that caused it (`updateRepoJobId`, `deltaJobId`, …), as clients read them. */
function followUpResults(reactions: readonly Reaction[]): Record<string, unknown> {
  if (reactions.length === 0) return {}
  const results: Record<string, unknown> = { followUps: reactions.map(({ kind, jobId, joined }) => ({ kind, jobId, joined })) }
  for (const { kind, jobId } of reactions) results[`${kind.replace(/-(\w)/g, (_, letter: string) => letter.toUpperCase())}JobId`] = jobId
  return results
}

export type WorkerOptions = {
  db: Database
  run: CommandRunner
  config: Config
  log: Logger
  concurrency?: number
  /**
   * At most this many compute jobs (commits, publishes, deltas…) at once on this host, counted
   * over every worker process on it; null: no bound beyond the slots. For hosts whose cores are
   * shared by several worker processes: extra processes then add slots for jobs that wait.
   */
  computeSlots?: number | null
  leaseMs?: number
  pollMs?: number
  maxAttempts?: number
  /** Replaces handlers and retry policies (tests). */
  handlers?: JobHandlers
  retry?: Partial<Record<JobKind, RetryPolicy>>
}

const workerActor = (workerId: string) => ({
  claims: { sub: 'worker', exp: 0, name: `worker ${workerId}`, jti: null, scope: [], prefixes: [], apps: [], repos: [], branches: [], tokenType: null },
  requestId: null,
})

/**
 * Runs jobs: each slot claims the next runnable job (lease + heartbeat), runs its handler with
 * the real tools, and records the outcome and the job's end in one transaction. Delivery is at
 * least once: a worker that dies loses its lease and the job runs again, so handlers converge.
 */
export function startWorkers(options: WorkerOptions): { stop: () => Promise<void>; workerId: string } {
  const { db, run, config, log } = options
  const concurrency = options.concurrency ?? 2
  const leaseMs = options.leaseMs ?? Number(process.env.FLATDEPOT_JOB_LEASE_MS ?? 60_000)
  const pollMs = options.pollMs ?? 1_000
  const maxAttempts = options.maxAttempts ?? 5
  const handlers = options.handlers ?? jobHandlers
  const retryPolicy = (kind: JobKind) => options.retry?.[kind] ?? jobKindSpecs[kind].retry
  const workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
  const stopping = new AbortController()
  const cleanups = new Set<Promise<void>>()
  // Sleeping slots, first asleep first. A NOTIFY wakes one of them, not all (each would send a
  // claim for the one job); a slot that claims a job wakes the next, in case more is waiting. A
  // NOTIFY that finds no slot asleep is kept, so a slot that was mid-claim when the job was queued
  // claims again before it sleeps instead of leaving the job to the next poll.
  let asleep: (() => void)[] = []
  let missed = false
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        asleep = asleep.filter((fn) => fn !== done)
        resolve()
      }
      asleep.push(done)
    })
  const nudge = () => {
    const next = asleep[0]
    if (next) next()
    else missed = true
  }
  // One writer for the logs of every job this process runs: their lines share transactions.
  const logs = new JobLogWriter(db, log)
  let unlisten: (() => Promise<void>) | null = null
  db.listen(jobsChannel, nudge)
    .then((stop) => (unlisten = stop))
    .catch((error: unknown) => log.warn({ err: error }, 'no job notifications; polling only'))

  async function execute(job: ClaimedJob): Promise<void> {
    const metadata = () => commandMetadata(workerActor(workerId))
    const jobLog = logs.open(job.jobId)
    const handler = handlers[job.kind] as JobHandler<JobKind> | undefined
    const policy = retryPolicy(job.kind)
    const heartbeat = setInterval(() => {
      renewLease(db, job.jobId, workerId, leaseMs)
        .then((mine) => {
          if (!mine) log.warn({ jobId: job.jobId }, 'lost the lease on a running job')
        })
        .catch((error: unknown) => log.warn({ err: error, jobId: job.jobId }, 'lease renewal failed'))
    }, leaseMs / 3)
    /** A passing failure (a command that could not start, a database blip) is tried again after a pause. */
    const retrying = <T>(what: string, work: () => Promise<T>) =>
      retryTransient(work, policy, {
        signal: stopping.signal,
        onRetry: (error, attempt, delay) => jobLog.message(`${what} failed for a passing reason (try ${attempt} of ${policy.retries + 1}): ${error.message}; trying again in ${delay}`),
      })
    // The job starts at once; its start is recorded meanwhile and before its outcome (the
    // handlers only read the build, never the job's own stream).
    const started = retrying('Recording the start', () =>
      run(metadata(), (unit) => unit.decide(jobDecider, jobStreamId(job.jobId), 'job', { type: 'StartJob', data: { workerId, attempt: job.attempts } })),
    )
    started.catch(() => {}) // observed below, after the handler
    try {
      if (job.attempts > 1) jobLog.message(`Attempt ${job.attempts}: the previous worker stopped before finishing`)
      if (!handler) throw new Error(`no worker handles ${job.kind} jobs yet`)
      if (job.attempts > maxAttempts) throw new Error(`gave up after ${maxAttempts} attempts`)
      const context: JobContext = {
        job,
        payload: parsePayload(job.kind, job.jobId, job.contents),
        log: jobLog,
        logger: log,
        signal: stopping.signal,
        config,
        prisma: db.prisma,
        nextId: (sequence) => nextSequenceValue(db, sequence),
        read: async (decider, streamId, streamType) => (await run(metadata(), (unit) => unit.state(decider, streamId, streamType))).result,
      }
      const outcome: JobOutcome = await retrying('The job', () => handler.run(context))
      await started
      await jobLog.flush()
      const { result: notes } = await retrying('Recording the outcome', () =>
        run(metadata(), async (unit) => {
          const recorded = await outcome.record?.(unit)
          // The pipeline's follow-ups, queued in this unit; their ids go into the results.
          const reactions = await unit.settle()
          const results = { ...outcome.results, ...(recorded ?? {}), ...followUpResults(reactions) }
          const logLines = (await jobLog.lineCount()) + reactions.length
          await unit.decide(jobDecider, jobStreamId(job.jobId), 'job', { type: 'SucceedJob', data: { results, logLines } })
          return reactions.map((reaction) => reaction.note)
        }),
      )
      // What the pipeline queued ("Queued repository update job …"), counted in logLines above.
      for (const note of notes) jobLog.message(note)
      await jobLog.flush()
      // Clean-up (removing a build's thousands of files) does not hold the slot: the next job
      // starts at once. Stopping waits for it.
      if (outcome.after) {
        const cleanup = outcome
          .after()
          .catch((error: unknown) => log.warn({ err: error, jobId: job.jobId }, 'clean-up after a job failed; it leaves files behind'))
          .finally(() => cleanups.delete(cleanup))
        cleanups.add(cleanup)
      }
    } catch (error) {
      await started.catch(() => {})
      if (stopping.signal.aborted) {
        // Shutting down: give the job back at once rather than wait for the lease to run out.
        await releaseJob(db, job.jobId, workerId, 0)
        return
      }
      const message = error instanceof Error ? error.message : String(error)
      jobLog.message(`Job failed: ${message}`)
      await jobLog.flush()
      log.warn({ jobId: job.jobId, kind: job.kind, err: error }, 'job failed')
      // What the failure means for the build is the pipeline's (it reacts to JobFailed).
      await retrying('Recording the failure', () =>
        run(metadata(), async (unit) => {
          const logLines = await jobLog.lineCount()
          await unit.decide(jobDecider, jobStreamId(job.jobId), 'job', { type: 'FailJob', data: { error: message, logLines } })
        }),
      )
      await jobLog.flush()
    } finally {
      clearInterval(heartbeat)
      void logs.forget(job.jobId)
    }
  }

  async function slot(index: number): Promise<void> {
    while (!stopping.signal.aborted) {
      let job: ClaimedJob | null = null
      missed = false
      try {
        job = await claimJob(db, workerId, leaseMs, options.computeSlots ?? null)
      } catch (error) {
        log.error({ err: error, slot: index }, 'claiming a job failed')
      }
      if (!job) {
        if (!missed) await sleep(pollMs)
        continue
      }
      nudge()
      const claimed = job
      try {
        await execute(claimed)
      } catch (error) {
        log.error({ err: error, jobId: claimed.jobId }, 'job bookkeeping failed; it runs again when its lease ends')
      }
    }
  }

  const slots = Array.from({ length: concurrency }, (_, index) => slot(index))
  log.info({ workerId, concurrency }, 'workers started')
  return {
    workerId,
    async stop() {
      stopping.abort()
      // Each `done` replaces `asleep` with a filtered copy, so this loop walks the list as it was.
      for (const done of asleep) done()
      await Promise.all(slots)
      // The lines of jobs given back on the way out (their next attempt continues after them).
      await logs.flush()
      await Promise.all(cleanups)
      await unlisten?.()
      await stopGpgAgent(config.gpgHomedir)
    },
  }
}
