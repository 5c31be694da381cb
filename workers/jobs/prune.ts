import { repoDecider, repoStreamId } from '../../src/domain/repo/repo.ts'
import { pruneRepo } from '../../src/ostree/flatpak.ts'
import type { JobHandler } from './types.ts'
import { configuredRepo } from './updateRepo.ts'

/** flat-manager's prune job, in the repo's queue (never beside a publish or an update). */
export const pruneJob: JobHandler<'prune'> = {
  async run({ payload, log, config, signal }) {
    const repo = configuredRepo(config, payload.repo)
    log.message(`Pruning ${repo.name} (${repo.path}): objects no ref reaches within three commits`)
    await pruneRepo(repo.path, { onLine: log.output, signal })
    return {
      results: {},
      record: async (unit) => {
        await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', { type: 'RecordPruned', data: {} })
      },
    }
  },
}
