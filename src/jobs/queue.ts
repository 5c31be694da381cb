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
 * share its queue). Candidates are locked with SKIP LOCKED; the queue's advisory lock, held to
 * the end of this short transaction, makes the "nothing else of this queue is leased" check and
 * the lease one step, so two workers never run two jobs of one queue. The lease is the claim: a
 * worker that dies stops renewing it, and the job becomes runnable again when it runs out.
 */
export async function claimJob(
  db: Pick<Database, 'transaction'>,
  workerId: string,
  leaseMs: number,
  /** At most this many compute jobs (computeKinds) leased at once by the workers of this host (all processes). */
  computeSlots: number | null = null,
): Promise<ClaimedJob | null> {
  const host = workerId.split(':')[0]!
  // On the driver connection: a handful of round trips of a fraction of a millisecond each.
  const claimed = await db.transaction(async (tx) => {
    // The first runnable job of every queue that has none leased: a queue with fifty jobs waiting
    // behind a running one does not hide another queue's job from an idle worker.
    const candidates = await tx.read<{ job_id: number; queue: string; kind: string }>(sql`
      WITH heads AS (
        SELECT DISTINCT ON (queue) job_id FROM job_queue waiting
        WHERE run_after <= now() AND (locked_until IS NULL OR locked_until < now())
          AND NOT EXISTS (SELECT 1 FROM job_queue leased WHERE leased.queue = waiting.queue AND leased.locked_until >= now())
        ORDER BY queue, priority, job_id)
      SELECT job_id, queue, (SELECT kind FROM jobs WHERE jobs.id = job_queue.job_id) AS kind FROM job_queue
      WHERE job_id IN (SELECT job_id FROM heads)
      ORDER BY priority, job_id
      LIMIT 20
      FOR UPDATE OF job_queue SKIP LOCKED`)
    // Compute admission: the host's claims of compute jobs take turns (a transaction-scoped lock
    // per host), and count what the host's workers hold now; expired leases do not count.
    let computeFull = false
    if (computeSlots !== null && candidates.some((candidate) => computeKinds.includes(candidate.kind))) {
      await tx.read(sql`SELECT pg_advisory_xact_lock(hashtext(${`flatdepot-compute:${host}`}))`)
      const [held] = await tx.read<{ n: number }>(sql`
        SELECT count(*)::int AS n FROM job_queue q JOIN jobs j ON j.id = q.job_id
        WHERE q.locked_until >= now() AND split_part(q.locked_by, ':', 1) = ${host} AND j.kind = ANY(${[...computeKinds]})`)
      computeFull = (held?.n ?? 0) >= computeSlots
    }
    for (const candidate of candidates) {
      if (computeFull && computeKinds.includes(candidate.kind)) continue
      const [lock] = await tx.read<{ got: boolean }>(sql`
        SELECT pg_try_advisory_xact_lock(hashtext(${`flatdepot-queue:${candidate.queue}`})) AS got`)
      if (!lock?.got) continue
      // The lease and the job's description in one round trip.
      const [row] = await tx.read<{ job_id: number; attempts: number; kind: string; repo_name: string | null; build_id: number | null; contents: unknown }>(sql`
        WITH claimed AS (
          UPDATE job_queue SET locked_by = ${workerId},
            locked_until = now() + make_interval(secs => ${leaseMs / 1000}::double precision),
            attempts = attempts + 1, debounce_key = NULL
          WHERE job_id = ${candidate.job_id}
            -- Checked again on the row as it is now: another slot may have claimed it since the
            -- candidates were read (READ COMMITTED re-reads the row this UPDATE locks).
            AND (locked_until IS NULL OR locked_until < now())
            AND NOT EXISTS (
              SELECT 1 FROM job_queue other
              WHERE other.queue = job_queue.queue AND other.job_id <> job_queue.job_id AND other.locked_until >= now())
          RETURNING job_id, attempts)
        SELECT claimed.job_id, claimed.attempts, jobs.kind, jobs.repo_name, jobs.build_id, jobs.contents
        FROM claimed JOIN jobs ON jobs.id = claimed.job_id`)
      if (row) return row
    }
    return null
  })
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
