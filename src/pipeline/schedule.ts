import { Cron } from 'croner'
import type { RepoConfig } from '../config/config.ts'
import type { Logger } from '../log.ts'
import type { RepoService } from '../services/repos.ts'

type Task = { name: string; pattern: string; fire: (slot: string) => Promise<number | null>; fields: Record<string, unknown> }

/**
 * The repos' schedules (cron patterns, in this server's time zone): each repo's `prune.schedule`
 * and each upstream's `schedule`. Every server that shares the database fires its own; the
 * repo's stream takes one request per minute-slot, so one job runs.
 */
export function startRepoSchedules(repos: Iterable<RepoConfig>, service: Pick<RepoService, 'schedulePrune' | 'scheduleMirrorSync'>, log: Logger): { stop: () => void } {
  const tasks: Task[] = []
  for (const repo of repos) {
    if (repo.prune.schedule) tasks.push({ name: `prune ${repo.name}`, pattern: repo.prune.schedule, fire: (slot) => service.schedulePrune(repo.name, slot), fields: { repo: repo.name } })
    for (const [upstream, settings] of Object.entries(repo.upstreams)) {
      if (settings.schedule) {
        tasks.push({ name: `sync ${repo.name} from ${upstream}`, pattern: settings.schedule, fire: (slot) => service.scheduleMirrorSync(repo.name, upstream, slot), fields: { repo: repo.name, upstream } })
      }
    }
  }
  const crons = tasks.map((task) => {
    const cron = new Cron(task.pattern, { protect: true, name: task.name }, async (self: Cron) => {
      const fired = self.currentRun() ?? new Date()
      const slot = new Date(Math.floor(fired.getTime() / 60_000) * 60_000).toISOString()
      try {
        const jobId = await task.fire(slot)
        if (jobId !== null) log.info({ ...task.fields, jobId, slot }, `queued the scheduled ${task.name}`)
      } catch (error) {
        log.error({ ...task.fields, err: error }, `the scheduled ${task.name} could not be queued`)
      }
    })
    log.info({ ...task.fields, schedule: task.pattern, next: cron.nextRun()?.toISOString() }, `${task.name} scheduled`)
    return cron
  })
  return { stop: () => crons.forEach((cron) => cron.stop()) }
}
