import { jobDecider, jobStreamId, type QueueJob } from '../domain/job/job.ts'
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
