import { z } from 'zod'
import type { JobKind } from '../domain/job/job.ts'

/**
 * Every kind of job in one table: what it carries (its payload, checked when it is queued and
 * again when a worker takes it), which jobs it may not run beside (its queue), its order among a
 * queue's waiting jobs (flat-manager's order of kinds: lower first), whether a waiting job of its
 * kind and queue takes in later requests (debounce), and how often a transient failure is tried
 * again. A new kind is an entry here plus its handler in workers/handlers.ts.
 */
export type RetryPolicy = Readonly<{
  /** Tries after the first, for a transient failure only (see isTransient). */
  retries: number
  minMs: number
  maxMs: number
}>

export type QueueScope =
  /** Work on one build's files: one job at a time per build. */
  | 'build'
  /** Changes one repo: one job at a time per repo (publishes, updates, prunes). */
  | 'repo'
  /**
   * Static deltas: a queue of their own per repo. Generating them (minutes for a large runtime)
   * only adds files under deltas/, listed once their superblock is written, so publishes and
   * updates go on meanwhile; retiring deltas and the summary stay with the repo's updates.
   */
  | 'deltas'

type KindSpec = Readonly<{
  payload: z.ZodType<Record<string, unknown>>
  queue: QueueScope
  priority: number
  /** At most one waiting job of this kind per queue: a later request joins it (flat-manager's piggy-backing). */
  debounce: boolean
  retry: RetryPolicy
}>

/**
 * The kinds that keep a machine's cores busy while they run (ostree commits, signing, appstream,
 * static deltas, OCI bundles), as opposed to those that mostly wait (check hooks calling out,
 * mirror pulls) or move files. A worker's compute slots (`--compute-slots`) bound these per host.
 */
export const computeKinds: readonly string[] = ['commit', 'publish', 'republish', 'rollback', 'update-repo', 'delta', 'oci-export']

export const defaultRetry: RetryPolicy = { retries: 4, minMs: 1_000, maxMs: 30_000 }

const build = z.object({ build: z.number().int().positive() })
const repo = z.object({ repo: z.string().min(1) })

export const jobKindSpecs = {
  commit: {
    payload: build.extend({
      endOfLife: z.string().nullable().default(null),
      endOfLifeRebase: z.string().nullable().default(null),
      tokenType: z.number().int().nullable().default(null),
    }),
    queue: 'build',
    priority: 0,
    debounce: false,
    retry: defaultRetry,
  },
  purge: { payload: build, queue: 'build', priority: 0, debounce: false, retry: defaultRetry },
  check: { payload: build.extend({ name: z.string() }), queue: 'build', priority: 1, debounce: false, retry: defaultRetry },
  publish: { payload: build, queue: 'repo', priority: 1, debounce: false, retry: defaultRetry },
  republish: {
    payload: repo.extend({ app: z.string(), endOfLife: z.string().nullable().default(null), endOfLifeRebase: z.string().nullable().default(null) }),
    queue: 'repo',
    priority: 1,
    debounce: false,
    retry: defaultRetry,
  },
  'update-repo': { payload: repo, queue: 'repo', priority: 2, debounce: true, retry: defaultRetry },
  delta: { payload: repo, queue: 'deltas', priority: 3, debounce: true, retry: defaultRetry },
  // Not debounced: syncs of two upstreams of one repo are different requests.
  'mirror-sync': { payload: repo.extend({ upstream: z.string().min(1) }), queue: 'repo', priority: 3, debounce: false, retry: defaultRetry },
  // Not debounced: a dry run and a real prune (or two depths) are different requests.
  prune: {
    payload: repo.extend({
      depth: z.number().int().min(0).default(3),
      keepYoungerThanDays: z.number().int().min(0).nullable().default(null),
      dryRun: z.boolean().default(false),
    }),
    queue: 'repo',
    priority: 100,
    debounce: false,
    retry: defaultRetry,
  },
  // After every update: one waiting export takes in the next ones.
  export: { payload: repo, queue: 'repo', priority: 4, debounce: true, retry: defaultRetry },
  // Reads the repo and writes only the OCI store: beside publishes, in the repo's background queue.
  'oci-export': { payload: repo, queue: 'deltas', priority: 4, debounce: true, retry: defaultRetry },
  delete: {
    payload: repo.extend({ app: z.string().nullable().default(null), refs: z.array(z.string()).default([]), reason: z.string(), force: z.boolean().default(false) }),
    queue: 'repo',
    priority: 1,
    debounce: false,
    retry: defaultRetry,
  },
  rollback: {
    payload: repo.extend({ ref: z.string(), to: z.string().regex(/^[0-9a-f]{64}$/) }),
    queue: 'repo',
    priority: 1,
    debounce: false,
    retry: defaultRetry,
  },
} as const satisfies Record<JobKind, KindSpec>

export type JobPayload<K extends JobKind> = z.output<(typeof jobKindSpecs)[K]['payload']>
export type JobPayloadInput<K extends JobKind> = z.input<(typeof jobKindSpecs)[K]['payload']>

/** Where a job sits: its repo (a repo-wide job, or a publish into it) and its build. */
export type JobPlace = Readonly<{ kind: JobKind; repo: string | null; buildId: number | null; jobId: number }>

/** The queue a job waits in: jobs of one queue never run side by side. */
export function queueOf(job: JobPlace): string {
  const scope = jobKindSpecs[job.kind].queue
  if (scope === 'deltas' && job.repo) return `deltas:${job.repo}`
  if (job.repo && scope !== 'build') return `repo:${job.repo}`
  return job.buildId === null ? `job:${job.jobId}` : `build:${job.buildId}`
}

/** The key that a waiting job of a debounced kind holds, so a second one is never queued beside it. */
export function debounceKeyOf(job: JobPlace): string | null {
  return jobKindSpecs[job.kind].debounce ? `${job.kind}@${queueOf(job)}` : null
}

/** A queued job's payload, checked: a job queued by an older version that no longer fits fails with this message. */
export function parsePayload<K extends JobKind>(kind: K, jobId: number, contents: unknown): JobPayload<K> {
  const parsed = jobKindSpecs[kind].payload.safeParse(contents)
  if (!parsed.success) {
    throw new Error(`job ${jobId} (${kind}) carries contents that do not fit its kind: ${z.prettifyError(parsed.error).replaceAll('\n', ' ')}`)
  }
  return parsed.data as JobPayload<K>
}
