import type { Command } from 'commander'
import { deleteFromRepoMutation } from '../../client/documents.ts'
import { awaitJob } from '../../client/workflow.ts'
import { printJob, withClient, withConnection } from '../shared.ts'

export function register(program: Command): void {
  withConnection(
    program
      .command('delete')
      .description('delete an app (with its extensions) or named refs from a repo (needs the delete scope)')
      .argument('<repo>')
      .argument('[app-id]', 'the app, every arch and branch')
      .option('--ref <ref>', 'repeatable: delete this ref instead', (value: string, previous: string[] = []) => [...previous, value])
      .requiredOption('--reason <text>', 'why (kept in the audit log)')
      .option('--force', 'delete a runtime even while an app in the repo uses it')
      .option('--wait', 'follow the job; exit status from its outcome'),
  ).action(async (repo: string, app: string | undefined, options) => {
    await withClient(options, async (client) => {
      const { deleteFromRepo } = await client.graphql(deleteFromRepoMutation, { repo, app: app ?? null, refs: options.ref ?? null, reason: options.reason, force: Boolean(options.force) })
      const job = options.wait ? await awaitJob(client, deleteFromRepo.id, 'delete', Boolean(options.json)) : null
      printJob(options, 'delete', deleteFromRepo.id, job)
    })
  })
}
