import type { Command } from 'commander'
import { createBuildMutation } from '../../client/documents.ts'
import { print, withClient, withConnection } from '../shared.ts'

export function register(build: Command): void {
  withConnection(
    build
      .command('create')
      .description('start a build in a repo and print its id')
      .argument('<repo>')
      .option('--app-id <id>', 'restrict the build to this app and its extensions')
      .option('--public-download', 'let anyone download the build repo before it is published')
      .option('--build-log-url <url>'),
  ).action(async (repo: string, options) => {
    await withClient(options, async (client) => {
      const { createBuild } = await client.graphql(createBuildMutation, {
        input: { repo, appId: options.appId ?? null, publicDownload: options.publicDownload ?? null, buildLogUrl: options.buildLogUrl ?? null },
      })
      print(options, createBuild, String(createBuild.id))
    })
  })
}
