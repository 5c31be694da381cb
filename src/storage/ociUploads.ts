import { createHash, randomUUID, type Hash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { Transform, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { storeBlobFile } from './ociStore.ts'

/**
 * Blob uploads of the registry's push API (OCI distribution spec): an upload is a file under
 * `<oci root>/uploads/<uuid>` that grows by PATCH requests (or one POST/PUT body) and becomes the
 * blob `blobs/sha256/<hex>` once its digest checks out. The digest is computed while the bytes
 * arrive; a process that did not see every chunk (a restart, another API process) hashes the file
 * once at the end. Nothing reaches the blob store unverified, and a refused upload leaves nothing.
 */

/** Why an upload was refused: the distribution spec's error code and HTTP status. */
export class UploadError extends Error {
  constructor(
    readonly status: number,
    readonly code: 'BLOB_UPLOAD_UNKNOWN' | 'BLOB_UPLOAD_INVALID' | 'DIGEST_INVALID' | 'SIZE_INVALID' | 'RANGE_INVALID',
    message: string,
  ) {
    super(message)
  }
}

type Meta = { repository: string; startedAt: string }
type Running = { hash: Hash; size: number }

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const abandonedAfterMs = 24 * 3600_000
const sweepEveryMs = 3600_000

export function createOciUploads(root: string, maxBlobSize: number) {
  const dir = path.join(root, 'uploads')
  const running = new Map<string, Running>()
  /** One request at a time per upload in this process: a PATCH racing another would interleave bytes. */
  const locks = new Map<string, Promise<unknown>>()
  let lastSweep = 0

  const dataPath = (uuid: string) => path.join(dir, uuid)
  const metaPath = (uuid: string) => path.join(dir, `${uuid}.json`)

  function locked<T>(uuid: string, work: () => Promise<T>): Promise<T> {
    const previous = locks.get(uuid) ?? Promise.resolve()
    const next = previous.then(work, work)
    const settled = next.then(
      () => undefined,
      () => undefined,
    )
    locks.set(uuid, settled)
    void settled.then(() => {
      if (locks.get(uuid) === settled) locks.delete(uuid)
    })
    return next
  }

  async function meta(uuid: string, repository: string): Promise<{ size: number }> {
    if (!uuidPattern.test(uuid)) throw new UploadError(404, 'BLOB_UPLOAD_UNKNOWN', `No upload ${uuid}`)
    let recorded: Meta
    try {
      recorded = JSON.parse(await readFile(metaPath(uuid), 'utf8')) as Meta
    } catch {
      throw new UploadError(404, 'BLOB_UPLOAD_UNKNOWN', `No upload ${uuid}: it finished, was cancelled, or was abandoned for a day`)
    }
    if (recorded.repository !== repository) throw new UploadError(404, 'BLOB_UPLOAD_UNKNOWN', `Upload ${uuid} belongs to another repository`)
    return { size: (await stat(dataPath(uuid))).size }
  }

  /** Appends a request body to the upload, hashing it on the way and refusing it past the size limit. */
  async function append(uuid: string, size: number, body: Readable): Promise<number> {
    let state = running.get(uuid)
    if (state && state.size !== size) state = undefined
    let total = size
    const hash = state?.hash
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        total += chunk.length
        if (total > maxBlobSize) {
          done(new UploadError(413, 'SIZE_INVALID', `The blob is larger than the size limit of ${maxBlobSize} bytes (max-object-size)`))
          return
        }
        hash?.update(chunk)
        done(null, chunk)
      },
    })
    try {
      await pipeline(body, counter, createWriteStream(dataPath(uuid), { flags: 'a' }))
    } catch (error) {
      // A partial chunk is cut off again: the upload stays at the size it had, as the client was told.
      running.delete(uuid)
      const handle = await open(dataPath(uuid), 'r+')
      await handle.truncate(size).finally(() => handle.close())
      throw error
    }
    if (hash) running.set(uuid, { hash, size: total })
    else running.delete(uuid)
    return total
  }

  async function cancel(repository: string, uuid: string): Promise<void> {
    await meta(uuid, repository)
    running.delete(uuid)
    await rm(metaPath(uuid), { force: true })
    await rm(dataPath(uuid), { force: true })
  }

  async function sweep(): Promise<void> {
    const now = Date.now()
    if (now - lastSweep < sweepEveryMs) return
    lastSweep = now
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const file = path.join(dir, name)
      const info = await stat(file).catch(() => null)
      if (info && now - info.mtimeMs > abandonedAfterMs) await rm(file, { force: true })
    }
  }

  return {
    /** The blob store these uploads end in. */
    root,
    /** Starts an upload for a repository; its uuid goes into the Location the client follows. */
    async start(repository: string): Promise<string> {
      await mkdir(dir, { recursive: true })
      await sweep()
      const uuid = randomUUID()
      await writeFile(dataPath(uuid), '')
      await writeFile(metaPath(uuid), JSON.stringify({ repository, startedAt: new Date().toISOString() } satisfies Meta))
      running.set(uuid, { hash: createHash('sha256'), size: 0 })
      return uuid
    },

    /** Bytes received so far (the `Range` the spec answers with). */
    size: (repository: string, uuid: string) => meta(uuid, repository).then((info) => info.size),

    /** A PATCH: the chunk must start where the upload stands (`Content-Range: start-end`, when given). */
    patch(repository: string, uuid: string, body: Readable, range: { start: number } | null): Promise<number> {
      return locked(uuid, async () => {
        const { size } = await meta(uuid, repository)
        if (range && range.start !== size) {
          throw new UploadError(416, 'RANGE_INVALID', `The chunk starts at byte ${range.start} but the upload holds ${size} bytes: send from ${size}`)
        }
        return append(uuid, size, body)
      })
    },

    /**
     * The closing PUT (with the last chunk, if any): the upload's digest must be `digest`, then the
     * bytes become the blob (made durable first). A mismatch removes the upload: nothing is stored.
     */
    finish(repository: string, uuid: string, digest: string, body: Readable | null): Promise<{ size: number }> {
      return locked(uuid, async () => {
        let { size } = await meta(uuid, repository)
        if (body) size = await append(uuid, size, body)
        const state = running.get(uuid)
        let actual: string
        if (state && state.size === size) actual = state.hash.digest('hex')
        else {
          const hash = createHash('sha256')
          await pipeline(createReadStream(dataPath(uuid)), hash)
          actual = hash.digest('hex')
        }
        running.delete(uuid)
        if (`sha256:${actual}` !== digest) {
          await cancel(repository, uuid)
          throw new UploadError(400, 'DIGEST_INVALID', `The upload's content has digest sha256:${actual}, not ${digest}: nothing was stored`)
        }
        await storeBlobFile(root, dataPath(uuid), digest)
        await rm(metaPath(uuid), { force: true })
        await unlink(dataPath(uuid))
        return { size }
      })
    },

    cancel,

    /** How many uploads are in progress on disk (for tests: a refused blob leaves none). */
    async pending(): Promise<number> {
      return (await readdir(dir).catch(() => [] as string[])).filter((name) => uuidPattern.test(name)).length
    },
  }
}

export type OciUploads = ReturnType<typeof createOciUploads>
