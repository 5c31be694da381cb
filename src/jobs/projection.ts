import type { JobEvent } from '../domain/job/job.ts'
import { assertNever } from '../domain/shared/messages.ts'
import type { InlineHandler } from '../eventStore/eventStore.ts'
import type { StoredEvent } from '../eventStore/types.ts'
import type { Prisma } from '../generated/prisma/client.ts'
import { jobKindSpecs, queueOf } from './kinds.ts'
import { jobsChannel } from './queue.ts'

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
            queue: queueOf(event.data),
            priority: jobKindSpecs[event.data.kind].priority,
            debounceKey: event.data.debounceKey ?? null,
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
