import type { Command } from 'commander'
import { purgeBuildMutation } from '../../client/documents.ts'
import { describeBuild } from '../../client/workflow.ts'
import { positiveInt, print, withClient, withConnection } from '../shared.ts'

export function register(program: Command): void {
  withConnection(program.command('purge').description("remove a build's files").argument('<build-id>', 'build', positiveInt('build id'))).action(
    async (id: number, options) => {
      await withClient(options, async (client) => {
        const { purgeBuild } = await client.graphql(purgeBuildMutation, { id })
        print(options, purgeBuild, describeBuild(purgeBuild))
      })
    },
  )
}
