import { jobDecider, jobStreamId, type JobKind, type QueueJob } from '../domain/job/job.ts'
import type { PrismaClient } from '../generated/prisma/client.ts'
import type { UnitOfWork } from '../eventStore/unitOfWork.ts'

/** Queues a job in the caller's unit of work: its event and its queue row commit with the cause. */
export async function queueJob(
  unit: UnitOfWork,
  job: Omit<QueueJob['data'], 'startAfter'> & { startAfter?: string | null },
): Promise<void> {
  await unit.decide(jobDecider, jobStreamId(job.jobId), 'job', {
    type: 'QueueJob',
    data: { ...job, startAfter: job.startAfter ?? null },
  })
}

/**
 * Queues a repo-wide job unless one of that kind is already waiting for the repo (it will do the
 * work for this caller too): flat-manager's "piggy-backing" of repo updates.
 */
export async function queueJobOnce(
  unit: UnitOfWork,
  prisma: PrismaClient,
  job: { kind: JobKind; repo: string; startAfter?: string | null },
): Promise<{ jobId: number; piggyBacked: boolean }> {
  const pending = await prisma.job.findFirst({
    where: { kind: job.kind, repoName: job.repo, status: 'Queued' },
    orderBy: { id: 'desc' },
  })
  if (pending) return { jobId: pending.id, piggyBacked: true }
  const jobId = await unit.nextId('job_ids')
  await queueJob(unit, { jobId, kind: job.kind, repo: job.repo, buildId: null, contents: { repo: job.repo }, startAfter: job.startAfter ?? null })
  return { jobId, piggyBacked: false }
}
