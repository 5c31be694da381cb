import type { JobEvent } from '../domain/job/job.ts'
import { assertNever } from '../domain/shared/messages.ts'
import type { InlineHandler } from '../eventStore/eventStore.ts'
import type { StoredEvent } from '../eventStore/types.ts'
import { json, sql } from '../db/sql.ts'
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
        tx.write(sql`
          INSERT INTO jobs (id, kind, status, repo_name, build_id, contents, start_after, created_at)
          VALUES (${jobId}, ${kind}, 'Queued', ${repo}, ${buildId}, ${json(contents)}, ${startAfter ? new Date(startAfter) : null}, ${at})`)
        return
      }
      case 'JobStarted':
        tx.write(sql`UPDATE jobs SET status = 'Running', attempts = ${event.data.attempt}, started_at = ${at} WHERE id = ${id}`)
        return
      case 'JobSucceeded':
        tx.write(sql`
          UPDATE jobs SET status = 'Succeeded', results = ${json(event.data.results)}, finished_at = ${at}, log_lines = ${event.data.logLines ?? null}
          WHERE id = ${id}`)
        return
      case 'JobFailed':
        tx.write(sql`UPDATE jobs SET status = 'Failed', error = ${event.data.error}, finished_at = ${at}, log_lines = ${event.data.logLines ?? null} WHERE id = ${id}`)
        return
      case 'JobCancelled':
        tx.write(sql`UPDATE jobs SET status = 'Cancelled', error = ${event.data.reason}, finished_at = ${at} WHERE id = ${id}`)
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
        const runAfter = startAfter ? new Date(startAfter) : new Date(event.metadata.at)
        tx.write(sql`
          INSERT INTO job_queue (job_id, queue, priority, debounce_key, run_after)
          VALUES (${jobId}, ${queueOf(event.data)}, ${jobKindSpecs[event.data.kind].priority}, ${event.data.debounceKey ?? null}, ${runAfter})`)
        // Wakes idle workers in every process at commit; they still find work by polling.
        tx.write(sql`SELECT pg_notify(${jobsChannel}, ${String(jobId)})`)
        return
      }
      case 'JobSucceeded':
      case 'JobFailed':
      case 'JobCancelled':
        tx.write(sql`DELETE FROM job_queue WHERE job_id = ${event.data.jobId}`)
        return
      case 'JobStarted':
        return
      default:
        assertNever(event)
    }
  },
}
