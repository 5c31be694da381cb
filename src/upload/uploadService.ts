import { randomBytes } from 'node:crypto'
import { createWriteStream, existsSync } from 'node:fs'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import path from 'node:path'
import { PassThrough, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import busboy from 'busboy'
import pMap from 'p-map'
import type { Config } from '../config/config.ts'
import { buildDecider, buildStreamId } from '../domain/build/decider.ts'
import { InvalidInputError, WrongStateError } from '../domain/shared/errors.ts'
import type { Build, PrismaClient } from '../generated/prisma/client.ts'
import type { CommandRunner } from '../eventStore/unitOfWork.ts'
import { buildDir, ensureBuildRepos, uploadDir } from '../ostree/buildRepo.ts'
import { commandMetadata, type Actor } from '../services/actor.ts'
import type { BuildService } from '../services/builds.ts'
import { ObjectRejectedError, ObjectVerifier, parseUploadName } from './objects.ts'

export type UploadServiceDeps = { prisma: PrismaClient; run: CommandRunner; builds: BuildService; config: Config }

/** Counts bytes and fails the stream as soon as it passes the limit. */
function limitBytes(limit: number, describe: () => string) {
  let seen = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length
      if (seen > limit) callback(new InvalidInputError(describe(), 'file'))
      else callback(null, chunk)
    },
  })
  return { counter, bytes: () => seen }
}

/** Runs `task` over `items`, 16 at a time (the file system's queue, not the event loop, is the limit). */
const inBatches = <T>(items: readonly T[], task: (item: T) => Promise<unknown>) => pMap(items, task, { concurrency: 16 })

export function createUploadService({ run, builds, config }: UploadServiceDeps) {
  async function uploadableBuild(actor: Actor, buildId: number): Promise<Build> {
    const build = await builds.authorizedBuild(actor, buildId, ['upload'])
    if (build.repoState !== 'Uploading') {
      throw new WrongStateError(
        `Build is no longer accepting uploads: it is ${build.repoState.toLowerCase()}`,
        'repo',
        'uploading',
        build.repoState.toLowerCase(),
      )
    }
    const repo = config.repos.get(build.repoName)
    await ensureBuildRepos(config.buildRepoBase, build.id, {
      path: repo?.path ?? '',
      collectionId: repo?.['collection-id'] ?? null,
    })
    return build
  }

  type Staged = { temp: string; target: string; size: number }

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
    const temp = path.join(upload, 'tmp', `flatdepot-upload-${randomBytes(8).toString('hex')}`)
    const limit = Math.min(config.maxObjectSize, budget)
    const { counter, bytes } = limitBytes(limit, () =>
      limit === budget && budget < config.maxObjectSize
        ? `Build ${build.id} would exceed the build size limit of ${config.maxBuildSize} bytes with ${filename}`
        : `${filename} is larger than the object size limit of ${config.maxObjectSize} bytes`,
    )
    const verifier = name.kind === 'object' ? new ObjectVerifier(name.type) : null
    try {
      // The multipart part is piped, not handed to pipeline(): destroying it on an error would
      // stall the parser, which must be able to drain it and go on to the end of the request.
      const bridge = new PassThrough()
      source.pipe(bridge)
      try {
        await pipeline(bridge, counter, ...(verifier ? [verifier] : []), createWriteStream(temp, { mode: 0o644 }))
      } catch (error) {
        source.unpipe(bridge)
        source.resume()
        throw error
      }
      if (verifier && name.kind === 'object') {
        const actual = await verifier.digest()
        if (actual !== name.checksum) {
          throw new InvalidInputError(`Checksum mismatch for ${filename}: its content hashes to ${actual}`, 'file')
        }
      }
      return { temp, target: path.join(upload, name.path), size: bytes() }
    } catch (error) {
      await rm(temp, { force: true })
      if (error instanceof ObjectRejectedError) throw new InvalidInputError(`${filename} is not a valid OSTree object: ${error.message}`, 'file')
      throw error
    }
  }

  /**
   * Durable before acknowledged: every staged file's data reaches the disk (in parallel, on
   * libuv's pool), then the renames put them in place, then the directories holding them are
   * synced so the renames survive a crash too. Only then does the request answer.
   */
  async function publishStaged(staged: Staged[]): Promise<void> {
    const sync = async (file: string, data: boolean) => {
      const handle = await open(file, 'r')
      try {
        await (data ? handle.datasync() : handle.sync())
      } finally {
        await handle.close()
      }
    }
    await inBatches(staged, (entry) => sync(entry.temp, true))
    const dirs = [...new Set(staged.map((entry) => path.dirname(entry.target)))]
    await inBatches(dirs, (dir) => mkdir(dir, { recursive: true }))
    await inBatches(staged, (entry) => rename(entry.temp, entry.target))
    await inBatches(dirs, (dir) => sync(dir, false))
  }

  return {
    /**
     * flat-manager's multipart upload: each part's filename names the object. Parts are stored
     * one after another as they stream in; the answer is each part's size, in order. The first
     * bad part fails the request; parts stored before it stay (they were verified).
     */
    async receiveMultipart(actor: Actor, buildId: number, req: IncomingMessage): Promise<number[]> {
      const build = await uploadableBuild(actor, buildId)
      let budget = config.maxBuildSize - Number(build.uploadedBytes)
      const sizes: number[] = []
      const staged: Staged[] = []
      let failure: unknown = null
      let chain = Promise.resolve()
      // preservePath: see the name as sent, so a "../x" is refused rather than quietly shortened.
      const parser = busboy({ headers: req.headers, preservePath: true, limits: { fieldSize: 1024, fields: 100 } })
      parser.on('file', (_field, stream, info) => {
        chain = chain.then(async () => {
          if (failure) {
            stream.resume()
            return
          }
          try {
            if (!info.filename) throw new InvalidInputError('No filename for multipart item', 'file')
            const entry = await stageOne(build, info.filename, stream, budget)
            budget -= entry.size
            sizes.push(entry.size)
            staged.push(entry)
          } catch (error) {
            failure = error
            stream.resume()
          }
        })
      })
      try {
        await pipeline(req, parser)
      } catch (error) {
        failure ??= new InvalidInputError(`Malformed multipart upload: ${(error as Error).message}`, 'body')
      }
      await chain
      await publishStaged(staged)
      if (sizes.length) {
        const bytes = sizes.reduce((sum, size) => sum + size, 0)
        await run(commandMetadata(actor), (unit) =>
          unit.decide(buildDecider, buildStreamId(build.id), 'build', {
            type: 'RecordObjectsUploaded',
            data: { objects: sizes.length, bytes },
          }),
        )
      }
      if (failure) throw failure
      return sizes
    },

    /** Which of the named objects neither the upload repo nor the main repo has, in request order. */
    async missingObjects(actor: Actor, buildId: number, wanted: readonly string[]): Promise<string[]> {
      const build = await uploadableBuild(actor, buildId)
      const mainRepo = config.repos.get(build.repoName)?.path
      const upload = uploadDir(config.buildRepoBase, build.id)
      return wanted.filter((filename) => {
        const name = parseUploadName(filename)
        if (!name || name.kind !== 'object') throw new InvalidInputError(`Invalid object name ${JSON.stringify(filename)}`, 'wanted')
        return !existsSync(path.join(upload, name.path)) && !(mainRepo && existsSync(path.join(mainRepo, name.path)))
      })
    },

    buildDir: (buildId: number) => buildDir(config.buildRepoBase, buildId),
  }
}

export type UploadService = ReturnType<typeof createUploadService>
