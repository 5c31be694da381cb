import type { Build, BuildRef, Check, Job, JobLogLine } from '../generated/prisma/client.ts'

/**
 * flat-manager's JSON, field for field (its serde of models.rs): integer states, `created` as a
 * naive UTC timestamp, fields omitted when null where upstream omits them, a job's contents and
 * results as JSON *strings* (its clients parse them again), `start_after` as a SystemTime.
 */

const repoStates: Record<string, number> = { Uploading: 0, Committing: 1, Ready: 2, Failed: 3, Purging: 4, Purged: 5, Validating: 6 }
const publishedStates: Record<string, number> = { Unpublished: 0, Publishing: 1, Published: 2, Failed: 3 }
const checkStatuses: Record<string, number> = { Pending: 0, Passed: 1, PassedWithWarnings: 2, Failed: 3, ReviewRequired: 4 }
/**
 * flat-manager's job kinds; flatdepot's own kinds take the nearest one (its clients decode the
 * kind as one of these six): static deltas are part of a repo update, a purge is build work,
 * deleting and rolling back are edits of published apps, like a republish.
 */
const jobKinds: Record<string, number> = { commit: 0, publish: 1, 'update-repo': 2, republish: 3, check: 4, prune: 5, delta: 2, purge: 0, 'mirror-sync': 2, delete: 3, rollback: 3 }
/** New, Started, Ended, Broken. */
const jobStatuses: Record<string, number> = { Queued: 0, Running: 1, Succeeded: 2, Failed: 3, Cancelled: 3 }

/** `YYYY-MM-DDTHH:MM:SS.ffffff`, UTC without a zone (chrono's NaiveDateTime). */
export function naiveUtc(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000`
}

const omitNull = (value: Record<string, unknown>) => Object.fromEntries(Object.entries(value).filter(([, field]) => field !== null && field !== undefined))

export function buildJson(build: Build): Record<string, unknown> {
  return {
    id: build.id,
    created: naiveUtc(build.createdAt),
    repo_state: repoStates[build.repoState] ?? 3,
    ...omitNull({ repo_state_reason: build.repoStateReason }),
    published_state: publishedStates[build.publishedState] ?? 3,
    ...omitNull({ published_state_reason: build.publishedStateReason, commit_job_id: build.commitJobId, publish_job_id: build.publishJobId }),
    repo: build.repoName,
    extra_ids: build.extraIds,
    app_id: build.appId,
    public_download: build.publicDownload,
    build_log_url: build.buildLogUrl,
    token_name: build.tokenName,
    token_type: build.tokenType,
  }
}

export function buildRefJson(ref: BuildRef): Record<string, unknown> {
  return { id: ref.id, build_id: ref.buildId, ref_name: ref.refName, commit: ref.commit, build_log_url: ref.buildLogUrl }
}

export function checkJson(check: Check): Record<string, unknown> {
  return {
    check_name: check.name,
    build_id: check.buildId,
    job_id: check.jobId,
    status: checkStatuses[check.status] ?? 0,
    status_reason: check.statusReason,
    results: check.results,
  }
}

/** A job's log as flat-manager's single text: one line per stored line, command output included. */
export function jobLogText(lines: readonly Pick<JobLogLine, 'text'>[]): string {
  return lines.map((line) => `${line.text}\n`).join('')
}

/**
 * The job, its log from byte `logOffset` (flat-manager's `String::split_off`; the Python client
 * counts characters instead, which is the same for the ASCII that logs hold).
 */
export function jobJson(job: Job, log: string, logOffset: number): Record<string, unknown> {
  const startAfter = job.startAfter
  const results = job.status === 'Failed' || job.status === 'Cancelled' ? { 'error-message': job.error ?? 'unknown error' } : restResults(job.results)
  return {
    id: job.id,
    kind: jobKinds[job.kind] ?? 0,
    status: jobStatuses[job.status] ?? 0,
    contents: JSON.stringify(restContents(job)),
    ...(job.finishedAt ? { results: JSON.stringify(results) } : {}),
    log: Buffer.from(log, 'utf8').subarray(Math.max(0, logOffset)).toString('utf8'),
    start_after: startAfter ? { secs_since_epoch: Math.floor(startAfter.getTime() / 1000), nanos_since_epoch: (startAfter.getTime() % 1000) * 1_000_000 } : null,
    repo: job.repoName,
  }
}

/** Contents under flat-manager's names (its clients and hooks read `endoflife`, `endoflife_rebase`, `token_type`). */
function restContents(job: Job): Record<string, unknown> {
  const contents = (job.contents ?? {}) as Record<string, unknown>
  if (job.kind !== 'commit') return contents
  const { endOfLife, endOfLifeRebase, tokenType, ...rest } = contents
  return { ...rest, endoflife: endOfLife ?? null, endoflife_rebase: endOfLifeRebase ?? null, token_type: tokenType ?? null }
}

/** Results under flat-manager's names too: a publish names its repo update as `update-repo-job`. */
function restResults(results: unknown): Record<string, unknown> {
  const value = (results ?? {}) as Record<string, unknown>
  return typeof value.updateRepoJobId === 'number' ? { ...value, 'update-repo-job': value.updateRepoJobId } : value
}
