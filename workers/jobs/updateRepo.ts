import path from 'node:path'
import { repoSigning, repoUrl, type Config, type RepoConfig } from '../../src/config/config.ts'
import { flatpakrepo, writeFileAtomically } from '../../src/ostree/descriptors.ts'
import pMap from 'p-map'
import { deltaDepth, deltaName, planDeltas, wantedDeltas } from '../../src/domain/repo/deltas.ts'
import { generateDelta, listDeltas, readRetireList, refHistory, removeRetiredDeltas, retireDelta, writeRetireList } from '../../src/ostree/deltas.ts'
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
 * Makes what was published installable: retires the deltas the last delta job found unwanted
 * (here, in the repo's queue, so no summary is being written meanwhile), then appstream
 * branches and a signed summary in one `build-update-repo`, served from a snapshot taken once
 * complete. Static deltas follow in their own job and queue: a client sees the new version as
 * soon as its commit and summary are in place, and the next publish need not wait for them.
 */
export const updateRepoJob: JobHandler = {
  async run({ job, log, config, prisma, signal }) {
    const repo = repoFor(config, contentsString(job, 'repo'))
    const signing = repoSigning(config, repo)
    const retiring = await readRetireList(repo.path)
    for (const delta of retiring.deltas) {
      await retireDelta(repo.path, delta)
      log.message(`Retired delta ${deltaName(delta)}`)
    }
    log.message('Regenerating appstream branches and the summary')
    await buildUpdateRepo({ repo: repo.path, signing, title: repo.title ?? null, defaultBranch: repo['default-branch'] ?? null, onLine: log.output, signal })
    await publishSummarySnapshot(repo.path)
    await retiring.done()
    const gpgKey = signing ? await exportPublicKeys(signing) : null
    const descriptor = path.join(repo.path, `${repo.name.replaceAll('/', '-')}.flatpakrepo`)
    await writeFileAtomically(descriptor, flatpakrepo({ title: repo.title ?? repo.name, url: repoUrl(config, repo), defaultBranch: repo['default-branch'] ?? null, gpgKey }))
    if (repo['post-publish-script']) {
      log.message(`Running post-publish script ${repo['post-publish-script']}`)
      await run(repo['post-publish-script'], [repo.name, repo.path], { signal, onLine: log.output })
    }
    return {
      results: { retired: retiring.deltas.length },
      record: async (unit) => {
        const { jobId, piggyBacked } = await queueJobOnce(unit, prisma, { kind: 'delta', repo: repo.name })
        if (!piggyBacked) log.message(`Queued static delta job ${jobId}`)
        return { deltaJobId: jobId }
      },
    }
  },
}

/** Retired deltas stay servable this long: clients that fetched the summary before still ask for them. */
const retiredDeltaGraceMs = 60 * 60_000

/**
 * Static deltas by the repo's depth policy (flat-manager's planning), in the repo's delta queue:
 * the missing ones are generated (`local-delta-threads` at a time; a failure is logged, not
 * fatal) and the unwanted ones listed for the next repo update to retire. A repo update is
 * queued when there is either, so the summary indexes exactly what `deltas/` holds; that update
 * queues this job again, which then finds nothing to do.
 */
export const deltaJob: JobHandler = {
  async run({ job, log, config, prisma, signal }) {
    const repo = repoFor(config, contentsString(job, 'repo'))
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
    await writeRetireList(repo.path, unwanted)
    for (const name of await removeRetiredDeltas(repo.path, retiredDeltaGraceMs)) log.message(` Deleted old delta ${name}`)
    const generated = missing.length - failed.length
    return {
      results: { generated, failed, unwanted: unwanted.length },
      record: async (unit) => {
        if (generated === 0 && unwanted.length === 0) return
        const { jobId, piggyBacked } = await queueJobOnce(unit, prisma, { kind: 'update-repo', repo: repo.name })
        log.message(piggyBacked ? `The summary follows in update job ${jobId}` : `Queued repository update job ${jobId} for the summary`)
        return { updateRepoJobId: jobId }
      },
    }
  },
}
