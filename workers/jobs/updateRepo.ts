import path from 'node:path'
import { repoSigning, repoUrl, type Config, type RepoConfig } from '../../src/config/config.ts'
import { flatpakrepo, writeFileAtomically } from '../../src/ostree/descriptors.ts'
import pMap from 'p-map'
import { deltaDepth, deltaName, planDeltas, wantedDeltas } from '../../src/domain/repo/deltas.ts'
import { generateDelta, listDeltas, refHistory, removeRetiredDeltas, retireDelta } from '../../src/ostree/deltas.ts'
import { buildUpdateRepo, exportPublicKeys, listRefs } from '../../src/ostree/flatpak.ts'
import { publishSummarySnapshot } from '../../src/ostree/summary.ts'
import { run } from '../../src/ostree/run.ts'
import { queueJobOnce } from '../../src/services/jobs.ts'
import { contentsString, type JobHandler } from './types.ts'

function repoFor(config: Config, name: string | null): RepoConfig {
  const repo = name ? config.repos.get(name) : undefined
  if (!repo) throw new Error(`repo ${name ?? '(none)'} is not configured`)
  return repo
}

/**
 * Makes what was published installable: appstream branches and a signed summary in one
 * `build-update-repo`. Static deltas follow in their own job, so a client sees the new version
 * as soon as its commit and summary are in place (deltas take most of a publish's time).
 */
export const updateRepoJob: JobHandler = {
  async run({ job, log, config, prisma, signal }) {
    const repo = repoFor(config, contentsString(job, 'repo'))
    const signing = repoSigning(config, repo)
    log.message('Regenerating appstream branches and the summary')
    await buildUpdateRepo({ repo: repo.path, signing, title: repo.title ?? null, defaultBranch: repo['default-branch'] ?? null, onLine: log.output, signal })
    await publishSummarySnapshot(repo.path)
    const gpgKey = signing ? await exportPublicKeys(signing) : null
    const descriptor = path.join(repo.path, `${repo.name.replaceAll('/', '-')}.flatpakrepo`)
    await writeFileAtomically(descriptor, flatpakrepo({ title: repo.title ?? repo.name, url: repoUrl(config, repo), defaultBranch: repo['default-branch'] ?? null, gpgKey }))
    if (repo['post-publish-script']) {
      log.message(`Running post-publish script ${repo['post-publish-script']}`)
      await run(repo['post-publish-script'], [repo.name, repo.path], { signal, onLine: log.output })
    }
    return {
      results: {},
      record: async (unit) => {
        const { jobId, piggyBacked } = await queueJobOnce(unit, prisma, { kind: 'delta', repo: repo.name })
        if (!piggyBacked) log.message(`Queued static delta job ${jobId}`)
      },
    }
  },
}

/** Retired deltas stay servable this long: clients that fetched the summary before still ask for them. */
const retiredDeltaGraceMs = 60 * 60_000

/**
 * Static deltas by the repo's depth policy (flat-manager's planning): the missing ones are
 * generated (`local-delta-threads` at a time; a failure is logged, not fatal), the unwanted ones
 * retired, then the summary is re-signed so it indexes exactly what `deltas/` holds.
 */
export const deltaJob: JobHandler = {
  async run({ job, log, config, signal }) {
    const repo = repoFor(config, contentsString(job, 'repo'))
    const signing = repoSigning(config, repo)
    const refs = await listRefs(repo.path)
    const wanted = (
      await pMap(refs, async (ref) => {
        const depth = deltaDepth(ref, repo.deltas, repo['appstream-delta-depth'])
        return depth > 0 ? wantedDeltas(await refHistory(repo.path, ref, depth), depth) : []
      }, { concurrency: 4 })
    ).flat()
    const { missing, unwanted } = planDeltas(wanted, await listDeltas(repo.path))
    log.message(`Generating ${missing.length} static deltas (${wanted.length} wanted, ${unwanted.length} to retire)`)
    const failed: string[] = []
    await pMap(missing, async (delta) => {
      try {
        await generateDelta(repo.path, delta, { onLine: log.output, signal })
        log.message(` ${deltaName(delta)}`)
      } catch (error) {
        if (signal.aborted) throw error
        failed.push(deltaName(delta))
        log.message(` failed to generate ${deltaName(delta)}: ${error instanceof Error ? error.message : String(error)}`)
      }
    }, { concurrency: config.localDeltaThreads })
    for (const delta of unwanted) {
      await retireDelta(repo.path, delta)
      log.message(` Retired delta ${deltaName(delta)}`)
    }
    for (const name of await removeRetiredDeltas(repo.path, retiredDeltaGraceMs)) log.message(` Deleted old delta ${name}`)
    log.message('Updating the summary')
    await buildUpdateRepo({ repo: repo.path, signing, noUpdateAppstream: true, onLine: log.output, signal })
    await publishSummarySnapshot(repo.path)
    return { results: { generated: missing.length - failed.length, failed, retired: unwanted.length } }
  },
}
