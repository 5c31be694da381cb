import type { JobEvent, JobKind } from '../domain/job/job.ts'
import { assertNever } from '../domain/shared/messages.ts'
import type { InlineHandler } from '../eventStore/eventStore.ts'
import type { StoredEvent } from '../eventStore/types.ts'
import type { Prisma } from '../generated/prisma/client.ts'
import { jobPriority, jobsChannel } from '../jobs/queue.ts'

const isJobEvent = (event: StoredEvent): event is StoredEvent & JobEvent => event.type.startsWith('Job')

/** The jobs read model: state, contents, results. Lease bookkeeping lives in the queue table. */
export const jobsProjection: InlineHandler = {
  name: 'jobs',
  rebuildable: true,
  async handle(tx, event) {
    if (!isJobEvent(event)) return
    const at = new Date(event.metadata.at)
    const id = event.data.jobId
    switch (event.type) {
      case 'JobQueued': {
        const { jobId, kind, repo, buildId, contents, startAfter } = event.data
        await tx.job.create({
          data: {
            id: jobId,
            kind,
            status: 'Queued',
            repoName: repo,
            buildId,
            contents: contents as Prisma.InputJsonValue,
            startAfter: startAfter ? new Date(startAfter) : null,
            createdAt: at,
          },
        })
        return
      }
      case 'JobStarted':
        await tx.job.update({ where: { id }, data: { status: 'Running', attempts: event.data.attempt, startedAt: at } })
        return
      case 'JobSucceeded':
        await tx.job.update({
          where: { id },
          data: { status: 'Succeeded', results: event.data.results as Prisma.InputJsonValue, finishedAt: at, logLines: event.data.logLines ?? null },
        })
        return
      case 'JobFailed':
        await tx.job.update({ where: { id }, data: { status: 'Failed', error: event.data.error, finishedAt: at, logLines: event.data.logLines ?? null } })
        return
      case 'JobCancelled':
        await tx.job.update({ where: { id }, data: { status: 'Cancelled', error: event.data.reason, finishedAt: at } })
        return
      default:
        assertNever(event)
    }
  },
}

/**
 * Which jobs may not run side by side: all jobs that change one repo share its queue. Generating
 * static deltas (minutes for a large runtime) has a queue of its own per repo: it only adds new
 * files under deltas/ (a delta is listed once its superblock is written), so publishes and repo
 * updates go on meanwhile; retiring deltas and the summary stay with the repo's updates.
 */
export function queueFor(job: { kind: JobKind; repo: string | null; buildId: number | null; jobId: number }): string {
  if (job.repo && job.kind === 'delta') return `deltas:${job.repo}`
  if (job.repo) return `repo:${job.repo}`
  return job.buildId === null ? `job:${job.jobId}` : `build:${job.buildId}`
}

/**
 * The transactional outbox: a queued job becomes a claimable row in the same transaction as its
 * JobQueued event, so no job is lost and none exists without its event. Not a read model: a
 * rebuild leaves it alone.
 */
export const jobQueueOutbox: InlineHandler = {
  name: 'job-queue',
  rebuildable: false,
  async handle(tx, event) {
    if (!isJobEvent(event)) return
    switch (event.type) {
      case 'JobQueued': {
        const { jobId, startAfter } = event.data
        await tx.jobQueueEntry.create({
          data: {
            jobId,
            queue: queueFor(event.data),
            priority: jobPriority[event.data.kind],
            runAfter: startAfter ? new Date(startAfter) : new Date(event.metadata.at),
          },
        })
        // Wakes idle workers in every process at commit; they still find work by polling.
        await tx.$executeRaw`SELECT pg_notify(${jobsChannel}, ${String(jobId)})`
        return
      }
      case 'JobSucceeded':
      case 'JobFailed':
      case 'JobCancelled':
        await tx.jobQueueEntry.deleteMany({ where: { jobId: event.data.jobId } })
        return
      case 'JobStarted':
        return
      default:
        assertNever(event)
    }
  },
}
