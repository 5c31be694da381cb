import { existsSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { repoDecider, repoStreamId } from '../../src/domain/repo/repo.ts'
import { clearHolds, hasCommit, holdCommit, prune, pruneDryRun, pullLocal, refCommits } from '../../src/ostree/prune.ts'
import { buildDir, uploadDir } from '../../src/storage/buildArea.ts'
import { bytes } from '../../src/util/format.ts'
import { imagesToPrune } from '../../src/domain/oci/retention.ts'
import { collectBlobGarbage, imageBlobs, ociRoot } from '../../src/storage/ociStore.ts'
import type { JobContext, JobHandler } from './types.ts'
import { configuredRepo } from './updateRepo.ts'

/** An upload that changed this recently may still skip objects because the repo has them. */
const activeUploadMs = 60 * 60_000
/** How long a prune waits for such uploads to create their refs before it gives up. */
const uploadWaitMs = 10 * 60_000
const uploadPollMs = 5_000


/**
 * Builds that have not been published (nor failed or purged) whose repos borrow from this one:
 * an upload skips the objects the repo already has, and commit and publish read them from it.
 * The ones still uploading without refs are waited for: what they borrow is not known yet.
 */
async function buildsInProgress({ prisma, payload, log, signal }: JobContext<'prune'>) {
  const deadline = Date.now() + uploadWaitMs
  for (;;) {
    const builds = await prisma.build.findMany({
      where: { repoName: payload.repo, repoState: { in: ['Uploading', 'Committing', 'Ready'] }, publishedState: { not: 'Published' } },
      select: { id: true, repoState: true, updatedAt: true, refs: { select: { commit: true } } },
      orderBy: { id: 'asc' },
    })
    const uploading = builds.filter((build) => build.repoState === 'Uploading' && build.refs.length === 0 && Date.now() - build.updatedAt.getTime() < activeUploadMs)
    if (uploading.length === 0) return builds
    const ids = uploading.map((build) => build.id).join(', ')
    if (Date.now() > deadline) {
      throw new Error(
        `Builds ${ids} are still uploading into repo ${payload.repo} and may borrow objects from it: prune again once they are committed (or purge them). ` +
          'An upload quiet for an hour no longer holds a prune back.',
      )
    }
    log.message(`Waiting for builds ${ids} to finish uploading (their objects may come from this repo)`)
    await sleep(uploadPollMs, undefined, { signal })
  }
}

/** Blobs written or used this recently are never collected (an upload waiting for its manifest, an image being recorded). */
const blobGraceMs = 60 * 60_000

/**
 * The repo's OCI images by the same policy (src/domain/oci/retention.ts), and the blobs no image
 * of any repo uses any more (the store is shared) once they are past the grace time. The images
 * leave the read model with the RepoPruned event; their blobs go at this prune when no other
 * image uses them.
 */
async function pruneOciImages({ prisma, payload, config, log }: JobContext<'prune'>, policy: { depth: number; keepYoungerThanDays: number | null }) {
  const root = ociRoot(config.dataDir)
  const images = await prisma.ociImage.findMany({ select: { repoName: true, repository: true, digest: true, ref: true, architecture: true, tags: true, createdAt: true } })
  const removed = imagesToPrune(images.filter((image) => image.repoName === payload.repo), policy, new Date())
  const gone = new Set(removed.map((image) => `${image.repository}@${image.digest}`))
  const used = new Set<string>()
  for (const image of images) {
    if (gone.has(`${image.repository}@${image.digest}`)) continue
    for (const digest of await imageBlobs(root, image.digest).catch(() => [image.digest])) used.add(digest)
  }
  const blobs = await collectBlobGarbage(root, used, { graceMs: blobGraceMs, dryRun: payload.dryRun })
  log.message(`${payload.dryRun ? 'Would remove' : 'Removing'} ${removed.length} OCI images and ${blobs.blobs} blobs no image uses, ${bytes(blobs.bytes)}`)
  return { removed: removed.map(({ repository, digest }) => ({ repository, digest })), blobs }
}

/**
 * Prunes a repo in its queue (never beside a publish or an update): the objects no kept commit
 * needs go. Kept: `depth` parents behind each ref's commit, commits younger than
 * `keepYoungerThanDays`, what builds in progress borrow (their commits are copied in and held),
 * and each ref's latest rollback (the commit it left and the one it went back to), so it can be
 * undone. A dry run counts the same and deletes nothing; a real prune counts first, so the
 * report names exactly what went. The pipeline then plans the deltas again: those whose commits
 * went are retired by the repo update that follows.
 */
export const pruneJob: JobHandler<'prune'> = {
  async run(context) {
    const { payload, log, config, signal, read } = context
    const repo = configuredRepo(config, payload.repo)
    const policy = { depth: payload.depth, keepYoungerThanDays: payload.keepYoungerThanDays }
    const stale = await clearHolds(repo.path)
    if (stale) log.message(`Cleared ${stale} holds an interrupted prune left`)

    const heldBuilds: number[] = []
    let heldCommits = 0
    try {
      for (const build of await buildsInProgress(context)) {
        const built = buildDir(config.buildRepoBase, build.id)
        const uploaded = uploadDir(config.buildRepoBase, build.id)
        // Committed: the build repo's refs; still uploading or committing: the uploaded commits.
        const fromBuild = build.repoState === 'Ready' && existsSync(built) ? await refCommits(built) : []
        const [source, commits] = fromBuild.length ? [built, fromBuild] : [uploaded, build.refs.map((ref) => ref.commit)]
        if (commits.length === 0 || !existsSync(source)) continue
        try {
          await pullLocal(repo.path, source, commits, { signal })
        } catch (error) {
          throw new Error(`Could not hold build ${build.id}'s commits through the prune (${error instanceof Error ? error.message : String(error)}): prune again once it has moved on`)
        }
        for (const [index, commit] of commits.entries()) await holdCommit(repo.path, `build-${build.id}/${index}`, commit)
        heldBuilds.push(build.id)
        heldCommits += commits.length
      }
      const state = await read(repoDecider, repoStreamId(repo.name), 'repo')
      const rollbacks = state.status === 'Configured' ? Object.entries(state.rollbacks) : []
      for (const [index, [, rollback]] of rollbacks.entries()) {
        for (const [which, commit] of [['from', rollback.from], ['to', rollback.to]] as const) {
          if (!(await hasCommit(repo.path, commit))) continue
          await holdCommit(repo.path, `rollback-${index}/${which}`, commit)
          heldCommits += 1
        }
      }
      if (heldBuilds.length) log.message(`Holding the commits of builds in progress: ${heldBuilds.join(', ')}`)
      if (rollbacks.length) log.message(`Holding the commits of ${rollbacks.length} rollbacks`)

      const kept = `${policy.depth} parents behind each ref${policy.keepYoungerThanDays === null ? '' : ` and commits younger than ${policy.keepYoungerThanDays} days`}`
      log.message(`${payload.dryRun ? 'Dry run: counting' : 'Counting'} what a prune of ${repo.name} keeping ${kept} removes`)
      const count = await pruneDryRun(repo.path, policy, { onLine: log.output, signal })
      log.message(`${payload.dryRun ? 'Would remove' : 'Removing'} ${count.objects} objects, ${bytes(count.bytes)}`)
      if (!payload.dryRun && count.objects > 0) {
        const deleted = await prune(repo.path, policy, { onLine: log.output, signal })
        if (deleted !== count.objects) log.message(`ostree deleted ${deleted} objects where ${count.objects} were counted`)
      }
      const oci = repo.oci ? await pruneOciImages(context, policy) : null
      const report = { objects: count.objects, bytes: count.bytes, heldBuilds, heldCommits, ...(oci ? { ociImages: oci.removed } : {}) }
      return {
        results: { dryRun: payload.dryRun, ...policy, ...report, ...(oci ? { ociBlobs: oci.blobs } : {}) },
        record: async (unit) => {
          await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', { type: 'RecordPruned', data: { ...policy, dryRun: payload.dryRun, ...report } })
        },
      }
    } finally {
      await clearHolds(repo.path)
    }
  },
}
