import pMap from 'p-map'
import { deltaDepth, deltaName, planDeltas, wantedDeltas } from '../../src/domain/repo/deltas.ts'
import { repoDecider, repoStreamId } from '../../src/domain/repo/repo.ts'
import { generateDelta, listDeltas, refHistory } from '../../src/ostree/deltas.ts'
import { listRefs } from '../../src/ostree/flatpak.ts'
import { removeRetiredDeltas } from '../../src/storage/deltas.ts'
import type { JobHandler } from './types.ts'
import { configuredRepo } from './updateRepo.ts'

/** Retired deltas stay servable this long: clients that fetched the summary before still ask for them. */
const retiredDeltaGraceMs = 60 * 60_000

/**
 * Static deltas by the repo's depth policy (flat-manager's planning), in the repo's delta queue:
 * the missing ones are generated (`local-delta-threads` at a time; a failure is logged, not
 * fatal) and the unwanted ones recorded on the repo's stream for the next repo update to retire.
 * The pipeline queues that update when there is either, so the summary indexes exactly what
 * `deltas/` holds.
 */
export const deltaJob: JobHandler<'delta'> = {
  async run({ payload, log, config, signal }) {
    const repo = configuredRepo(config, payload.repo)
    const refs = await listRefs(repo.path)
    const wanted = (
      await pMap(refs, async (ref) => {
        const depth = deltaDepth(ref, repo.deltas, repo['appstream-delta-depth'])
        return depth > 0 ? wantedDeltas(await refHistory(repo.path, ref, depth), depth) : []
      }, { concurrency: 4 })
    ).flat()
    const { missing, unwanted } = planDeltas(wanted, await listDeltas(repo.path))
    log.message(`Generating ${missing.length} static deltas (${wanted.length} wanted, ${unwanted.length} to retire)`)
    const generated: string[] = []
    const failed: string[] = []
    await pMap(missing, async (delta) => {
      try {
        await generateDelta(repo.path, delta, { onLine: log.output, signal })
        generated.push(deltaName(delta))
        log.message(` ${deltaName(delta)}`)
      } catch (error) {
        if (signal.aborted) throw error
        failed.push(deltaName(delta))
        log.message(` failed to generate ${deltaName(delta)}: ${error instanceof Error ? error.message : String(error)}`)
      }
    }, { concurrency: config.localDeltaThreads })
    for (const name of await removeRetiredDeltas(repo.path, retiredDeltaGraceMs)) log.message(` Deleted old delta ${name}`)
    return {
      results: { generated: generated.length, failed, unwanted: unwanted.length },
      record: async (unit) => {
        await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', {
          type: 'RecordDeltasGenerated',
          data: { generated, failed, unwanted: unwanted.map(deltaName) },
        })
      },
    }
  },
}
