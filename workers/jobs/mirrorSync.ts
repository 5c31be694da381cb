import { repoSigning } from '../../src/config/config.ts'
import { parseRef } from '../../src/domain/build/names.ts'
import { runtimeRef, selectMirroredRefs } from '../../src/domain/repo/mirror.ts'
import { repoDecider, repoStreamId } from '../../src/domain/repo/repo.ts'
import { listRefs, revParse } from '../../src/ostree/flatpak.ts'
import { importCommits, mirrorDir, prepareMirrorRepo, pullFromUpstream, upstreamCommit, upstreamRefs } from '../../src/ostree/mirror.ts'
import { appRuntime } from '../../src/ostree/ostree.ts'
import { prune } from '../../src/ostree/prune.ts'
import type { RepoConfig } from '../../src/config/config.ts'
import { buildDecider, buildStreamId } from '../../src/domain/build/decider.ts'
import { buildDir, ensureBuildRepos } from '../../src/storage/buildArea.ts'
import type { JobContext, JobHandler, JobOutcome } from './types.ts'
import { configuredRepo } from './updateRepo.ts'

const idOf = (refName: string) => {
  const ref = parseRef(refName)
  return ref.kind === 'screenshots' ? null : ref.id
}

/**
 * Brings a repo's refs from one upstream up to date, in the repo's queue. The upstream's refs are
 * pulled into a repo of their own with every commit's signature (and the summary's) checked
 * against the upstream's key: a pull that fails verification fails the job, and nothing of it
 * reaches the served repo. The changed commits are then copied in unchanged (they keep upstream's
 * signature, end-of-life and rebase metadata), signed by the repo's key as well, and the refs
 * moved. An id the repo already has from elsewhere (uploaded builds, another upstream) is
 * refused, naming its owner. The pipeline then updates the repo (appstream, signed summary,
 * static deltas by the repo's policy).
 */
/**
 * With `review`, what changed lands as a build: its repo gets the upstream commits unchanged
 * (verified already), it is committed at once, the repo's checks run, and it waits for a
 * reviewer or the publish command like any build (publishing it imports the same commits). A
 * build already waiting with exactly these commits is not made twice.
 */
async function reviewBuild(context: JobContext<'mirror-sync'> & { repo: RepoConfig; dir: string; changed: Record<string, string> }): Promise<JobOutcome> {
  const { payload, log, config, prisma, signal, repo, dir, changed, nextId } = context
  const waiting = await prisma.build.findMany({
    where: { repoName: repo.name, mirrorUpstream: payload.upstream, repoState: { in: ['Ready', 'Validating'] }, publishedState: { in: ['Unpublished', 'Failed'] } },
    include: { refs: true },
  })
  const same = waiting.find((build) => build.refs.length === Object.keys(changed).length && build.refs.every((ref) => changed[ref.refName] === ref.commit))
  if (same) {
    log.message(`Build ${same.id} already holds these commits and waits for review`)
    return { results: { upstream: payload.upstream, refs: {}, waiting: same.id } }
  }
  const buildId = await nextId('build_ids')
  await ensureBuildRepos(config.buildRepoBase, buildId, repo)
  await importCommits(buildDir(config.buildRepoBase, buildId), dir, changed, null, { onLine: log.output, signal })
  log.message(`Made build ${buildId} of ${Object.keys(changed).join(', ')}: it waits for its checks and review before it is published`)
  return {
    results: { upstream: payload.upstream, refs: {}, build: buildId, pending: changed },
    record: async (unit) => {
      const stream = buildStreamId(buildId)
      await unit.decide(buildDecider, stream, 'build', {
        type: 'CreateBuild',
        data: { buildId, repo: repo.name, appId: null, publicDownload: false, buildLogUrl: null, tokenName: `mirror:${payload.upstream}`, tokenType: null, mirrorUpstream: payload.upstream },
      })
      for (const [refName, commit] of Object.entries(changed)) {
        await unit.decide(buildDecider, stream, 'build', { type: 'CreateBuildRef', data: { refId: await unit.nextId('build_ref_ids'), refName, commit, buildLogUrl: null } })
      }
      const checks = []
      for (const name of Object.keys(repo.hooks.checks)) checks.push({ name, jobId: await unit.nextId('job_ids') })
      await unit.decide(buildDecider, stream, 'build', { type: 'RecordMirrorImported', data: { refs: changed, checks } })
    },
  }
}

export const mirrorSyncJob: JobHandler<'mirror-sync'> = {
  async run(context) {
    const { payload, log, config, signal, read, prisma } = context
    const repo = configuredRepo(config, payload.repo)
    const upstream = repo.upstreams[payload.upstream]
    if (!upstream) throw new Error(`repo ${repo.name} has no upstream "${payload.upstream}" (configured: ${Object.keys(repo.upstreams).join(', ') || 'none'})`)
    const dir = mirrorDir(config.buildRepoBase, repo.name, payload.upstream)
    const output = { onLine: log.output, signal }
    await prepareMirrorRepo(dir, { url: upstream.url, gpgKeyFile: upstream['gpg-key'] })

    log.message(`Reading ${payload.upstream}'s refs (${upstream.url})`)
    const available = await upstreamRefs(dir, output)
    const selected = selectMirroredRefs(available, upstream.refs)
    log.message(`Pulling ${selected.length} refs with their signatures checked: ${selected.join(', ') || 'none match the rules'}`)
    await pullFromUpstream(dir, selected, output)
    // The runtimes the apps of `with-runtime` rules name, from each app's own metadata.
    const wanted = new Set(selected)
    const appsWithRuntime = selectMirroredRefs(
      selected.filter((name) => name.startsWith('app/')),
      upstream.refs.filter((rule) => rule['with-runtime']),
    )
    for (const refName of appsWithRuntime) {
      const runtime = await appRuntime(dir, `upstream:${refName}`)
      if (runtime && available.includes(runtimeRef(runtime))) wanted.add(runtimeRef(runtime))
    }
    const runtimes = [...wanted].filter((refName) => !selected.includes(refName))
    if (runtimes.length) {
      log.message(`Pulling the runtimes the apps name: ${runtimes.join(', ')}`)
      await pullFromUpstream(dir, runtimes, output)
    }

    // What changed, and whether each id is this upstream's to change.
    const state = await read(repoDecider, repoStreamId(repo.name), 'repo')
    const mirrored = state.status === 'Configured' ? state.mirrored : {}
    const present = new Set(await listRefs(repo.path))
    const changed: Record<string, string> = {}
    const conflicts: string[] = []
    for (const refName of [...wanted].sort()) {
      const commit = await upstreamCommit(dir, refName)
      const current = present.has(refName) ? await revParse(repo.path, refName) : null
      if (current === commit) continue
      const id = idOf(refName)
      if (current !== null && id !== null && mirrored[id] !== payload.upstream) {
        const owner = mirrored[id]
          ? `upstream ${mirrored[id]}`
          : await prisma.buildRef
              .findFirst({ where: { refName, build: { repoName: repo.name, publishedState: 'Published' } }, orderBy: { buildId: 'desc' }, select: { buildId: true } })
              .then((found) => (found ? `uploaded build ${found.buildId}` : 'something else (not mirrored from here)'))
        conflicts.push(`${refName} is published in repo ${repo.name} by ${owner}`)
        continue
      }
      changed[refName] = commit
    }
    if (conflicts.length) {
      throw new Error(`Not mirrored from ${payload.upstream}: ${conflicts.join('; ')}. Delete those refs from the repo, or take them out of the upstream's refs`)
    }
    if (upstream.review && Object.keys(changed).length) return reviewBuild({ ...context, repo, dir, changed })
    await importCommits(repo.path, dir, changed, repoSigning(config, repo), output)
    if (Object.keys(changed).length === 0) log.message('Already up to date')
    // The mirror repo keeps only what its refs point at: the next pull starts from there.
    await prune(dir, { depth: 0, keepYoungerThanDays: null }, output)
    return {
      results: { upstream: payload.upstream, refs: changed, unchanged: wanted.size - Object.keys(changed).length },
      record: async (unit) => {
        await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', { type: 'RecordMirrored', data: { upstream: payload.upstream, refs: changed } })
      },
    }
  },
}
