import { existsSync } from 'node:fs'
import { buildDecider, buildStreamId } from '../../src/domain/build/decider.ts'
import type { CheckStatus } from '../../src/domain/build/events.ts'
import { CommandError } from '../../src/process/run.ts'
import { buildDir } from '../../src/storage/buildArea.ts'
import { hookEnvironment, runHook } from '../hooks.ts'
import type { JobHandler } from './types.ts'

/**
 * Runs a configured check hook in the build directory. Exit 0 passes, anything else fails, or
 * asks for review when the check is `reviewable`. A hook that set its own status through the API
 * and exited 0 keeps that status.
 */
export const checkJob: JobHandler<'check'> = {
  async run({ job, payload, log, config, prisma, signal }) {
    const { build: buildId, name } = payload
    const build = await prisma.build.findUniqueOrThrow({ where: { id: buildId } })
    const hook = config.repos.get(build.repoName)?.hooks.checks[name]
    if (!hook) throw new Error(`check ${name} is no longer configured for repo ${build.repoName}`)
    const cwd = buildDir(config.buildRepoBase, buildId)
    let status: CheckStatus = 'Passed'
    let reason: string | null = null
    try {
      await runHook(`check ${name}`, hook.command, {
        cwd: existsSync(cwd) ? cwd : undefined,
        env: hookEnvironment({ buildId, jobId: job.jobId, checkName: name }),
        signal,
        log,
      })
    } catch (error) {
      if (!(error instanceof CommandError) || error.kind === 'Cancelled' || error.kind === 'SpawnFailed') throw error
      status = hook.reviewable ? 'ReviewRequired' : 'Failed'
      reason = error.message
      log.message(`Check ${name} ${hook.reviewable ? 'needs review' : 'failed'}: ${error.message}`)
    }
    return {
      results: { status },
      record: async (unit) => {
        const state = await unit.state(buildDecider, buildStreamId(buildId), 'build')
        const current = state.status === 'Existing' ? state.checks[name]?.status : undefined
        // flat-manager: only a still-Pending check, or a failure, overwrites what the hook set.
        if (current !== 'Pending' && status === 'Passed') return
        await unit.decide(buildDecider, buildStreamId(buildId), 'build', {
          type: 'SetCheckStatus',
          data: { name, status, reason, results: null },
        })
      },
    }
  },
}
