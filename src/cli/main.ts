import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { ApiError } from '../client/api.ts'
import { flatdepotVersion } from '../paths.ts'
import * as buildCreate from './commands/buildCreate.ts'
import * as buildList from './commands/buildList.ts'
import * as buildShow from './commands/buildShow.ts'
import * as commit from './commands/commit.ts'
import * as deleteCommand from './commands/delete.ts'
import * as follow from './commands/follow.ts'
import * as lock from './commands/lock.ts'
import * as log from './commands/log.ts'
import * as migrate from './commands/migrate.ts'
import * as nginxConfig from './commands/nginxConfig.ts'
import * as publish from './commands/publish.ts'
import * as purge from './commands/purge.ts'
import * as push from './commands/push.ts'
import * as rebuildReadModels from './commands/rebuildReadModels.ts'
import * as republish from './commands/republish.ts'
import * as review from './commands/review.ts'
import * as rollback from './commands/rollback.ts'
import * as prune from './commands/prune.ts'
import * as mirror from './commands/mirror.ts'
import * as serve from './commands/serve.ts'
import * as tokenCreate from './commands/tokenCreate.ts'
import * as tokenApi from './commands/tokenApi.ts'
import * as worker from './commands/worker.ts'

/**
 * The flatdepot command: one file per command in ./commands. The server's own commands (serve,
 * worker, migrate, rebuild-read-models, token create) load the server lazily; the rest talk to a
 * server over its APIs through src/client.
 */
const program = new Command('flatdepot')
  .description('Flatpak repository server: builds in, signed OSTree repos out')
  .version(flatdepotVersion)
  .showHelpAfterError()
  // Usage errors end in the catch below (exit status 2, as for bad arguments), not in process.exit.
  .exitOverride()

// `flatdepot … | head` closes stdout early: that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0)
  throw error
})

serve.register(program)
const token = program.command('token').description('tokens for build bots, maintainers and downloads')
tokenCreate.register(token)
tokenApi.register(token)
worker.register(program)
migrate.register(program)
rebuildReadModels.register(program)
nginxConfig.register(program)
push.register(program)
const build = program.command('build').description('builds: create, list, show')
for (const command of [buildCreate, buildList, buildShow]) command.register(build)
for (const command of [commit, publish, purge, review, follow, republish, deleteCommand, rollback, lock, prune, mirror, log]) command.register(program)

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
