import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { repoSigning } from '../../src/config/config.ts'
import { repoDecider, repoStreamId } from '../../src/domain/repo/repo.ts'
import { buildCommitFrom, listRefs, revParse } from '../../src/ostree/flatpak.ts'
import { initRepoWithParent } from '../../src/storage/buildArea.ts'
import { hookEnvironment, runHook } from '../hooks.ts'
import type { JobHandler } from './types.ts'
import { configuredRepo } from './updateRepo.ts'

/**
 * flat-manager's republish: the app's refs are copied into a scratch repo (its parent is the
 * repo), the publish hook runs there (`FLAT_MANAGER_IS_REPUBLISH=true`, no build id), and the
 * result is committed back, signed, optionally end-of-life. The pipeline then updates the repo.
 */
export const republishJob: JobHandler<'republish'> = {
  async run({ job, payload, log, config, signal }) {
    const repo = configuredRepo(config, payload.repo)
    const signing = repoSigning(config, repo)
    const refs = (await listRefs(repo.path)).filter((ref) => ref.startsWith(`app/${payload.app}/`))
    if (refs.length === 0) throw new Error(`No refs of app ${payload.app} in repo ${repo.name}`)
    const scratchBase = path.join(repo.path, 'tmp', 'republish-repos')
    await mkdir(scratchBase, { recursive: true })
    const scratch = path.join(scratchBase, `job-${job.jobId}`)
    await rm(scratch, { recursive: true, force: true })
    try {
      await initRepoWithParent(scratch, repo.path)
      for (const ref of refs) {
        log.message(`Copying ${ref}`)
        await buildCommitFrom({ srcRepo: repo.path, srcRef: ref, destRepo: scratch, destRefs: [ref], signing: null, force: true, onLine: log.output, signal })
      }
      if (repo.hooks.publish) {
        await runHook('publish hook', repo.hooks.publish, { cwd: scratch, env: hookEnvironment({ buildId: null, jobId: job.jobId, isRepublish: true }), signal, log })
      }
      log.message(`Republishing ${refs.join(', ')} into ${repo.name}`)
      await buildCommitFrom({
        srcRepo: scratch,
        destRepo: repo.path,
        signing,
        endOfLife: payload.endOfLife,
        endOfLifeRebase: payload.endOfLifeRebase ? `${payload.app}=${payload.endOfLifeRebase}` : null,
        onLine: log.output,
        signal,
      })
      const committed: Record<string, string> = {}
      for (const ref of refs) committed[ref] = await revParse(repo.path, ref)
      return {
        results: { refs: committed },
        record: async (unit) => {
          await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', { type: 'RecordRepublished', data: { app: payload.app, refs: committed } })
        },
      }
    } finally {
      await rm(scratch, { recursive: true, force: true })
    }
  },
}
