/**
 * Serving a repo's objects to clients: flatdepot's `/repo` against nginx serving the same files,
 * in the same run. wrk cycles through every object of the large fixture (5,095 paths, 20 MiB).
 * Variants on flatdepot's side, each a server on PostgreSQL with its own copy of the repo:
 *   - one process as shipped (each access-log line written as it comes);
 *   - one process with the access log gathered into 8 KiB writes (FLATDEPOT_LOG_BUFFER_BYTES);
 *   - `serve --processes 2` (node:cluster, the port shared), the multi-process figure.
 * nginx runs one worker, with and without its access log. Beside them, the ceiling of Node's own
 * HTTP server on this machine: a bare `node:http` process holding every object in memory,
 * answering with the same headers and no routing, token check or log, which no Node server can
 * beat; and the same with a request id and a pino access line per request, which flatdepot's
 * every answer carries. Every server is started first; then, in each of BENCH_ROUNDS rounds (3 by
 * default), wrk runs against each in turn, the order rotating from round to round, and the
 * figures are medians over the rounds (one run after another, the same configuration moved by
 * more than a third on this machine). Not a test: it prints figures (see BENCHMARKS.md). Needs
 * nginx and wrk (apt).
 *   npm run bench:serving        (BENCH_WRK="-t 1 -c 32", BENCH_SECONDS=8, BENCH_ROUNDS=3 by default)
 */
import { spawn } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { buildFixture } from '../test/support/fixture.ts'
import { createPostgresDatabase } from '../test/support/databases.ts'
import { freePort, startServer, waitFor } from '../test/support/server.ts'
import { signedRepoConfig } from '../test/support/config.ts'
import { startNginx, wrk as runWrk } from './nginx.ts'
import { repoObjects } from '../test/support/upload.ts'

const wrkArgs = (process.env.BENCH_WRK ?? '-t 1 -c 32').split(/\s+/)
const seconds = Number(process.env.BENCH_SECONDS ?? 8)
const work = mkdtempSync(path.join(tmpdir(), 'flatdepot-bench-serving-'))

const fixture = await buildFixture('large')
// A copy, not links: the server may rewrite the repo's summary and config.
const repo = path.join(work, 'repo')
cpSync(fixture.repoV1, repo, { recursive: true })
const paths = repoObjects(repo).map((object) => `/objects/${object.name.slice(0, 2)}/${object.name.slice(2)}`)
// The same list for the bare server to load (too long for its command line).
const listFile = path.join(work, 'paths.txt')
writeFileSync(listFile, paths.join('\n'))

async function wrk(url: string, prefix = ''): Promise<number> {
  const { rate, errors } = await runWrk(work, url, prefix ? paths.map((p) => `${prefix}${p}`) : paths, { args: wrkArgs, seconds })
  if (errors !== null || !Number.isFinite(rate)) throw new Error(`wrk against ${url} saw errors:\n${errors}`)
  return rate
}

type Target = { label: string; url: string; prefix?: string; stop: () => Promise<void> | void }

/** A flatdepot server on PostgreSQL serving its own copy of the repo (it may rewrite the summary). */
async function flatdepot(label: string, options: { env?: NodeJS.ProcessEnv; args?: string[] }): Promise<Target> {
  const { url, drop } = await createPostgresDatabase()
  const own = mkdtempSync(path.join(work, 'repo-'))
  cpSync(repo, own, { recursive: true })
  const server = await startServer({
    databaseUrl: url,
    collectLogs: false,
    env: { MALLOC_ARENA_MAX: '1', ...options.env },
    // BENCH_NODE_ARGS: more for flatdepot's node (`--cpu-prof --cpu-prof-dir=…` for a profile).
    nodeArgs: ['--max-semi-space-size=2', ...(process.env.BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [])],
    args: ['--workers', '0', ...(options.args ?? [])],
    config: (port) => signedRepoConfig(fixture, port, { path: own }, 9),
  })
  return {
    label,
    url: server.url,
    prefix: '/repo/stable',
    stop: async () => {
      await server.stop()
      await drop()
    },
  }
}

/** node:http with the objects in memory and nothing else: the most a Node process serves here. */
async function bareNode(label: string, withLog: boolean): Promise<Target> {
  const port = await freePort()
  const script = `
import http from 'node:http'
import { readFileSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
${withLog ? "const { default: pino } = await import('pino'); const log = pino()" : ''}
const root = ${JSON.stringify(repo)}
const files = new Map(readFileSync(${JSON.stringify(listFile)}, 'utf8').split('\\n').map((p) => [p, readFileSync(root + p)]))
http.createServer((req, res) => {
  ${withLog ? "const requestId = randomUUID(); const started = process.hrtime.bigint()" : ''}
  const body = files.get(req.url)
  if (!body) { res.writeHead(404).end(); return }
  // The request id in writeHead's own headers, as flatdepot's fast path writes it (a setHeader first costs a fifth).
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length, 'Cache-Control': 'public, max-age=31536000, immutable', ETag: '"' + req.url.slice(9).replace('/', '') + '"', 'Accept-Ranges': 'bytes'${withLog ? ", 'x-request-id': requestId" : ''} })
  res.end(body)
  ${withLog ? "log.info({ requestId, method: req.method, path: req.url, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request')" : ''}
}).listen(${port}, '127.0.0.1')`
  // In the project's directory, where pino resolves; its log goes where the server's does here.
  const child = spawn(process.execPath, ['--max-semi-space-size=2', '--input-type=module', '-e', script], { stdio: 'ignore', cwd: process.cwd() })
  await waitFor('bare node', async () => ((await fetch(`http://127.0.0.1:${port}${paths[0]}`).catch(() => null))?.ok ? true : undefined), 10_000)
  return { label, url: `http://127.0.0.1:${port}`, stop: () => void child.kill('SIGTERM') }
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const targets: Target[] = []
try {
  console.log(`object GETs, large fixture (${paths.length} objects), wrk ${wrkArgs.join(' ')}, ${seconds} s after a 3 s warm-up; 2 cores`)
  console.log(`${rounds} rounds; in each, every server in turn (the order rotating): each figure is the median over rounds, each ratio the median of the rounds' ratios\n`)
  const nginxQuiet = await startNginx(work, repo)
  targets.push({ label: 'nginx, 1 worker, access_log off', url: nginxQuiet.url, stop: () => void nginxQuiet.stop() })
  const nginxLogging = await startNginx(work, repo, { accessLog: true })
  targets.push({ label: 'nginx, 1 worker, access log', url: nginxLogging.url, stop: () => void nginxLogging.stop() })
  targets.push(await bareNode('bare node:http, objects in memory, no log', false))
  targets.push(await bareNode('  the same + request id + pino access line', true))
  targets.push(await flatdepot('flatdepot, 1 process, as shipped', {}))
  targets.push(await flatdepot('flatdepot, 1 process, log in 8 KiB writes', { env: { FLATDEPOT_LOG_BUFFER_BYTES: '8192' } }))
  targets.push(await flatdepot('flatdepot, serve --processes 2, as shipped', { args: ['--processes', '2'] }))
  const rates = targets.map(() => [] as number[])
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < targets.length; k++) {
      const index = (k + round) % targets.length
      const target = targets[index]!
      rates[index]!.push(await wrk(target.url, target.prefix))
    }
  }
  for (const [index, target] of targets.entries()) {
    console.log(`  ${target.label.padEnd(44)} ${median(rates[index]!).toFixed(0).padStart(7)}/s   (${rates[index]!.map((rate) => rate.toFixed(0)).join(', ')})`)
  }
  const [quiet, logging, bare, bareLogged, shipped, buffered, two] = rates
  const ratio = (label: string, over: number[], under: number[], goal = '') =>
    console.log(`${label.padEnd(58)} ${median(over.map((value, round) => value / under[round]!)).toFixed(2)}   ${goal}`)
  console.log('')
  ratio('flatdepot (1 process) ÷ nginx (1 worker), both logging', shipped!, logging!, 'goal ≥ 0.5')
  ratio('flatdepot (1 process) ÷ nginx, access_log off', shipped!, quiet!)
  ratio('bare node:http (the ceiling) ÷ nginx, access_log off', bare!, quiet!)
  ratio('bare node:http + request id + access line ÷ bare', bareLogged!, bare!)
  ratio('flatdepot (1 process) ÷ bare node:http + id + access line', shipped!, bareLogged!)
  ratio('log in 8 KiB writes ÷ line by line (1 process)', buffered!, shipped!)
  ratio('flatdepot (2 processes) ÷ nginx (1 worker), both logging', two!, logging!)
} finally {
  for (const target of targets) await target.stop()
  rmSync(work, { recursive: true, force: true })
}
