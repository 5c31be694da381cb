import { repoSigning } from '../../src/config/config.ts'
import { repoDecider, repoStreamId } from '../../src/domain/repo/repo.ts'
import { refHistory } from '../../src/ostree/deltas.ts'
import { buildCommitFrom, revParse } from '../../src/ostree/flatpak.ts'
import type { JobHandler } from './types.ts'
import { configuredRepo } from './updateRepo.ts'

/** How far back a rollback may reach in a ref's history. */
const historyDepth = 1000

/**
 * Rolls a ref back to an earlier commit of its history: a new signed commit with that commit's
 * content, on top of the current one (clients move forward to it; ostree refuses to go
 * backwards). The pipeline then updates the repo, and the delta job makes its static deltas.
 */
export const rollbackJob: JobHandler<'rollback'> = {
  async run({ payload, log, config, signal }) {
    const repo = configuredRepo(config, payload.repo)
    const history = await refHistory(repo.path, payload.ref, historyDepth)
    const from = history[0]
    if (!from) throw new Error(`Ref ${payload.ref} is not in repo ${repo.name}`)
    if (from === payload.to) throw new Error(`Ref ${payload.ref} is at ${payload.to} already`)
    if (!history.includes(payload.to)) throw new Error(`Commit ${payload.to} is not in the history of ${payload.ref} in repo ${repo.name}`)
    log.message(`Rolling ${payload.ref} back to the content of ${payload.to} (now at ${from})`)
    await buildCommitFrom({
      srcRepo: repo.path,
      srcRef: payload.to,
      destRepo: repo.path,
      destRefs: [payload.ref],
      signing: repoSigning(config, repo),
      timestampNow: true,
      force: true,
      onLine: log.output,
      signal,
    })
    const commit = await revParse(repo.path, payload.ref)
    log.message(`${payload.ref} is now at ${commit}`)
    return {
      results: { ref: payload.ref, from, to: payload.to, commit },
      record: async (unit) => {
        await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', { type: 'RecordRolledBack', data: { ref: payload.ref, from, to: payload.to, commit } })
      },
    }
  },
}
