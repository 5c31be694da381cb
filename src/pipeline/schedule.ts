import { Cron } from 'croner'
import type { RepoConfig } from '../config/config.ts'
import type { Logger } from '../log.ts'
import type { RepoService } from '../services/repos.ts'

/**
 * Each repo's `prune.schedule` (a cron pattern, in this server's time zone): at each time the
 * server asks for the repo's configured prune. Every server that shares the database fires its
 * own schedule; the repo's stream takes one request per minute-slot, so one prune runs.
 */
export function startPruneSchedules(repos: Iterable<RepoConfig>, service: Pick<RepoService, 'schedulePrune'>, log: Logger): { stop: () => void } {
  const crons: Cron[] = []
  for (const repo of repos) {
    const pattern = repo.prune.schedule
    if (!pattern) continue
    const cron = new Cron(pattern, { protect: true, name: `prune ${repo.name}` }, async (self: Cron) => {
      const fired = self.currentRun() ?? new Date()
      const slot = new Date(Math.floor(fired.getTime() / 60_000) * 60_000).toISOString()
      try {
        const jobId = await service.schedulePrune(repo.name, slot)
        if (jobId !== null) log.info({ repo: repo.name, jobId, slot }, 'queued the scheduled prune')
      } catch (error) {
        log.error({ repo: repo.name, err: error }, 'the scheduled prune could not be queued')
      }
    })
    log.info({ repo: repo.name, schedule: pattern, next: cron.nextRun()?.toISOString() }, 'prune scheduled')
    crons.push(cron)
  }
  return { stop: () => crons.forEach((cron) => cron.stop()) }
}
