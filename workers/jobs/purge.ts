import { buildDecider, buildStreamId } from '../../src/domain/build/decider.ts'
import { buildDir, discardTree } from '../../src/storage/buildArea.ts'
import type { JobHandler } from './types.ts'

/** Removes a build's files (its repo, uploads, flatpakrefs). */
export const purgeJob: JobHandler<'purge'> = {
  async run({ payload, config, log }) {
    const buildId = payload.build
    log.message(`Removing ${buildDir(config.buildRepoBase, buildId)}`)
    await discardTree(config.buildRepoBase, buildDir(config.buildRepoBase, buildId))
    return {
      results: {},
      record: async (unit) => {
        await unit.decide(buildDecider, buildStreamId(buildId), 'build', { type: 'RecordPurgeSucceeded', data: {} })
      },
    }
  },
}
