import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { appendFile, copyFile, link, lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, symlink, unlink } from 'node:fs/promises'
import path from 'node:path'
import { currentSummaryDir, syncPath } from './summary.ts'

/**
 * A copy of a repo that downstream mirrors can rsync, and a CDN can serve, at any moment:
 *
 *   objects/ deltas/ summaries/   content-addressed, hard links to the repo's files; only added,
 *                                 and removed a grace period after they left the repo
 *   ~sets/<generation>/           what changes together: summary, summary.sig, summary.idx(.sig),
 *                                 delta-indexes/, refs/, config, .flatpakrepo files, appstream/
 *   current -> ~sets/<generation> switched by rename once the new set and every object it names
 *                                 are in place
 *   summary -> current/summary    (and each file of the set): fixed symlinks through `current`
 *
 * A single `rsync -a --delete` pass reads `current` at the top before it lists `~sets/`,
 * `objects/` and `deltas/` (`~` sorts last): the copy's summary and signature come from one
 * set, and every object that set names was already there. Old sets stay for the grace period.
 * Files being written, and the lists of what is to be removed, live beside the export
 * (`.<name>.flatdepot/`, same file system) so an rsync never sees a file appear half-made or
 * vanish, short of what the grace period removes.
 */
const workDir = (target: string) => path.join(path.dirname(target), `.${path.basename(target)}.flatdepot`)
const tempDir = (target: string) => path.join(workDir(target), 'tmp')
const removalsDir = (target: string) => path.join(workDir(target), 'removals')
const tempName = (target: string) => path.join(tempDir(target), randomBytes(8).toString('hex'))
const setsDir = '~sets'
const contentDirs = ['objects', 'deltas', 'summaries'] as const

export type ExportReport = { generation: string; linked: number; removed: number }

async function* filesUnder(root: string, relative = ''): AsyncGenerator<string> {
  let entries: import('node:fs').Dirent[]
  try {
    entries = await readdir(path.join(root, relative), { withFileTypes: true })
  } catch {
    return
  }
  // Delta parts before their superblock: a delta is whole before anything points at it.
  entries.sort((a, b) => Number(a.name === 'superblock') - Number(b.name === 'superblock') || a.name.localeCompare(b.name))
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue // retired deltas (.tmp), ostree's working files
    const child = relative ? `${relative}/${entry.name}` : entry.name
    if (entry.isDirectory()) yield* filesUnder(root, child)
    else if (entry.isFile()) yield child
  }
}

/** A hard link when the repo and the export share a file system, else a copy (written aside, renamed in). */
async function place(source: string, target: string, temp: string): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true })
  try {
    await link(source, temp)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error
    await copyFile(source, temp)
  }
  await rename(temp, target)
}

const sameFile = async (a: string, b: string) => {
  const [left, right] = await Promise.all([stat(a), stat(b).catch(() => null)])
  return right !== null && left.ino === right.ino && left.dev === right.dev
}

async function copyTree(source: string, target: string, skip: (relative: string) => boolean = () => false): Promise<void> {
  for await (const relative of filesUnder(source)) {
    if (skip(relative)) continue
    await mkdir(path.dirname(path.join(target, relative)), { recursive: true })
    await copyFile(path.join(source, relative), path.join(target, relative))
  }
}

async function replaceSymlink(linkPath: string, target: string, temp: string): Promise<void> {
  const current = await readlink(linkPath).catch(() => null)
  if (current === target) return
  await symlink(target, temp)
  await rename(temp, linkPath)
}

/** One export run: new content in, a new set, `current` switched, what is past its grace removed. */
export async function exportRepo(repo: string, target: string, graceMs: number, now = Date.now()): Promise<ExportReport> {
  await mkdir(path.join(target, setsDir), { recursive: true })
  await rm(tempDir(target), { recursive: true, force: true }) // what an interrupted run left
  await mkdir(tempDir(target), { recursive: true })
  await mkdir(removalsDir(target), { recursive: true })

  // 1. Content first: whatever the new set can name is in place before the set is.
  let linked = 0
  for (const dir of contentDirs) {
    for await (const relative of filesUnder(path.join(repo, dir))) {
      const source = path.join(repo, dir, relative)
      const destination = path.join(target, dir, relative)
      if (dir === 'deltas' ? await sameFile(source, destination) : existsSync(destination)) continue
      await place(source, destination, tempName(target))
      linked += 1
    }
  }

  // 2. The set, complete, under a new generation.
  const generation = `${now}-${randomBytes(3).toString('hex')}`
  // Made aside and renamed in whole: no half-made set is ever listed.
  const set = tempName(target)
  await mkdir(set)
  const summaries = await currentSummaryDir(repo)
  const names: string[] = []
  for (const name of ['summary', 'summary.sig', 'summary.idx', 'summary.idx.sig']) {
    if (existsSync(path.join(summaries, name))) {
      await copyFile(path.join(summaries, name), path.join(set, name))
      names.push(name)
    }
  }
  await copyFile(path.join(repo, 'config'), path.join(set, 'config'))
  names.push('config')
  for (const entry of await readdir(repo)) {
    if (entry.endsWith('.flatpakrepo')) {
      await copyFile(path.join(repo, entry), path.join(set, entry))
      names.push(entry)
    }
  }
  for (const [dir, skip] of [
    ['delta-indexes', () => false],
    ['appstream', () => false],
    // Local refs only: remote refs (a prune's holds) are not the repo's.
    ['refs', (relative: string) => !relative.startsWith('heads/')],
  ] as const) {
    if (!existsSync(path.join(repo, dir))) continue
    await copyTree(path.join(repo, dir), path.join(set, dir), skip)
    names.push(dir)
  }
  await syncPath(set)
  await rename(set, path.join(target, setsDir, generation))

  // 3. Switch, then point each name of the set through `current`.
  const previous = await readlink(path.join(target, 'current')).catch(() => null)
  await replaceSymlink(path.join(target, 'current'), `${setsDir}/${generation}`, tempName(target))
  for (const name of names) await replaceSymlink(path.join(target, name), `current/${name}`, tempName(target))
  for (const entry of await readdir(target)) {
    // A name the new set no longer has (a subset's .flatpakrepo that went away).
    const info = await lstat(path.join(target, entry))
    if (info.isSymbolicLink() && entry !== 'current' && !names.includes(entry)) await unlink(path.join(target, entry))
  }
  await syncPath(target)

  // 4. Past the grace period: old sets, and content that left the repo.
  for (const entry of await readdir(path.join(target, setsDir))) {
    const madeAt = Number(entry.split('-')[0])
    if (entry === generation || `${setsDir}/${entry}` === previous || !(now - madeAt >= graceMs)) continue
    await rm(path.join(target, setsDir, entry), { recursive: true, force: true })
  }
  const removed = await removeLeftContent(repo, target, graceMs, now)
  return { generation, linked, removed }
}

/**
 * Content the repo no longer has is listed when first seen gone, and removed once its list is
 * older than the grace period (and it is still gone): clients holding an older summary, and
 * rsync runs that started before, still find it meanwhile.
 */
async function removeLeftContent(repo: string, target: string, graceMs: number, now: number): Promise<number> {
  const ledgers = (await readdir(removalsDir(target))).sort()
  const listed = new Set<string>()
  let removed = 0
  for (const ledger of ledgers) {
    const file = path.join(removalsDir(target), ledger)
    const paths = (await readFile(file, 'utf8')).split('\n').filter(Boolean)
    if (now - Number(ledger.split('-')[0]) >= graceMs) {
      for (const relative of paths) {
        if (existsSync(path.join(repo, relative))) continue
        await rm(path.join(target, relative), { force: true })
        removed += 1
      }
      await rm(file)
    } else {
      for (const relative of paths) listed.add(relative)
    }
  }
  const ledger = path.join(removalsDir(target), `${now}-${randomBytes(3).toString('hex')}`)
  for (const dir of contentDirs) {
    for await (const relative of filesUnder(path.join(target, dir))) {
      const name = `${dir}/${relative}`
      if (listed.has(name) || existsSync(path.join(repo, name))) continue
      await appendFile(ledger, `${name}\n`)
    }
  }
  return removed
}
