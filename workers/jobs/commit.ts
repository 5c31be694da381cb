import { availableParallelism } from 'node:os'
import path from 'node:path'
import pMap from 'p-map'
import { buildSigning, serverBaseUrl } from '../../src/config/config.ts'
import { buildDecider, buildStreamId } from '../../src/domain/build/decider.ts'
import { parseRef } from '../../src/domain/build/names.ts'
import { flatpakref, writeFileAtomically } from '../../src/storage/descriptors.ts'
import { buildDir, discardTree, ensureBuildRepos, uploadDir } from '../../src/storage/buildArea.ts'
import { buildCommitFrom, buildUpdateRepo, exportPublicKeys, revParse } from '../../src/ostree/flatpak.ts'
import { appstreamName } from '../../src/ostree/ostree.ts'
import type { JobHandler } from './types.ts'

const noFlatpakref = /\.(Debug|Locale|Sources|Docs)$/

/**
 * flat-manager's commit job: each ref from the upload repo into the build repo with
 * `build-commit-from --untrusted` (which checks every object, so a missing upload fails here and
 * is named), signed with the build key; .flatpakref files; a build-repo summary. The build is
 * then committed with one pending check per configured check (the pipeline queues their jobs),
 * or Ready when there are none.
 */
export const commitJob: JobHandler<'commit'> = {
  async run({ payload, log, config, prisma, signal }) {
    const { build: buildId, endOfLife, endOfLifeRebase: rebase, tokenType } = payload
    const build = await prisma.build.findUniqueOrThrow({ where: { id: buildId }, include: { refs: { orderBy: { refName: 'asc' } } } })
    const repo = config.repos.get(build.repoName)
    if (!repo) throw new Error(`repo ${build.repoName} is no longer configured`)
    if (build.refs.length === 0) throw new Error('No refs in build')
    const dir = buildDir(config.buildRepoBase, buildId)
    await ensureBuildRepos(config.buildRepoBase, buildId, repo)
    const signing = buildSigning(config)
    const publicKeys = signing ? exportPublicKeys(signing) : Promise.resolve(null)
    publicKeys.catch(() => {}) // awaited after the commits
    const firstApp = build.refs.map((ref) => parseRef(ref.refName)).find((ref) => ref.kind === 'app')
    // Refs commit side by side: each is its own ostree transaction in the build repo, and one
    // large app no longer holds up its runtime, locale and debug refs.
    const committed = await pMap(
      build.refs,
      async (ref) => {
        log.message(`Committing ref ${ref.refName} (${ref.commit})`)
        // The app's name for its .flatpakref, read from the uploaded commit while it is committed.
        const parsed = parseRef(ref.refName)
        const name = parsed.kind === 'app' ? appstreamName(uploadDir(config.buildRepoBase, buildId), ref.commit, parsed.id) : Promise.resolve(null)
        await buildCommitFrom({
          srcRepo: uploadDir(config.buildRepoBase, buildId),
          srcRef: ref.commit,
          destRepo: dir,
          destRefs: [ref.refName],
          signing,
          untrusted: true,
          force: true,
          timestampNow: true,
          endOfLife,
          endOfLifeRebase: rebase && firstApp?.kind === 'app' ? `${firstApp.id}=${rebase}` : null,
          tokenType,
          onLine: log.output,
          signal,
        })
        return { refName: ref.refName, commit: await revParse(dir, ref.refName), name: await name }
      },
      { concurrency: Math.min(4, availableParallelism()) },
    )
    const refs: Record<string, string> = Object.fromEntries(committed.map((ref) => [ref.refName, ref.commit]))
    const names = new Map(committed.map((ref) => [ref.refName, ref.name]))
    const gpgKey = await publicKeys
    for (const refName of Object.keys(refs)) {
      const ref = parseRef(refName)
      if (ref.kind === 'screenshots' || (ref.kind === 'runtime' && noFlatpakref.test(ref.id))) continue
      const name = names.get(refName) ?? null
      await writeFileAtomically(
        path.join(dir, `${ref.id}.flatpakref`),
        flatpakref({
          id: ref.id,
          branch: ref.branch,
          title: `${name ?? ref.id} build nr ${buildId}`,
          isRuntime: ref.kind === 'runtime',
          url: `${serverBaseUrl(config)}/build-repo/${buildId}`,
          gpgKey,
        }),
      )
    }
    log.message('Updating build repo summary')
    await buildUpdateRepo({ repo: dir, signing, onLine: log.output, signal })
    const checks = Object.keys(repo.hooks.checks)
    return {
      results: { refs },
      record: async (unit) => {
        // Each check's job id is allocated with the decision; the pipeline queues the jobs.
        const queued = []
        for (const name of checks) queued.push({ name, jobId: await unit.nextId('job_ids') })
        await unit.decide(buildDecider, buildStreamId(buildId), 'build', {
          type: 'RecordCommitSucceeded',
          data: { refs, checks: queued },
        })
        if (queued.length === 0) log.message('Build is ready')
      },
      after: () => discardTree(config.buildRepoBase, uploadDir(config.buildRepoBase, buildId)),
    }
  },
}
