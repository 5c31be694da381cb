import { mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises'
import path from 'node:path'
import type { Delta } from '../domain/repo/deltas.ts'

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
