import type { Command } from 'commander'
import { describeBuild, getBuild } from '../../client/workflow.ts'
import { positiveInt, print, withClient, withConnection } from '../shared.ts'

export function register(build: Command): void {
  withConnection(build.command('show').description("a build's state, refs and checks").argument('<build-id>', 'build', positiveInt('build id'))).action(
    async (id: number, options) => {
      await withClient(options, async (client) => {
        const found = await getBuild(client, id)
        print(options, found, describeBuild(found))
      })
    },
  )
}
