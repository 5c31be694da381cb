import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { listRefs, revParse } from './flatpak.ts'
import { run } from '../process/run.ts'

/** An object of a local archive repo, named as flat-manager's upload API names it. */
export type LocalObject = { name: string; file: string }

/** The objects a push sends live in an archive repo (flatpak-builder's default), as `.filez`. */
export async function assertArchiveRepo(repo: string): Promise<void> {
  let config: string
  try {
    config = await readFile(path.join(repo, 'config'), 'utf8')
  } catch {
    throw new Error(`${repo} is not an OSTree repository (no ${path.join(repo, 'config')})`)
  }
  const mode = /^\s*mode\s*=\s*(\S+)/m.exec(config)?.[1] ?? 'bare'
  if (mode !== 'archive-z2' && mode !== 'archive') {
    throw new Error(`${repo} is a "${mode}" repository; push needs an archive one (flatpak build-export and flatpak-builder --repo make those)`)
  }
}

/** The repo's refs that flatpak installs (app/, runtime/, screenshots/), for a push without refs. */
export async function flatpakRefs(repo: string): Promise<string[]> {
  return (await listRefs(repo)).map((ref) => ref.trim()).filter((ref) => /^(app|runtime|screenshots)\//.test(ref)).sort()
}

/** A ref's commit checksum: a local ref read from its file, anything else through `ostree rev-parse`. */
export const resolveRef = revParse

/**
 * Every object reachable from `commit`: the commit, each dirtree and dirmeta, each file. ostree
 * walks the tree (`ls -R -C` prints each entry's checksums) so no GVariant parsing happens here;
 * names are collected into `into` so refs sharing content are counted once, and each new one is
 * told to `onObject` as ostree prints it (a push asks the server about the first thousands while
 * the walk goes on).
 */
export async function reachableObjects(repo: string, commit: string, into: Map<string, LocalObject>, onObject?: (object: LocalObject) => void): Promise<void> {
  const add = (checksum: string, kind: string) => {
    const name = `${checksum}.${kind}`
    if (into.has(name)) return
    const object = { name, file: path.join(repo, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.${kind}`) }
    into.set(name, object)
    onObject?.(object)
  }
  add(commit, 'commit')
  const malformed: string[] = []
  const isChecksum = (value: string | undefined): value is string => value !== undefined && /^[0-9a-f]{64}$/.test(value)
  // Each line: "<type+mode> <uid> <gid> <size> <checksum> [<meta checksum>] <path>"; dirs carry
  // their dirtree and dirmeta checksums, files and symlinks their content checksum.
  const onLine = (line: string, stream: 'stdout' | 'stderr') => {
    if (stream !== 'stdout' || line === '') return
    const [type, , , , first, second] = line.trim().split(/\s+/)
    if (type?.startsWith('d') && isChecksum(first) && isChecksum(second)) {
      add(first, 'dirtree')
      add(second, 'dirmeta')
    } else if (isChecksum(first)) {
      add(first, 'filez')
    } else {
      malformed.push(line)
    }
  }
  await run('ostree', ['ls', `--repo=${repo}`, '-R', '-C', commit], { timeoutMs: 30 * 60_000, onLine, buffer: false })
  if (malformed.length) throw new Error(`could not read ostree ls output for ${commit}: ${malformed[0]}`)
}
