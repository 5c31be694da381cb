import type { Command } from 'commander'
import { awaitJob, commitBuild } from '../../client/workflow.ts'
import { nonNegativeInt, positiveInt, printJob, withClient, withConnection } from '../shared.ts'

export function register(program: Command): void {
  withConnection(
    program
      .command('commit')
      .description('commit an uploading build (checks run after)')
      .argument('<build-id>', 'build', positiveInt('build id'))
      .option('--end-of-life <message>')
      .option('--end-of-life-rebase <app-id>')
      .option('--token-type <n>', 'the commits\' token type (xa.token-type): a type the repo lists in require-auth-for-token-types needs a download token', nonNegativeInt)
      .option('--wait', 'follow the commit job; exit status from its outcome'),
  ).action(async (id: number, options) => {
    await withClient(options, async (client) => {
      const jobId = await commitBuild(client, id, options)
      const job = options.wait ? await awaitJob(client, jobId, 'commit', Boolean(options.json)) : null
      printJob(options, 'commit', jobId, job)
    })
  })
}
