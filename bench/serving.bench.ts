/**
 * Serving a repo's objects to clients: flatdepot's `/repo` against nginx serving the same files,
 * in the same run. wrk cycles through every object of the large fixture (5,095 paths, 20 MiB).
 * Variants on flatdepot's side, each a fresh server on PostgreSQL with the same repo:
 *   - one process, access log written line by line, then in 16 KiB writes (FLATDEPOT_LOG_BUFFER_BYTES);
 *   - one process as shipped;
 *   - `serve --processes 2` (node:cluster, the port shared), the multi-process figure.
 * nginx runs one worker, with and without its access log. Beside them, the ceiling of Node's own
 * HTTP server on this machine: a bare `node:http` process holding every object in memory,
 * answering with the same headers and no routing, token check or log, which no Node server can
 * beat; and the same with a request id and a pino access line per request, which flatdepot's
 * every answer carries. Not a test: it prints figures (see
 * BENCHMARKS.md). Needs nginx and wrk (apt).
 *   npm run bench:serving        (BENCH_WRK="-t 1 -c 32" and BENCH_SECONDS=8 by default)
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

async function flatdepot(label: string, options: { env?: NodeJS.ProcessEnv; args?: string[] }): Promise<number> {
  const { url, drop } = await createPostgresDatabase()
  const server = await startServer({
    databaseUrl: url,
    collectLogs: false,
    env: { MALLOC_ARENA_MAX: '1', ...options.env },
    // BENCH_NODE_ARGS: more for flatdepot's node (`--cpu-prof --cpu-prof-dir=…` for a profile).
    nodeArgs: ['--max-semi-space-size=2', ...(process.env.BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [])],
    args: ['--workers', '0', ...(options.args ?? [])],
    config: (port) => signedRepoConfig(fixture, port, { path: repo }, 9),
  })
  try {
    const perSecond = await wrk(server.url, '/repo/stable')
    console.log(`  ${label.padEnd(44)} ${perSecond.toFixed(0).padStart(7)}/s`)
    return perSecond
  } finally {
    await server.stop()
    await drop()
  }
}

/** node:http with the objects in memory and nothing else: the most a Node process serves here. */
async function bareNode(withLog: boolean): Promise<number> {
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
  try {
    await waitFor('bare node', async () => ((await fetch(`http://127.0.0.1:${port}${paths[0]}`).catch(() => null))?.ok ? true : undefined), 10_000)
    return await wrk(`http://127.0.0.1:${port}`)
  } finally {
    child.kill('SIGTERM')
  }
}

try {
  console.log(`object GETs, large fixture (${paths.length} objects), wrk ${wrkArgs.join(' ')}, ${seconds} s after a 3 s warm-up; 2 cores\n`)
  const nginxQuiet = await startNginx(work, repo)
  const quiet = await wrk(nginxQuiet.url)
  nginxQuiet.stop()
  const nginxLogging = await startNginx(work, repo, { accessLog: true })
  const logging = await wrk(nginxLogging.url)
  nginxLogging.stop()
  console.log(`  ${'nginx, 1 worker, access_log off'.padEnd(44)} ${quiet.toFixed(0).padStart(7)}/s`)
  console.log(`  ${'nginx, 1 worker, access log'.padEnd(44)} ${logging.toFixed(0).padStart(7)}/s`)
  const bare = await bareNode(false)
  console.log(`  ${'bare node:http, objects in memory, no log'.padEnd(44)} ${bare.toFixed(0).padStart(7)}/s`)
  const bareLogged = await bareNode(true)
  console.log(`  ${'  the same + request id + pino access line'.padEnd(44)} ${bareLogged.toFixed(0).padStart(7)}/s`)
  const unbuffered = await flatdepot('flatdepot, 1 process, log line by line', { env: { FLATDEPOT_LOG_BUFFER_BYTES: '0' } })
  const buffered = await flatdepot('flatdepot, 1 process, log in 8 KiB writes', { env: { FLATDEPOT_LOG_BUFFER_BYTES: '8192' } })
  const shipped = await flatdepot('flatdepot, 1 process, as shipped', {})
  const two = await flatdepot('flatdepot, serve --processes 2, as shipped', { args: ['--processes', '2'] })
  const ratio = (label: string, value: number, goal = '') => console.log(`${label.padEnd(58)} ${value.toFixed(2)}   ${goal}`)
  console.log('')
  ratio('flatdepot (1 process) ÷ nginx (1 worker), both logging', shipped / logging, 'goal ≥ 0.5')
  ratio('flatdepot (1 process) ÷ nginx, access_log off', shipped / quiet)
  ratio('bare node:http (the ceiling) ÷ nginx, access_log off', bare / quiet)
  ratio('bare node:http + request id + access line ÷ bare', bareLogged / bare)
  ratio('flatdepot (1 process) ÷ bare node:http + id + access line', shipped / bareLogged)
  ratio('log in 8 KiB writes ÷ line by line (1 process)', buffered / unbuffered)
  ratio('flatdepot (2 processes) ÷ nginx (1 worker), both logging', two / logging)
} finally {
  rmSync(work, { recursive: true, force: true })
}
