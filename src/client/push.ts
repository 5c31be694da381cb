import { stat as statCallback } from 'node:fs'
import { promisify } from 'node:util'
import pLimit from 'p-limit'
import pRetry from 'p-retry'
import { assertArchiveRepo, flatpakRefs, reachableObjects, resolveRef, type LocalObject } from '../ostree/localRepo.ts'
import { ApiError, type FlatdepotClient, type UploadObject } from './api.ts'
import { createBuildMutation, createBuildRefMutation } from './documents.ts'

export type PushProgress = { objects: number; bytes: number; totalObjects: number; totalBytes: number }

export type PushOptions = {
  repo: string
  localRepo: string
  refs: readonly string[]
  buildId?: number
  appId?: string
  publicDownload?: boolean
  buildLogUrl?: string
  /** Upload requests in flight at once. */
  concurrency?: number
  /** Objects and bytes per upload request (flat-manager-client's batches are alike). */
  batchObjects?: number
  batchBytes?: number
  /** Attempts per request after a transient failure (network, 5xx), with exponential backoff. */
  retries?: number
  onRetry?: (message: string) => void
  /** Told the build id as soon as there is one (for a rerun with --build-id after an interruption). */
  onBuild?: (buildId: number, created: boolean) => void
  /** What the server lacks of what the refs reach, once every answer is in (the upload has begun by then). */
  onMissing?: (missing: number, total: number, bytes: number) => void
  onProgress?: (progress: PushProgress) => void
}

export type PushResult = {
  buildId: number
  refs: { ref: string; commit: string }[]
  /** Objects reachable from the refs. */
  objects: number
  /** Of those, objects the server did not have and this push uploaded. */
  uploaded: number
  uploadedBytes: number
}

const stat = promisify(statCallback)

/** Retries transient failures (network, 5xx) with backoff; a 4xx answer is final at once. */
export function withRetries<T>(retries: number, what: string, fn: () => Promise<T>, onRetry?: (message: string) => void): Promise<T> {
  return pRetry(fn, {
    retries,
    minTimeout: 250,
    maxTimeout: 5_000,
    shouldRetry: (error) => error instanceof ApiError && error.transient,
    onFailedAttempt: (error) => {
      if (error.retriesLeft > 0 && error instanceof ApiError && error.transient) {
        onRetry?.(`${what} failed (attempt ${error.attemptNumber}): ${error.message}; trying again`)
      }
    },
  })
}

/**
 * Groups objects, as they come, into upload requests of at most `maxObjects` objects and
 * `maxBytes` bytes (a larger object goes alone), in order; `emit` gets each request once it is
 * full, and `flush` sends the last, partial one.
 */
export function uploadBatcher(maxObjects: number, maxBytes: number, emit: (batch: UploadObject[]) => void) {
  let current: UploadObject[] = []
  let currentBytes = 0
  const flush = () => {
    if (current.length) emit(current)
    current = []
    currentBytes = 0
  }
  return {
    add(object: UploadObject) {
      if (current.length >= maxObjects || (current.length > 0 && currentBytes + object.size > maxBytes)) flush()
      current.push(object)
      currentBytes += object.size
    },
    flush,
  }
}

/** Objects in upload requests of at most `maxObjects` objects and `maxBytes` bytes (a larger object goes alone), in order. */
export function uploadBatches(objects: readonly UploadObject[], maxObjects: number, maxBytes: number): UploadObject[][] {
  const batches: UploadObject[][] = []
  const batcher = uploadBatcher(maxObjects, maxBytes, (batch) => batches.push(batch))
  for (const object of objects) batcher.add(object)
  batcher.flush()
  return batches
}

/**
 * Pushes refs of a local archive repo into a build: creates the build (unless given one), asks
 * which of the reachable objects the server lacks, uploads those in parallel batches streamed
 * from disk, then creates the refs. A rerun with the same build uploads only what is missing.
 */
export async function push(client: FlatdepotClient, options: PushOptions): Promise<PushResult> {
  const retries = options.retries ?? 5
  const retrying = <T>(what: string, fn: () => Promise<T>) => withRetries(retries, what, fn, options.onRetry)
  const concurrency = options.concurrency ?? 8
  const batchObjects = options.batchObjects ?? 256
  const batchBytes = options.batchBytes ?? 4 << 20
  await assertArchiveRepo(options.localRepo)
  const refNames = options.refs.length ? [...options.refs] : await flatpakRefs(options.localRepo)
  if (refNames.length === 0) throw new Error(`${options.localRepo} has no app/, runtime/ or screenshots/ refs to push`)
  const refs = await Promise.all(
    refNames.map(async (ref) => {
      try {
        return { ref, commit: await resolveRef(options.localRepo, ref) }
      } catch {
        throw new Error(`ref ${ref} is not in ${options.localRepo}`)
      }
    }),
  )

  const startBuild = async (): Promise<number> => {
    if (options.buildId !== undefined) {
      options.onBuild?.(options.buildId, false)
      return options.buildId
    }
    const { createBuild } = await retrying('createBuild', () =>
      client.graphql(createBuildMutation, {
        input: { repo: options.repo, appId: options.appId ?? null, publicDownload: options.publicDownload ?? null, buildLogUrl: options.buildLogUrl ?? null },
      }),
    )
    options.onBuild?.(createBuild.id, true)
    return createBuild.id
  }
  const objects = new Map<string, LocalObject>()
  const sizeOf = async (name: string): Promise<UploadObject> => {
    const object = objects.get(name)
    if (!object) throw new Error(`the server asked for ${name}, which this push did not offer`)
    try {
      return { ...object, size: (await stat(object.file)).size }
    } catch (error) {
      throw new Error(`cannot read object ${name} from ${object.file}: ${(error as Error).message}`, { cause: error })
    }
  }
  // The walk, the build's creation, the questions about what the server lacks and the upload
  // overlap: every 2,000 names the walk finds go to missing_objects (four requests at most in
  // flight, once the build exists); what comes back is sized and goes into upload requests at
  // once, `concurrency` of them in flight. Commits wait until every file and tree has landed, so
  // a commit never arrives before its tree.
  const build = startBuild()
  build.catch(() => {}) // awaited below; a failure is reported there
  const progress: PushProgress = { objects: 0, bytes: 0, totalObjects: 0, totalBytes: 0 }
  const report = () => options.onProgress?.({ ...progress })
  const uploadLimit = pLimit(concurrency)
  const uploads: Promise<void>[] = []
  const sendBatch = (batch: UploadObject[]) => {
    const sent = uploadLimit(async () => {
      const id = await build
      await retrying(`upload of ${batch.length} objects`, () => client.upload(id, batch))
      progress.objects += batch.length
      progress.bytes += batch.reduce((sum, { size }) => sum + size, 0)
      report()
    })
    sent.catch(() => {}) // awaited below
    uploads.push(sent)
  }
  const batcher = uploadBatcher(batchObjects, batchBytes, sendBatch)
  const commits: UploadObject[] = []
  const ask = pLimit(4)
  const asked: Promise<void>[] = []
  let chunk: string[] = []
  const askAbout = () => {
    const names = chunk
    chunk = []
    if (names.length === 0) return
    const answer = ask(async () => {
      const id = await build
      const missing = await retrying('missing_objects', () => client.missingObjects(id, names))
      // All at once: libuv's pool does the queueing (a bounded p-map was 5× slower here).
      for (const object of await Promise.all(missing.map(sizeOf))) {
        progress.totalObjects += 1
        progress.totalBytes += object.size
        if (object.name.endsWith('.commit')) commits.push(object)
        else batcher.add(object)
      }
    })
    answer.catch(() => {}) // awaited below, after the walk
    asked.push(answer)
  }
  const onObject = (object: LocalObject) => {
    chunk.push(object.name)
    if (chunk.length >= 2000) askAbout()
  }
  let id: number
  try {
    await Promise.all(refs.map(({ commit }) => reachableObjects(options.localRepo, commit, objects, onObject)))
    askAbout()
    id = await build
    await Promise.all(asked)
    batcher.flush()
    options.onMissing?.(progress.totalObjects, objects.size, progress.totalBytes)
    report()
    // Every upload so far, then the commits in a last round of their own.
    await Promise.all(uploads)
    uploads.length = 0
    for (const batch of uploadBatches(commits, batchObjects, batchBytes)) sendBatch(batch)
    await Promise.all(uploads)
  } catch (error) {
    // Nothing more is sent once the push has failed.
    ask.clearQueue()
    uploadLimit.clearQueue()
    throw error
  }

  for (const { ref, commit } of refs) {
    await retrying(`createBuildRef ${ref}`, () =>
      client.graphql(createBuildRefMutation, { buildId: id, refName: ref, commit, buildLogUrl: options.buildLogUrl ?? null }),
    )
  }
  return { buildId: id, refs, objects: objects.size, uploaded: progress.totalObjects, uploadedBytes: progress.totalBytes }
}
