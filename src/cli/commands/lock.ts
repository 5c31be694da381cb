import type { Command } from 'commander'
import { lockAppMutation, unlockAppMutation } from '../../client/documents.ts'
import { print, withClient, withConnection } from '../shared.ts'

/** `lock` and `unlock`: while an app is locked its builds are not published. */
export function register(program: Command): void {
  withConnection(
    program
      .command('lock')
      .description('stop builds of an app from being published until it is unlocked (needs the rollback scope)')
      .argument('<repo>')
      .argument('<app-id>')
      .requiredOption('--reason <text>', 'what a refused publish says'),
  ).action(async (repo: string, app: string, options) => {
    await withClient(options, async (client) => {
      await client.graphql(lockAppMutation, { repo, app, reason: options.reason })
      print(options, { repo, app, locked: true }, `${app} is locked in ${repo}`)
    })
  })
  withConnection(program.command('unlock').description('let builds of a locked app be published again').argument('<repo>').argument('<app-id>')).action(
    async (repo: string, app: string, options) => {
      await withClient(options, async (client) => {
        await client.graphql(unlockAppMutation, { repo, app })
        print(options, { repo, app, locked: false }, `${app} is unlocked in ${repo}`)
      })
    },
  )
}
