import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { run } from './run.ts'

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
  const { stdout } = await run('ostree', ['refs', `--repo=${repo}`])
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((ref) => /^(app|runtime|screenshots)\//.test(ref))
    .sort()
}

/** A ref's commit checksum (`ostree rev-parse`: local refs, remote refs and checksums alike). */
export async function resolveRef(repo: string, ref: string): Promise<string> {
  const { stdout } = await run('ostree', ['rev-parse', `--repo=${repo}`, ref])
  return stdout.trim()
}

/**
 * Every object reachable from `commit`: the commit, each dirtree and dirmeta, each file. ostree
 * walks the tree (`ls -R -C` prints each entry's checksums) so no GVariant parsing happens here;
 * names are collected into `into` so refs sharing content are counted once.
 */
export async function reachableObjects(repo: string, commit: string, into: Map<string, LocalObject>): Promise<void> {
  const add = (checksum: string, kind: string) => {
    const name = `${checksum}.${kind}`
    if (!into.has(name)) into.set(name, { name, file: path.join(repo, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.${kind}`) })
  }
  add(commit, 'commit')
  const malformed: string[] = []
  // Each line: "<type+mode> <uid> <gid> <size> <checksum> [<meta checksum>] <path>"; dirs carry
  // their dirtree and dirmeta checksums, files and symlinks their content checksum.
  await run('ostree', ['ls', `--repo=${repo}`, '-R', '-C', commit], {
    onLine(line, stream) {
      if (stream !== 'stdout' || line === '') return
      const fields = line.trim().split(/\s+/)
      const [type, , , , first, second] = fields
      const isChecksum = (value: string | undefined): value is string => value !== undefined && /^[0-9a-f]{64}$/.test(value)
      if (type?.startsWith('d') && isChecksum(first) && isChecksum(second)) {
        add(first, 'dirtree')
        add(second, 'dirmeta')
      } else if (isChecksum(first)) {
        add(first, 'filez')
      } else {
        malformed.push(line)
      }
    },
    timeoutMs: 30 * 60_000,
  })
  if (malformed.length) throw new Error(`could not read ostree ls output for ${commit}: ${malformed[0]}`)
}
