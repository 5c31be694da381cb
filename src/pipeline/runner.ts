import type { Config } from '../config/config.ts'
import type { Database } from '../db/database.ts'
import { createEventStore } from '../eventStore/eventStore.ts'
import { createCommandRunner, type CommandRunner } from '../eventStore/unitOfWork.ts'
import { inlineHandlers } from '../projections/index.ts'
import { pipelineReactor } from './processManager.ts'

/**
 * The one way commands run in a process (server or worker): the event store with its inline
 * projections and job outbox, and the pipeline reacting in every unit of work.
 */
export function createAppRunner(
  db: Database,
  config: Pick<Config, 'delayUpdateSecs'> & Partial<Pick<Config, 'repos'>>,
  options: { onAppended?: (streamType: string, count: number) => void } = {},
): CommandRunner {
  const repos = [...(config.repos?.values() ?? [])]
  const exporting = new Set(repos.filter((repo) => repo.export).map((repo) => repo.name))
  const oci = new Set(repos.filter((repo) => repo.oci).map((repo) => repo.name))
  return createCommandRunner(createEventStore(db, inlineHandlers, options), db, { reactor: pipelineReactor({ delayUpdateSecs: config.delayUpdateSecs, exporting, oci }) })
}
