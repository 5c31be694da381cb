import { existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { appendFile, mkdir, readdir, rename, rm, stat, symlink } from 'node:fs/promises'
import pMap from 'p-map'
import path from 'node:path'
import type { RepoConfig } from '../config/config.ts'
import { run } from '../process/run.ts'
import { processTag, tagGone } from '../util/processes.ts'

export const buildDir = (base: string, buildId: number) => path.join(base, String(buildId))
export const uploadDir = (base: string, buildId: number) => path.join(buildDir(base, buildId), 'upload')

/**
 * The build repo `<base>/<id>` (what commit writes and /build-repo serves) and its upload repo
 * `<base>/<id>/upload` (what uploads fill), both archive-mode, with the main repo as `core.parent`
 * so objects a client skipped because the main repo has them are found (flat-manager's layout).
 * Idempotent and safe to call concurrently: in this process calls for one build share one run,
 * and each piece is made under a temporary name and renamed into place, so another process (or a
 * crash half-way) never sees, nor removes, a half-made repo.
 */
export function ensureBuildRepos(base: string, buildId: number, main: Pick<RepoConfig, 'path' | 'collection-id'>): Promise<void> {
  const upload = uploadDir(base, buildId)
  if (buildReposReady(base, buildId)) return Promise.resolve()
  let running = ensuring.get(upload)
  if (!running) {
    running = makeBuildRepos(base, buildId, main).finally(() => ensuring.delete(upload))
    ensuring.set(upload, running)
  }
  return running
}

const ensuring = new Map<string, Promise<void>>()

/** Whether a build's repos are complete (the marker is written last). */
export const buildReposReady = (base: string, buildId: number) => existsSync(path.join(uploadDir(base, buildId), '.flatdepot-ready'))

async function makeBuildRepos(base: string, buildId: number, main: Pick<RepoConfig, 'path' | 'collection-id'>): Promise<void> {
  const build = buildDir(base, buildId)
  const upload = uploadDir(base, buildId)
  await mkdir(base, { recursive: true })
  const initRepo = async (target: string, collectionId: string | null, extra: (temp: string) => Promise<void>) => {
    if (existsSync(path.join(target, 'config'))) return
    const temp = `${target}.tmp-${processTag}-${randomBytes(4).toString('hex')}`
    try {
      const args = [`--repo=${temp}`, 'init', '--mode=archive-z2']
      if (collectionId) args.push(`--collection-id=${collectionId}`)
      await run('ostree', args, { timeoutMs: 60_000 })
      // core.parent: a key of [core], which `ostree init` wrote last.
      await appendFile(path.join(temp, 'config'), `parent=${main.path}\nmin-free-space-size=500MB\n`)
      await extra(temp)
      await rename(temp, target)
    } catch (error) {
      await rm(temp, { recursive: true, force: true })
      // Another process made it first: theirs is as good as ours.
      if (existsSync(path.join(target, 'config'))) return
      throw error
    }
  }
  await initRepo(build, main['collection-id'] ? `${main['collection-id']}.Build${buildId}` : null, (temp) => symlink(main.path, path.join(temp, 'parent')))
  await initRepo(upload, null, async () => {})
  await appendFile(path.join(upload, '.flatdepot-ready'), '')
}

/** A scratch archive repo whose objects fall back to `parent` (flat-manager's republish repos). */
export async function initRepoWithParent(target: string, parent: string): Promise<void> {
  await run('ostree', [`--repo=${target}`, 'init', '--mode=archive-z2'], { timeoutMs: 60_000 })
  await appendFile(path.join(target, 'config'), `parent=${parent}\n`)
}

/**
 * Removes a build's tree without holding up what runs next: it leaves its path at once (renamed
 * into `<base>/.trash/`) and a low-priority `rm` deletes its thousands of files, off the server's
 * thread pool and behind the jobs' own ostree and flatpak processes for CPU and disk.
 */
export async function discardTree(base: string, dir: string): Promise<void> {
  const trash = path.join(base, '.trash')
  await mkdir(trash, { recursive: true })
  const aside = path.join(trash, `${path.basename(dir)}.tmp-${processTag}-${randomBytes(4).toString('hex')}`)
  try {
    await rename(dir, aside)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw error
  }
  await run('nice', ['-n', '19', 'ionice', '-c', '3', 'rm', '-rf', '--', aside], { timeoutMs: 60 * 60_000 }).catch(() => rm(aside, { recursive: true, force: true }))
}

/** The temp names flatdepot gives what it writes in the build area: `<name>.tmp-<process tag>-<random>`. */
// The process tag (host, pid, start time) is unique across processes and restarts: no random draw per object.
export const uploadTempName = (n: number) => `flatdepot-upload.tmp-${processTag}-${n}`
const tempPattern = /\.tmp-([0-9a-f]{8}\.\d+\.\d+)-/
/** A temp of a process on another machine (shared storage) is left alone this long after its last write. */
export const orphanAgeMs = 60 * 60_000

/**
 * Removes what processes that died left in the build area: half-received upload objects
 * (`<id>/upload/tmp/flatdepot-upload.tmp-…`), half-made build repos (`<id>.tmp-…`,
 * `<id>/upload.tmp-…`) and half-deleted trees (`.trash/…`). A temp is an orphan when the process
 * its name carries is gone (this machine), or it has not been written for an hour (any machine).
 * Returns how many it removed.
 */
export async function sweepBuildArea(base: string, now = Date.now()): Promise<number> {
  const list = (dir: string) => readdir(dir).catch(() => [] as string[])
  const candidates: string[] = []
  const top = await list(base)
  for (const name of top) if (tempPattern.test(name)) candidates.push(path.join(base, name))
  for (const name of await list(path.join(base, '.trash'))) candidates.push(path.join(base, '.trash', name))
  await pMap(
    top.filter((name) => /^\d+$/.test(name)),
    async (id) => {
      for (const name of await list(path.join(base, id))) if (tempPattern.test(name)) candidates.push(path.join(base, id, name))
      const tmp = path.join(base, id, 'upload', 'tmp')
      for (const name of await list(tmp)) if (name.startsWith('flatdepot-upload')) candidates.push(path.join(tmp, name))
    },
    { concurrency: 16 },
  )
  let removed = 0
  await pMap(
    candidates,
    async (file) => {
      const tag = tempPattern.exec(path.basename(file))?.[1]
      if (tag === processTag) return
      const gone = tag ? tagGone(tag) : false
      if (!gone) {
        const info = await stat(file).catch(() => null)
        if (!info || now - info.mtimeMs < orphanAgeMs) return
      }
      await rm(file, { recursive: true, force: true })
      removed++
    },
    { concurrency: 16 },
  )
  return removed
}
