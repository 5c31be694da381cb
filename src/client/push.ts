import { stat as statCallback } from 'node:fs'
import { promisify } from 'node:util'
import pLimit from 'p-limit'
import pMap from 'p-map'
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

// Files first and commits last, as flat-manager-client does: a commit never arrives before its tree.
const uploadOrder = { filez: 0, dirmeta: 1, dirtree: 2, commit: 3 } as Record<string, number>
const stat = promisify(statCallback)
const kindOf = (name: string) => uploadOrder[name.slice(name.lastIndexOf('.') + 1)] ?? 0

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

/** Objects in upload requests of at most `maxObjects` objects and `maxBytes` bytes (a larger object goes alone), in order. */
export function uploadBatches(objects: readonly UploadObject[], maxObjects: number, maxBytes: number): UploadObject[][] {
  const batches: UploadObject[][] = []
  let current: UploadObject[] = []
  let currentBytes = 0
  for (const object of objects) {
    if (current.length >= maxObjects || (current.length > 0 && currentBytes + object.size > maxBytes)) {
      batches.push(current)
      current = []
      currentBytes = 0
    }
    current.push(object)
    currentBytes += object.size
  }
  if (current.length) batches.push(current)
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
  // The walk, the build's creation and the questions about what the server lacks overlap: every
  // 2,000 names the walk finds go to missing_objects (four requests at most in flight, once the
  // build exists), and what comes back is sized while the walk goes on.
  const build = startBuild()
  build.catch(() => {}) // awaited below; a failure is reported there
  const ask = pLimit(4)
  const asked: Promise<UploadObject[]>[] = []
  let chunk: string[] = []
  const askAbout = () => {
    const names = chunk
    chunk = []
    if (names.length === 0) return
    const answer = ask(async () => {
      const id = await build
      const missing = await retrying('missing_objects', () => client.missingObjects(id, names))
      // All at once: libuv's pool does the queueing (a bounded p-map was 5× slower here).
      return Promise.all(missing.map(sizeOf))
    })
    answer.catch(() => {}) // awaited below, after the walk
    asked.push(answer)
  }
  const onObject = (object: LocalObject) => {
    chunk.push(object.name)
    if (chunk.length >= 2000) askAbout()
  }
  await Promise.all(refs.map(({ commit }) => reachableObjects(options.localRepo, commit, objects, onObject)))
  askAbout()
  const id = await build
  const missing = (await Promise.all(asked)).flat()
  missing.sort((a, b) => kindOf(a.name) - kindOf(b.name))
  // Batches bounded by count and bytes; files are read only when their request is sent.
  const batches = uploadBatches(missing, batchObjects, batchBytes)
  const totalBytes = missing.reduce((sum, object) => sum + object.size, 0)
  options.onMissing?.(missing.length, objects.size, totalBytes)

  const progress: PushProgress = { objects: 0, bytes: 0, totalObjects: missing.length, totalBytes }
  options.onProgress?.({ ...progress })
  // Commits go in a last round of their own, after every file and tree has landed.
  const commitBatches = batches.filter((batch) => batch.some(({ name }) => name.endsWith('.commit')))
  const rounds = [batches.filter((batch) => !commitBatches.includes(batch)), commitBatches]
  for (const round of rounds) {
    await pMap(
      round,
      async (batch) => {
        await retrying(`upload of ${batch.length} objects`, () => client.upload(id, batch))
        progress.objects += batch.length
        progress.bytes += batch.reduce((sum, { size }) => sum + size, 0)
        options.onProgress?.({ ...progress })
      },
      { concurrency },
    )
  }

  for (const { ref, commit } of refs) {
    await retrying(`createBuildRef ${ref}`, () =>
      client.graphql(createBuildRefMutation, { buildId: id, refName: ref, commit, buildLogUrl: options.buildLogUrl ?? null }),
    )
  }
  return { buildId: id, refs, objects: objects.size, uploaded: missing.length, uploadedBytes: totalBytes }
}
