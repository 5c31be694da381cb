/**
 * `missing_objects` with 100,000 names (issue 11: 130,000 names blocked the event loop ~2 s).
 * A build holds the large fixture's objects; the request names those plus random ones. Figures:
 *   request time           ÷ the synchronous existsSync loop the server used to run (same names, same repos)
 *   /healthz worst latency while the request runs (polled every 10 ms): whether the event loop was free
 * Not a test: it prints figures (see BENCHMARKS.md).
 *   npm run bench:missing      (BENCH_NAMES=100000; BENCH_ENGINE=postgresql for a scratch PostgreSQL database, default pglite)
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { signedRepoConfig } from '../test/support/config.ts'
import { createPostgresDatabase } from '../test/support/databases.ts'
import { buildFixture } from '../test/support/fixture.ts'
import { graphql, startServer } from '../test/support/server.ts'
import { repoObjects, uploadMissing } from '../test/support/upload.ts'

const names = Number(process.env.BENCH_NAMES ?? 100_000)
const fixture = await buildFixture('large')
const engine = process.env.BENCH_ENGINE ?? 'pglite'
const database = engine === 'postgresql' ? await createPostgresDatabase() : null
const server = await startServer({ databaseUrl: database?.url ?? null, config: (port) => signedRepoConfig(fixture, port), collectLogs: false })
const token = await server.cli('token', 'create', '--name', 'bench', '--repo', 'stable')
const { body } = await graphql(server.url, token, 'mutation { createBuild(input: { repo: "stable" }) { ... on Build { id } } }')
const buildId = body.data.createBuild.id as number
await uploadMissing(server.url, token, buildId, fixture.repoV1)
const present = repoObjects(fixture.repoV1).map((object) => object.name)
const wanted = [...present, ...Array.from({ length: Math.max(0, names - present.length) }, () => `${randomBytes(32).toString('hex')}.filez`)]
const payload = JSON.stringify({ wanted })

async function measure() {
  let worst = 0
  let polling = true
  const poller = (async () => {
    while (polling) {
      const started = performance.now()
      await fetch(`${server.url}/healthz`)
      worst = Math.max(worst, performance.now() - started)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()
  const started = performance.now()
  const response = await fetch(`${server.url}/api/v1/build/${buildId}/missing_objects`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: payload,
  })
  const { missing } = (await response.json()) as { missing: string[] }
  const ms = performance.now() - started
  polling = false
  await poller
  return { ms, worst, missing: missing.length }
}

/** The old implementation, run here on the same names and directories: two existsSync per name. */
function syncBaseline() {
  const upload = path.join(server.dataDir, 'builds', String(buildId), 'upload')
  const main = path.join(server.dataDir, 'repos/stable')
  const started = performance.now()
  let missing = 0
  for (const name of wanted) {
    const file = path.join('objects', name.slice(0, 2), name.slice(2))
    if (!existsSync(path.join(upload, file)) && !existsSync(path.join(main, file))) missing++
  }
  return { ms: performance.now() - started, missing }
}

await measure() // warm-up: page cache, JIT
const runs = [await measure(), await measure(), await measure()]
const baselines = [syncBaseline(), syncBaseline(), syncBaseline()]
const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const ms = median(runs.map((run) => run.ms))
const baseline = median(baselines.map((run) => run.ms))
console.log(`\n${engine}: missing_objects with ${wanted.length} names (${present.length} present), 3 runs, medians:`)
console.log(`| request | ${ms.toFixed(0)} ms | ÷ synchronous existsSync loop ${baseline.toFixed(0)} ms = ${(ms / baseline).toFixed(2)} |`)
console.log(`| /healthz worst while it runs | ${median(runs.map((run) => run.worst)).toFixed(0)} ms | (the old loop blocks for its whole ${baseline.toFixed(0)} ms) |`)
if (runs.some((run) => run.missing !== wanted.length - present.length) || baselines.some((run) => run.missing !== wanted.length - present.length)) {
  console.log(`mismatch: expected ${wanted.length - present.length} missing, got ${runs.map((run) => run.missing)} / ${baselines.map((run) => run.missing)}`)
}
await server.stop()
await database?.drop()
