import { InvalidArgumentError, Option, type Command } from 'commander'
import { revokeTokensMutation, subsetTokenMutation, tokensQuery } from '../../client/documents.ts'
import { isScope, scopeNames } from '../../domain/token/claims.ts'
import { collect, positiveInt, print, withClient, withConnection } from '../shared.ts'

const scopeOption = () =>
  new Option('--scope <scope>', `repeatable: ${scopeNames.join(', ')} (each one the token you hold has)`).argParser((value: string, previous?: string[]) => {
    if (!isScope(value)) throw new InvalidArgumentError(`unknown scope "${value}"; known: ${scopeNames.join(', ')}`)
    return collect(value, previous)
  })

/** The token commands that talk to a server: subset (any token), list and revoke (token management). */
export function register(token: Command): void {
  withConnection(
    token
      .command('subset')
      .description("derive a narrower token from the one you hold (--token): sub, scopes, prefixes, apps, repos and lifetime can only shrink; revoking yours revokes it")
      .requiredOption('--name <name>', 'appended to your token\'s name')
      .option('--sub <sub>', 'your sub or one under it (e.g. "build/12")', 'build')
      .addOption(scopeOption())
      .option('--prefix <id>', 'repeatable (default: yours)', collect)
      .option('--app <id>', 'repeatable (default: yours)', collect)
      .option('--repo <name>', 'repeatable (default: yours)', collect)
      .option('--duration <seconds>', 'lifetime in seconds (no longer than yours)', positiveInt('--duration'), 3600),
  ).action(async (options) => {
    await withClient(options, async (client) => {
      if (!options.scope?.length) throw new InvalidArgumentError('name at least one --scope')
      const { subsetToken } = await client.graphql(subsetTokenMutation, {
        input: { name: options.name, sub: options.sub, scope: options.scope, durationSecs: options.duration, prefixes: options.prefix ?? null, apps: options.app ?? null, repos: options.repo ?? null },
      })
      print(options, subsetToken, subsetToken.token)
    })
  })

  withConnection(
    token
      .command('list')
      .description('tokens the server knows, newest first (needs sub "" and tokenmanagement)')
      .option('--name <part>', 'whose name contains this')
      .option('--revoked', 'only revoked ones')
      .option('--active', 'only ones neither revoked nor expired')
      .option('--first <n>', 'at most this many', positiveInt('--first'), 100),
  ).action(async (options) => {
    await withClient(options, async (client) => {
      const { tokens } = await client.graphql(tokensQuery, {
        nameContains: options.name ?? null,
        revoked: options.revoked ? true : options.active ? false : null,
        expired: options.active ? false : null,
        first: options.first,
      })
      const lines = tokens.data.map((row) =>
        [row.jti, row.name ?? '-', row.sub ?? '-', row.scope.join(','), row.issuedAt ?? '-', row.expiresAt ?? '-', row.lastUsedAt ?? 'never', row.revokedAt ? `revoked ${row.revokedAt}` : 'active'].join('\t'),
      )
      print(options, tokens.data, ['jti\tname\tsub\tscope\tissued\texpires\tlast used\tstate', ...lines].join('\n'))
    })
  })

  withConnection(
    token
      .command('revoke')
      .description('revoke tokens by jti, at once for every server process (needs sub "" and tokenmanagement)')
      .argument('<jti...>'),
  ).action(async (jtis: string[], options) => {
    await withClient(options, async (client) => {
      const { revokeTokens } = await client.graphql(revokeTokensMutation, { jtis })
      print(options, revokeTokens.data, `revoked ${jtis.length} token${jtis.length === 1 ? '' : 's'}`)
    })
  })
}
