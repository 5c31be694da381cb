import { readFileSync } from 'node:fs'
import path from 'node:path'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { ApiError } from '../client/api.ts'
import { isScope, jtiProblem, scopeNames } from '../domain/token/claims.ts'
import { projectRoot } from '../paths.ts'
import { addClientCommands } from './client.ts'

// Server modules (config, logging, tokens, Prisma, the database engines, GraphQL) load only for
// the commands that need them: a build bot's `flatdepot push` starts in a fraction of the time.
const serverModules = async () => {
  const [config, log, jwt] = await Promise.all([import('../config/config.ts'), import('../log.ts'), import('../tokens/jwt.ts')])
  return { ...config, ...log, ...jwt }
}
// Prisma and the database engines: only for the commands that open the database.
const openDatabase = async (...args: Parameters<typeof import('../db/database.ts').openDatabase>) =>
  (await import('../db/database.ts')).openDatabase(...args)

const program = new Command('flatdepot')
  .description('Flatpak repository server: builds in, signed OSTree repos out')
  .version((JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version)
  .showHelpAfterError()
  // Usage errors end in the catch below (exit status 2, as for bad arguments), not in process.exit.
  .exitOverride()

// `flatdepot … | head` closes stdout early: that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0)
  throw error
})

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value]

program
  .command('serve')
  .description('run the server (API, GraphQL, workers) with the config in $FLATDEPOT_CONFIG or ./data/config.json')
  .option('--workers <n>', 'job worker slots in this process (0 = API only)', (v) => nonNegativeInt(v), Number(process.env.FLATDEPOT_WORKERS ?? 2))
  .action(async (options: { workers: number }) => {
    const { createLogger, loadConfig } = await serverModules()
    const log = createLogger()
    let firstStart = false
    const config = loadConfig({ createDefault: true, onCreated: () => (firstStart = true) })
    const { startApp } = await import('../app.ts')
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
    const stop = async (signal: string) => {
      log.info({ signal }, 'stopping')
      await app.stop()
      process.exit(0)
    }
    process.once('SIGINT', () => void stop('SIGINT'))
    process.once('SIGTERM', () => void stop('SIGTERM'))
  })

const token = program.command('token').description('tokens for build bots, maintainers and downloads')

token
  .command('create')
  .alias('gentoken')
  .description("mint a token signed with the server's secret (flat-manager gentoken's flags)")
  .option('--name <name>', 'a label, recorded with every event the token causes', 'default')
  .option('--sub <sub>', '"build" (all builds), "build/<id>" (one build), "" (token management)', 'build')
  .addOption(
    new Option('--scope <scope>', `repeatable: ${scopeNames.join(', ')}`).argParser((value: string, previous?: string[]) => {
      if (!isScope(value)) throw new InvalidArgumentError(`unknown scope "${value}"; known: ${scopeNames.join(', ')}`)
      return collect(value, previous)
    }),
  )
  .option('--prefix <id>', 'repeatable: app id prefix on dot boundaries ("" = any)', collect)
  .option('--app <id>', 'repeatable: an exact app id', collect)
  .option('--repo <name>', 'repeatable: repo the token may use ("" = any)', collect)
  .option('--branch <branch>', 'repeatable: recorded, not enforced (as in flat-manager)', collect)
  .option('--token-type <type>', 'free-form token type', 'app')
  .option('--duration <seconds>', 'lifetime in seconds', (v) => positiveInt(v), 365 * 24 * 3600)
  .option('--jti <id>', 'revocation id (default: a random UUID)', (value: string) => {
    const problem = jtiProblem(value)
    if (problem) throw new InvalidArgumentError(problem)
    return value
  })
  .option('--secret <base64>', 'the secret (default: from the config or FLATDEPOT_SECRET)')
  .option('--secret-file <file>', 'read the secret from a file ("-" for stdin)')
  .option('--json', 'print {"token", "claims"} as JSON')
  .option('-v, --verbose', 'print the claims to stderr')
  .action(async (options) => {
    const { mintToken } = await serverModules()
    const secret = await readSecret(options)
    const { token: jwt, claims } = await mintToken(secret, {
      name: options.name,
      sub: options.sub,
      scope: options.scope ?? ['build', 'upload', 'download', 'publish', 'jobs'],
      prefixes: options.prefix ?? [''],
      apps: options.app ?? [],
      repos: options.repo ?? [''],
      branches: options.branch ?? ['stable'],
      tokenType: options.tokenType,
      durationSecs: options.duration,
      jti: options.jti ?? null,
    })
    if (options.verbose) process.stderr.write(`${JSON.stringify(claims, null, 2)}\n`)
    process.stdout.write(options.json ? `${JSON.stringify({ token: jwt, claims })}\n` : `${jwt}\n`)
  })

program
  .command('worker')
  .description('run job workers only (PostgreSQL: as many processes, on as many machines, as you like)')
  .option('--concurrency <n>', 'job slots', (v) => positiveInt(v), 2)
  .action(async (options: { concurrency: number }) => {
    const { createLogger, loadConfig, ConfigError } = await serverModules()
    const log = createLogger()
    const config = loadConfig()
    if (config.database.engine === 'pglite') {
      throw new ConfigError('separate workers need PostgreSQL (set DATABASE_URL); on the embedded database `serve` runs the workers')
    }
    const [{ createAppRunner }, { startWorkers }] = await Promise.all([import('../pipeline/runner.ts'), import('../../workers/pool.ts')])
    const db = await openDatabase(config.database, log)
    const run = createAppRunner(db, config)
    const workers = startWorkers({ db, run, config, log, concurrency: options.concurrency })
    const stop = async (signal: string) => {
      log.info({ signal }, 'stopping workers')
      await workers.stop()
      await db.close()
      process.exit(0)
    }
    process.once('SIGINT', () => void stop('SIGINT'))
    process.once('SIGTERM', () => void stop('SIGTERM'))
  })

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

program
  .command('rebuild-read-models')
  .description('rebuild every read model from the event log (the server must be stopped on the embedded database)')
  .action(async () => {
    const { createLogger, loadConfig } = await serverModules()
    const config = loadConfig()
    const db = await openDatabase(config.database, createLogger())
    try {
      const { rebuildReadModels } = await import('../projections/rebuild.ts')
      const { events } = await rebuildReadModels(db)
      process.stdout.write(`rebuilt read models from ${events} events\n`)
    } finally {
      await db.close()
    }
  })

addClientCommands(program)

function nonNegativeInt(value: string): number {
  const number = Number(value)
  if (!Number.isInteger(number) || number < 0) throw new InvalidArgumentError('expected a whole number')
  return number
}

function positiveInt(value: string): number {
  const number = Number(value)
  if (!Number.isInteger(number) || number <= 0) throw new InvalidArgumentError('expected a positive whole number')
  return number
}

async function readSecret(options: { secret?: string; secretFile?: string }): Promise<Uint8Array> {
  const { loadConfig, parseSecret } = await serverModules()
  if (options.secret) return parseSecret(options.secret, '--secret')
  if (options.secretFile) {
    const text = readFileSync(options.secretFile === '-' ? 0 : options.secretFile, 'utf8')
    return parseSecret(text, `--secret-file ${options.secretFile}`)
  }
  return loadConfig().secret
}

try {
  await program.parseAsync()
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander has printed the message (or the help, or the version) already.
    process.exit(error.exitCode === 0 ? 0 : 2)
  }
  const { ConfigError } = await import('../config/config.ts')
  if (error instanceof ConfigError || error instanceof InvalidArgumentError) {
    process.stderr.write(`flatdepot: ${error.message}\n`)
    process.exit(2)
  }
  if (error instanceof ApiError && error.code) {
    process.stderr.write(`flatdepot: ${error.message} (${error.code})\n`)
    process.exit(1)
  }
  process.stderr.write(`flatdepot: ${(error as Error).message}\n`)
  process.exit(1)
}
