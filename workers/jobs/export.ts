import { repoDecider, repoStreamId } from '../../src/domain/repo/repo.ts'
import { exportRepo } from '../../src/storage/export.ts'
import type { JobHandler } from './types.ts'
import { configuredRepo } from './updateRepo.ts'

/**
 * Refreshes the repo's export for downstream mirrors, in the repo's queue (no update writes the
 * summary meanwhile): content first, then a new set of summary files, then the switch; see
 * src/storage/export.ts for why an rsync at any moment gets a consistent copy.
 */
export const exportJob: JobHandler<'export'> = {
  async run({ payload, log, config }) {
    const repo = configuredRepo(config, payload.repo)
    if (!repo.export) throw new Error(`repo ${repo.name} has no "export" in the config`)
    log.message(`Exporting ${repo.name} to ${repo.export.path}`)
    const report = await exportRepo(repo.path, repo.export.path, repo.export['grace-secs'] * 1000)
    log.message(`Set ${report.generation}: ${report.linked} new files, ${report.removed} past their grace period removed`)
    return {
      results: report,
      record: async (unit) => {
        await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', { type: 'RecordExported', data: report })
      },
    }
  },
}
