import type { Command } from 'commander'
import { openDatabase, serverModules } from '../shared.ts'

export function register(program: Command): void {
  program
    .command('rebuild-read-models')
    .description('rebuild every read model from the event log (the server must be stopped on the embedded database)')
    .action(async () => {
      const { createLogger, loadConfig } = await serverModules()
      const config = loadConfig()
      const db = await openDatabase(config.database, createLogger())
      try {
        const { rebuildReadModels } = await import('../../projections/rebuild.ts')
        const { events } = await rebuildReadModels(db)
        process.stdout.write(`rebuilt read models from ${events} events\n`)
      } finally {
        await db.close()
      }
    })
}
