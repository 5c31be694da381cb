import type { Command } from 'commander'
import { republishAppMutation } from '../../client/documents.ts'
import { awaitJob } from '../../client/workflow.ts'
import { printJob, withClient, withConnection } from '../shared.ts'

export function register(program: Command): void {
  withConnection(
    program
      .command('republish')
      .description('commit an app already in the repo again through the publish hook, optionally end-of-life (needs the republish scope)')
      .argument('<repo>')
      .argument('<app-id>')
      .option('--end-of-life <message>', 'shown to users on flatpak update')
      .option('--end-of-life-rebase <app-id>', 'the app that replaces it')
      .option('--wait', 'follow the job; exit status from its outcome'),
  ).action(async (repo: string, app: string, options) => {
    await withClient(options, async (client) => {
      const { republishApp } = await client.graphql(republishAppMutation, { repo, app, endOfLife: options.endOfLife ?? null, endOfLifeRebase: options.endOfLifeRebase ?? null })
      const job = options.wait ? await awaitJob(client, republishApp.id, 'republish', Boolean(options.json)) : null
      printJob(options, 'republish', republishApp.id, job)
    })
  })
}
