import { writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import path from 'node:path'
import pMap from 'p-map'
import { buildSigning, serverBaseUrl } from '../../src/config/config.ts'
import { buildDecider, buildStreamId } from '../../src/domain/build/decider.ts'
import { parseRef } from '../../src/domain/build/names.ts'
import { appstreamName, flatpakref } from '../../src/ostree/descriptors.ts'
import { buildDir, discardTree, ensureBuildRepos, uploadDir } from '../../src/ostree/buildRepo.ts'
import { buildCommitFrom, buildUpdateRepo, exportPublicKeys, revParse } from '../../src/ostree/flatpak.ts'
import { queueJob } from '../../src/services/jobs.ts'
import { contentsNumber, contentsString, type JobHandler } from './types.ts'

const noFlatpakref = /\.(Debug|Locale|Sources|Docs)$/

/**
 * flat-manager's commit job: each ref from the upload repo into the build repo with
 * `build-commit-from --untrusted` (which checks every object, so a missing upload fails here and
 * is named), signed with the build key; .flatpakref files; a build-repo summary. Then the
 * configured checks are queued, or the build is Ready.
 */
export const commitJob: JobHandler = {
  async run({ job, log, config, prisma, signal }) {
    const buildId = contentsNumber(job, 'build')
    const build = await prisma.build.findUniqueOrThrow({ where: { id: buildId }, include: { refs: { orderBy: { refName: 'asc' } } } })
    const repo = config.repos.get(build.repoName)
    if (!repo) throw new Error(`repo ${build.repoName} is no longer configured`)
    if (build.refs.length === 0) throw new Error('No refs in build')
    const dir = buildDir(config.buildRepoBase, buildId)
    await ensureBuildRepos(config.buildRepoBase, buildId, repo)
    const signing = buildSigning(config)
    const publicKeys = signing ? exportPublicKeys(signing) : Promise.resolve(null)
    publicKeys.catch(() => {}) // awaited after the commits
    const endOfLife = contentsString(job, 'endOfLife')
    const rebase = contentsString(job, 'endOfLifeRebase')
    const firstApp = build.refs.map((ref) => parseRef(ref.refName)).find((ref) => ref.kind === 'app')
    const tokenType = typeof job.contents.tokenType === 'number' ? job.contents.tokenType : null
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
      await writeFile(
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
        const queued = []
        for (const name of checks) {
          const jobId = await unit.nextId('job_ids')
          queued.push({ name, jobId })
          await queueJob(unit, { jobId, kind: 'check', repo: null, buildId, contents: { build: buildId, name } })
        }
        await unit.decide(buildDecider, buildStreamId(buildId), 'build', {
          type: 'RecordCommitSucceeded',
          data: { refs, checks: queued },
        })
        log.message(queued.length ? `Queued checks: ${queued.map((c) => `${c.name} (job ${c.jobId})`).join(', ')}` : 'Build is ready')
      },
      after: () => discardTree(config.buildRepoBase, uploadDir(config.buildRepoBase, buildId)),
    }
  },
  async recordFailure(unit, { job }, message) {
    await unit.decide(buildDecider, buildStreamId(contentsNumber(job, 'build')), 'build', {
      type: 'RecordCommitFailed',
      data: { reason: message },
    })
  },
}
