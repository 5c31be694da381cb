import { Command, InvalidArgumentError, Option } from 'commander'
import { SingleBar } from 'cli-progress'
import { ApiError, FlatdepotClient } from '../client/api.ts'
import { push, withRetries, type PushProgress } from '../client/push.ts'

/** The commands build bots and maintainers run against a flatdepot server over its APIs. */

type ConnectionOptions = { url?: string; token?: string; json?: boolean }

const defaultUrl = 'http://127.0.0.1:8080'

function withConnection(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', `the flatdepot server (default: $FLATDEPOT_URL or ${defaultUrl})`))
    .addOption(new Option('--token <token>', 'a token (default: $FLATDEPOT_TOKEN, or $REPO_TOKEN as flat-manager-client reads it)'))
    .option('--json', 'print the result as JSON on stdout')
}

function connect(options: ConnectionOptions): FlatdepotClient {
  const url = options.url ?? process.env.FLATDEPOT_URL ?? defaultUrl
  try {
    new URL(url)
  } catch {
    throw new InvalidArgumentError(`--url ${url} is not a URL (expected e.g. ${defaultUrl})`)
  }
  const token = options.token ?? process.env.FLATDEPOT_TOKEN ?? process.env.REPO_TOKEN
  if (!token) throw new ApiError('no token: pass --token or set FLATDEPOT_TOKEN (a server admin mints one with `flatdepot token create`)')
  return new FlatdepotClient({ url, token })
}

async function withClient<T>(options: ConnectionOptions, fn: (client: FlatdepotClient) => Promise<T>): Promise<T> {
  const client = connect(options)
  try {
    return await fn(client)
  } finally {
    await client.close()
  }
}

function print(options: ConnectionOptions, value: unknown, human: string): void {
  process.stdout.write(options.json ? `${JSON.stringify(value)}\n` : `${human}\n`)
}

/** The job a command started, and how it ended when the command waited for it. */
const printJob = (options: ConnectionOptions, what: string, jobId: number, job: Job | null) =>
  print(options, { jobId, job }, `${what} job ${jobId}${job ? ` ${job.status.toLowerCase()}` : ' queued'}`)

const positiveInt = (what: string) => (value: string) => {
  const number = Number(value)
  if (!Number.isInteger(number) || number <= 0) throw new InvalidArgumentError(`${what} must be a positive whole number`)
  return number
}

const buildFields = `id repo appId repoState repoStateReason publishedState publishedStateReason publicDownload
  uploadedObjects uploadedBytes createdAt commitJobId publishJobId
  refs { refName commit } checks { name jobId status statusReason }`

type Build = {
  id: number
  repo: string
  appId: string | null
  repoState: string
  repoStateReason: string | null
  publishedState: string
  publishedStateReason: string | null
  commitJobId: number | null
  publishJobId: number | null
  refs: { refName: string; commit: string }[]
  checks: { name: string; jobId: number; status: string; statusReason: string | null }[]
}
type Job = { id: number; kind: string; status: string; error: string | null; buildId: number | null; results: unknown }

const describeBuild = (build: Build) =>
  [
    `build ${build.id} in ${build.repo}: ${build.repoState.toLowerCase()}${build.repoStateReason ? ` (${build.repoStateReason})` : ''}, ` +
      `${build.publishedState.toLowerCase()}${build.publishedStateReason ? ` (${build.publishedStateReason})` : ''}`,
    ...build.refs.map((ref) => `  ref ${ref.refName} ${ref.commit}`),
    ...build.checks.map((check) => `  check ${check.name} (job ${check.jobId}): ${check.status.toLowerCase()}${check.statusReason ? ` — ${check.statusReason}` : ''}`),
  ].join('\n')

async function getBuild(client: FlatdepotClient, id: number): Promise<Build> {
  return (await client.graphql<{ build: Build }>(`query($id: Int!) { build(id: $id) { __typename ... on Build { ${buildFields} } ... on Error { message code } } }`, { id })).build
}

const jobFields = 'id kind status error buildId results'

/**
 * Prints a job's log as it is written (graphql-ws; the stored backlog first) until the job ends,
 * and returns the job as it ended. `after` resumes after a line already seen.
 */
export async function followJob(client: FlatdepotClient, jobId: number, onLine: (line: { position: number; stream: string; text: string; at: string }) => void): Promise<Job> {
  // Over HTTP first: a wrong URL, token or job id fails at once with a plain answer.
  await client.graphql(`query($id: Int!) { job(id: $id) { __typename ... on Error { message code } } }`, { id: jobId })
  let last = 0
  // A dropped connection resumes from the last line seen: nothing missed, nothing twice.
  await withRetries(5, `following job ${jobId}`, async () => {
    const lines = client.subscribe<{ jobLog: { position: number; stream: string; text: string; at: string } }>(
      'subscription($jobId: Int!, $after: Int!) { jobLog(jobId: $jobId, after: $after) { position stream text at } }',
      { jobId, after: last },
    )
    for await (const { jobLog } of lines) {
      last = jobLog.position
      onLine(jobLog)
    }
  })
  return (await client.graphql<{ job: Job }>(`query($id: Int!) { job(id: $id) { __typename ... on Job { ${jobFields} } ... on Error { message code } } }`, { id: jobId })).job
}

/** Follows a job, its log lines on stderr prefixed with the job, and fails unless it succeeded. */
async function awaitJob(client: FlatdepotClient, jobId: number, what: string, quiet: boolean): Promise<Job> {
  const job = await followJob(client, jobId, (line) => {
    if (!quiet) process.stderr.write(`[${what} job ${jobId}] ${line.text}\n`)
  })
  if (job.status !== 'SUCCEEDED') throw new ApiError(`${what} job ${jobId} ${job.status.toLowerCase()}: ${job.error ?? 'no reason given'}`, job.status)
  return job
}

/** A job id the job's results name (the follow-up job it queued or joined), if any. */
const followUp = (job: Job, key: 'updateRepoJobId' | 'deltaJobId') => {
  const id = (job.results as Record<string, unknown> | null)?.[key]
  return typeof id === 'number' ? id : null
}

/** Follows the repo update a publish job queued (or joined): the build is installable after it. */
async function awaitUpdate(client: FlatdepotClient, publishJob: Job, quiet: boolean): Promise<Job> {
  const updateJobId = followUp(publishJob, 'updateRepoJobId')
  if (updateJobId === null) throw new ApiError(`publish job ${publishJob.id} did not say which repo update it queued`)
  return awaitJob(client, updateJobId, 'update-repo', quiet)
}

/**
 * Follows the static deltas a repo update queued (or joined), then the repo update that puts
 * them in the summary: clients updating after this get the new version through a delta.
 */
async function awaitDeltas(client: FlatdepotClient, updateJob: Job, quiet: boolean): Promise<number> {
  const deltaJobId = followUp(updateJob, 'deltaJobId')
  if (deltaJobId === null) throw new ApiError(`update-repo job ${updateJob.id} did not say which delta job it queued`)
  const deltaJob = await awaitJob(client, deltaJobId, 'delta', quiet)
  const indexing = followUp(deltaJob, 'updateRepoJobId')
  if (indexing !== null) await awaitJob(client, indexing, 'update-repo', quiet)
  return deltaJobId
}

/** Waits until a committed build has passed its checks (Ready), or says why it will not. */
async function awaitReady(client: FlatdepotClient, buildId: number): Promise<Build> {
  const updates = client.subscribe<{ buildUpdated: Build }>(`subscription($id: Int!) { buildUpdated(id: $id) { ${buildFields} } }`, { id: buildId })
  for await (const { buildUpdated: build } of updates) {
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

async function commit(client: FlatdepotClient, buildId: number, options: { endOfLife?: string; endOfLifeRebase?: string }): Promise<number> {
  const { commitBuild } = await client.graphql<{ commitBuild: { id: number } }>(
    `mutation($buildId: Int!, $eol: String, $rebase: String) {
      commitBuild(buildId: $buildId, endOfLife: $eol, endOfLifeRebase: $rebase) { __typename ... on Job { id } ... on Error { message code } }
    }`,
    { buildId, eol: options.endOfLife ?? null, rebase: options.endOfLifeRebase ?? null },
  )
  return commitBuild.id
}

async function publish(client: FlatdepotClient, buildId: number): Promise<number> {
  const { publishBuild } = await client.graphql<{ publishBuild: { id: number } }>(
    `mutation($buildId: Int!) { publishBuild(buildId: $buildId) { __typename ... on Job { id } ... on Error { message code } } }`,
    { buildId },
  )
  return publishBuild.id
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
function bytes(count: number): string {
  let value = count
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`
}

/** A progress bar on stderr: objects, bytes and rate; on a non-terminal, a plain line every few seconds. */
function progressBar(): { update: (progress: PushProgress) => void; stop: () => void } {
  const bar = new SingleBar({
    format: 'uploading [{bar}] {value}/{total} objects | {done} of {size} | {rate}/s | eta {eta_formatted}',
    stream: process.stderr,
    noTTYOutput: true,
    notTTYSchedule: 2000,
    hideCursor: true,
    etaBuffer: 50,
  })
  const started = performance.now()
  let running = false
  return {
    update(progress) {
      const seconds = Math.max((performance.now() - started) / 1000, 0.001)
      const payload = { done: bytes(progress.bytes), size: bytes(progress.totalBytes), rate: bytes(progress.bytes / seconds) }
      if (!running) {
        bar.start(progress.totalObjects, progress.objects, payload)
        running = true
      } else {
        bar.update(progress.objects, payload)
      }
    },
    stop: () => {
      if (running) bar.stop()
    },
  }
}

export function addClientCommands(program: Command): void {
  withConnection(
    program
      .command('push')
      .description('upload refs of a local archive repo into a build (only what the server lacks), then create the refs')
      .argument('<repo>', 'the repo on the server, e.g. stable')
      .argument('<local-repo>', 'a local OSTree archive repo (flatpak-builder --repo, flatpak build-export)')
      .argument('[refs...]', 'refs to push (default: every app/, runtime/ and screenshots/ ref in it)')
      .option('--build-id <id>', 'push into this build (resume an interrupted push) instead of creating one', positiveInt('--build-id'))
      .option('--app-id <id>', 'restrict a new build to this app and its extensions')
      .option('--public-download', 'let anyone download the build repo before it is published')
      .option('--build-log-url <url>', 'recorded with the build and its refs')
      .option('--commit', 'commit the build once the refs are created')
      .option('--publish', 'then wait for the commit and its checks, and publish (implies --commit)')
      .option('--wait', 'wait for the last job started (commit or publish) to finish; exit status from its outcome')
      .option('--wait-update', 'after publishing, also wait for the repo update that makes the build installable')
      .option('--wait-deltas', 'and then for its static deltas and the update that lists them (implies --wait-update)')
      .option('--end-of-life <message>', 'mark the refs end-of-life when committing')
      .option('--end-of-life-rebase <app-id>', 'the app id that replaces this one, when committing')
      .option('--concurrency <n>', 'upload requests in flight', positiveInt('--concurrency'), 8)
      .option('--batch-objects <n>', 'at most this many objects per upload request', positiveInt('--batch-objects'), 256)
      .option('--no-progress', 'no progress bar')
      .option('-q, --quiet', 'no job log lines while waiting'),
  ).action(async (repo: string, localRepo: string, refs: string[], options) => {
    await withClient(options, async (client) => {
      const bar = options.progress ? progressBar() : null
      let buildId: number | undefined = options.buildId
      const say = (text: string) => process.stderr.write(`${text}\n`)
      let result
      // Ctrl-C or a CI timeout: say how to resume before going.
      const interrupted = (signal: NodeJS.Signals) => {
        bar?.stop()
        if (buildId !== undefined && !options.buildId) say(`interrupted; run the same push with --build-id ${buildId} to upload only what is still missing`)
        process.exit(signal === 'SIGINT' ? 130 : 143)
      }
      process.once('SIGINT', interrupted).once('SIGTERM', interrupted)
      try {
        result = await push(client, {
          repo,
          localRepo,
          refs,
          buildId,
          appId: options.appId,
          publicDownload: options.publicDownload,
          buildLogUrl: options.buildLogUrl,
          concurrency: options.concurrency,
          batchObjects: options.batchObjects,
          onBuild: (id, created) => {
            buildId = id
            say(created ? `created build ${id} in ${repo}` : `pushing into build ${id}`)
          },
          onMissing: (missing, total, size) => say(`${total} objects; ${missing} missing on the server (${bytes(size)}), ${total - missing} already there`),
          onProgress: (progress) => bar?.update(progress),
          onRetry: say,
        })
      } catch (error) {
        bar?.stop()
        if (buildId !== undefined && !options.buildId) say(`the push did not finish; run it again with --build-id ${buildId} to upload only what is still missing`)
        throw error
      }
      process.off('SIGINT', interrupted).off('SIGTERM', interrupted)
      bar?.stop()
      say(`uploaded ${result.uploaded} objects (${bytes(result.uploadedBytes)}) into build ${result.buildId}; created ${result.refs.length} ref(s)`)
      const outcome: Record<string, unknown> = { ...result }
      if (options.commit || options.publish) {
        const commitJob = await commit(client, result.buildId, options)
        outcome.commitJobId = commitJob
        say(`committing build ${result.buildId} (job ${commitJob})`)
        if (options.publish || options.wait) await awaitJob(client, commitJob, 'commit', options.quiet)
        if (options.publish) {
          await awaitReady(client, result.buildId)
          const publishJob = await publish(client, result.buildId)
          outcome.publishJobId = publishJob
          say(`publishing build ${result.buildId} (job ${publishJob})`)
          if (options.wait || options.waitUpdate || options.waitDeltas) {
            const job = await awaitJob(client, publishJob, 'publish', options.quiet)
            if (options.waitUpdate || options.waitDeltas) {
              const update = await awaitUpdate(client, job, options.quiet)
              outcome.updateRepoJobId = update.id
              if (options.waitDeltas) outcome.deltaJobId = await awaitDeltas(client, update, options.quiet)
            }
          }
        }
      }
      const build = await getBuild(client, result.buildId)
      outcome.build = build
      print(options, outcome, describeBuild(build))
    })
  })

  const build = program.command('build').description('builds: create, list, show')
  withConnection(
    build
      .command('create')
      .description('start a build in a repo and print its id')
      .argument('<repo>')
      .option('--app-id <id>', 'restrict the build to this app and its extensions')
      .option('--public-download', 'let anyone download the build repo before it is published')
      .option('--build-log-url <url>'),
  ).action(async (repo: string, options) => {
    await withClient(options, async (client) => {
      const { createBuild } = await client.graphql<{ createBuild: Build }>(
        `mutation($input: CreateBuildInput!) { createBuild(input: $input) { __typename ... on Build { ${buildFields} } ... on Error { message code } } }`,
        { input: { repo, appId: options.appId ?? null, publicDownload: options.publicDownload ?? null, buildLogUrl: options.buildLogUrl ?? null } },
      )
      print(options, createBuild, String(createBuild.id))
    })
  })
  withConnection(
    build
      .command('list')
      .description('builds this token may see, newest first')
      .option('--repo <name>')
      .option('--app-id <id>')
      .option('--first <n>', 'how many', positiveInt('--first'), 20),
  ).action(async (options) => {
    await withClient(options, async (client) => {
      const { builds } = await client.graphql<{ builds: { edges: { node: Build }[] } }>(
        `query($repo: String, $appId: String, $first: Int) {
          builds(repo: $repo, appId: $appId, first: $first) { __typename ... on QueryBuildsConnection { edges { node { ${buildFields} } } } ... on Error { message code } }
        }`,
        { repo: options.repo ?? null, appId: options.appId ?? null, first: options.first },
      )
      const nodes = builds.edges.map((edge) => edge.node)
      print(options, nodes, nodes.map((node) => `${node.id}\t${node.repo}\t${node.appId ?? '-'}\t${node.repoState.toLowerCase()}\t${node.publishedState.toLowerCase()}`).join('\n') || 'no builds')
    })
  })
  withConnection(build.command('show').description("a build's state, refs and checks").argument('<build-id>', 'build', positiveInt('build id'))).action(
    async (id: number, options) => {
      await withClient(options, async (client) => {
        const found = await getBuild(client, id)
        print(options, found, describeBuild(found))
      })
    },
  )

  withConnection(
    program
      .command('commit')
      .description('commit an uploading build (checks run after)')
      .argument('<build-id>', 'build', positiveInt('build id'))
      .option('--end-of-life <message>')
      .option('--end-of-life-rebase <app-id>')
      .option('--wait', 'follow the commit job; exit status from its outcome'),
  ).action(async (id: number, options) => {
    await withClient(options, async (client) => {
      const jobId = await commit(client, id, options)
      const job = options.wait ? await awaitJob(client, jobId, 'commit', Boolean(options.json)) : null
      printJob(options, 'commit', jobId, job)
    })
  })
  withConnection(
    program
      .command('publish')
      .description('publish a Ready build into its repo')
      .argument('<build-id>', 'build', positiveInt('build id'))
      .option('--wait', 'follow the publish job; exit status from its outcome')
      .option('--wait-update', 'also wait for the repo update that makes the build installable')
      .option('--wait-deltas', 'and then for its static deltas and the update that lists them (implies --wait-update)'),
  ).action(async (id: number, options) => {
    await withClient(options, async (client) => {
      const jobId = await publish(client, id)
      const waitUpdate = options.waitUpdate || options.waitDeltas
      const job = options.wait || waitUpdate ? await awaitJob(client, jobId, 'publish', Boolean(options.json)) : null
      if (job && waitUpdate) {
        const update = await awaitUpdate(client, job, Boolean(options.json))
        if (options.waitDeltas) await awaitDeltas(client, update, Boolean(options.json))
      }
      printJob(options, 'publish', jobId, job)
    })
  })
  withConnection(program.command('purge').description("remove a build's files").argument('<build-id>', 'build', positiveInt('build id'))).action(
    async (id: number, options) => {
      await withClient(options, async (client) => {
        const { purgeBuild } = await client.graphql<{ purgeBuild: Build }>(
          `mutation($id: Int!) { purgeBuild(buildId: $id) { __typename ... on Build { ${buildFields} } ... on Error { message code } } }`,
          { id },
        )
        print(options, purgeBuild, describeBuild(purgeBuild))
      })
    },
  )
  withConnection(
    program
      .command('review')
      .description("set a check's status: a reviewer passing or failing a build")
      .argument('<check-job-id>', "the check's job id (`flatdepot build show` lists them)", positiveInt('check job id'))
      .addOption(new Option('--status <status>', 'the outcome').choices(['passed', 'passed-with-warnings', 'failed', 'review-required', 'pending']).makeOptionMandatory())
      .option('--reason <text>', 'why (shown with the check)')
      .option('--results <text>', 'free-form results'),
  ).action(async (jobId: number, options) => {
    await withClient(options, async (client) => {
      const { reviewCheck } = await client.graphql<{ reviewCheck: { name: string; status: string; buildId: number } }>(
        `mutation($jobId: Int!, $status: CheckStatus!, $reason: String, $results: String) {
          reviewCheck(jobId: $jobId, status: $status, reason: $reason, results: $results) { __typename ... on Check { name status buildId } ... on Error { message code } }
        }`,
        { jobId, status: String(options.status).toUpperCase().replace(/-/g, '_'), reason: options.reason ?? null, results: options.results ?? null },
      )
      print(options, reviewCheck, `check ${reviewCheck.name} of build ${reviewCheck.buildId}: ${reviewCheck.status.toLowerCase()}`)
    })
  })
  withConnection(
    program
      .command('follow')
      .description("print a job's log as it is written, until the job ends; exit status 0 only if it succeeded")
      .argument('<job-id>', 'job', positiveInt('job id')),
  ).action(async (jobId: number, options) => {
    await withClient(options, async (client) => {
      const job = await followJob(client, jobId, (line) =>
        process.stdout.write(options.json ? `${JSON.stringify({ jobId, ...line })}\n` : `${line.stream === 'flatdepot' ? '' : `${line.stream}: `}${line.text}\n`),
      )
      if (options.json) process.stdout.write(`${JSON.stringify({ job })}\n`)
      else process.stderr.write(`job ${jobId} (${job.kind.toLowerCase()}) ${job.status.toLowerCase()}${job.error ? `: ${job.error}` : ''}\n`)
      if (job.status !== 'SUCCEEDED') process.exitCode = 1
    })
  })
}
