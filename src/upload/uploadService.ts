import { createWriteStream } from 'node:fs'
import { writeFile, writeFileSync } from 'node:fs'
import { access, mkdir, readdir, rename, rm } from 'node:fs/promises'
import { promisify } from 'node:util'
import type { IncomingMessage } from 'node:http'
import path from 'node:path'
import { PassThrough, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import busboy from 'busboy'
import pMap from 'p-map'
import type { Config } from '../config/config.ts'
import { buildDecider, buildStreamId, requireUploading } from '../domain/build/decider.ts'
import type { RepoState } from '../domain/build/events.ts'
import { ConflictError, DomainError, InvalidInputError } from '../domain/shared/errors.ts'
import type { Build } from '../generated/prisma/client.ts'
import type { CommandRunner } from '../eventStore/unitOfWork.ts'
import { buildReposReady, uploadDir, uploadTempName } from '../storage/buildArea.ts'
import type { Logger } from '../log.ts'
import { syncFileSystem } from '../process/run.ts'
import { commandMetadata, type Actor } from '../services/actor.ts'
import { GroupCommit } from '../util/groupCommit.ts'
import type { Metrics } from '../http/metrics.ts'
import type { BuildService } from '../services/builds.ts'
import { acceptAttachmentParts } from './attachmentParts.ts'
import { checksumOfBuffer, objectName, ObjectRejectedError, ObjectVerifier, parseUploadName } from './objects.ts'

export type UploadServiceDeps = { run: CommandRunner; builds: BuildService; config: Config; log?: Logger; metrics?: Pick<Metrics, 'uploaded' | 'uploadRejected'> }

/** Counts bytes and fails the stream as soon as it passes the limit. */
function limitBytes(limit: number, tooLarge: () => Error) {
  let seen = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length
      if (seen > limit) callback(tooLarge())
      else callback(null, chunk)
    },
  })
  return { counter, bytes: () => seen }
}

const smallObjectBytes = 512 * 1024

/**
 * Reads a part until it ends (complete: the whole part) or passes `threshold` bytes (the chunks
 * so far, with the part paused so the rest can be piped on).
 */
function readHead(
  source: NodeJS.ReadableStream,
  threshold: number,
): Promise<{ complete: true; bytes: Buffer } | { complete: false; chunks: Buffer[] }> {
  return new Promise((resolve, reject) => {
    // The client may have gone before this part's turn came: its stream is already errored.
    const errored = (source as NodeJS.ReadableStream & { errored?: Error | null }).errored
    if (errored) return reject(errored)
    const chunks: Buffer[] = []
    let length = 0
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      length += chunk.length
      if (length >= threshold) {
        cleanup()
        source.pause()
        resolve({ complete: false, chunks })
      }
    }
    const onEnd = () => {
      cleanup()
      resolve({ complete: true, bytes: Buffer.concat(chunks, length) })
    }
    const onError = (error: Error) => {
      cleanup()
      reject(error)
    }
    const cleanup = () => {
      source.off('data', onData)
      source.off('end', onEnd)
      source.off('error', onError)
    }
    source.on('data', onData)
    source.on('end', onEnd)
    source.on('error', onError)
  })
}

// The callback API: fs/promises' writeFile builds a FileHandle per file, which costs the event
// loop ~80 µs each when thousands of small objects arrive.
const writeFileCallback = promisify(writeFile)
const inlineWriteBytes = 64 * 1024
let tempCount = 0

/**
 * Writes in flight, at most `limit`: `add` waits while the limit is reached, `settled` waits for
 * all. A failed write is reported once through `onError` (the request then fails).
 */
class BoundedWrites {
  readonly #inFlight = new Set<Promise<void>>()
  constructor(
    readonly limit: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  async add(write: Promise<void>): Promise<void> {
    const tracked = write.then(
      () => void this.#inFlight.delete(tracked),
      (error: unknown) => {
        this.#inFlight.delete(tracked)
        this.onError(error)
      },
    )
    this.#inFlight.add(tracked)
    while (this.#inFlight.size >= this.limit) await Promise.race(this.#inFlight)
  }

  async settled(): Promise<void> {
    await Promise.all(this.#inFlight)
  }
}

/** Runs `task` over `items`, 16 at a time (the file system's queue, not the event loop, is the limit). */
const inBatches = <T>(items: readonly T[], task: (item: T) => Promise<unknown>) => pMap(items, task, { concurrency: 16 })

/** Names checked between two turns of the event loop: a 100,000-name request never holds it long. */
const namesPerTurn = 5000
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * Which of the object `names` exist under any of `roots` (an InvalidInputError for one that is not
 * `<sha256>.<type>`),
 * without blocking the event loop: a directory asked about many times is listed once (a
 * 100,000-name request is ~500 listings), the rest are looked up one by one; all of it in
 * libuv's pool, 16 at a time, and the bookkeeping in slices of namesPerTurn.
 */
async function objectsPresent(roots: readonly string[], names: readonly string[]): Promise<boolean[]> {
  const present = new Array<boolean>(names.length).fill(false)
  const byDir = new Map<string, number[]>()
  for (let index = 0; index < names.length; index++) {
    if (index % namesPerTurn === namesPerTurn - 1) await nextTurn()
    const name = names[index]!
    if (!objectName.test(name)) throw new InvalidInputError(`Invalid object name ${JSON.stringify(name.slice(0, 200))}: expected <sha256>.{commit,dirtree,dirmeta,filez}`, 'wanted')
    const dir = name.slice(0, 2)
    let list = byDir.get(dir)
    if (!list) byDir.set(dir, (list = []))
    list.push(index)
  }
  for (const root of roots) {
    await pMap(
      [...byDir],
      async ([dir, indexes]) => {
        const open = indexes.filter((index) => !present[index])
        if (open.length === 0) return
        const objects = path.join(root, 'objects', dir)
        if (open.length >= 8) {
          const listed = new Set(await readdir(objects).catch(() => [] as string[]))
          for (const index of open) if (listed.has(names[index]!.slice(2))) present[index] = true
          return
        }
        await Promise.all(
          open.map((index) =>
            access(path.join(objects, names[index]!.slice(2))).then(
              () => void (present[index] = true),
              () => {},
            ),
          ),
        )
      },
      { concurrency: 16 },
    )
  }
  return present
}

/** A refused upload's reason, as a bounded label for the metrics. */
function rejectionReason(error: unknown): string {
  const message = error instanceof Error ? error.message : ''
  if (/Invalid upload filename|No filename/.test(message)) return 'filename'
  if (/not a valid OSTree object|checksum/i.test(message)) return 'invalid-object'
  if (/larger than|too large|exceeds/i.test(message)) return 'size'
  if (/Malformed multipart|interrupted/i.test(message)) return 'malformed'
  if (/permission|token/i.test(message)) return 'permission'
  return 'other'
}

export function createUploadService({ run, builds, config, log, metrics }: UploadServiceDeps) {
  // Concurrent upload requests of one build (and one token) record their objects in one event,
  // not N events racing for the build's stream version; each request answers once it is recorded.
  const recordUploads = new GroupCommit<string, { buildId: number; actor: Actor; objects: number; bytes: number }>(async (_key, uploads) => {
    const { buildId, actor } = uploads[0]!
    await run(commandMetadata(actor), (unit) =>
      unit.decide(buildDecider, buildStreamId(buildId), 'build', {
        type: 'RecordObjectsUploaded',
        data: { objects: uploads.reduce((sum, upload) => sum + upload.objects, 0), bytes: uploads.reduce((sum, upload) => sum + upload.bytes, 0) },
      }),
    )
  })
  async function uploadableBuild(actor: Actor, buildId: number): Promise<Build> {
    const build = await builds.authorizedBuild(actor, buildId, ['upload'])
    requireUploading({ repoState: build.repoState as RepoState })
    // Made with the build (and at start-up for a build whose creator died): an upload or a query never makes them.
    if (!buildReposReady(config.buildRepoBase, build.id)) {
      throw new ConflictError(`Build ${build.id} has no upload area yet: the server stopped while creating it; it is made when the server starts again`)
    }
    return build
  }

  type Staged = { temp: string; target: string; size: number; written?: Promise<void> }

  /** Streams one object to a temp file, verifying it on the way; what checks out is staged for `publishStaged`. */
  async function stageOne(build: Build, filename: string, source: NodeJS.ReadableStream, budget: number): Promise<Staged> {
    const name = parseUploadName(filename)
    if (!name) {
      throw new InvalidInputError(
        `Invalid upload filename ${JSON.stringify(filename)}: expected <sha256>.{commit,dirtree,dirmeta,filez} or a static delta part <id>.{superblock,N}.delta`,
        'file',
      )
    }
    const upload = uploadDir(config.buildRepoBase, build.id)
    const temp = path.join(upload, 'tmp', uploadTempName(++tempCount))
    const limit = Math.min(config.maxObjectSize, budget)
    const tooLarge = () =>
      new InvalidInputError(
        limit === budget && budget < config.maxObjectSize
          ? `Build ${build.id} would exceed the build size limit of ${config.maxBuildSize} bytes with ${filename}`
          : `${filename} is larger than the object size limit of ${config.maxObjectSize} bytes`,
        'file',
      )
    const checkChecksum = (actual: string) => {
      if (name.kind === 'object' && actual !== name.checksum) {
        throw new InvalidInputError(`Checksum mismatch for ${filename}: its content hashes to ${actual}`, 'file')
      }
    }
    const explain = (error: unknown) =>
      error instanceof ObjectRejectedError ? new InvalidInputError(`${filename} is not a valid OSTree object: ${error.message}`, 'file') : error
    const target = path.join(upload, name.path)
    // Most objects are a few KiB: read them whole, check them in one go, write them in one call.
    const head = await readHead(source, Math.min(smallObjectBytes, limit + 1))
    if (head.complete) {
      if (head.bytes.length > limit) throw tooLarge()
      try {
        if (name.kind === 'object') checkChecksum(await checksumOfBuffer(name.type, head.bytes))
      } catch (error) {
        throw explain(error)
      }
      // Most objects are a few KiB: written at once on this thread, the way nginx does its file
      // I/O. Through libuv's pool, thousands of them queue in front of the large objects' chunks
      // (and their inflating) and starve them. Larger ones are written while the next part is
      // read (see receiveMultipart).
      if (head.bytes.length <= inlineWriteBytes) {
        writeFileSync(temp, head.bytes, { mode: 0o644 })
        return { temp, target, size: head.bytes.length }
      }
      return { temp, target, size: head.bytes.length, written: writeFileCallback(temp, head.bytes, { mode: 0o644 }) }
    }
    const { counter, bytes } = limitBytes(limit, tooLarge)
    const verifier = name.kind === 'object' ? new ObjectVerifier(name.type) : null
    try {
      // The multipart part is piped, not handed to pipeline(): destroying it on an error would
      // stall the parser, which must be able to drain it and go on to the end of the request.
      const bridge = new PassThrough()
      for (const chunk of head.chunks) bridge.write(chunk)
      // pipe() does not pass errors on: a torn part (the client went away) must end the copy.
      source.once('error', (error) => bridge.destroy(error))
      source.pipe(bridge)
      source.resume()
      try {
        // 1 MiB of buffering lets the file stream write many chunks per call (writev): each call
        // waits its turn in libuv's pool behind the small objects of other requests.
        await pipeline(bridge, counter, ...(verifier ? [verifier] : []), createWriteStream(temp, { mode: 0o644, highWaterMark: 1 << 20 }))
      } catch (error) {
        source.unpipe(bridge)
        source.resume()
        throw error
      }
      if (verifier) checkChecksum(await verifier.digest())
      return { temp, target, size: bytes() }
    } catch (error) {
      await rm(temp, { force: true })
      throw explain(error)
    }
  }

  /**
   * Durable before acknowledged, as an ostree transaction: the staged files reach the disk
   * (one syncfs), the renames put them in place, and a second syncfs makes the renames durable.
   * Only then does the request answer.
   */
  async function publishStaged(staged: Staged[]): Promise<void> {
    if (staged.length === 0) return
    const root = path.dirname(path.dirname(staged[0]!.temp))
    await syncFileSystem(root)
    const dirs = [...new Set(staged.map((entry) => path.dirname(entry.target)))]
    await inBatches(dirs, (dir) => mkdir(dir, { recursive: true }))
    await inBatches(staged, (entry) => rename(entry.temp, entry.target))
    await syncFileSystem(root)
  }

  return {
    /**
     * flat-manager's multipart upload: each part's filename names the object. Parts are stored
     * one after another as they stream in; the answer is each part's size, in order. The first
     * bad part fails the request; parts stored before it stay (they were verified).
     */
    async receiveMultipart(actor: Actor, buildId: number, req: IncomingMessage): Promise<number[]> {
      const started = performance.now()
      const build = await uploadableBuild(actor, buildId).catch((error: unknown) => {
        metrics?.uploadRejected(error instanceof DomainError ? error.code.toLowerCase().replace('_', '-') : 'other')
        throw error
      })
      let budget = config.maxBuildSize - Number(build.uploadedBytes)
      const staged: Staged[] = []
      let failure: unknown = null
      let chain = Promise.resolve()
      // Small objects are written while the next parts stream in, a bounded number at a time.
      const writes = new BoundedWrites(64, (error) => (failure ??= error))
      // preservePath: see the name as sent, so a "../x" is refused rather than quietly shortened.
      let parser: busboy.Busboy
      try {
        // flat-manager-client 0.4.6 (aiohttp's MultipartWriter) sends multipart/mixed; actix reads
        // it as form data, and so do we (busboy knows only form-data).
        const headers = { ...req.headers, 'content-type': req.headers['content-type']?.replace(/^multipart\/mixed\b/i, 'multipart/form-data') }
        parser = busboy({ headers, preservePath: true, limits: { fieldSize: 1024, fields: 100 } })
      } catch (error) {
        throw new InvalidInputError(`Malformed multipart upload: ${(error as Error).message} (send multipart/form-data with one file part per object)`, 'body')
      }
      // A part without a filename is not an object: flat-manager refuses it, and so do we.
      parser.on('field', (name) => (failure ??= new InvalidInputError(`No filename for multipart item ${JSON.stringify(name.slice(0, 100))}: every part is an object, named by its filename`, 'file')))
      parser.on('file', (_field, stream, info) => {
        // A part torn by a dropped connection errors; that is the request's failure (below),
        // never an unhandled error, also while the part waits for its turn.
        stream.on('error', (error) => (failure ??= new InvalidInputError(`Upload interrupted: ${error.message}`, 'body')))
        chain = chain.then(async () => {
          if (failure) {
            stream.resume()
            return
          }
          try {
            if (!info.filename) throw new InvalidInputError('No filename for multipart item', 'file')
            const entry = await stageOne(build, info.filename, stream, budget)
            budget -= entry.size
            staged.push(entry)
            if (entry.written) {
              // A failed write is not published: it leaves the staged list and its temp file goes.
              const written = entry.written.catch(async (error: unknown) => {
                staged.splice(staged.indexOf(entry), 1)
                await rm(entry.temp, { force: true })
                throw error
              })
              await writes.add(written)
            }
          } catch (error) {
            failure = error
            stream.resume()
          }
        })
      })
      try {
        const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(req.headers['content-type'] ?? '')
        const original = boundary?.[1] ?? boundary?.[2]
        await (original ? pipeline(req, acceptAttachmentParts(original), parser) : pipeline(req, parser))
      } catch (error) {
        failure ??= new InvalidInputError(`Malformed multipart upload: ${(error as Error).message}`, 'body')
      }
      await chain
      await writes.settled()
      const received = performance.now()
      await publishStaged(staged)
      const stored = performance.now()
      if (staged.length) {
        const bytes = staged.reduce((sum, entry) => sum + entry.size, 0)
        await recordUploads.add(`${build.id} ${actor.claims?.jti ?? ''}`, { buildId: build.id, actor, objects: staged.length, bytes })
        log?.info(
          { buildId: build.id, objects: staged.length, bytes, receiveMs: Math.round(received - started), storeMs: Math.round(stored - received), recordMs: Math.round(performance.now() - stored) },
          'objects uploaded',
        )
      }
      if (staged.length) metrics?.uploaded(staged.length, staged.reduce((sum, entry) => sum + entry.size, 0))
      if (failure) {
        metrics?.uploadRejected(rejectionReason(failure))
        throw failure
      }
      return staged.map((entry) => entry.size)
    },

    /** Which of the named objects neither the upload repo nor the main repo has, in request order. */
    async missingObjects(actor: Actor, buildId: number, wanted: readonly string[]): Promise<string[]> {
      const build = await uploadableBuild(actor, buildId)
      const mainRepo = config.repos.get(build.repoName)?.path
      const roots = [uploadDir(config.buildRepoBase, build.id), ...(mainRepo ? [mainRepo] : [])]
      const present = await objectsPresent(roots, wanted)
      return wanted.filter((_name, index) => !present[index])
    },
  }
}

export type UploadService = ReturnType<typeof createUploadService>
