import { sql } from '../db/sql.ts'
import { jobDecider, jobStreamId, type JobKind } from '../domain/job/job.ts'
import type { UnitOfWork } from '../eventStore/unitOfWork.ts'
import { debounceKeyOf, jobKindSpecs, type JobPayload, type JobPayloadInput } from './kinds.ts'

export type Enqueued = Readonly<{ jobId: number; joined: boolean }>

/**
 * Queues a job in the caller's unit of work: its event and its queue row commit with the cause.
 * The payload is checked against the kind's schema. A debounced kind (repo updates, deltas)
 * joins the job of its kind already waiting in the same queue instead, if there is one: the
 * waiting job's key is read here and locked again in the append, and a claim in between (which
 * clears the key) sends the unit round again, so the caller never joins a job that has started.
 * Two units queueing at once cannot both add one: the key is unique in the queue table; two
 * facts of one unit share the job the first of them queued.
 */
export async function enqueue<K extends JobKind>(
  unit: UnitOfWork,
  kind: K,
  payload: JobPayloadInput<K>,
  options: { jobId?: number; repo?: string | null; startAfter?: Date | null } = {},
): Promise<Enqueued> {
  const contents = jobKindSpecs[kind].payload.parse(payload) as JobPayload<K>
  const repo = options.repo ?? ('repo' in contents ? contents.repo : null)
  const buildId = 'build' in contents ? contents.build : null
  const key = debounceKeyOf({ kind, repo, buildId, jobId: 0 })
  if (key !== null) {
    // Queued earlier in this same unit (two facts of one unit that each want a repo update).
    const sameUnit = unit.appends
      .flatMap((append) => append.events)
      .find((event) => event.type === 'JobQueued' && (event.data as { debounceKey?: string | null }).debounceKey === key)
    if (sameUnit) return { jobId: (sameUnit.data as { jobId: number }).jobId, joined: true }
    const [waiting] = await unit.query<{ job_id: number }>(sql`SELECT job_id FROM job_queue WHERE debounce_key = ${key}`.prepare())
    if (waiting) {
      const jobId = waiting.job_id
      unit.guard({
        name: `debounce:${key}`,
        holds: async (tx) => (await tx.read(sql`SELECT 1 FROM job_queue WHERE job_id = ${jobId} AND debounce_key = ${key} FOR UPDATE`)).length === 1,
      })
      return { jobId, joined: true }
    }
  }
  const jobId = options.jobId ?? (await unit.nextId('job_ids'))
  await unit.decide(jobDecider, jobStreamId(jobId), 'job', {
    type: 'QueueJob',
    data: { jobId, kind, repo, buildId, contents, startAfter: options.startAfter?.toISOString() ?? null, debounceKey: key },
  })
  return { jobId, joined: false }
}
