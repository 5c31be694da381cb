import type { Command } from 'commander'
import { auditLogQuery } from '../../client/documents.ts'
import { positiveInt, print, withClient, withConnection } from '../shared.ts'

export function register(program: Command): void {
  withConnection(
    program
      .command('log')
      .description('the audit log: who did what, when, newest first (needs the audit scope)')
      .option('--repo <name>')
      .option('--build-id <id>', 'one build and its jobs', positiveInt('--build-id'))
      .option('--app-id <id>')
      .option('--token-name <name>', 'what one token did')
      .option('--type <event>', 'one kind of event, e.g. RepoRefsDeleted')
      .option('--since <time>', 'ISO 8601')
      .option('--until <time>', 'ISO 8601')
      .option('--first <n>', 'how many', positiveInt('--first'), 50),
  ).action(async (options) => {
    await withClient(options, async (client) => {
      const { auditLog } = await client.graphql(auditLogQuery, {
        repo: options.repo ?? null,
        buildId: options.buildId ?? null,
        appId: options.appId ?? null,
        tokenName: options.tokenName ?? null,
        type: options.type ?? null,
        since: options.since ?? null,
        until: options.until ?? null,
        first: options.first,
      })
      const lines = auditLog.events.map(
        (event) => `${event.at}\t${event.actorName ?? '-'}\t${event.type}\t${event.streamId}\t${JSON.stringify(event.data)}${event.requestId ? `\t(request ${event.requestId})` : ''}`,
      )
      print(options, auditLog, lines.join('\n') || 'no events')
    })
  })
}
