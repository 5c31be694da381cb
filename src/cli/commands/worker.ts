import type { Command } from 'commander'
import { openDatabase, positiveInt, serverModules, stopOnSignal } from '../shared.ts'

export function register(program: Command): void {
  program
    .command('worker')
    .description('run job workers only (PostgreSQL: as many processes, on as many machines, as you like)')
    .option('--concurrency <n>', 'job slots', positiveInt('--concurrency'), 2)
    .option(
      '--compute-slots <n>',
      "at most n compute jobs (commit, publish, update-repo, delta…) at once on this host, over all its worker processes (default: no bound)",
      positiveInt('--compute-slots'),
    )
    .action(async (options: { concurrency: number; computeSlots?: number }) => {
      const { createLogger, loadConfig, ConfigError } = await serverModules()
      const log = createLogger()
      const config = loadConfig()
      if (config.database.engine === 'pglite') {
        throw new ConfigError('separate workers need PostgreSQL (set DATABASE_URL); on the embedded database `serve` runs the workers')
      }
      const [{ createAppRunner }, { startWorkers }, { useSpawner }] = await Promise.all([
        import('../../pipeline/runner.ts'),
        import('../../../workers/pool.ts'),
        import('../../process/run.ts'),
      ])
      useSpawner() // see serve
      const db = await openDatabase(config.database, log)
      const workers = startWorkers({ db, run: createAppRunner(db, config), config, log, concurrency: options.concurrency, computeSlots: options.computeSlots ?? null })
      stopOnSignal(async (signal) => {
        log.info({ signal }, 'stopping workers')
        await workers.stop()
        await db.close()
        process.exit(0)
      })
    })
}
