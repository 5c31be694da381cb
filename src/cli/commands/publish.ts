import type { Command } from 'commander'
import { awaitDeltas, awaitJob, awaitUpdate, publishBuild } from '../../client/workflow.ts'
import { positiveInt, printJob, withClient, withConnection } from '../shared.ts'

export function register(program: Command): void {
  withConnection(
    program
      .command('publish')
      .description('publish a Ready build into its repo')
      .argument('<build-id>', 'build', positiveInt('build id'))
      .option('--wait', 'follow the publish job; exit status from its outcome')
      .option('--wait-update', 'also wait for the repo update that makes the build installable')
      .option('--wait-deltas', 'and then for its static deltas and the update that lists them (implies --wait-update)'),
  ).action(async (id: number, options) => {
    await withClient(options, async (client) => {
      const jobId = await publishBuild(client, id)
      const waitUpdate = options.waitUpdate || options.waitDeltas
      const job = options.wait || waitUpdate ? await awaitJob(client, jobId, 'publish', Boolean(options.json)) : null
      if (job && waitUpdate) {
        const update = await awaitUpdate(client, job, Boolean(options.json))
        if (options.waitDeltas) await awaitDeltas(client, update, Boolean(options.json))
      }
      printJob(options, 'publish', jobId, job)
    })
  })
}
