import { readFileSync } from 'node:fs'
import { clearLine, cursorTo } from 'node:readline'
import { Command, InvalidArgumentError, Option } from 'commander'
import { ApiError, FlatdepotClient } from '../client/api.ts'
import type { Job } from '../client/documents.ts'
import type { PushProgress } from '../client/push.ts'

/** What the CLI's commands share: connection options, output, argument parsing, progress. */

// Server modules (config, logging, tokens, Prisma, the database engines, GraphQL) load only for
// the commands that need them: a build bot's `flatdepot push` starts in a fraction of the time.
import { bytes } from '../util/format.ts'

export { bytes }

export const serverModules = async () => {
  const [config, log, jwt, keys] = await Promise.all([import('../config/config.ts'), import('../log.ts'), import('../tokens/jwt.ts'), import('../tokens/keys.ts')])
  return { ...config, ...log, ...jwt, ...keys }
}
/** Prisma and the database engines: only for the commands that open the database. */
export const openDatabase = async (...args: Parameters<typeof import('../db/database.ts').openDatabase>) =>
  (await import('../db/database.ts')).openDatabase(...args)

export type ConnectionOptions = { url?: string; token?: string; json?: boolean }

const defaultUrl = 'http://127.0.0.1:8080'

export function withConnection(command: Command): Command {
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

export async function withClient<T>(options: ConnectionOptions, fn: (client: FlatdepotClient) => Promise<T>): Promise<T> {
  const client = connect(options)
  try {
    return await fn(client)
  } finally {
    await client.close()
  }
}

export function print(options: ConnectionOptions, value: unknown, human: string): void {
  process.stdout.write(options.json ? `${JSON.stringify(value)}\n` : `${human}\n`)
}

/** The job a command started, and how it ended when the command waited for it. */
export const printJob = (options: ConnectionOptions, what: string, jobId: number, job: Job | null) =>
  print(options, { jobId, job }, `${what} job ${jobId}${job ? ` ${job.status.toLowerCase()}` : ' queued'}`)

export const positiveInt = (what: string) => (value: string) => {
  const number = Number(value)
  if (!Number.isInteger(number) || number <= 0) throw new InvalidArgumentError(`${what} must be a positive whole number`)
  return number
}

export function nonNegativeInt(value: string): number {
  const number = Number(value)
  if (!Number.isInteger(number) || number < 0) throw new InvalidArgumentError('expected a whole number')
  return number
}

export const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value]

export async function readSecret(options: { secret?: string; secretFile?: string }): Promise<Uint8Array> {
  const { loadConfig, parseSecret } = await serverModules()
  if (options.secret) return parseSecret(options.secret, '--secret')
  if (options.secretFile) {
    const text = readFileSync(options.secretFile === '-' ? 0 : options.secretFile, 'utf8')
    return parseSecret(text, `--secret-file ${options.secretFile}`)
  }
  return loadConfig().secret
}

/** Stops on SIGINT or SIGTERM, as a service manager or a terminal asks. */
export function stopOnSignal(stop: (signal: string) => Promise<void>): void {
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))
}

/**
 * A progress bar on stderr: objects, bytes and rate; on a non-terminal, a plain line every few
 * seconds. Its total grows while the push still learns what the server lacks; `say` writes a
 * line above it.
 */
export async function progressBar(): Promise<{ update: (progress: PushProgress) => void; say: (text: string) => void; stop: () => void }> {
  // Loaded when a bar is wanted: not part of every command's start-up.
  const { SingleBar } = await import('cli-progress')
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
        bar.setTotal(progress.totalObjects)
        bar.update(progress.objects, payload)
      }
    },
    say(text) {
      // On a terminal the bar's line is cleared first; it is drawn again at its next update.
      if (running && process.stderr.isTTY) {
        cursorTo(process.stderr, 0)
        clearLine(process.stderr, 0)
      }
      process.stderr.write(`${text}\n`)
    },
    stop: () => {
      if (running) bar.stop()
    },
  }
}
