import { ApiError, type FlatdepotClient } from './api.ts'
import {
  buildQuery,
  buildUpdatedSubscription,
  commitBuildMutation,
  jobLogSubscription,
  jobQuery,
  publishBuildMutation,
  type Build,
  type Job,
  type JobLogLine,
} from './documents.ts'
import { withRetries } from './push.ts'

/** The steps of a build's way to users, as the CLI (and any script) runs them over the API. */

export async function getBuild(client: FlatdepotClient, id: number): Promise<Build> {
  return (await client.graphql(buildQuery, { id })).build
}

export async function getJob(client: FlatdepotClient, id: number): Promise<Job> {
  return (await client.graphql(jobQuery, { id })).job
}

export async function commitBuild(client: FlatdepotClient, buildId: number, options: { endOfLife?: string; endOfLifeRebase?: string; tokenType?: number }): Promise<number> {
  const { commitBuild } = await client.graphql(commitBuildMutation, { buildId, eol: options.endOfLife ?? null, rebase: options.endOfLifeRebase ?? null, tokenType: options.tokenType ?? null })
  return commitBuild.id
}

export async function publishBuild(client: FlatdepotClient, buildId: number): Promise<number> {
  return (await client.graphql(publishBuildMutation, { buildId })).publishBuild.id
}

export const describeBuild = (build: Build) =>
  [
    `build ${build.id} in ${build.repo}: ${build.repoState.toLowerCase()}${build.repoStateReason ? ` (${build.repoStateReason})` : ''}, ` +
      `${build.publishedState.toLowerCase()}${build.publishedStateReason ? ` (${build.publishedStateReason})` : ''}`,
    ...build.refs.map((ref) => `  ref ${ref.refName} ${ref.commit}`),
    ...build.checks.map((check) => `  check ${check.name} (job ${check.jobId}): ${check.status.toLowerCase()}${check.statusReason ? ` — ${check.statusReason}` : ''}`),
  ].join('\n')

/**
 * Prints a job's log as it is written (graphql-ws; the stored backlog first) until the job ends,
 * and returns the job as it ended.
 */
export async function followJob(client: FlatdepotClient, jobId: number, onLine: (line: JobLogLine) => void): Promise<Job> {
  // Over HTTP first: a wrong URL, token or job id fails at once with a plain answer.
  await getJob(client, jobId)
  let last = 0
  // A dropped connection resumes from the last line seen: nothing missed, nothing twice. (graphql-ws
  // also reconnects on its own, subscribing again with the variables it started with: the lines
  // it sends again are skipped by position.)
  await withRetries(5, `following job ${jobId}`, async () => {
    for await (const { jobLog } of client.subscribe(jobLogSubscription, { jobId, after: last })) {
      if (jobLog.position <= last) continue
      last = jobLog.position
      onLine(jobLog)
    }
  })
  return getJob(client, jobId)
}

/** Follows a job, its log lines on stderr prefixed with the job, and fails unless it succeeded. */
export async function awaitJob(client: FlatdepotClient, jobId: number, what: string, quiet: boolean): Promise<Job> {
  const job = await followJob(client, jobId, (line) => {
    if (!quiet) process.stderr.write(`[${what} job ${jobId}] ${line.text}\n`)
  })
  if (job.status !== 'SUCCEEDED') throw new ApiError(`${what} job ${jobId} ${job.status.toLowerCase()}: ${job.error ?? 'no reason given'}`, job.status)
  return job
}

/** A job id the job's results name (the follow-up job the pipeline queued or joined), if any. */
const followUp = (job: Job, key: 'updateRepoJobId' | 'deltaJobId') => {
  const id = (job.results as Record<string, unknown> | null)?.[key]
  return typeof id === 'number' ? id : null
}

/** Follows the repo update a publish job queued (or joined): the build is installable after it. */
export async function awaitUpdate(client: FlatdepotClient, publishJob: Job, quiet: boolean): Promise<Job> {
  const updateJobId = followUp(publishJob, 'updateRepoJobId')
  if (updateJobId === null) throw new ApiError(`publish job ${publishJob.id} did not say which repo update it queued`)
  return awaitJob(client, updateJobId, 'update-repo', quiet)
}

/**
 * Follows the static deltas a repo update queued (or joined), then the repo update that puts
 * them in the summary: clients updating after this get the new version through a delta.
 */
export async function awaitDeltas(client: FlatdepotClient, updateJob: Job, quiet: boolean): Promise<number> {
  const deltaJobId = followUp(updateJob, 'deltaJobId')
  if (deltaJobId === null) throw new ApiError(`update-repo job ${updateJob.id} did not say which delta job it queued`)
  const deltaJob = await awaitJob(client, deltaJobId, 'delta', quiet)
  const indexing = followUp(deltaJob, 'updateRepoJobId')
  if (indexing !== null) await awaitJob(client, indexing, 'update-repo', quiet)
  return deltaJobId
}

/** Waits until a committed build has passed its checks (Ready), or says why it will not. */
export async function awaitReady(client: FlatdepotClient, buildId: number): Promise<Build> {
  for await (const { buildUpdated: build } of client.subscribe(buildUpdatedSubscription, { id: buildId })) {
    if (build.repoState === 'READY') return build
    if (build.repoState === 'FAILED' || build.repoState.startsWith('PURG')) {
      throw new ApiError(`build ${buildId} is ${build.repoState.toLowerCase()}: ${build.repoStateReason ?? 'no reason given'}`, build.repoState)
    }
    const review = build.checks.find((check) => check.status === 'REVIEW_REQUIRED')
    if (review) {
      throw new ApiError(
        `build ${buildId} waits for a review of check ${review.name}: a reviewer runs \`flatdepot review ${review.jobId} --status passed\`, then \`flatdepot publish ${buildId}\``,
        'REVIEW_REQUIRED',
      )
    }
  }
  throw new ApiError(`the server stopped reporting on build ${buildId}`)
}
