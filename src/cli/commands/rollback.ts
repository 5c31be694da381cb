import type { Command } from 'commander'
import { rollbackRefMutation } from '../../client/documents.ts'
import { awaitJob } from '../../client/workflow.ts'
import { printJob, withClient, withConnection } from '../shared.ts'

export function register(program: Command): void {
  withConnection(
    program
      .command('rollback')
      .description("give a ref an earlier commit's content as a new commit on top (needs the rollback scope)")
      .argument('<repo>')
      .argument('<ref>', 'e.g. app/org.example.App/x86_64/stable')
      .argument('<commit>', "a commit in the ref's history (`ostree log`)")
      .option('--wait', 'follow the job; exit status from its outcome'),
  ).action(async (repo: string, ref: string, to: string, options) => {
    await withClient(options, async (client) => {
      const { rollbackRef } = await client.graphql(rollbackRefMutation, { repo, ref, to })
      const job = options.wait ? await awaitJob(client, rollbackRef.id, 'rollback', Boolean(options.json)) : null
      printJob(options, 'rollback', rollbackRef.id, job)
    })
  })
}
