import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { link, mkdir, readFile, readdir, rename, rm, stat, utimes } from 'node:fs/promises'
import path from 'node:path'
import { syncPath } from './summary.ts'

/** Blobs (manifests, configs, layers) by digest, shared by every image and repo: `<root>/blobs/sha256/<hex>`. */
export const ociRoot = (dataDir: string) => path.join(dataDir, 'oci')
export const blobsDir = (root: string) => path.join(root, 'blobs', 'sha256')
export const blobPath = (root: string, digest: string) => path.join(blobsDir(root), digest.replace(/^sha256:/, ''))
export const isDigest = (text: string) => /^sha256:[0-9a-f]{64}$/.test(text)

/** A scratch directory for one image layout, on the store's file system (its blobs are renamed in). */
export async function scratchLayout(root: string): Promise<string> {
  const dir = path.join(root, 'tmp', randomBytes(8).toString('hex'))
  await mkdir(path.dirname(dir), { recursive: true })
  return dir
}

export type ImportedImage = {
  digest: string
  mediaType: string
  os: string
  architecture: string
  labels: Record<string, string>
  size: number
}

/**
 * Moves an OCI image layout's blobs into the store (a blob already there is kept: same digest,
 * same bytes) and reads what the index needs from its manifest and config.
 */
export async function importLayout(root: string, layout: string): Promise<ImportedImage> {
  const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; mediaType: string; size: number }[] }
  const entry = index.manifests[0]
  if (!entry || !isDigest(entry.digest)) throw new Error(`${layout}: index.json names no manifest`)
  const manifest = JSON.parse(await readFile(path.join(layout, 'blobs', 'sha256', entry.digest.slice(7)), 'utf8')) as {
    config: { digest: string; size: number }
    layers: { digest: string; size: number }[]
  }
  const config = JSON.parse(await readFile(path.join(layout, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8')) as {
    os: string
    architecture: string
    config?: { Labels?: Record<string, string> }
  }
  await mkdir(blobsDir(root), { recursive: true })
  for (const name of await readdir(path.join(layout, 'blobs', 'sha256'))) {
    const target = path.join(blobsDir(root), name)
    if (!existsSync(target)) await rename(path.join(layout, 'blobs', 'sha256', name), target)
    else await touchBlob(root, `sha256:${name}`)
  }
  await rm(layout, { recursive: true, force: true })
  return {
    digest: entry.digest,
    mediaType: entry.mediaType,
    os: config.os,
    architecture: config.architecture,
    labels: config.config?.Labels ?? {},
    size: entry.size + manifest.config.size + manifest.layers.reduce((sum, layer) => sum + layer.size, 0),
  }
}

/**
 * Makes a verified file the blob of `digest`, durably: the file and then the directory entry are
 * synced. Linked, not renamed: a blob already stored (same digest, same bytes) is left as it is.
 * The caller removes its file afterwards.
 */
export async function storeBlobFile(root: string, file: string, digest: string): Promise<void> {
  await syncPath(file)
  await mkdir(blobsDir(root), { recursive: true })
  await link(file, blobPath(root, digest)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error
  })
  await syncPath(blobsDir(root))
}

/** Marks a stored blob as just used: a garbage collection spares blobs used within its grace time. */
export async function touchBlob(root: string, digest: string): Promise<boolean> {
  const now = new Date()
  return utimes(blobPath(root, digest), now, now).then(
    () => true,
    () => false,
  )
}

/** The blobs an image is made of: its manifest, config and layers. */
export async function imageBlobs(root: string, manifestDigest: string): Promise<string[]> {
  const manifest = JSON.parse(await readFile(blobPath(root, manifestDigest), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] }
  return [manifestDigest, manifest.config.digest, ...manifest.layers.map((layer) => layer.digest)]
}

/**
 * Removes (or, in a dry run, counts) the stored blobs no image uses. A blob written or used
 * within `graceMs` stays whatever the images say: an upload whose manifest has not come yet, or
 * an image being recorded that reuses it, may need it.
 */
export async function collectBlobGarbage(root: string, used: ReadonlySet<string>, options: { graceMs: number; dryRun: boolean }): Promise<{ blobs: number; bytes: number }> {
  const cutoff = Date.now() - options.graceMs
  let blobs = 0
  let bytes = 0
  for (const name of await readdir(blobsDir(root)).catch(() => [] as string[])) {
    if (used.has(`sha256:${name}`)) continue
    const file = path.join(blobsDir(root), name)
    const info = await stat(file).catch(() => null)
    if (!info || info.mtimeMs > cutoff) continue
    blobs += 1
    bytes += info.size
    if (!options.dryRun) await rm(file, { force: true })
  }
  return { blobs, bytes }
}
