import { randomBytes } from 'node:crypto'
import { copyFile, lstat, mkdir, open, readdir, readlink, rename, rm, symlink } from 'node:fs/promises'
import path from 'node:path'

/**
 * The files that must be served as a set: a signature belongs to one summary (or summary index).
 * `build-update-repo` rewrites them one after the other, with gpg signing in between, so a
 * client reading the repo's own files meanwhile can get a new summary with the old signature
 * and fail verification. The summaries/ files they point at are content-addressed and safe.
 */
export const summaryFiles: readonly string[] = ['summary', 'summary.sig', 'summary.idx', 'summary.idx.sig']

const snapshotsDir = (repo: string) => path.join(repo, '.flatdepot', 'summary')
const currentLink = (repo: string) => path.join(snapshotsDir(repo), 'current')

/**
 * Copies the summary set, complete and as `build-update-repo` left it, into a new snapshot and
 * makes that the one served (a symlink replaced by rename: readers see the old set or the new
 * one). Keeps the previous snapshot for requests still reading it; older ones are removed.
 */
export async function publishSummarySnapshot(repo: string): Promise<string> {
  const dir = snapshotsDir(repo)
  const generation = `${Date.now()}-${randomBytes(4).toString('hex')}`
  await mkdir(path.join(dir, generation), { recursive: true })
  for (const name of summaryFiles) {
    await copyDurably(path.join(repo, name), path.join(dir, generation, name)).catch((error: NodeJS.ErrnoException) => {
      // An unsigned repo has no .sig files: the snapshot then has none either.
      if (error.code !== 'ENOENT') throw error
    })
  }
  await syncDirectory(path.join(dir, generation))
  const previous = await readCurrent(repo)
  const temp = path.join(dir, `.current-${generation}`)
  await symlink(generation, temp)
  await rename(temp, currentLink(repo))
  await syncDirectory(dir)
  for (const entry of await readdir(dir)) {
    if (entry !== generation && entry !== previous && entry !== 'current') await rm(path.join(dir, entry), { recursive: true, force: true })
  }
  return generation
}

/** A copy on disk before it is used: fsync of the few small files, not `syncfs` of everything dirty. */
async function copyDurably(source: string, target: string): Promise<void> {
  await copyFile(source, target)
  const handle = await open(target, 'r')
  try {
    await handle.datasync()
  } finally {
    await handle.close()
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

const readCurrent = (repo: string): Promise<string | null> => readlink(currentLink(repo)).catch(() => null)

/**
 * Where a summary-set file is served from: the current snapshot once flatdepot has made one;
 * the repo's own file before that (a repo flatdepot has not updated yet). Null: not such a file.
 */
export async function servedSummaryFile(repo: string, relative: string): Promise<string | null> {
  if (!summaryFiles.includes(relative)) return null
  const snapshot = await lstat(currentLink(repo)).then(
    () => true,
    () => false,
  )
  return snapshot ? path.join(currentLink(repo), relative) : path.join(repo, relative)
}
