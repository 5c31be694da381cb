import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { repoSigning, repoUrl, type Config, type RepoConfig } from '../../src/config/config.ts'
import { buildDecider, buildStreamId } from '../../src/domain/build/decider.ts'
import { parseRef } from '../../src/domain/build/names.ts'
import { globMatches } from '../../src/domain/repo/deltas.ts'
import { buildCommitFrom, exportPublicKeys, revParse } from '../../src/ostree/flatpak.ts'
import { appstreamName } from '../../src/ostree/ostree.ts'
import { buildDir, discardTree } from '../../src/storage/buildArea.ts'
import { flatpakref, writeFileAtomically } from '../../src/storage/descriptors.ts'
import { hookEnvironment, runHook } from '../hooks.ts'
import type { JobContext, JobHandler, JobOutcome } from './types.ts'
import { repoDecider, repoStreamId } from '../../src/domain/repo/repo.ts'
import { importCommits } from '../../src/ostree/mirror.ts'

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

/**
 * A build's refs by the subsets they join: a ref joins each subset one of whose `ids` globs
 * matches its id (an extension such as `<app>.Locale` matches by its own id).
 */
export function subsetGroups(repo: RepoConfig, refNames: readonly string[]): { subsets: string[]; refs: string[] }[] {
  const groups = new Map<string, { subsets: string[]; refs: string[] }>()
  for (const refName of refNames) {
    const ref = parseRef(refName)
    const subsets = Object.entries(repo.subsets)
      .filter(([, subset]) => ref.kind !== 'screenshots' && subset.ids.some((glob) => globMatches(glob, ref.id)))
      .map(([name]) => name)
    const key = subsets.join('\n')
    const group = groups.get(key) ?? { subsets, refs: [] }
    group.refs.push(refName)
    groups.set(key, group)
  }
  return [...groups.values()]
}

/**
 * A reviewed mirror build goes in as the upstream made it: the same commits (their ids, the
 * upstream's signature and metadata), signed by the repo's key as well. The publish hook does not
 * run: a hook that rewrote the commits would drop the upstream's signature.
 */
async function publishMirrored(options: {
  buildId: number
  upstream: string
  refNames: readonly string[]
  dir: string
  repo: RepoConfig
  signing: ReturnType<typeof repoSigning>
  log: JobContext<'publish'>['log']
  signal: AbortSignal
  config: Config
}): Promise<JobOutcome> {
  const { buildId, upstream, dir, repo, signing, log, signal } = options
  log.message(`Importing mirror build ${buildId} (from upstream ${upstream}) into ${repo.name} unchanged`)
  const refs: Record<string, string> = {}
  for (const refName of options.refNames) refs[refName] = await revParse(dir, refName)
  await importCommits(repo.path, dir, refs, signing, { onLine: log.output, signal })
  return {
    results: { refs, upstream },
    record: async (unit) => {
      await unit.decide(buildDecider, buildStreamId(buildId), 'build', { type: 'RecordPublishSucceeded', data: { refs } })
      await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', { type: 'RecordMirrored', data: { upstream, refs } })
    },
    after: () => discardTree(options.config.buildRepoBase, dir),
  }
}

/**
 * flat-manager's publish job: hook, import into the main repo (signed), flatpakrefs. The
 * pipeline then schedules the repo update that makes it installable.
 */
export const publishJob: JobHandler<'publish'> = {
  async run({ job, payload, log, config, prisma, signal }) {
    const buildId = payload.build
    const build = await prisma.build.findUniqueOrThrow({ where: { id: buildId }, include: { refs: true } })
    const repo = config.repos.get(build.repoName)
    if (!repo) throw new Error(`repo ${build.repoName} is no longer configured`)
    const dir = buildDir(config.buildRepoBase, buildId)
    const signing = repoSigning(config, repo)
    if (build.mirrorUpstream) return publishMirrored({ buildId, upstream: build.mirrorUpstream, refNames: build.refs.map((ref) => ref.refName), dir, repo, signing, log, signal, config })
    if (repo.hooks.publish) {
      await runHook('publish hook', repo.hooks.publish, { cwd: dir, env: hookEnvironment({ buildId, jobId: job.jobId, isRepublish: false }), signal, log })
    }
    log.message(`Importing build ${buildId} into ${repo.name}`)
    const collectionId = repo['collection-id']
    // Read while the import runs (after the publish hook, which may rewrite the appstream data).
    const names = appNames(dir, build.refs.map((ref) => ref.refName))
    names.catch(() => {}) // awaited after the import
    // One import, or with subsets configured one per set of subsets its refs join.
    const groups = Object.keys(repo.subsets).length ? subsetGroups(repo, build.refs.map((ref) => ref.refName)) : [{ subsets: [], refs: null }]
    for (const group of groups) {
      if (group.subsets.length) log.message(`${group.refs?.join(', ')}: into subsets ${group.subsets.join(', ')}`)
      await buildCommitFrom({
        srcRepo: dir,
        destRepo: repo.path,
        ...(group.refs && { destRefs: group.refs }),
        signing,
        force: true,
        subsets: group.subsets,
        extraCollectionIds: collectionId ? build.extraIds.map((id) => `${collectionId}.${id}`) : [],
        onLine: log.output,
        signal,
      })
    }
    const refs: Record<string, string> = {}
    for (const ref of build.refs) {
      if (ref.refName.startsWith('app/') || ref.refName.startsWith('runtime/')) refs[ref.refName] = await revParse(repo.path, ref.refName)
    }
    await writeAppFlatpakrefs(config, repo, refs, await names)
    return {
      results: { refs },
      record: async (unit) => {
        await unit.decide(buildDecider, buildStreamId(buildId), 'build', { type: 'RecordPublishSucceeded', data: { refs } })
      },
      after: () => discardTree(config.buildRepoBase, dir),
    }
  },
}
