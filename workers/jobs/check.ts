import { existsSync } from 'node:fs'
import { buildDecider, buildStreamId } from '../../src/domain/build/decider.ts'
import type { CheckStatus } from '../../src/domain/build/events.ts'
import { buildDir } from '../../src/ostree/buildRepo.ts'
import { CommandError, run } from '../../src/ostree/run.ts'
import { contentsNumber, contentsString, type JobHandler } from './types.ts'

/**
 * Runs a configured check hook (argv, no shell) in the build directory. Exit 0 passes, anything
 * else fails, or asks for review when the check is `reviewable`. A hook that set its own status
 * through the API and exited 0 keeps that status.
 */
export const checkJob: JobHandler = {
  async run({ job, log, config, prisma, signal }) {
    const buildId = contentsNumber(job, 'build')
    const name = contentsString(job, 'name') ?? ''
    const build = await prisma.build.findUniqueOrThrow({ where: { id: buildId } })
    const hook = config.repos.get(build.repoName)?.hooks.checks[name]
    if (!hook) throw new Error(`check ${name} is no longer configured for repo ${build.repoName}`)
    const cwd = buildDir(config.buildRepoBase, buildId)
    const env = {
      FLAT_MANAGER_BUILD_ID: String(buildId),
      FLAT_MANAGER_JOB_ID: String(job.jobId),
      FLATDEPOT_BUILD_ID: String(buildId),
      FLATDEPOT_JOB_ID: String(job.jobId),
      FLATDEPOT_CHECK_NAME: name,
    }
    log.message(`Running check ${name}: ${hook.command.join(' ')}`)
    let status: CheckStatus = 'Passed'
    let reason: string | null = null
    try {
      const [file, ...args] = hook.command as [string, ...string[]]
      await run(file, args, { cwd: existsSync(cwd) ? cwd : undefined, env, signal, onLine: log.output })
    } catch (error) {
      if (!(error instanceof CommandError) || error.kind === 'Cancelled') throw error
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
  async recordFailure(unit, { job }, message) {
    await unit.decide(buildDecider, buildStreamId(contentsNumber(job, 'build')), 'build', {
      type: 'SetCheckStatus',
      data: { name: contentsString(job, 'name') ?? '', status: 'Failed', reason: message, results: null },
    })
  },
}
