/**
 * Live job log latency: from a line printed by a check hook to a graphql-ws subscriber, with the
 * worker in its own process (PostgreSQL) or inside the server (PGlite). Each line carries the
 * time it was printed; the subscriber subtracts it from the time the line arrived. Baseline in
 * the same run: the same hook's output read directly by this process (the floor: shell, fork,
 * pipes, scheduling), and a bare PostgreSQL NOTIFY from one connection to a LISTENing one.
 * Not a test: it prints figures (see BENCHMARKS.md).
 *   npm run bench:joblog            (BENCH_ENGINE=postgresql|pglite, default postgresql)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { buildFixture } from '../test/support/fixture.ts'
import { createPostgresDatabase, postgresAdminUrl } from '../test/support/databases.ts'
import { startServer, startWorkerProcess } from '../test/support/server.ts'
import { signedRepoConfig } from '../test/support/config.ts'
import { nowMs, notifyLatencies, percentile, readHookDirectly, stampedHook, startCheckJob } from './support.ts'

const engine = process.env.BENCH_ENGINE ?? 'postgresql'
const lines = Number(process.env.BENCH_LINES ?? 400)
const work = mkdtempSync(path.join(tmpdir(), 'flatdepot-bench-joblog-'))
// A hook that prints `lines` lines, each stamped with the time it was printed (µs), 10 ms apart.
const hook = stampedHook(work, { lines, intervalSecs: 0.01 })

const fixture = await buildFixture('small')
let dropDatabase = async () => {}
let databaseUrl: string | null = null
if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
const config = (port: number) => signedRepoConfig(fixture, port, { hooks: { checks: { stamped: { command: [hook] } } } }, 11)
const server = await startServer({ databaseUrl, config, collectLogs: false, ...(engine === 'postgresql' ? { args: ['--workers', '0'] } : {}) })
const worker = engine === 'postgresql' ? startWorkerProcess(server) : null
try {
  const baseline = engine === 'postgresql' ? await notifyLatencies(postgresAdminUrl, lines) : null
  const direct = await readHookDirectly(hook)
  const token = await server.cli('token', 'create', '--repo', 'stable')

  /** Pushes a build, commits it, and follows its check job from the start: each line's latency. */
  async function followCheckJob(): Promise<{ latencies: number[]; backlog: number }> {
    const checkJobId = await startCheckJob(server.url, token, fixture)
    const client = createClient({ url: `${server.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` } })
    const latencies: number[] = []
    let backlog = 0
    let liveSince: number | null = null
    for await (const result of client.iterate<{ jobLog: { text: string } }>({
      query: 'subscription($id: Int!) { jobLog(jobId: $id) { text } }',
      variables: { id: checkJobId },
    })) {
      const match = /^line \d+ (\d+)$/.exec(result.data?.jobLog.text ?? '')
      if (!match) continue
      const arrived = nowMs()
      const printed = Number(match[1]) / 1000
      // Lines printed before the first one arrived came with the subscription's first read (the
      // backlog); live latency is measured on lines printed once the subscriber was receiving.
      liveSince ??= arrived
      if (printed < liveSince) backlog++
      else latencies.push(arrived - printed)
    }
    await client.dispose()
    if (process.env.BENCH_VERBOSE) {
      const worst = latencies.map((latency, index) => ({ index, latency })).sort((a, b) => b.latency - a.latency).slice(0, 15)
      console.log('worst lines:', worst.map(({ index, latency }) => `#${index} ${latency.toFixed(0)}ms`).join(' '))
    }
    return { latencies, backlog }
  }

  // The first job after start-up pays for cold code paths in both processes; a server that has
  // been up for a while does not, so the second job is the figure.
  const cold = await followCheckJob()
  const { latencies, backlog } = await followCheckJob()

  const fmt = (values: number[]) => `p50 ${percentile(values, 50).toFixed(1)} ms, p99 ${percentile(values, 99).toFixed(1)} ms, max ${Math.max(...values).toFixed(1)} ms`
  console.log(`engine ${engine}${worker ? ', worker in its own process' : ', worker inside the server'}; ${latencies.length} live lines (${backlog} from the backlog)`)
  console.log(`hook line → graphql-ws subscriber: ${fmt(latencies)}   (goal p99 < 50 ms)`)
  console.log(`  the first job after start-up:     ${fmt(cold.latencies)}`)
  console.log(`baseline, the hook read directly:  ${fmt(direct)}`)
  if (baseline) console.log(`baseline, bare NOTIFY → LISTEN:     ${fmt(baseline)}`)
  console.log(`added over reading the hook directly: p50 ${(percentile(latencies, 50) - percentile(direct, 50)).toFixed(1)} ms, p99 ${(percentile(latencies, 99) - percentile(direct, 99)).toFixed(1)} ms`)
} finally {
  await worker?.stop()
  await server.stop()
  await dropDatabase()
  rmSync(work, { recursive: true, force: true })
}
