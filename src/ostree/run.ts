import { execa, ExecaError } from 'execa'
import { GroupCommit } from '../util/groupCommit.ts'

/** A failed ostree/flatpak/gpg command, with what a person needs to see why. */
export class CommandError extends Error {
  constructor(
    readonly kind: 'NotFound' | 'Failed' | 'TimedOut' | 'Cancelled',
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    const detail = stderr.trim() ? `: ${stderr.trim()}` : ''
    super(
      kind === 'NotFound'
        ? `${command.split(' ')[0]} is not installed (Debian package: ostree, flatpak or gnupg)`
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
}

/** The one place external commands run: stdin closed, output captured, a timeout, cancellable. */
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const command = [file, ...args].join(' ')
  try {
    const child = execa(file, args, {
      cwd: options.cwd,
      env: options.env,
      stdin: 'ignore',
      timeout: options.timeoutMs ?? 10 * 60_000,
      cancelSignal: options.signal,
      stripFinalNewline: options.encoding !== 'buffer',
      encoding: options.encoding === 'buffer' ? 'buffer' : 'utf8',
    })
    if (options.onLine) {
      const onLine = options.onLine
      const collect = async (stream: 'stdout' | 'stderr') => {
        for await (const line of child.iterable({ from: stream })) onLine(String(line), stream)
      }
      await Promise.all([collect('stdout'), collect('stderr'), child])
    }
    const result = await child
    const stdout = options.encoding === 'buffer' ? (Buffer.from(result.stdout as unknown as Uint8Array) as unknown as string) : String(result.stdout)
    return { stdout, stderr: String(result.stderr) }
  } catch (error) {
    if (error instanceof ExecaError) {
      if ((error as { code?: string }).code === 'ENOENT') throw new CommandError('NotFound', command, null, '')
      const kind = error.timedOut ? 'TimedOut' : error.isCanceled ? 'Cancelled' : 'Failed'
      throw new CommandError(kind, command, error.exitCode ?? null, String(error.stderr ?? ''))
    }
    throw error
  }
}

const syncs = new GroupCommit<string, null>(async (path) => {
  await run('sync', ['--file-system', path], { timeoutMs: 10 * 60_000 })
})

/**
 * syncfs(2) of the file system holding `path` (coreutils `sync --file-system`): one call makes
 * every file written there durable, as ostree does for a transaction, instead of an fsync per file.
 * Callers at the same time share one sync that starts after their call (group commit).
 */
export function syncFileSystem(path: string): Promise<void> {
  return syncs.add(path, null)
}
