/**
 * Build pipeline figures on the large fixture, each next to a baseline measured in the same run:
 *   upload         ÷ `ostree pull` of the same refs over HTTP from nginx
 *   `flatdepot push` (the CLI, a process of its own) ÷ the same pull
 *   object GETs/s  ÷ nginx serving the same repo directory (wrk, same object list)
 *   commit + publish + update-repo ÷ the same flatpak/ostree commands run by hand
 *   server peak RSS while receiving the build
 * Upload, push, pull and the commit+publish+update pipeline (alternating with the raw commands)
 * run BENCH_ROUNDS times (default 3) and report medians.
 * Not a test: it prints figures (see BENCHMARKS.md). Needs nginx and wrk (apt).
 *   npm run bench:pipeline            (BENCH_ENGINE=postgresql|pglite, default postgresql; BENCH_KEEP=1 keeps the database)
 */
import { execFile } from 'node:child_process'
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { buildFixture } from '../test/support/fixture.ts'
import { createPostgresDatabase } from '../test/support/databases.ts'
import { graphql, startServer, waitFor } from '../test/support/server.ts'
import { repoObjects, uploadMissing } from '../test/support/upload.ts'
import { signedRepoConfig } from '../test/support/config.ts'
import { FlatdepotClient } from '../src/client/api.ts'
import { startNginx, wrk as runWrk } from './nginx.ts'

const exec = promisify(execFile)
const engine = process.env.BENCH_ENGINE ?? 'postgresql'
const work = mkdtempSync(path.join(tmpdir(), 'flatdepot-bench-'))
const seconds = async (body: () => Promise<unknown>) => {
  const started = performance.now()
  await body()
  return (performance.now() - started) / 1000
}
const rssMb = (pid: number, field: 'VmHWM' | 'VmRSS') =>
  Number(/(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((line) => line.startsWith(field)) ?? '')?.[1] ?? 0) / 1024

// Warm-up first: page cache, our object cache.
const wrk = async (url: string, paths: string[]) => (await runWrk(work, url, paths)).rate

const fixture = await buildFixture('large')
const refs = { [fixture.runtime.ref]: fixture.runtime.commit, [fixture.app.ref]: fixture.app.v1 }
const objects = repoObjects(fixture.repoV1)
console.log(`large fixture: ${objects.length} objects; engine ${engine}; 2 cores\n`)

// ---------------------------------------------------------------- baseline: ostree pull from nginx
const source = await startNginx(work, fixture.repoV1)
// Each timed measure runs `rounds` times; the figures are medians (single runs here vary by ±25%).
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const pullSeconds: number[] = []
let pullRepo = ''
for (let round = 0; round < rounds; round++) {
  pullRepo = path.join(work, `pulled-${round}`)
  await exec('ostree', [`--repo=${pullRepo}`, 'init', '--mode=archive-z2'])
  await exec('ostree', [`--repo=${pullRepo}`, 'remote', 'add', '--no-gpg-verify', 'src', source.url])
  pullSeconds.push(await seconds(() => exec('ostree', [`--repo=${pullRepo}`, 'pull', '--disable-static-deltas', 'src', ...Object.keys(refs)])))
}
const pullSecs = median(pullSeconds)
source.stop()

// ---------------------------------------------------------------- flatdepot: upload
let dropDatabase = async () => {}
let databaseUrl: string | null = null
if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
// As `npm start` runs it: one malloc arena (glibc keeps a per-thread arena's freed memory otherwise).
const server = await startServer({
  databaseUrl,
  collectLogs: false,
  // As `npm start` runs it (package.json).
  env: { MALLOC_ARENA_MAX: '1' },
  // BENCH_NODE_ARGS: more node options for the server (a CPU profile, say).
  nodeArgs: ['--max-semi-space-size=2', ...(process.env.BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [])],
  config: (port) => signedRepoConfig(fixture, port, { title: 'bench' }, 9),
})
try {
  const token = await server.cli('token', 'create', '--repo', 'stable')
  const newBuild = async () => {
    const { body } = await graphql(server.url, token, 'mutation { createBuild(input: { repo: "stable" }) { ... on Build { id } } }')
    return body.data.createBuild.id as number
  }
  const rssBefore = rssMb(server.pid, 'VmRSS')
  let peakDuringUpload = rssBefore
  let peakOverAll = rssBefore
  const sampler = setInterval(() => (peakOverAll = Math.max(peakOverAll, rssMb(server.pid, 'VmRSS'))), 20)
  // The API upload (flat-manager's endpoints, driven in this process) into fresh builds.
  const uploadSeconds: number[] = []
  const buildIds: number[] = []
  for (let round = 0; round < rounds; round++) {
    const buildId = await newBuild()
    buildIds.push(buildId)
    uploadSeconds.push(await seconds(() => uploadMissing(server.url, token, buildId, fixture.repoV1)))
    if (round === 0) peakDuringUpload = peakOverAll // receiving the build: the first one
  }
  const uploadSecs = median(uploadSeconds)
  for (const id of buildIds) {
    for (const [ref, commit] of Object.entries(refs)) {
      await graphql(server.url, token, `mutation { createBuildRef(buildId: ${id}, refName: "${ref}", commit: "${commit}") { __typename } }`)
    }
  }

  // ---------------------------------------------------------------- flatdepot push (the CLI, its own process), each into a new build
  const cli = fileURLToPath(new URL('../bin/flatdepot.mjs', import.meta.url))
  let pushed = ''
  const pushSeconds: number[] = []
  for (let round = 0; round < rounds; round++) {
    pushSeconds.push(
      await seconds(async () => {
        pushed = (
          await exec(process.execPath, [cli, 'push', 'stable', fixture.repoV1, ...Object.keys(refs), '--no-progress'], {
            env: { ...process.env, FLATDEPOT_URL: server.url, FLATDEPOT_TOKEN: token },
          })
        ).stderr
      }),
    )
  }
  const pushSecs = median(pushSeconds)
  clearInterval(sampler)
  const cliStartSecs = await seconds(() => exec(process.execPath, [cli, '--version']))

  // ---------------------------------------------------------------- commit + publish + update-repo: flatdepot, then the same commands by hand
  // Each round publishes one of the uploaded builds and then runs the raw commands into fresh
  // repos, alternating, so both see the same machine; medians over the rounds. flatdepot's side
  // is what a frontend or the CLI sees: the mutations, then the job's state pushed over
  // graphql-ws (jobUpdated sends the current state first, so nothing is missed).
  const client = new FlatdepotClient({ url: server.url, token })
  type JobView = { id: number; status: string; results: Record<string, unknown> | null }
  // When the client saw what (wall clock, as the jobs' own times): where the round trips go.
  let seen: Record<string, number> = {}
  const untilFinished = async (jobId: number): Promise<JobView> => {
    for await (const { jobUpdated } of client.subscribe<{ jobUpdated: JobView }>('subscription($id: Int!) { jobUpdated(id: $id) { id status results } }', { id: jobId })) {
      if (jobUpdated.status === 'SUCCEEDED') {
        seen[`finished ${jobId}`] = Date.now()
        return jobUpdated
      }
      if (jobUpdated.status !== 'QUEUED' && jobUpdated.status !== 'RUNNING') throw new Error(`job ${jobId} ${jobUpdated.status}`)
    }
    throw new Error(`job ${jobId}: the subscription ended early`)
  }
  const mutateJob = async (mutation: string, buildId: number) => {
    seen[`sent ${mutation}`] = Date.now()
    return (await client.graphql<Record<string, { id: number }>>(`mutation($id: Int!) { ${mutation}(buildId: $id) { ... on Job { id } ... on Error { message } } }`, { id: buildId }))[mutation]!.id
  }
  const sign = [`--gpg-homedir=${fixture.gnupghome}`, `--gpg-sign=${fixture.keyId}`]
  const pipelineSeconds: number[] = []
  const rawSeconds: number[] = []
  const jobTimes: string[][] = []
  const publishLogs: string[][] = []
  const rawSteps: string[][] = []
  const clientGaps: string[] = []
  for (const [round, id] of buildIds.entries()) {
    const jobIds: number[] = []
    seen = {}
    pipelineSeconds.push(
      await seconds(async () => {
        jobIds.push(await mutateJob('commitBuild', id))
        await untilFinished(jobIds[0]!) // no checks configured: the build is Ready with its commit
        jobIds.push(await mutateJob('publishBuild', id))
        const published = await untilFinished(jobIds[1]!)
        jobIds.push(published.results!.updateRepoJobId as number)
        await untilFinished(jobIds[2]!)
      }),
    )
    // Where flatdepot's time went: each job's wait in the queue and its run, from the jobs' own times.
    const { body: jobsBody } = await graphql(server.url, token, `{ jobs(first: 50) { ... on QueryJobsConnection { edges { node { id kind createdAt startedAt finishedAt } } } } }`)
    type JobTimes = { id: number; kind: string; createdAt: string; startedAt: string; finishedAt: string }
    const byId = new Map((jobsBody.data.jobs.edges as { node: JobTimes }[]).map(({ node }) => [node.id, node]))
    const [commitJob, publishJob, updateJob] = jobIds.map((jobId) => byId.get(jobId)!) as [JobTimes, JobTimes, JobTimes]
    jobTimes.push(
      [commitJob, publishJob, updateJob].map(
        (job) => `${job.kind.toLowerCase()} waited ${Date.parse(job.startedAt) - Date.parse(job.createdAt)} ms, ran ${Date.parse(job.finishedAt) - Date.parse(job.startedAt)} ms`,
      ),
    )
    clientGaps.push(
      [
        `commit mutation sent → job queued ${Date.parse(commitJob.createdAt) - seen['sent commitBuild']!} ms`,
        `commit finished → client saw it ${seen[`finished ${commitJob.id}`]! - Date.parse(commitJob.finishedAt)} ms`,
        `→ publish mutation sent ${seen['sent publishBuild']! - seen[`finished ${commitJob.id}`]!} ms`,
        `→ job queued ${Date.parse(publishJob.createdAt) - seen['sent publishBuild']!} ms`,
        `publish finished → update queued ${Date.parse(updateJob.createdAt) - Date.parse(publishJob.finishedAt)} ms`,
        `update finished → client saw it ${seen[`finished ${updateJob.id}`]! - Date.parse(updateJob.finishedAt)} ms`,
      ].join('; '),
    )
    // Where the publish job's run went: its log lines, each at its offset from the job's start.
    const { body: logBody } = await graphql(server.url, token, `{ job(id: ${jobIds[1]}) { ... on Job { log { at text } } } }`)
    publishLogs.push(
      (logBody.data.job.log as { at: string; text: string }[]).map((line) => `+${Date.parse(line.at) - Date.parse(publishJob.startedAt)} ms ${line.text.slice(0, 60)}`),
    )
    // The static deltas and the summary update that follow are not part of the measure; they must not overlap the next one.
    await waitFor('the delta jobs', async () => {
      const { body } = await graphql(server.url, token, '{ jobs(first: 100) { ... on QueryJobsConnection { edges { node { status } } } } }')
      const statuses = (body.data.jobs.edges as { node: { status: string } }[]).map(({ node }) => node.status)
      return statuses.length > 0 && statuses.every((status) => status === 'SUCCEEDED') ? true : undefined
    }, 600_000)

    // The raw side keeps one main repo across rounds, and each build repo has it as its parent,
    // as flatdepot's (and flat-manager's) build repos do: from the second round on, both import
    // into a repo that already holds the previous publish.
    const raw = path.join(work, 'raw')
    if (round === 0) {
      mkdirSync(raw, { recursive: true })
      await exec('ostree', [`--repo=${raw}/main`, 'init', '--mode=archive-z2'])
    }
    await exec('ostree', [`--repo=${raw}/build-${round}`, 'init', '--mode=archive-z2'])
    appendFileSync(`${raw}/build-${round}/config`, `parent=${raw}/main\n`)
    const steps: string[] = []
    const step = async (label: string, args: string[]) => steps.push(`${label} ${(await seconds(() => exec('flatpak', args))).toFixed(2)}`)
    rawSeconds.push(
      await seconds(async () => {
        for (const [ref, commit] of Object.entries(refs)) {
          await step(`commit ${ref.split('/')[0]}`, ['build-commit-from', '--timestamp=NOW', '--no-update-summary', '--untrusted', '--force', '--disable-fsync', ...sign, `--src-repo=${pullRepo}`, `--src-ref=${commit}`, `${raw}/build-${round}`, ref])
        }
        await step('update build repo', ['build-update-repo', ...sign, `${raw}/build-${round}`])
        await step('import', ['build-commit-from', '--force', '--no-update-summary', ...sign, `--src-repo=${raw}/build-${round}`, `${raw}/main`])
        await step('update repo', ['build-update-repo', '--title=bench', ...sign, `${raw}/main`])
      }),
    )
    rawSteps.push(steps)
  }
  await client.close()
  // Each round's flatdepot run is paired with the raw run right after it: the figure is the
  // median of the rounds' ratios (the machine's speed drifts between rounds more than within one).
  const roundRatios = pipelineSeconds.map((secs, round) => secs / rawSeconds[round]!)
  const medianRound = roundRatios.indexOf(median(roundRatios))
  const pipelineSecs = pipelineSeconds[medianRound]!
  const rawSecs = rawSeconds[medianRound]!

  // ---------------------------------------------------------------- object GETs: nginx vs flatdepot, same files
  const mainRepo = path.join(server.dataDir, 'repos/stable')
  const paths = repoObjects(mainRepo).map((object) => `/objects/${object.name.slice(0, 2)}/${object.name.slice(2)}`)
  const nginx = await startNginx(work, mainRepo)
  const nginxGets = await wrk(nginx.url, paths)
  nginx.stop()
  // flatdepot writes an access log line per request; so does nginx as it ships.
  const nginxLogging = await startNginx(work, mainRepo, { accessLog: true })
  const nginxLoggingGets = await wrk(nginxLogging.url, paths)
  nginxLogging.stop()
  const ourGets = await wrk(`${server.url}/repo/stable`, paths.map((p) => `/repo/stable${p}`))

  const row = (label: string, ours: string, baseline: string, ratio: number, goal: string) =>
    console.log(`${label.padEnd(36)} ${ours.padStart(12)} ${baseline.padStart(12)} ${ratio.toFixed(2).padStart(7)}   ${goal}`)
  console.log(`${'measure'.padEnd(36)} ${'flatdepot'.padStart(12)} ${'baseline'.padStart(12)} ${'ratio'.padStart(7)}   goal`)
  const each = (values: number[]) => values.map((value) => value.toFixed(2)).join(', ')
  console.log(`runs (s): pull ${each(pullSeconds)}; upload ${each(uploadSeconds)}; CLI push ${each(pushSeconds)}\n`)
  row('upload ÷ ostree pull from nginx', `${uploadSecs.toFixed(2)} s`, `${pullSecs.toFixed(2)} s`, uploadSecs / pullSecs, '≤ 1.2')
  row('CLI push ÷ ostree pull from nginx', `${pushSecs.toFixed(2)} s`, `${pullSecs.toFixed(2)} s`, pushSecs / pullSecs, '≤ 1.2')
  console.log(`  (${/uploaded .*/.exec(pushed)?.[0]}; of which the CLI starting up: ${cliStartSecs.toFixed(2)} s)`)
  row('object GETs/s ÷ nginx, both logging', `${ourGets.toFixed(0)}/s`, `${nginxLoggingGets.toFixed(0)}/s`, ourGets / nginxLoggingGets, '≥ 0.5')
  row('object GETs/s ÷ nginx, access_log off', `${ourGets.toFixed(0)}/s`, `${nginxGets.toFixed(0)}/s`, ourGets / nginxGets, '')
  row('commit+publish+update ÷ raw (median round)', `${pipelineSecs.toFixed(2)} s`, `${rawSecs.toFixed(2)} s`, pipelineSecs / rawSecs, '≤ 1.10')
  console.log(`  runs (s): flatdepot ${each(pipelineSeconds)}; raw ${each(rawSeconds)}; ratios ${each(roundRatios)}`)
  console.log(`  flatdepot (median round): ${jobTimes[medianRound]!.join('; ')}`)
  console.log(`  client (median round): ${clientGaps[medianRound]!}`)
  console.log(`  publish job's log (median round): ${publishLogs[medianRound]!.join('; ')}`)
  console.log(`  raw (s, same round): ${rawSteps[medianRound]!.join('; ')}`)
  console.log(`server RSS while receiving the build: ${rssBefore.toFixed(0)} MB before, ${peakDuringUpload.toFixed(0)} MB peak (goal < 200 MB)`)
  console.log(`  over all ${rounds * 2} uploads and pushes: ${peakOverAll.toFixed(0)} MB peak; process high-water mark at the end (after commit, publish, deltas): ${rssMb(server.pid, 'VmHWM').toFixed(0)} MB`)
} finally {
  // BENCH_KEEP=1 keeps the database (its events and jobs time every step) and the server's log
  // (each request's time) for a look afterwards.
  const serverLog = path.join(tmpdir(), `flatdepot-bench-pipeline-${process.pid}.log`)
  if (process.env.BENCH_KEEP) copyFileSync(path.join(server.dataDir, 'server.log'), serverLog)
  await server.stop()
  if (process.env.BENCH_KEEP) console.log(`kept the database: ${databaseUrl ?? '(embedded, in the data directory)'}; the server's log: ${serverLog}`)
  else await dropDatabase()
  rmSync(work, { recursive: true, force: true })
}
