import type { Database } from '../db/database.ts'
import { sql } from '../db/sql.ts'
import type { JobKind } from '../domain/job/job.ts'
import { computeKinds } from './kinds.ts'

export const jobsChannel = 'flatdepot_jobs'

export type ClaimedJob = Readonly<{
  jobId: number
  attempts: number
  kind: JobKind
  repoName: string | null
  buildId: number | null
  contents: Record<string, unknown>
}>

/**
 * Claims the next runnable job, honouring one-at-a-time per queue (all jobs that change one repo
 * share its queue). The claim is one call of `flatdepot_claim_job` (migration 0010), one round
 * trip: candidates are locked with SKIP LOCKED; the queue's advisory lock, held to the end of that
 * call's transaction, makes the "nothing else of this queue is leased" check and the lease one
 * step, so two workers never run two jobs of one queue. The lease is the claim: a worker that
 * dies stops renewing it, and the job becomes runnable again when it runs out.
 */
export async function claimJob(
  db: Pick<Database, 'query'>,
  workerId: string,
  leaseMs: number,
  /** At most this many compute jobs (computeKinds) leased at once by the workers of this host (all processes). */
  computeSlots: number | null = null,
): Promise<ClaimedJob | null> {
  const host = workerId.split(':')[0]!
  const [claimed] = await db.query<{ job_id: number; attempts: number; kind: string; repo_name: string | null; build_id: number | null; contents: unknown }>(sql`
    SELECT * FROM flatdepot_claim_job(${workerId}, ${leaseMs / 1000}::double precision, ${host}, ${computeSlots}::integer, ${[...computeKinds]}::text[])`)
  if (!claimed) return null
  return {
    jobId: claimed.job_id,
    attempts: claimed.attempts,
    kind: claimed.kind as JobKind,
    repoName: claimed.repo_name,
    buildId: claimed.build_id,
    contents: (typeof claimed.contents === 'string' ? JSON.parse(claimed.contents) : claimed.contents) as Record<string, unknown>,
  }
}

/** Renews a lease; false when the job is no longer this worker's (it ran out and was re-claimed). */
export async function renewLease(db: Pick<Database, 'query'>, jobId: number, workerId: string, leaseMs: number): Promise<boolean> {
  const rows = await db.query(sql`
    UPDATE job_queue SET locked_until = now() + make_interval(secs => ${leaseMs / 1000}::double precision)
    WHERE job_id = ${jobId} AND locked_by = ${workerId} RETURNING 1`)
  return rows.length === 1
}

/** Lets a job that failed for a passing reason run again after a delay. */
export async function releaseJob(db: Pick<Database, 'query'>, jobId: number, workerId: string, delayMs: number): Promise<void> {
  await db.query(sql`
    UPDATE job_queue SET locked_by = NULL, locked_until = NULL,
      run_after = now() + make_interval(secs => ${delayMs / 1000}::double precision)
    WHERE job_id = ${jobId} AND locked_by = ${workerId}`)
}
