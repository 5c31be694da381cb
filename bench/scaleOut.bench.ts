/**
 * Scale-out on PostgreSQL, tried as an operator would: one API process (`serve --workers 0`) and
 * N `flatdepot worker` processes on one database and one repo file system.
 *
 * Each round starts from a fresh database: BENCH_BUILDS builds of the small fixture are uploaded
 * and committed with no worker running, so every commit job is queued before the first starts;
 * then the workers start. Commits run first (their priority), each build's check follows its
 * commit, then every build is published. From the jobs' own timestamps the round reports:
 * - CPU-bound: the commit jobs' span (first start → last finish). Commits fill the cores (each runs
 *   its refs side by side), so their speedup is bounded by the cores available
 *   (os.availableParallelism(), printed) and must never fall below one worker's;
 * - I/O-bound: the check jobs' span (a hook that sleeps BENCH_CHECK_SECS, as a check waiting on a
 *   remote service does); 3 workers should be ≥ 2.5× one;
 * - per-repo serialization: no two jobs of a repo's queue (publish, update-repo, export) overlap;
 * - a worker killed with SIGKILL mid-run (round "3 workers, one killed") loses no job: every job
 *   ends SUCCEEDED and every build is published, the killed one's job re-run after its lease;
 * - two API processes on the same database serve one job's log over graphql-ws identically
 *   (the second started beside the first, same data directory);
 * - with `--compute-slots 1` (round "compute slots 1"), the host's worker processes run one compute
 *   job at a time between them and the waiting checks in every slot.
 *
 * Run: `npm run bench:scaleout` (BENCH_BUILDS=20, BENCH_CHECK_SECS=2, BENCH_WORKERS="1,3").
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { signedRepoConfig } from '../test/support/config.ts'
import { createPostgresDatabase } from '../test/support/databases.ts'
import { buildFixture, type Fixture } from '../test/support/fixture.ts'
import { graphql, startServer, startWorkerProcess, waitFor, type ServerProcess } from '../test/support/server.ts'
import { uploadMissing } from '../test/support/upload.ts'

const builds = Number(process.env.BENCH_BUILDS ?? 20)
const checkSecs = Number(process.env.BENCH_CHECK_SECS ?? 2)
const workerCounts = (process.env.BENCH_WORKERS ?? '1,3').split(',').map(Number)
const leaseMs = 5_000

type JobRow = { id: number; kind: string; status: string; repo_name: string | null; build_id: number | null; attempts: number; started_at: Date | null; finished_at: Date | null }
type Round = { label: string; workers: number; commitSpan: number; checkSpan: number; commitMean: number; checkMean: number; publishSpan: number; total: number; retried: number }

function span(jobs: JobRow[]): number {
  const starts = jobs.map((job) => job.started_at!.getTime())
  const ends = jobs.map((job) => job.finished_at!.getTime())
  return (Math.max(...ends) - Math.min(...starts)) / 1000
}
const mean = (jobs: JobRow[]) => jobs.reduce((sum, job) => sum + (job.finished_at!.getTime() - job.started_at!.getTime()), 0) / jobs.length / 1000

/** Jobs of one repo queue (publish, update-repo, export…) never run side by side. */
function assertRepoSerialized(jobs: JobRow[]): number {
  const repoQueue = new Set(['publish', 'update-repo', 'export', 'republish', 'rollback', 'delete', 'prune', 'mirror-sync'])
  const serial = jobs.filter((job) => job.repo_name && repoQueue.has(job.kind) && job.started_at && job.finished_at).sort((a, b) => a.started_at!.getTime() - b.started_at!.getTime())
  for (let i = 1; i < serial.length; i++) {
    const previous = serial[i - 1]!
    const current = serial[i]!
    assert.ok(current.started_at!.getTime() >= previous.finished_at!.getTime(), `repo jobs ${previous.id} (${previous.kind}) and ${current.id} (${current.kind}) overlapped`)
  }
  return serial.length
}

async function round(fixture: Fixture, work: string, label: string, workers: number, options: { concurrency?: number; computeSlots?: number; kill?: boolean; secondApi?: boolean } = {}): Promise<Round> {
  const { url: databaseUrl, drop } = await createPostgresDatabase()
  const hook = path.join(work, 'check.sh')
  writeFileSync(hook, `#!/bin/sh\necho "checking build $FLAT_MANAGER_BUILD_ID"\nsleep ${checkSecs}\necho "build $FLAT_MANAGER_BUILD_ID looks fine"\n`)
  chmodSync(hook, 0o755)
  const server = await startServer({
    databaseUrl,
    args: ['--workers', '0'],
    collectLogs: false,
    env: { MALLOC_ARENA_MAX: '1' },
    config: (port) => signedRepoConfig(fixture, port, { hooks: { checks: { wait: { command: [hook] } } } }),
  })
  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  const started: { kill: () => Promise<void>; stop: () => Promise<void> }[] = []
  let second: ServerProcess | null = null
  try {
    const token = await server.cli('token', 'create', '--name', 'bench', ...['build', 'upload', 'publish', 'jobs'].flatMap((scope) => ['--scope', scope]))
    const ids: number[] = []
    for (let i = 0; i < builds; i++) {
      const { body } = await graphql(server.url, token, 'mutation { createBuild(input: { repo: "stable" }) { ... on Build { id } } }')
      const id = body.data.createBuild.id as number
      for (const [ref, commit] of Object.entries({ [fixture.runtime.ref]: fixture.runtime.commit, [fixture.app.ref]: fixture.app.v1 })) {
        await graphql(server.url, token, `mutation { createBuildRef(buildId: ${id}, refName: "${ref}", commit: "${commit}") { __typename } }`)
      }
      await uploadMissing(server.url, token, id, fixture.repoV1)
      ids.push(id)
    }
    for (const id of ids) await graphql(server.url, token, `mutation { commitBuild(buildId: ${id}) { __typename } }`)

    const env = { FLATDEPOT_JOB_LEASE_MS: String(leaseMs), MALLOC_ARENA_MAX: '1' }
    const t0 = Date.now()
    const args = ['--concurrency', String(options.concurrency ?? 1), ...(options.computeSlots ? ['--compute-slots', String(options.computeSlots)] : [])]
    for (let i = 0; i < workers; i++) started.push(startWorkerProcess(server, env, args))

    const jobs = async () => (await db.query<JobRow>('SELECT id, kind, status, repo_name, build_id, attempts, started_at, finished_at FROM jobs ORDER BY id')).rows
    if (options.kill) {
      // Kill a worker while it runs a commit: its lease runs out and another worker takes the job.
      await waitFor('a commit running', async () => ((await jobs()).some((job) => job.kind === 'commit' && job.status === 'Running') ? true : undefined), 60_000)
      await new Promise((resolve) => setTimeout(resolve, 300))
      await started.shift()!.kill()
    }

    let watched: Promise<{ a: string[]; b: string[] }> | null = null
    if (options.secondApi) {
      second = await startServer({ databaseUrl, args: ['--workers', '0'], dataDir: server.dataDir, keepDataDir: true, collectLogs: false })
      const checkJob = await waitFor('a check job', async () => (await jobs()).find((job) => job.kind === 'check' && job.status === 'Queued')?.id, 120_000)
      watched = Promise.all([followLog(server.url, token, checkJob), followLog(second.url, token, checkJob)]).then(([a, b]) => ({ a, b }))
    }

    const ready = async () => {
      const { body } = await graphql(server.url, token, `{ builds(first: 100) { ... on QueryBuildsConnection { edges { node { id repoState } } } } }`)
      const states = (body.data.builds.edges as { node: { repoState: string } }[]).map((edge) => edge.node.repoState)
      if (states.includes('FAILED')) throw new Error('a build failed')
      return states.filter((state) => state === 'READY').length === builds ? true : undefined
    }
    await waitFor('every build ready', ready, 600_000)
    for (const id of ids) await graphql(server.url, token, `mutation { publishBuild(buildId: ${id}) { __typename } }`)
    await waitFor(
      'every job finished',
      async () => {
        const rows = await jobs()
        const failed = rows.find((job) => job.status === 'Failed')
        if (failed) throw new Error(`job ${failed.id} (${failed.kind}) failed`)
        const published = (await db.query<{ n: string }>("SELECT count(*) AS n FROM builds WHERE published_state = 'Published'")).rows[0]!.n
        return Number(published) === builds && rows.every((job) => job.status === 'Succeeded') ? true : undefined
      },
      900_000,
    )
    const total = (Date.now() - t0) / 1000
    const rows = await jobs()
    assertRepoSerialized(rows)
    if (watched) {
      const { a, b } = await watched
      assert.ok(a.length >= 3, `the log was followed (${a.length} lines)`)
      assert.deepEqual(b, a, 'both API processes sent the same log')
    }
    if (process.env.BENCH_PROFILE) {
      // Where a commit's time goes: the gap after each log line, by step, the median over the round's commits.
      const lines = (await db.query<{ job_id: number; text: string; at: Date }>("SELECT l.job_id, l.text, l.at FROM job_log_lines l JOIN jobs j ON j.id = l.job_id WHERE j.kind = 'commit' ORDER BY l.job_id, l.position")).rows
      const steps = new Map<string, number[]>()
      for (let i = 0; i + 1 < lines.length; i++) {
        const [line, next] = [lines[i]!, lines[i + 1]!]
        if (line.job_id !== next.job_id) continue
        const step = line.text.replace(/[0-9a-f]{64}/g, '<c>').replace(/\d+/g, 'N').slice(0, 60)
        steps.set(step, [...(steps.get(step) ?? []), next.at.getTime() - line.at.getTime()])
      }
      for (const [step, gaps] of steps) console.log(`  ${label}: ${String(gaps.sort((a, b) => a - b)[gaps.length >> 1]).padStart(5)} ms  ${step}`)
    }
    const commits = rows.filter((job) => job.kind === 'commit')
    const checks = rows.filter((job) => job.kind === 'check')
    const publishes = rows.filter((job) => job.kind === 'publish')
    assert.equal(commits.length, builds)
    assert.equal(checks.length, builds)
    return {
      label,
      workers,
      commitSpan: span(commits),
      checkSpan: span(checks),
      commitMean: mean(commits),
      checkMean: mean(checks),
      publishSpan: span(publishes),
      total,
      retried: rows.filter((job) => job.attempts > 1).length,
    }
  } finally {
    await Promise.all(started.map((worker) => worker.stop()))
    await second?.stopKeepingData()
    await db.end()
    await server.stop()
    await drop()
  }
}

/** A job's log over graphql-ws from one API process, to its end. */
function followLog(url: string, token: string, jobId: number): Promise<string[]> {
  const client = createClient({ url: `${url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 })
  const lines: string[] = []
  return new Promise((resolve, reject) => {
    client.subscribe<{ jobLogLines: { position: number; text: string }[] }>(
      { query: `subscription { jobLogLines(jobId: ${jobId}) { position text } }` },
      {
        next: ({ data }) => data && lines.push(...data.jobLogLines.map((line) => `${line.position} ${line.text}`)),
        error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
        complete: () => {
          void client.dispose()
          resolve(lines)
        },
      },
    )
  })
}

const fixture = await buildFixture('small')
const work = mkdtempSync(path.join(tmpdir(), 'flatdepot-scaleout-'))
const results: Round[] = []
try {
  for (const workers of workerCounts) results.push(await round(fixture, work, `${workers} worker${workers > 1 ? 's' : ''} × 1 slot`, workers))
  results.push(await round(fixture, work, '1 worker × 3 slots', 1, { concurrency: 3 }))
  results.push(await round(fixture, work, '3 workers × 1, compute slots 1', 3, { computeSlots: 1 }))
  results.push(await round(fixture, work, '3 workers, one killed; 2 APIs', 3, { kill: true, secondApi: true }))
} finally {
  rmSync(work, { recursive: true, force: true })
}

const base = results[0]!
const f = (n: number) => n.toFixed(1).padStart(6)
console.log(`\nPostgreSQL, ${builds} builds of the small fixture, check hook sleeping ${checkSecs} s, ${availableParallelism()} cores available`)
console.log(`${'round'.padEnd(32)} ${'commits s'.padStart(9)} ${'×'.padStart(5)} ${'mean'.padStart(6)} ${'checks s'.padStart(9)} ${'×'.padStart(5)} ${'publish s'.padStart(9)} ${'all s'.padStart(6)} retried`)
for (const r of results) {
  console.log(
    `${r.label.padEnd(32)} ${f(r.commitSpan).padStart(9)} ${(base.commitSpan / r.commitSpan).toFixed(2).padStart(5)} ${f(r.commitMean)} ${f(r.checkSpan).padStart(9)} ${(base.checkSpan / r.checkSpan).toFixed(2).padStart(5)} ${f(r.publishSpan).padStart(9)} ${f(r.total)} ${r.retried}`,
  )
}
console.log('\n× is the speedup over the first round. Commits (CPU-bound) are bounded by the cores; checks (waiting) by the slots.')
console.log('Every round: every job succeeded, every build published, no two jobs of the repo queue overlapped.')
console.log('Kill round: a worker got SIGKILL during a commit; its job was re-run after the lease (5 s). Two API processes sent the same job log.')
