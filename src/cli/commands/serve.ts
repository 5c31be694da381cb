import cluster from 'node:cluster'
import v8 from 'node:v8'
import type { Command } from 'commander'
import type { Logger } from '../../log.ts'
import { nonNegativeInt, positiveInt, serverModules, stopOnSignal } from '../shared.ts'

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the server (API, GraphQL, workers) with the config in $FLATDEPOT_CONFIG or ./data/config.json')
    .option('--workers <n>', 'job worker slots in this process (0 = API only)', nonNegativeInt, Number(process.env.FLATDEPOT_WORKERS ?? 2))
    .option(
      '--processes <n>',
      'server processes sharing the port (node:cluster; PostgreSQL only), each with --workers job slots',
      positiveInt('--processes'),
      Number(process.env.FLATDEPOT_PROCESSES ?? 1),
    )
    .action(async (options: { workers: number; processes: number }) => {
      boundHeapGrowth()
      const { createLogger, loadConfig, ConfigError } = await serverModules()
      const log = createLogger()
      let firstStart = false
      const config = loadConfig({ createDefault: true, onCreated: () => (firstStart = true) })
      if (options.processes > 1 && cluster.isPrimary) {
        if (config.database.engine !== 'postgresql') {
          throw new ConfigError('--processes needs PostgreSQL (set DATABASE_URL): the embedded database belongs to one process')
        }
        superviseProcesses(options.processes, log)
        return
      }
      const [{ startApp }, { useSpawner }] = await Promise.all([import('../../app.ts'), import('../../process/run.ts')])
      // ostree, flatpak and gpg start from a small helper: a fork of this process stalls it.
      useSpawner()
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

/**
 * How far V8 lets the old generation grow past its live size before the next full collection, in
 * percent: V8's own factor is up to 4× when collections are quick, and a server holding many
 * connections (a thousand browsers following a job's log) carried three times its live data as
 * garbage between collections. At 50% the API's peak RSS with 1,000 watchers fell from about
 * 360 MB to 195–235 MB, at the same CPU a line (`npm run bench:watchers`, BENCHMARKS.md). The
 * flag is read at each collection, so setting it here, before the server allocates, is as good as
 * on the command line; a `--heap-growing-percent` given to node there wins.
 */
const heapGrowingPercent = 50

function boundHeapGrowth(): void {
  if (process.execArgv.some((arg) => arg.startsWith('--heap-growing-percent') || arg.startsWith('--heap_growing_percent'))) return
  v8.setFlagsFromString(`--heap-growing-percent=${heapGrowingPercent}`)
}

/**
 * The primary of `serve --processes N`: N copies of this command share the listening port
 * (node:cluster hands each new connection to the next process), each a whole server against the
 * one PostgreSQL. A process that dies is started again after a second; SIGTERM or SIGINT stops
 * them all, each as a lone server stops (requests in flight finish, jobs are given back).
 */
function superviseProcesses(count: number, log: Logger): void {
  let stopping = false
  const start = () => {
    const child = cluster.fork()
    child.on('exit', (code, signal) => {
      if (stopping) return
      log.error({ pid: child.process.pid, code, signal }, 'a server process ended; starting another in 1 s')
      setTimeout(start, 1000).unref()
    })
  }
  for (let i = 0; i < count; i++) start()
  log.info({ processes: count }, 'server processes started')
  stopOnSignal(async (signal) => {
    stopping = true
    log.info({ signal }, 'stopping the server processes')
    const children = Object.values(cluster.workers ?? {}).filter((child) => child !== undefined)
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.isDead()) return resolve()
            child.once('exit', () => resolve())
            child.process.kill('SIGTERM')
          }),
      ),
    )
    process.exit(0)
  })
}
