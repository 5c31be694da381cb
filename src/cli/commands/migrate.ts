import type { Command } from 'commander'
import { openDatabase, serverModules } from '../shared.ts'

export function register(program: Command): void {
  program
    .command('migrate')
    .description('apply database migrations and exit (servers also do this at start-up)')
    .action(async () => {
      const { createLogger, loadConfig } = await serverModules()
      const config = loadConfig({ createDefault: true })
      const db = await openDatabase(config.database, createLogger())
      await db.close()
      process.stdout.write('database is up to date\n')
    })
}
