import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { repoSigning, repoUrl, type Config, type RepoConfig } from '../../src/config/config.ts'
import { buildDecider, buildStreamId } from '../../src/domain/build/decider.ts'
import { parseRef } from '../../src/domain/build/names.ts'
import type { UnitOfWork } from '../../src/eventStore/unitOfWork.ts'
import type { PrismaClient } from '../../src/generated/prisma/client.ts'
import { buildDir, discardTree } from '../../src/ostree/buildRepo.ts'
import { appstreamName, flatpakref, writeFileAtomically } from '../../src/ostree/descriptors.ts'
import { buildCommitFrom, exportPublicKeys, revParse } from '../../src/ostree/flatpak.ts'
import { run } from '../../src/ostree/run.ts'
import { queueJobOnce } from '../../src/services/jobs.ts'
import type { JobLog } from '../jobLog.ts'
import { contentsNumber, type JobHandler } from './types.ts'

/**
 * Queues the repo update that makes publishes visible, batched by delay-update-secs: a publish
 * joins an update that has not started yet ("piggy-backs"), else queues one that starts after
 * the delay. Both run in the repo's queue, so an update never overlaps a publish.
 */
export async function scheduleRepoUpdate(
  unit: UnitOfWork,
  prisma: PrismaClient,
  config: Config,
  repo: string,
  log: JobLog,
): Promise<number> {
  const startAfter = new Date(unit.metadata.now.getTime() + config.delayUpdateSecs * 1000).toISOString()
  const { jobId, piggyBacked } = await queueJobOnce(unit, prisma, { kind: 'update-repo', repo, startAfter })
  log.message(piggyBacked ? `Piggy-backed on existing update job ${jobId}` : `Queued repository update job ${jobId} in ${config.delayUpdateSecs} secs`)
  return jobId
}

/** The apps' names from their appstream data, read from the build repo (the import copies it unchanged). */
async function appNames(buildRepo: string, refNames: readonly string[]): Promise<Map<string, string | null>> {
  const apps = refNames.filter((refName) => refName.startsWith('app/')).map((refName) => ({ refName, id: refName.split('/')[1]! }))
  return new Map(await Promise.all(apps.map(async ({ refName, id }) => [id, await appstreamName(buildRepo, refName, id)] as const)))
}

async function writeAppFlatpakrefs(config: Config, repo: RepoConfig, refs: Record<string, string>, names: Map<string, string | null>): Promise<void> {
  const signing = repoSigning(config, repo)
  const gpgKey = signing ? await exportPublicKeys(signing) : null
  for (const refName of Object.keys(refs)) {
    const ref = parseRef(refName)
    if (ref.kind !== 'app') continue
    const name = names.get(ref.id) ?? null
    const target = path.join(repo.path, 'appstream', `${ref.id}.flatpakref`)
    await mkdir(path.dirname(target), { recursive: true })
    await writeFileAtomically(
      target,
      flatpakref({
        id: ref.id,
        branch: ref.branch,
        title: name ?? ref.id,
        isRuntime: false,
        url: repoUrl(config, repo),
        deployCollectionId: repo['deploy-collection-id'] ? (repo['collection-id'] ?? null) : null,
        suggestRemoteName: repo['suggested-repo-name'] ?? repo.name,
        gpgKey,
        runtimeRepo: repo['runtime-repo-url'] ?? null,
      }),
    )
  }
}

/** flat-manager's publish job: hook, import into the main repo (signed), flatpakrefs, schedule the update. */
export const publishJob: JobHandler = {
  async run({ job, log, config, prisma, signal }) {
    const buildId = contentsNumber(job, 'build')
    const build = await prisma.build.findUniqueOrThrow({ where: { id: buildId }, include: { refs: true } })
    const repo = config.repos.get(build.repoName)
    if (!repo) throw new Error(`repo ${build.repoName} is no longer configured`)
    const dir = buildDir(config.buildRepoBase, buildId)
    const signing = repoSigning(config, repo)
    if (repo.hooks.publish) {
      log.message(`Running publish hook: ${repo.hooks.publish.join(' ')}`)
      const [file, ...args] = repo.hooks.publish as [string, ...string[]]
      await run(file, args, {
        cwd: dir,
        env: { FLAT_MANAGER_IS_REPUBLISH: 'false', FLAT_MANAGER_BUILD_ID: String(buildId), FLATDEPOT_BUILD_ID: String(buildId) },
        signal,
        onLine: log.output,
      })
    }
    log.message(`Importing build ${buildId} into ${repo.name}`)
    const collectionId = repo['collection-id']
    // Read while the import runs (after the publish hook, which may rewrite the appstream data).
    const names = appNames(dir, build.refs.map((ref) => ref.refName))
    names.catch(() => {}) // awaited after the import
    await buildCommitFrom({
      srcRepo: dir,
      destRepo: repo.path,
      signing,
      force: true,
      extraCollectionIds: collectionId ? build.extraIds.map((id) => `${collectionId}.${id}`) : [],
      onLine: log.output,
      signal,
    })
    const refs: Record<string, string> = {}
    for (const ref of build.refs) {
      if (ref.refName.startsWith('app/') || ref.refName.startsWith('runtime/')) refs[ref.refName] = await revParse(repo.path, ref.refName)
    }
    await writeAppFlatpakrefs(config, repo, refs, await names)
    return {
      results: { refs },
      record: async (unit) => {
        await unit.decide(buildDecider, buildStreamId(buildId), 'build', { type: 'RecordPublishSucceeded', data: { refs } })
        return { updateRepoJobId: await scheduleRepoUpdate(unit, prisma, config, repo.name, log) }
      },
      after: () => discardTree(config.buildRepoBase, dir),
    }
  },
  async recordFailure(unit, { job }, message) {
    await unit.decide(buildDecider, buildStreamId(contentsNumber(job, 'build')), 'build', {
      type: 'RecordPublishFailed',
      data: { reason: message },
    })
  },
}

/** Removes a build's files (its repo, uploads, flatpakrefs). */
export const purgeJob: JobHandler = {
  async run({ job, config, log }) {
    const buildId = contentsNumber(job, 'build')
    log.message(`Removing ${buildDir(config.buildRepoBase, buildId)}`)
    await discardTree(config.buildRepoBase, buildDir(config.buildRepoBase, buildId))
    return {
      results: {},
      record: async (unit) => {
        await unit.decide(buildDecider, buildStreamId(buildId), 'build', { type: 'RecordPurgeSucceeded', data: {} })
      },
    }
  },
  async recordFailure(unit, { job }, message) {
    await unit.decide(buildDecider, buildStreamId(contentsNumber(job, 'build')), 'build', {
      type: 'RecordPurgeFailed',
      data: { reason: `Failed to Purge build: ${message}` },
    })
  },
}
