import { mkdir, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises'
import path from 'node:path'
import { deltaName, parseDeltaName, type Delta } from '../domain/repo/deltas.ts'
import { writeFileAtomically } from './descriptors.ts'
import { run, type RunOptions } from './run.ts'

/** A ref's commit and the ancestors the repo holds, newest first, at most `max`. */
export async function refHistory(repo: string, ref: string, max: number): Promise<string[]> {
  const { stdout } = await run('ostree', [`--repo=${repo}`, 'log', ref], { timeoutMs: 5 * 60_000 })
  const commits: string[] = []
  for (const match of stdout.matchAll(/^commit ([0-9a-f]{64})$/gm)) {
    commits.push(match[1]!)
    if (commits.length >= max) break
  }
  return commits
}

/** The static deltas `deltas/` holds, as ostree lists them. */
export async function listDeltas(repo: string): Promise<Delta[]> {
  const { stdout } = await run('ostree', [`--repo=${repo}`, 'static-delta', 'list'], { timeoutMs: 5 * 60_000 })
  return stdout.split('\n').flatMap((line) => {
    const delta = parseDeltaName(line.trim())
    return delta ? [delta] : []
  })
}

/** One delta, as flat-manager's generator makes it (`build-update-repo` leaves the summary alone here). */
export async function generateDelta(repo: string, delta: Delta, options: Pick<RunOptions, 'onLine' | 'signal'>): Promise<void> {
  const args = ['build-update-repo', `--generate-static-delta-to=${delta.to}`]
  if (delta.from) args.push(`--generate-static-delta-from=${delta.from}`)
  args.push(repo)
  await run('flatpak', args, { timeoutMs: 60 * 60_000, ...options })
}

/** OSTree's modified base64 of a checksum: no padding, `_` for `/`. */
const modifiedBase64 = (checksum: string) => Buffer.from(checksum, 'hex').toString('base64').replace(/=+$/, '').replaceAll('/', '_')

/** `deltas/<2>/<rest>` of a delta, relative to the repo. */
export function deltaRelativeDir(delta: Delta): string {
  const name = delta.from ? `${modifiedBase64(delta.from)}-${modifiedBase64(delta.to)}` : modifiedBase64(delta.to)
  return path.join('deltas', name.slice(0, 2), name.slice(2))
}

/** Where retired deltas wait (still served) until they are removed for good. */
export const retiredDeltasDir = (repo: string) => path.join(repo, 'deltas', '.tmp')

/**
 * Moves a delta out of `deltas/` so the next summary does not list it, into `deltas/.tmp/` where
 * the server still finds it for clients holding the previous summary (flat-manager's grace hour).
 */
export async function retireDelta(repo: string, delta: Delta): Promise<void> {
  const relative = deltaRelativeDir(delta)
  const target = path.join(retiredDeltasDir(repo), path.relative('deltas', relative))
  const source = path.join(repo, relative)
  // Retired by an earlier run (one that stopped before its summary): the copy aside stays served.
  if (!(await stat(source).catch(() => null))) return
  await mkdir(path.dirname(target), { recursive: true })
  await rm(target, { recursive: true, force: true })
  await rename(source, target)
  const now = new Date()
  await utimes(target, now, now)
}

/** Removes retired deltas older than `maxAgeMs`; returns their names (directory names, as ostree stores them). */
export async function removeRetiredDeltas(repo: string, maxAgeMs: number, now = Date.now()): Promise<string[]> {
  const root = retiredDeltasDir(repo)
  const removed: string[] = []
  const prefixes = await readdir(root).catch(() => [])
  for (const prefix of prefixes) {
    for (const rest of await readdir(path.join(root, prefix)).catch(() => [])) {
      const dir = path.join(root, prefix, rest)
      const info = await stat(dir).catch(() => null)
      if (info && now - info.mtimeMs > maxAgeMs) {
        await rm(dir, { recursive: true, force: true })
        removed.push(`${prefix}${rest}`)
      }
    }
  }
  return removed
}

const retireListFile = (repo: string) => path.join(repo, '.flatdepot', 'retire-deltas.json')

/** The deltas the last planning found unwanted, for the next repo update to retire. */
export async function writeRetireList(repo: string, deltas: readonly Delta[]): Promise<void> {
  const file = retireListFile(repo)
  if (deltas.length === 0) return rm(file, { force: true })
  await mkdir(path.dirname(file), { recursive: true })
  await writeFileAtomically(file, JSON.stringify(deltas.map(deltaName)))
}

/**
 * The deltas to retire now; `done` clears the list unless a delta job wrote a new one meanwhile
 * (then the next update retires those).
 */
export async function readRetireList(repo: string): Promise<{ deltas: Delta[]; done: () => Promise<void> }> {
  const file = retireListFile(repo)
  const text = await readFile(file, 'utf8').catch(() => null)
  if (text === null) return { deltas: [], done: async () => {} }
  const names = JSON.parse(text) as string[]
  const deltas = names.flatMap((name) => {
    const delta = parseDeltaName(name)
    return delta ? [delta] : []
  })
  return {
    deltas,
    done: async () => {
      if ((await readFile(file, 'utf8').catch(() => null)) === text) await rm(file, { force: true })
    },
  }
}
