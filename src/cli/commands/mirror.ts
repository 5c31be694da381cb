import type { Command } from 'commander'
import { exportRepoMutation, syncMirrorMutation } from '../../client/documents.ts'
import { awaitJob } from '../../client/workflow.ts'
import { printJob, withClient, withConnection } from '../shared.ts'

export function register(program: Command): void {
  const mirror = program.command('mirror').description("a repo's upstream mirrors")
  withConnection(
    mirror
      .command('sync')
      .description("bring a repo's refs from one upstream up to date now (needs the mirror scope)")
      .argument('<repo>')
      .argument('<upstream>', "the upstream's name in the repo's config")
      .option('--wait', 'follow the job; exit status from its outcome'),
  ).action(async (repo: string, upstream: string, options) => {
    await withClient(options, async (client) => {
      const { syncMirror } = await client.graphql(syncMirrorMutation, { repo, upstream })
      const job = options.wait ? await awaitJob(client, syncMirror.id, 'mirror sync', Boolean(options.json)) : null
      printJob(options, 'mirror sync', syncMirror.id, job)
    })
  })

  withConnection(
    program
      .command('export')
      .description("refresh a repo's export for downstream mirrors now (repo updates do it by themselves; needs the mirror scope)")
      .argument('<repo>')
      .option('--wait', 'follow the job; exit status from its outcome'),
  ).action(async (repo: string, options) => {
    await withClient(options, async (client) => {
      const { exportRepo } = await client.graphql(exportRepoMutation, { repo })
      const job = options.wait ? await awaitJob(client, exportRepo.id, 'export', Boolean(options.json)) : null
      printJob(options, 'export', exportRepo.id, job)
    })
  })
}
