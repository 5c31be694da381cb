import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const bin = path.join(root, 'bin', 'flatdepot.mjs')

export type ServerProcess = {
  url: string
  port: number
  pid: number
  dataDir: string
  env: NodeJS.ProcessEnv
  logs: () => Record<string, unknown>[]
  cli: (...args: string[]) => Promise<string>
  stop: () => Promise<void>
  /** SIGTERM, keeping the data directory for a restart. */
  stopKeepingData: () => Promise<void>
  /** SIGKILL, leaving everything as a crash would. */
  kill: () => Promise<void>
}

/** `flatdepot worker` as its own process, against the server's config and database. */
export function startWorkerProcess(server: ServerProcess, env: NodeJS.ProcessEnv = {}, args: string[] = []): { pid: number; kill: () => Promise<void>; stop: () => Promise<void> } {
  const child = spawn(process.execPath, [bin, 'worker', ...args], { cwd: server.dataDir, env: { ...server.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  let output = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-4000)))
  const end = ender(child, 'flatdepot worker', () => output)
  return { pid: child.pid!, kill: () => end('SIGKILL'), stop: () => end('SIGTERM') }
}

/**
 * Ends a child with a signal and waits for it. A child that dies on its own, without being
 * asked, is a bug worth seeing: its last output goes to stderr.
 */
function ender(child: ChildProcess, what: string, tail: () => string) {
  let ending = false
  child.once('exit', (code, signal) => {
    if (!ending) process.stderr.write(`${what} exited unexpectedly (${signal ?? code}); its last output:\n${tail()}\n`)
  })
  return async (signal: NodeJS.Signals) => {
    ending = true
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill(signal)
    await exited
  }
}

/** Starts `flatdepot serve` as its own process, the way a user does, on a free port. */
export async function startServer(
  options: {
    databaseUrl?: string | null
    config?: (port: number) => Record<string, unknown>
    args?: string[]
    env?: NodeJS.ProcessEnv
    /** Start again on the data directory (and port) of a stopped or killed server. */
    restart?: { dataDir: string; port: number }
    /** Run in this (existing) data directory instead of a new temporary one. */
    dataDir?: string
    keepDataDir?: boolean
    /** false: the server logs to a file, as in production, and is not parsed (benchmarks). */
    collectLogs?: boolean
    nodeArgs?: string[]
  } = {},
): Promise<ServerProcess> {
  const dataDir = options.restart?.dataDir ?? options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'flatdepot-e2e-'))
  const port = options.restart?.port ?? (await freePort())
  if (options.config) writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify(options.config(port), null, 2))
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FLATDEPOT_DATA_DIR: dataDir,
    FLATDEPOT_PORT: String(port),
    FLATDEPOT_LOG_LEVEL: 'info',
    ...options.env,
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : { DATABASE_URL: '' }),
  }
  if (!options.databaseUrl) delete env.DATABASE_URL
  if (options.collectLogs === false) {
    const log = openSync(path.join(dataDir, 'server.log'), 'a')
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), bin, 'serve', ...(options.args ?? [])], { cwd: dataDir, env, stdio: ['ignore', 'ignore', log] })
    const url = `http://127.0.0.1:${port}`
    await waitFor('the server to listen', async () => ((await fetch(`${url}/healthz`).catch(() => null))?.ok ? true : undefined), 60_000)
    return processHandle(child, url, port, dataDir, env, [], options.keepDataDir ?? false, () => `(logs in ${path.join(dataDir, 'server.log')})`)
  }
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), bin, 'serve', ...(options.args ?? [])], { cwd: dataDir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: Record<string, unknown>[] = []
  let output = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 60 s:\n${output}`)), 60_000)
    child.stderr!.setEncoding('utf8')
    let buffered = ''
    child.stderr!.on('data', (chunk: string) => {
      output += chunk
      buffered += chunk
      const parts = buffered.split('\n')
      buffered = parts.pop() ?? ''
      for (const line of parts) {
        if (!line.startsWith('{')) continue
        const entry = JSON.parse(line) as Record<string, unknown>
        lines.push(entry)
        if (entry.msg === 'flatdepot is listening') {
          clearTimeout(timer)
          resolve(String(entry.url))
        }
      }
    })
    // 'close', not 'exit': its last words may still be in the pipe when it exits.
    child.once('close', (code, signal) => reject(new Error(`server exited (${signal ?? code}) before listening:\n${output}`)))
  })
  return processHandle(child, url, port, dataDir, env, lines, options.keepDataDir ?? false, () => output.slice(-4000))
}

function processHandle(
  child: ChildProcess,
  url: string,
  port: number,
  dataDir: string,
  env: NodeJS.ProcessEnv,
  lines: Record<string, unknown>[],
  keepDataDir: boolean,
  tail: () => string,
): ServerProcess {
  const end = ender(child, `flatdepot server ${url}`, tail)
  return {
    url,
    port,
    pid: child.pid!,
    dataDir,
    env,
    logs: () => lines,
    cli: async (...args) => (await promisify(execFile)(process.execPath, [bin, ...args], { cwd: dataDir, env })).stdout.trim(),
    kill: () => end('SIGKILL'),
    stopKeepingData: () => end('SIGTERM'),
    async stop() {
      await end('SIGTERM')
      if (!keepDataDir) rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** A port nothing listens on now (the server binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** POST a GraphQL operation; returns the HTTP status, the JSON body and the headers. */
export async function graphql(url: string, token: string | null, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  })
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: response.status, body: (await response.json()) as any, headers: response.headers }
}

export type Cli = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** `flatdepot …` as a build bot runs it: its own process, URL and token from the environment. */
export function runCli(server: ServerProcess, token: string, args: string[], onStart?: (child: ReturnType<typeof spawn>) => void): Promise<Cli> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, FLATDEPOT_URL: server.url, FLATDEPOT_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  onStart?.(child)
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
}
