import type { Command } from 'commander'
import { buildsQuery } from '../../client/documents.ts'
import { positiveInt, print, withClient, withConnection } from '../shared.ts'

export function register(build: Command): void {
  withConnection(
    build
      .command('list')
      .description('builds this token may see, newest first')
      .option('--repo <name>')
      .option('--app-id <id>')
      .option('--first <n>', 'how many', positiveInt('--first'), 20),
  ).action(async (options) => {
    await withClient(options, async (client) => {
      const { builds } = await client.graphql(buildsQuery, { repo: options.repo ?? null, appId: options.appId ?? null, first: options.first })
      const nodes = builds.edges.map((edge) => edge.node)
      print(options, nodes, nodes.map((node) => `${node.id}\t${node.repo}\t${node.appId ?? '-'}\t${node.repoState.toLowerCase()}\t${node.publishedState.toLowerCase()}`).join('\n') || 'no builds')
    })
  })
}
