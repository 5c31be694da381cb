import type { Command } from 'commander'
import { nonNegativeInt, serverModules, stopOnSignal } from '../shared.ts'

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the server (API, GraphQL, workers) with the config in $FLATDEPOT_CONFIG or ./data/config.json')
    .option('--workers <n>', 'job worker slots in this process (0 = API only)', nonNegativeInt, Number(process.env.FLATDEPOT_WORKERS ?? 2))
    .action(async (options: { workers: number }) => {
      const { createLogger, loadConfig } = await serverModules()
      const log = createLogger()
      let firstStart = false
      const config = loadConfig({ createDefault: true, onCreated: () => (firstStart = true) })
      const { startApp } = await import('../../app.ts')
      const app = await startApp(config, log, { workers: options.workers })
      if (firstStart) {
        process.stderr.write(
          [
            '',
            `flatdepot created a default configuration in ${config.file}`,
            `  repo "stable" at ${config.repos.get('stable')?.path}, builds in ${config.buildRepoBase}, database in ${config.dataDir}/db`,
            'Mint a token for a build bot (in another terminal, same directory):',
            '  npm run flatdepot -- token create --name my-bot --repo stable',
            `GraphQL: ${app.url}/graphql`,
            '',
          ].join('\n'),
        )
      }
      stopOnSignal(async (signal) => {
        log.info({ signal }, 'stopping')
        await app.stop()
        process.exit(0)
      })
    })
}
