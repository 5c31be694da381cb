import { run } from '../src/process/run.ts'
import type { JobLog } from './jobLog.ts'

/**
 * The environment a hook sees: flat-manager's variables (what existing hook scripts read) and
 * flatdepot's own names for the same values.
 */
export function hookEnvironment(fields: { buildId: number | null; jobId: number; checkName?: string; isRepublish?: boolean }): Record<string, string> {
  const env: Record<string, string> = { FLAT_MANAGER_JOB_ID: String(fields.jobId), FLATDEPOT_JOB_ID: String(fields.jobId) }
  if (fields.buildId !== null) Object.assign(env, { FLAT_MANAGER_BUILD_ID: String(fields.buildId), FLATDEPOT_BUILD_ID: String(fields.buildId) })
  if (fields.checkName !== undefined) env.FLATDEPOT_CHECK_NAME = fields.checkName
  if (fields.isRepublish !== undefined) env.FLAT_MANAGER_IS_REPUBLISH = String(fields.isRepublish)
  return env
}

/** Runs a configured hook (argv, no shell), its output line by line into the job's log. */
export async function runHook(
  what: string,
  argv: readonly string[],
  options: { cwd?: string; env: Record<string, string>; signal: AbortSignal; log: JobLog },
): Promise<void> {
  options.log.message(`Running ${what}: ${argv.join(' ')}`)
  const [file, ...args] = argv as [string, ...string[]]
  await run(file, args, { cwd: options.cwd, env: options.env, signal: options.signal, onLine: options.log.output })
}
