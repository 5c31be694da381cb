import { InvalidArgumentError, Option, type Command } from 'commander'
import { isScope, jtiProblem, scopeNames } from '../../domain/token/claims.ts'
import { collect, positiveInt, readSecret, serverModules } from '../shared.ts'

/** `token create` (alias `gentoken`): flat-manager gentoken's flags. */
export function register(token: Command): void {
  token
    .command('create')
    .alias('gentoken')
    .description("mint a token signed with the server's secret, or a private key (flat-manager gentoken's flags)")
    .option('--name <name>', 'a label, recorded with every event the token causes', 'default')
    .option('--sub <sub>', '"build" (all builds), "build/<id>" (one build), "" (token management)', 'build')
    .addOption(
      new Option('--scope <scope>', `repeatable: ${scopeNames.join(', ')}`).argParser((value: string, previous?: string[]) => {
        if (!isScope(value)) throw new InvalidArgumentError(`unknown scope "${value}"; known: ${scopeNames.join(', ')}`)
        return collect(value, previous)
      }),
    )
    .option('--prefix <id>', 'repeatable: app id prefix on dot boundaries ("" = any)', collect)
    .option('--app <id>', 'repeatable: an exact app id', collect)
    .option('--repo <name>', 'repeatable: repo the token may use ("" = any)', collect)
    .option('--branch <branch>', 'repeatable: recorded, not enforced (as in flat-manager)', collect)
    .option('--token-type <type>', 'free-form token type', 'app')
    .option('--duration <seconds>', 'lifetime in seconds', positiveInt('--duration'), 365 * 24 * 3600)
    .option('--jti <id>', 'revocation id (default: a random UUID)', (value: string) => {
      const problem = jtiProblem(value)
      if (problem) throw new InvalidArgumentError(problem)
      return value
    })
    .option('--key <file>', "sign with this private key (PEM: Ed25519, P-256 or RSA) instead of the server's secret; the server verifies it with the public key under the same --kid")
    .option('--kid <id>', 'the key id the token names (with --key)')
    .option('--secret <base64>', 'the secret (default: from the config or FLATDEPOT_SECRET)')
    .option('--secret-file <file>', 'read the secret from a file ("-" for stdin)')
    .option('--json', 'print {"token", "claims"} as JSON')
    .option('-v, --verbose', 'print the claims to stderr')
    .action(async (options) => {
      const { mintToken, signerFromFile } = await serverModules()
      if (options.key && !options.kid) throw new InvalidArgumentError('--key needs --kid: the id the server knows the public key by')
      const signer = options.key ? await signerFromFile(options.key, options.kid) : await readSecret(options)
      const { token: jwt, claims } = await mintToken(signer, {
        name: options.name,
        sub: options.sub,
        scope: options.scope ?? ['build', 'upload', 'download', 'publish', 'jobs'],
        prefixes: options.prefix ?? [''],
        apps: options.app ?? [],
        repos: options.repo ?? [''],
        branches: options.branch ?? ['stable'],
        tokenType: options.tokenType,
        durationSecs: options.duration,
        jti: options.jti ?? null,
      })
      if (options.verbose) process.stderr.write(`${JSON.stringify(claims, null, 2)}\n`)
      process.stdout.write(options.json ? `${JSON.stringify({ token: jwt, claims })}\n` : `${jwt}\n`)
    })
}
