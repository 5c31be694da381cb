import { statSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { run, type RunOptions } from '../process/run.ts'

/**
 * Holds keep commits through a prune that no ref of the repo reaches: a build in progress that
 * borrows objects from the repo (its repos have it as `core.parent`), a rollback's commits. They
 * are refs under the remote name `flatdepot-hold`, which `ostree prune` follows like any ref and
 * summaries leave out (they list local refs only), so a hold a crash leaves behind is never
 * published; the next prune clears it.
 */
const holdRemote = 'flatdepot-hold'

type Output = Pick<RunOptions, 'onLine' | 'signal'>

export async function listHolds(repo: string): Promise<string[]> {
  const { stdout } = await run('ostree', [`--repo=${repo}`, 'refs', `${holdRemote}:`], { timeoutMs: 60_000 })
  return stdout.split('\n').map((line) => line.trim()).filter((line) => line.startsWith(`${holdRemote}:`))
}

export async function clearHolds(repo: string): Promise<number> {
  const holds = await listHolds(repo)
  for (const hold of holds) await run('ostree', [`--repo=${repo}`, 'refs', '--delete', hold], { timeoutMs: 60_000 })
  return holds.length
}

/** Holds `commit`, which must be in the repo, under `name` (letters, digits, "-", "/"). */
export async function holdCommit(repo: string, name: string, commit: string): Promise<void> {
  await run('ostree', [`--repo=${repo}`, 'refs', `--create=${holdRemote}:${name}`, commit], { timeoutMs: 60_000 })
}

/** Whether the repo holds a commit object (a pruned one is gone). */
export async function hasCommit(repo: string, commit: string): Promise<boolean> {
  return stat(objectPath(repo, commit, 'commit')).then(() => true, () => false)
}

/** Copies commits (and whatever they reach that `dest` lacks) from another repo on this machine. */
export async function pullLocal(dest: string, src: string, commits: readonly string[], options: Output = {}): Promise<void> {
  await run('ostree', [`--repo=${dest}`, 'pull-local', src, ...commits], { timeoutMs: 60 * 60_000, ...options })
}

/** The commits a repo's own refs point at (a build repo's or an upload repo's). */
export async function refCommits(repo: string): Promise<string[]> {
  const { stdout } = await run('ostree', [`--repo=${repo}`, 'refs'], { timeoutMs: 60_000 })
  const refs = stdout.split('\n').map((line) => line.trim()).filter((line) => line && !line.includes(':'))
  return Promise.all(refs.map(async (ref) => (await run('ostree', [`--repo=${repo}`, 'rev-parse', ref], { timeoutMs: 60_000 })).stdout.trim()))
}

const objectPath = (repo: string, checksum: string, type: string) =>
  path.join(repo, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.${type === 'file' ? 'filez' : type}`)

export type PruneOptions = Readonly<{ depth: number; keepYoungerThanDays: number | null; now?: number }>
export type PruneCount = { objects: number; bytes: number }

function pruneArgs(repo: string, options: PruneOptions): string[] {
  const args = [`--repo=${repo}`, 'prune', '--refs-only', `--depth=${options.depth}`]
  if (options.keepYoungerThanDays !== null) {
    // ostree reads the date with gnulib's parse-datetime: "@<seconds>" is an exact instant.
    const cutoff = Math.floor((options.now ?? Date.now()) / 1000) - options.keepYoungerThanDays * 86_400
    args.push(`--keep-younger-than=@${cutoff}`)
  }
  return args
}

/**
 * What a prune with these options would delete, counted exactly: ostree names each object it
 * would prune (`-v`), and its size on disk is added as the names stream by (none are kept; a
 * stat is microseconds, so it is done in line rather than queued).
 */
export async function pruneDryRun(repo: string, options: PruneOptions, output: Output = {}): Promise<PruneCount> {
  const count: PruneCount = { objects: 0, bytes: 0 }
  const sizeOf = (file: string) => statSync(file, { throwIfNoEntry: false })?.size ?? 0
  const onLine: RunOptions['onLine'] = (line, stream) => {
    const match = /^OT: Pruning unneeded object ([0-9a-f]{64})\.(\w+)$/.exec(line)
    if (!match) {
      if (!line.startsWith('OT:')) output.onLine?.(line, stream)
      return
    }
    const [, checksum, type] = match as unknown as [string, string, string]
    count.objects += 1
    count.bytes += sizeOf(objectPath(repo, checksum, type)) + (type === 'commit' ? sizeOf(objectPath(repo, checksum, 'commitmeta')) : 0)
  }
  await run('ostree', [...pruneArgs(repo, options), '--no-prune', '-v'], { timeoutMs: 60 * 60_000, onLine, signal: output.signal, buffer: false })
  return count
}

/** The prune itself; returns the number of objects ostree says it deleted. */
export async function prune(repo: string, options: PruneOptions, output: Output = {}): Promise<number> {
  const { stdout } = await run('ostree', pruneArgs(repo, options), { timeoutMs: 60 * 60_000, ...output })
  const deleted = /Deleted (\d+) objects/.exec(stdout)
  return deleted ? Number(deleted[1]) : 0
}
