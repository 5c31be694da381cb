import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, open, readdir, readlink, rename, rm, symlink } from 'node:fs/promises'
import path from 'node:path'

/**
 * The files that must be served as a set: a signature belongs to one summary (or summary index).
 * `build-update-repo` rewrites them one after the other, with gpg signing in between, so a
 * client reading the repo's own files meanwhile can get a new summary with the old signature
 * and fail verification. The summaries/ files they point at are content-addressed and safe.
 */
const summaryFiles: readonly string[] = ['summary', 'summary.sig', 'summary.idx', 'summary.idx.sig']

export const isSummaryFile = (relative: string) => summaryFiles.includes(relative)

const snapshotsDir = (repo: string) => path.join(repo, '.flatdepot', 'summary')
const currentLink = (repo: string) => path.join(snapshotsDir(repo), 'current')

/**
 * Copies the summary set, complete and as `build-update-repo` left it, into a new snapshot and
 * makes that the one served (a symlink replaced by rename: readers see the old set or the new
 * one). Keeps the previous snapshot for requests still reading it; older ones are removed.
 */
export async function publishSummarySnapshot(repo: string): Promise<void> {
  const dir = snapshotsDir(repo)
  const generation = `${Date.now()}-${randomBytes(4).toString('hex')}`
  await mkdir(path.join(dir, generation), { recursive: true })
  for (const name of summaryFiles) {
    const copied = await copyFile(path.join(repo, name), path.join(dir, generation, name)).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        // An unsigned repo has no .sig files: the snapshot then has none either.
        if (error.code !== 'ENOENT') throw error
        return false
      },
    )
    if (copied) await syncPath(path.join(dir, generation, name))
  }
  await syncPath(path.join(dir, generation))
  const previous = await readCurrent(repo)
  const temp = path.join(dir, `.current-${generation}`)
  await symlink(generation, temp)
  await rename(temp, currentLink(repo))
  await syncPath(dir)
  const now = Date.now()
  for (const entry of await readdir(dir)) {
    if (entry === generation || entry === previous || entry === 'current') continue
    // Connections pinned to a generation may read it for up to pinMaxAgeMs after it stopped being current.
    const madeAt = Number(entry.split('-')[0])
    if (Number.isFinite(madeAt) && now - madeAt < snapshotRetentionMs) continue
    await rm(path.join(dir, entry), { recursive: true, force: true })
  }
}

/**
 * Summary pinning: the summary-set files one connection asks for come from one snapshot, even if
 * an update completes meanwhile, so every (data, signature) pair it fetches verifies. libostree
 * fetches `summary.sig` then `summary`, mirrors `summary` then `summary.sig`, flatpak `summary.idx`
 * then `summary.idx.sig` or a content-addressed `summaries/…idx.sig`: a few milliseconds apart on
 * one keep-alive connection.
 *
 * A connection moves to the current snapshot at a pair boundary only: when every file it fetched
 * since the pin has had its partner (or a request for any other file came in between), and then
 * after a pause of pinGapMs or once its pin is pinMaxAgeMs old. In the middle of a pair it stays,
 * however slowly the server answered, unless the partner has not come for pinPairGapMs or the pin
 * is pinHardMaxMs old. A client that opens a new connection per file gets whatever is current at
 * each request.
 */
export const pinGapMs = 1000
export const pinPairGapMs = 10_000
export const pinMaxAgeMs = 30_000
export const pinHardMaxMs = 300_000
const snapshotRetentionMs = 2 * pinHardMaxMs

const partners: Readonly<Record<string, string>> = {
  summary: 'summary.sig',
  'summary.sig': 'summary',
  'summary.idx': 'summary.idx.sig',
  'summary.idx.sig': 'summary.idx',
}

type Pin = { generation: string; pinnedAt: number; usedAt: number; open: Set<string> }
const pins = new WeakMap<object, Map<string, Pin>>()

/** A request on `connection` for anything but the summary set: whatever it fetched before is a complete pair. */
export function closePairs(connection: object): void {
  const byRepo = pins.get(connection)
  if (byRepo) for (const pin of byRepo.values()) pin.open.clear()
}

/**
 * Where a summary-set file is served from for a client `connection` (any object that lives as
 * long as the connection: its socket): the snapshot it is pinned to, else the current one; the
 * repo's own file before flatdepot has made any (a repo it has not updated yet).
 */
export async function summaryFilePath(repo: string, relative: string, connection: object, now = Date.now()): Promise<string> {
  let byRepo = pins.get(connection)
  const pin = byRepo?.get(repo)
  if (pin) {
    const age = now - pin.pinnedAt
    const idle = now - pin.usedAt
    const keep = pin.open.size > 0 ? idle < pinPairGapMs && age < pinHardMaxMs : idle < pinGapMs && age < pinMaxAgeMs
    if (keep) {
      pin.usedAt = now
      const partner = partners[relative]
      if (partner && pin.open.has(partner)) pin.open.delete(partner)
      else pin.open.add(relative)
      return path.join(snapshotsDir(repo), pin.generation, relative)
    }
  }
  const generation = await readCurrent(repo)
  if (!generation) return path.join(repo, relative)
  if (!byRepo) pins.set(connection, (byRepo = new Map()))
  byRepo.set(repo, { generation, pinnedAt: now, usedAt: now, open: new Set([relative]) })
  return path.join(snapshotsDir(repo), generation, relative)
}

/** fsync of one file or directory: the few small files of a snapshot, not `syncfs` of everything dirty. */
export async function syncPath(target: string): Promise<void> {
  const handle = await open(target, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

const readCurrent = (repo: string): Promise<string | null> => readlink(currentLink(repo)).catch(() => null)


/** The directory of the summary set being served (the repo itself before any snapshot was taken). */
export async function currentSummaryDir(repo: string): Promise<string> {
  const generation = await readCurrent(repo)
  return generation ? path.join(snapshotsDir(repo), generation) : repo
}
