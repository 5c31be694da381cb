/**
 * The crash campaign (issue 11): trials of `kill -9` at a random moment of a build's life —
 * while it uploads, commits, runs its check, publishes, updates the repo or generates deltas —
 * on PostgreSQL (API and worker in separate processes; the process doing the work is killed) and
 * on PGlite (the whole server). After each kill: restart, finish what the bot was doing (resume
 * the upload, commit, publish, as a bot re-running would), let everything settle, then check:
 *   - every upload the server acknowledged is still there (missing_objects does not list it);
 *   - every job is terminal, and the build is Published (or Failed with a reason);
 *   - `ostree fsck` of the repo is clean;
 *   - no temporary file of a dead process is left in the build area;
 *   - a real flatpak client installs the app from the repo.
 * All trials of an engine share one server data directory and repo, as a real server would.
 *
 * Not a test (minutes per ten trials): it prints a table for RELIABILITY.md.
 *   npm run chaos                     (CHAOS_TRIALS=50 per engine, CHAOS_ENGINES=pglite,postgresql, CHAOS_PHASES, CHAOS_SEED)
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import pMap from 'p-map'
import { FlatdepotClient } from '../src/client/api.ts'
import { uploadBatches } from '../src/client/push.ts'
import { signedRepoConfig } from '../test/support/config.ts'
import { createPostgresDatabase } from '../test/support/databases.ts'
import { buildFixture, type Fixture } from '../test/support/fixture.ts'
import { flatpakClient } from '../test/support/flatpakClient.ts'
import { graphql, startServer, startWorkerProcess, waitFor, type ServerProcess } from '../test/support/server.ts'
import { repoObjects } from '../test/support/upload.ts'

const exec = promisify(execFile)
const trials = Number(process.env.CHAOS_TRIALS ?? 50)
const engines = (process.env.CHAOS_ENGINES ?? 'pglite,postgresql').split(',')
let seed = Number(process.env.CHAOS_SEED ?? Date.now() % 100000)
const firstSeed = seed
/** mulberry32: a seeded generator, so a failing trial can be run again. */
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const allPhases = ['push', 'commit', 'check', 'publish', 'update-repo', 'delta'] as const
type Phase = (typeof allPhases)[number]
/** CHAOS_PHASES=delta,publish aims at those only. */
const phases: readonly Phase[] = process.env.CHAOS_PHASES ? allPhases.filter((phase) => process.env.CHAOS_PHASES!.split(',').includes(phase)) : allPhases
const jobKind: Record<Exclude<Phase, 'push'>, string> = { commit: 'COMMIT', check: 'CHECK', publish: 'PUBLISH', 'update-repo': 'UPDATE_REPO', delta: 'DELTA' }
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

type Job = { id: number; kind: string; status: string; buildId: number | null }
type TrialResult = { engine: string; trial: number; phase: Phase; killedDuring: string; outcome: string; problems: string[]; seconds: number }

async function campaign(engine: string, fixture: Fixture): Promise<TrialResult[]> {
  let databaseUrl: string | null = null
  let drop = async () => {}
  if (engine === 'postgresql') ({ url: databaseUrl, drop } = await createPostgresDatabase())
  const env = { FLATDEPOT_JOB_LEASE_MS: '2000' }
  // A check that takes a moment, so a kill can land in it.
  const config = (port: number) => signedRepoConfig(fixture, port, { hooks: { checks: { smoke: { command: ['sh', '-c', 'sleep 0.5; echo checked'] } } } }, 6)
  const separate = engine === 'postgresql'
  // Under a dot-directory with a % in its name, where serving once broke (the flatpak installs
  // after each trial check it too).
  const dataDir = path.join(mkdtempSync(path.join(tmpdir(), 'flatdepot-chaos-')), '.local', 'share', 'flat%depot')
  mkdirSync(dataDir, { recursive: true })
  let server: ServerProcess = await startServer({ databaseUrl, config, env, dataDir, keepDataDir: true, ...(separate ? { args: ['--workers', '0'] } : {}) })
  let worker = separate ? startWorkerProcess(server, env) : null
  const token = await server.cli('token', 'create', '--name', 'chaos', '--repo', 'stable', '--scope', 'build', '--scope', 'upload', '--scope', 'publish', '--scope', 'download', '--scope', 'jobs', '--scope', 'reviewcheck')
  const client = () => new FlatdepotClient({ url: server.url, token })
  const restart = async () => {
    if (separate) {
      if (!(await fetch(`${server.url}/healthz`).catch(() => null))) {
        server = await startServer({ databaseUrl, config, env, args: ['--workers', '0'], restart: { dataDir: server.dataDir, port: server.port }, keepDataDir: true })
      }
      worker = startWorkerProcess(server, env)
    } else {
      server = await startServer({ config, env, restart: { dataDir: server.dataDir, port: server.port }, keepDataDir: true })
    }
  }
  const jobs = async (): Promise<Job[]> => {
    const { body } = await graphql(server.url, token, '{ jobs(first: 100) { ... on QueryJobsConnection { edges { node { id kind status buildId } } } } }')
    return (body.data?.jobs?.edges ?? []).map((edge: { node: Job }) => edge.node)
  }
  const buildState = async (id: number) =>
    (await graphql(server.url, token, 'query($id: Int!) { build(id: $id) { ... on Build { repoState publishedState repoStateReason publishedStateReason } } }', { id })).body.data.build as {
      repoState: string
      publishedState: string
      repoStateReason: string | null
      publishedStateReason: string | null
    }
  const objects = repoObjects(fixture.repoV1).map((object) => ({ ...object, size: statSync(object.file).size }))
  const results: TrialResult[] = []

  for (let trial = 1; trial <= trials; trial++) {
    const started = performance.now()
    const phase = phases[Math.floor(random() * phases.length)]!
    const problems: string[] = []
    const acknowledged = new Set<string>()
    let buildId = 0
    let killedDuring = 'not killed'
    let botEnded: string | null = null
    // The bot: create, upload, refs, commit, publish: each step done once, resumable after a crash.
    const steps = { created: false, uploaded: false, refs: false, committed: false, published: false }
    const bot = async () => {
      const api = client()
      if (!steps.created) {
        buildId = (await api.graphql<{ createBuild: { id: number } }>('mutation { createBuild(input: { repo: "stable", appId: "org.test.Hello" }) { ... on Build { id } ... on Error { message code } } }')).createBuild.id
        steps.created = true
      }
      if (!steps.uploaded) {
        const wanted = await api.missingObjects(buildId, objects.map((object) => object.name))
        const missing = new Set(wanted)
        const lost = [...acknowledged].filter((name) => missing.has(name))
        if (lost.length) problems.push(`${lost.length} acknowledged objects missing after the restart, e.g. ${lost[0]}`)
        const batches = uploadBatches(objects.filter((object) => missing.has(object.name)), 16, 1 << 20)
        await pMap(batches, async (batch) => {
          await api.upload(buildId, batch)
          for (const object of batch) acknowledged.add(object.name)
        }, { concurrency: 4 })
        steps.uploaded = true
      }
      if (!steps.refs) {
        for (const [ref, commit] of [[fixture.runtime.ref, fixture.runtime.commit], [fixture.app.ref, fixture.app.v1]] as const) {
          await api.graphql(`mutation { createBuildRef(buildId: ${buildId}, refName: "${ref}", commit: "${commit}") { __typename ... on Error { message code } } }`)
        }
        steps.refs = true
      }
      if (!steps.committed) {
        await api.graphql(`mutation { commitBuild(buildId: ${buildId}) { __typename ... on Error { message code } } }`).catch((error: Error) => {
          if (!/no longer|not uploading|committ/i.test(error.message)) throw error
        })
        steps.committed = true
      }
      if (!steps.published) {
        const ready = await waitFor('the build to be ready', async () => {
          const state = await buildState(buildId)
          if (state.repoState === 'FAILED') return state
          return state.repoState === 'READY' ? state : undefined
        }, 180_000)
        if (ready.repoState === 'READY') {
          await api.graphql(`mutation { publishBuild(buildId: ${buildId}) { __typename ... on Error { message code } } }`).catch((error: Error) => {
            if (!/already|publish/i.test(error.message)) throw error
          })
        }
        steps.published = true
      }
    }
    // The killer: waits for the phase, then a random moment within it.
    const kill = async () => {
      if (phase === 'push') {
        await waitFor('the build', async () => (buildId ? true : undefined), 30_000)
        await sleep(random() * 600)
      } else {
        const kind = jobKind[phase]
        await waitFor(`a ${kind} job of this build`, async () => {
          const running = (await jobs()).find((job) => job.kind === kind && job.status === 'RUNNING' && (job.buildId === buildId || job.buildId === null))
          if (running) return true
          // The bot failed before the phase came: nothing to aim at.
          if (botEnded && botEnded !== 'done') throw new Error(`the bot failed before the ${phase}: ${botEnded}`)
          return undefined
        }, 180_000)
        await sleep(random() * 700)
      }
      const running: Job[] = await jobs().catch(() => [])
      killedDuring = running.filter((job) => job.status === 'RUNNING').map((job) => job.kind.toLowerCase()).join('+') || (steps.uploaded ? 'between jobs' : 'upload')
      if (separate) {
        // The API during uploads (it writes them), the worker during jobs; now and then both.
        if (phase === 'push' || random() < 0.2) await server.kill()
        if (phase !== 'push' || random() < 0.5) await worker?.kill()
      } else {
        await server.kill()
      }
    }
    try {
      const botRun = bot().then(
        () => (botEnded = 'done'),
        (error: Error) => (botEnded = `interrupted: ${error.message.slice(0, 200)}`),
      )
      await kill()
      await restart()
      const first = await botRun
      if (first !== 'done' && process.env.CHAOS_DEBUG) process.stderr.write(`  bot before the restart: ${first}\n`)
      await bot()
      // Everything settles: the build is published or failed, every job is terminal, the delta
      // job and the update that lists its deltas included.
      const settled = await waitFor('the build to settle', async () => {
        const state = await buildState(buildId)
        if (state.repoState === 'FAILED' || state.publishedState === 'FAILED') return state
        return state.publishedState === 'PUBLISHED' ? state : undefined
      }, 300_000)
      await waitFor('every job to end', async () => ((await jobs()).every((job) => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(job.status)) ? true : undefined), 300_000)
      const outcome = settled.publishedState === 'PUBLISHED' ? 'published' : `failed: ${settled.repoStateReason ?? settled.publishedStateReason}`
      if (outcome !== 'published') problems.push(outcome)
      const failedJobs = (await jobs()).filter((job) => job.status === 'FAILED' && job.buildId === buildId)
      if (failedJobs.length) problems.push(`failed jobs: ${failedJobs.map((job) => `${job.kind} ${job.id}`).join(', ')}`)
      const repo = path.join(server.dataDir, 'repos/stable')
      const fsck = await exec('ostree', [`--repo=${repo}`, 'fsck'], { maxBuffer: 16 << 20 }).catch((error: { stdout?: string; stderr?: string }) => ({ stdout: `${error.stdout}${error.stderr}` }))
      if (!/no errors found/.test(fsck.stdout)) problems.push(`ostree fsck: ${fsck.stdout.trim().split('\n').at(-1)}`)
      const orphans = orphanedTemps(path.join(server.dataDir, 'builds'))
      if (orphans.length) problems.push(`orphaned temp files: ${orphans.slice(0, 3).join(', ')}`)
      const flatpak = flatpakClient(fixture)
      try {
        await flatpak.flatpak('remote-add', '--from', 'chaos', `${server.url}/repo/stable/stable.flatpakrepo`)
        await flatpak.flatpak('install', '-y', '--noninteractive', 'chaos', fixture.app.id)
        if ((await flatpak.installedVersion()) !== '1') problems.push('flatpak installed another version')
      } catch (error) {
        problems.push(`flatpak install: ${((error as { stderr?: string }).stderr ?? (error as Error).message).trim().split('\n').at(-1)}`)
      } finally {
        flatpak.cleanup()
      }
      results.push({ engine, trial, phase, killedDuring, outcome, problems, seconds: (performance.now() - started) / 1000 })
    } catch (error) {
      results.push({ engine, trial, phase, killedDuring, outcome: 'did not settle', problems: [(error as Error).message], seconds: (performance.now() - started) / 1000 })
      // Start clean for the next trial: whatever is running is ended and started again.
      await worker?.kill()
      await server.kill()
      await restart()
    }
    const last = results.at(-1)!
    process.stderr.write(`${engine} trial ${trial}: ${phase} (killed during ${last.killedDuring}) → ${last.outcome}${last.problems.length ? ` PROBLEMS: ${last.problems.join('; ')}` : ''} [${last.seconds.toFixed(0)} s]\n`)
  }
  await worker?.stop()
  await server.stop()
  await drop()
  return results
}

/** Temp files of processes that are gone: what flatdepot names `*.tmp-<tag>-*` and upload temps. */
function orphanedTemps(base: string): string[] {
  if (!existsSync(base)) return []
  const found: string[] = []
  for (const entry of readdirSync(base, { recursive: true, withFileTypes: true })) {
    if (/\.tmp-[0-9a-f]{8}\.\d+\.\d+-/.test(entry.name) || entry.name.startsWith('flatdepot-upload')) found.push(path.join(entry.parentPath, entry.name))
  }
  return found
}

const fixture = await buildFixture('small')
const all: TrialResult[] = []
for (const engine of engines) all.push(...(await campaign(engine, fixture)))

console.log(`\ncrash campaign: ${all.length} trials, seed ${firstSeed} (CHAOS_SEED=${firstSeed} repeats it)\n`)
console.log('| engine | phase aimed at | trials | published | problems |')
console.log('|---|---|---:|---:|---:|')
for (const engine of engines) {
  for (const phase of phases) {
    const rows = all.filter((result) => result.engine === engine && result.phase === phase)
    if (rows.length) console.log(`| ${engine} | ${phase} | ${rows.length} | ${rows.filter((row) => row.outcome === 'published').length} | ${rows.filter((row) => row.problems.length).length} |`)
  }
}
const killedDuring = new Map<string, number>()
for (const result of all) killedDuring.set(result.killedDuring, (killedDuring.get(result.killedDuring) ?? 0) + 1)
console.log(`\nwhat was running at the kill: ${[...killedDuring].map(([what, n]) => `${what} ${n}`).join(', ')}`)
for (const result of all.filter((row) => row.problems.length)) console.log(`- ${result.engine} trial ${result.trial} (${result.phase}, during ${result.killedDuring}): ${result.problems.join('; ')}`)
