import { createInterface } from 'node:readline'
import { StringDecoder } from 'node:string_decoder'
import { execa, ExecaError } from 'execa'
import { GroupCommit } from '../util/groupCommit.ts'
import { Spawner } from './spawner.ts'

/**
 * A failed command (ostree, flatpak, gpg, a hook), with what a person needs to see why.
 * `SpawnFailed`: the command could not be started (`errno` says why: ETXTBSY, EAGAIN, …).
 */
export class CommandError extends Error {
  constructor(
    readonly kind: 'NotFound' | 'SpawnFailed' | 'Failed' | 'TimedOut' | 'Cancelled',
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly errno: string | null = null,
  ) {
    const detail = stderr.trim() ? `: ${stderr.trim()}` : ''
    super(
      kind === 'NotFound'
        ? `${command.split(' ')[0]} is not installed (Debian package: ostree, flatpak or gnupg)`
        : kind === 'SpawnFailed'
          ? `Command ${command} could not be started (${errno ?? 'unknown error'})`
          : kind === 'TimedOut'
          ? `Command ${command} timed out${detail}`
          : kind === 'Cancelled'
            ? `Command ${command} was cancelled`
            : `Command ${command} exited unsuccessfully (${exitCode})${detail}`,
    )
  }
}

export type RunOptions = {
  cwd?: string
  env?: Record<string, string>
  timeoutMs?: number
  signal?: AbortSignal
  /** Each line of stdout and stderr as it is printed. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void
  /** 'buffer' keeps stdout as bytes (binary output such as exported keys). */
  encoding?: 'utf8' | 'buffer'
  /**
   * false: output goes only to `onLine` (a verbose command's hundred thousand lines are not kept);
   * the result's stdout is empty and a failure's message quotes stderr's last lines.
   */
  buffer?: boolean
}

/** Splits a stream's bytes into lines as they arrive, a chunk at a time. */
function lineSplitter(emit: (line: string) => void) {
  const decoder = new StringDecoder('utf8')
  let rest = ''
  return {
    write(bytes: Buffer) {
      const lines = (rest + decoder.write(bytes)).split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) emit(line)
    },
    end() {
      rest += decoder.end()
      if (rest) emit(rest)
      rest = ''
    },
  }
}

let spawner: Spawner | null = null

/**
 * From now on commands start in a small helper process (see Spawner): for long-lived server and
 * worker processes, whose own forks would stall their event loop. Returns how to stop it.
 */
export function useSpawner(): () => void {
  const mine = (spawner ??= new Spawner())
  mine.warm()
  return () => {
    if (spawner !== mine) return
    spawner = null
    mine.stop()
  }
}

/** The one place external commands run: stdin closed, output captured, a timeout, cancellable. */
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const command = [file, ...args].join(' ')
  let stderrTail: string[] = []
  const onLine = options.onLine
  const emit = (line: string, stream: 'stdout' | 'stderr') => {
    if (stream === 'stderr' && options.buffer === false) stderrTail = [...stderrTail.slice(-19), line]
    onLine?.(line.endsWith('\r') ? line.slice(0, -1) : line, stream)
  }
  if (spawner) return runInHelper(spawner, file, args, options, command, emit, () => stderrTail)
  try {
    const child = execa(file, args, {
      cwd: options.cwd,
      env: options.env,
      stdin: 'ignore',
      timeout: options.timeoutMs ?? 10 * 60_000,
      cancelSignal: options.signal,
      stripFinalNewline: options.encoding !== 'buffer',
      encoding: options.encoding === 'buffer' ? 'buffer' : 'utf8',
      buffer: options.buffer ?? true,
    })
    if (onLine) {
      // Split as the output arrives, a chunk at a time (execa's line iterator costs an await per
      // line: a walk of 5,000 objects took 15% longer through it).
      const collect = (stream: 'stdout' | 'stderr') =>
        new Promise<void>((resolve) => {
          const source = child[stream]
          if (!source) return resolve()
          const lines = lineSplitter((line) => emit(line, stream))
          source.on('data', (bytes: Buffer) => lines.write(bytes))
          source.once('close', () => {
            lines.end()
            resolve()
          })
        })
      await Promise.all([collect('stdout'), collect('stderr'), child])
    }
    const result = await child
    if (options.buffer === false) return { stdout: '', stderr: stderrTail.join('\n') }
    const stdout = options.encoding === 'buffer' ? (Buffer.from(result.stdout as unknown as Uint8Array) as unknown as string) : String(result.stdout)
    return { stdout, stderr: String(result.stderr) }
  } catch (error) {
    if (error instanceof ExecaError) {
      const { code } = error as { code?: string }
      // No exit code, not killed by us: the process never ran (spawn failed).
      const neverRan = typeof code === 'string' && error.exitCode === undefined && !error.timedOut && !error.isCanceled && !error.signal
      throw commandError(command, {
        errno: neverRan || code === 'ENOENT' ? code! : null,
        why: error.timedOut ? 'timedOut' : error.isCanceled ? 'cancelled' : null,
        exitCode: error.exitCode ?? null,
        stderr: options.buffer === false ? stderrTail.join('\n') : String(error.stderr ?? ''),
      })
    }
    throw error
  }
}

/** What a failed command means, however it was started. */
function commandError(command: string, failure: { errno: string | null; why: 'timedOut' | 'cancelled' | null; exitCode: number | null; stderr: string }): CommandError {
  if (failure.errno === 'ENOENT') return new CommandError('NotFound', command, null, '')
  if (failure.errno) return new CommandError('SpawnFailed', command, null, '', failure.errno)
  const kind = failure.why === 'timedOut' ? 'TimedOut' : failure.why === 'cancelled' ? 'Cancelled' : 'Failed'
  return new CommandError(kind, command, failure.exitCode, failure.stderr)
}

/** run() through the helper: the same options, output and errors as through execa. */
async function runInHelper(
  helper: Spawner,
  file: string,
  args: readonly string[],
  options: RunOptions,
  command: string,
  emit: (line: string, stream: 'stdout' | 'stderr') => void,
  stderrTail: () => string[],
): Promise<{ stdout: string; stderr: string }> {
  if (options.signal?.aborted) throw new CommandError('Cancelled', command, null, '')
  const keep = options.buffer ?? true
  const kept = { stdout: [] as Buffer[], stderr: [] as Buffer[] }
  const lines = options.onLine ? { stdout: lineSplitter((line) => emit(line, 'stdout')), stderr: lineSplitter((line) => emit(line, 'stderr')) } : null
  const exit = await helper.run(
    { file, args, cwd: options.cwd ?? process.cwd(), env: { ...process.env, ...options.env }, timeoutMs: options.timeoutMs ?? 10 * 60_000 },
    (stream, bytes) => {
      if (keep) kept[stream].push(bytes)
      lines?.[stream].write(bytes)
    },
    options.signal,
  )
  lines?.stdout.end()
  lines?.stderr.end()
  // As execa gives them: text without its final newline, or the bytes as they came.
  const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  const stderr = keep ? text(kept.stderr) : stderrTail().join('\n')
  if (exit.errno !== undefined) throw commandError(command, { errno: exit.errno, why: null, exitCode: null, stderr: '' })
  if (exit.why || exit.code !== 0) throw commandError(command, { errno: null, why: exit.why, exitCode: exit.code, stderr })
  if (!keep) return { stdout: '', stderr }
  const stdout = options.encoding === 'buffer' ? (Buffer.concat(kept.stdout) as unknown as string) : text(kept.stdout)
  return { stdout, stderr }
}

/**
 * One long-lived `sh` runs `sync --file-system` for us. Forking this (large, multi-threaded) Node
 * process costs ~10 ms of the event loop per command; the small shell forks cheaply.
 */
class SyncHelper {
  #child: ReturnType<typeof execa> | null = null
  readonly #waiting: { resolve: () => void; reject: (error: Error) => void; path: string }[] = []

  sync(path: string): Promise<void> {
    if (/[\n\r]/.test(path)) return Promise.reject(new Error(`cannot sync a path with a line break: ${JSON.stringify(path)}`))
    const child = this.#start()
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject, path })
      child.stdin!.write(`${path}\n`)
    })
  }

  #start(): ReturnType<typeof execa> {
    if (this.#child) return this.#child
    const child = execa('sh', ['-c', 'while IFS= read -r dir; do if sync --file-system "$dir" 2>/dev/null; then echo 0; else echo 1; fi; done'], {
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'ignore',
      buffer: false,
    })
    this.#child = child
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      const waiter = this.#waiting.shift()
      if (line === '0') waiter?.resolve()
      else waiter?.reject(new CommandError('Failed', `sync --file-system ${waiter.path}`, 1, ''))
    })
    const failAll = (error: Error) => {
      if (this.#child === child) this.#child = null
      for (const waiter of this.#waiting.splice(0)) waiter.reject(error)
    }
    // One handler for both outcomes: a bare .then() would leave its rejection unhandled.
    child.then(
      () => failAll(new Error('the sync helper exited')),
      (error: unknown) => failAll(error instanceof Error ? error : new Error(String(error))),
    )
    // It must not keep a process alive that is otherwise done.
    child.unref()
    ;(child.stdin as unknown as { unref?: () => void }).unref?.()
    ;(child.stdout as unknown as { unref?: () => void }).unref?.()
    return child
  }
}

const syncHelper = new SyncHelper()
const syncs = new GroupCommit<string, null>((path) => syncHelper.sync(path))

/**
 * syncfs(2) of the file system holding `path` (coreutils `sync --file-system`): one call makes
 * every file written there durable, as ostree does for a transaction, instead of an fsync per file.
 * Callers at the same time share one sync that starts after their call (group commit).
 */
export function syncFileSystem(path: string): Promise<void> {
  return syncs.add(path, null)
}
