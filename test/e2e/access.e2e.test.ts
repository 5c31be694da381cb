import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { SignJWT } from 'jose'
import { mintToken } from '../../src/tokens/jwt.ts'
import { buildFixture, type Fixture } from '../support/fixture.ts'
import { createPostgresDatabase, testEngines } from '../support/databases.ts'
import { flatpakClient } from '../support/flatpakClient.ts'
import { graphql, startServer, waitFor, type ServerProcess } from '../support/server.ts'
import { signedRepoConfig } from '../support/config.ts'

const exec = promisify(execFile)
const ed25519 = () => generateKeyPairSync('ed25519')
const pem = (key: KeyObject) => key.export({ type: key.type === 'private' ? 'pkcs8' : 'spki', format: 'pem' }) as string
const jwks = (...keys: [string, KeyObject][]) => JSON.stringify({ keys: keys.map(([kid, key]) => ({ ...key.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' })) })
const repoSecret = Buffer.alloc(32, 41)

/**
 * Access: tokens signed by a token service's keys (a JWKS that rotates while the server runs),
 * subset tokens that can do no more than their parent, HS256 switched off, and downloads that
 * need a token for commits of a protected token type while the rest of the repo stays public.
 */
for (const engine of testEngines) {
  describe(`access on ${engine}`, () => {
    let fixture: Fixture
    let server: ServerProcess
    let dropDatabase = async () => {}
    let keysDir: string
    let jwksFile: string
    const k1 = ed25519()
    const k2 = ed25519()
    let admin: string
    let bot: string

    const cli = (token: string | null, ...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [path.join(process.cwd(), 'bin/flatdepot.mjs'), ...args, ...(token ? ['--url', server.url, '--token', token] : [])], { cwd: server.dataDir, env: server.env }, (error, stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout: stdout.trim(), stderr }),
        )
      })
    const ok = (result: { code: number; stdout: string; stderr: string }) => {
      assert.equal(result.code, 0, result.stderr)
      return result
    }
    /** A token signed by one of the token service's keys, made with `token create --key`. */
    const keyToken = async (kid: string, key: KeyObject, ...args: string[]) => {
      const file = path.join(keysDir, `${kid}-${Math.random().toString(36).slice(2)}.pem`)
      writeFileSync(file, pem(key), { mode: 0o600 })
      return ok(await cli(null, 'token', 'create', '--key', file, '--kid', kid, '--name', `signed-${kid}`, '--repo', 'stable', ...args)).stdout
    }
    const whoAmI = async (token: string) => graphql(server.url, token, '{ builds(first: 1) { __typename } }')
    const refusedWith = async (token: string, pattern: RegExp) => {
      const { status, body } = await whoAmI(token)
      assert.equal(status, 401, JSON.stringify(body))
      assert.match(JSON.stringify(body), pattern)
    }

    before(async () => {
      fixture = await buildFixture('small')
      let databaseUrl: string | null = null
      if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
      keysDir = mkdtempSync(path.join(tmpdir(), 'flatdepot-keys-'))
      jwksFile = path.join(keysDir, 'jwks.json')
      writeFileSync(jwksFile, jwks(['k1', k1.publicKey]))
      server = await startServer({
        databaseUrl,
        config: (port) => ({
          ...signedRepoConfig(fixture, port, { 'require-auth-for-token-types': [2], oci: {} }, 29),
          'repo-secret': repoSecret.toString('base64'),
          jwks: { file: jwksFile, 'refresh-secs': 1 },
        }),
      })
      admin = await server.cli('token', 'create', '--name', 'admin', '--sub', '', '--scope', 'tokenmanagement')
      bot = await server.cli('token', 'create', '--name', 'ci-bot', '--repo', 'stable', '--prefix', 'org.test')
    })
    after(async () => {
      await server?.stop()
      await dropDatabase()
      if (keysDir) rmSync(keysDir, { recursive: true, force: true })
    })

    it('a token signed by a JWKS key works; an unknown kid or a wrong algorithm is refused, saying which', async () => {
      const signed = await keyToken('k1', k1.privateKey, '--scope', 'build')
      const { status, body } = await whoAmI(signed)
      assert.equal(status, 200)
      assert.equal(body.data.builds.__typename, 'QueryBuildsConnection')
      await refusedWith(await keyToken('nope', k1.privateKey, '--scope', 'build'), /unknown key id \\"nope\\"/)
      const es256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
      const wrongAlg = await new SignJWT({ scope: ['build'], repos: ['stable'], prefixes: [''] }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject('build').setExpirationTime('10m').sign(es256)
      await refusedWith(wrongAlg, /signed ES256, but key \\"k1\\" is a EdDSA key/)
    })

    it('rotating the JWKS (new key in, old key out) takes effect without a restart', async () => {
      const old = await keyToken('k1', k1.privateKey, '--scope', 'build')
      writeFileSync(jwksFile, jwks(['k2', k2.publicKey]))
      await new Promise((resolve) => setTimeout(resolve, 5_500))
      assert.equal((await whoAmI(await keyToken('k2', k2.privateKey, '--scope', 'build'))).status, 200, 'the new key works')
      await refusedWith(old, /unknown key id \\"k1\\"/)
    })

    it('a subset token uploads to its build and can do nothing else; the token list shows it, and revoking the parent revokes it', async () => {
      const uploader = await server.cli('token', 'create', '--name', 'uploader', '--repo', 'stable', '--prefix', 'org.test')
      const buildId = Number(ok(await cli(uploader, 'build', 'create', 'stable')).stdout)
      const subset = JSON.parse(
        ok(await cli(uploader, 'token', 'subset', '--name', `build-${buildId}`, '--sub', `build/${buildId}`, '--scope', 'upload', '--prefix', 'org.test.Hello', '--prefix', 'org.test.Platform', '--duration', '600', '--json')).stdout,
      ) as { token: string; name: string; sub: string; scope: string[] }
      assert.deepEqual({ name: subset.name, sub: subset.sub, scope: subset.scope }, { name: `uploader/build-${buildId}`, sub: `build/${buildId}`, scope: ['upload'] })
      ok(await cli(subset.token, 'push', 'stable', fixture.repoV1, '--build-id', String(buildId), '--no-progress', '-q'))

      const create = await graphql(server.url, subset.token, 'mutation { createBuild(input: { repo: "stable" }) { __typename ... on Error { message } } }')
      assert.equal(create.body.data.createBuild.__typename, 'PermissionDeniedError')
      const otherApp = await graphql(server.url, subset.token, `mutation { createBuildRef(buildId: ${buildId}, refName: "${fixture.paid.ref}", commit: "${'a'.repeat(64)}") { __typename ... on Error { message } } }`)
      assert.deepEqual(otherApp.body.data.createBuildRef, { __typename: 'PermissionDeniedError', message: 'Not enough permissions: Id org.test.Paid not matching prefix in token' })
      const wider = await graphql(server.url, subset.token, 'mutation { subsetToken(input: { name: "x", sub: "build", scope: ["publish"], durationSecs: 60 }) { __typename ... on Error { message } } }')
      assert.equal(wider.body.data.subsetToken.__typename, 'PermissionDeniedError')

      const listed = JSON.parse(ok(await cli(admin, 'token', 'list', '--name', 'uploader', '--json')).stdout) as { jti: string; name: string; lastUsedAt: string | null; revokedAt: string | null }[]
      assert.equal(listed.length, 1)
      assert.ok(listed[0]!.lastUsedAt, 'last use is recorded')
      ok(await cli(admin, 'token', 'revoke', listed[0]!.jti))
      await refusedWith(subset.token, /Token has been revoked/)
      const revoked = JSON.parse(ok(await cli(admin, 'token', 'list', '--revoked', '--json')).stdout) as { jti: string }[]
      assert.ok(revoked.some((token) => token.jti === listed[0]!.jti))
    })

    it('a commit of a protected token type is served only with a download token covering it (no-store); public apps install with no token', async () => {
      ok(await cli(bot, 'push', 'stable', fixture.repoV1, '--publish', '--wait-update', '--no-progress', '-q'))
      ok(await cli(bot, 'push', 'stable', fixture.paid.repo, '--token-type', '2', '--publish', '--wait-update', '--no-progress', '-q'))
      const repo = path.join(server.dataDir, 'repos/stable')
      const paidCommit = (await exec('ostree', [`--repo=${repo}`, 'rev-parse', fixture.paid.ref])).stdout.trim()
      // flatpak's summary says what clients see: token type 2 for the paid app, none for the others.
      const summary = (await exec('ostree', [`--repo=${repo}`, 'summary', '--view'])).stdout
      assert.match(summary, new RegExp(`'${fixture.paid.ref.replaceAll('.', '\\.')}': \\{'tokt': <2>\\}`))
      const commitUrl = `${server.url}/repo/stable/objects/${paidCommit.slice(0, 2)}/${paidCommit.slice(2)}.commit`
      const download = async (claims: { prefixes: string[]; scope?: string[] }, key: Uint8Array = new Uint8Array(repoSecret)) =>
        (await mintToken(key, { name: 'store', sub: 'download', scope: claims.scope ?? ['download'], prefixes: claims.prefixes, repos: ['stable'], durationSecs: 600 })).token
      const get = (token: string | null) => fetch(commitUrl, { headers: token ? { authorization: `Bearer ${token}` } : {} })

      const anonymous = await get(null)
      assert.equal(anonymous.status, 401)
      assert.match(await anonymous.text(), /No token specified: org\.test\.Paid in repo stable needs a download token/)
      const granted = await get(await download({ prefixes: ['org.test.Paid'] }))
      assert.equal(granted.status, 200)
      assert.equal(granted.headers.get('cache-control'), 'no-store')
      assert.equal(Buffer.from(await granted.arrayBuffer()).length > 0, true)
      const otherApp = await get(await download({ prefixes: ['org.test.Hello'] }))
      assert.equal(otherApp.status, 403)
      assert.match(await otherApp.text(), /does not cover org\.test\.Paid/)
      assert.equal((await get(await download({ prefixes: ['org.test.Paid'], scope: ['build'] }))).status, 403, 'the download scope is needed')
      assert.equal((await get(bot)).status, 401, 'an API token is not a download token (repo-secret signs those)')
      const helloCommit = (await exec('ostree', [`--repo=${repo}`, 'rev-parse', fixture.app.ref])).stdout.trim()
      const publicCommit = await fetch(`${server.url}/repo/stable/objects/${helloCommit.slice(0, 2)}/${helloCommit.slice(2)}.commit`)
      assert.equal(publicCommit.status, 200)
      assert.match(publicCommit.headers.get('cache-control') ?? '', /immutable/)
      // Asked again, it comes from memory (the fast path): the same bytes and headers, with the
      // request id given, or one made up.
      const commitBytes = Buffer.from(await publicCommit.arrayBuffer())
      const again = await fetch(publicCommit.url, { headers: { 'x-request-id': 'object-again-7' } })
      assert.deepEqual(Buffer.from(await again.arrayBuffer()), commitBytes, 'the same commit object from memory')
      assert.equal(again.headers.get('x-request-id'), 'object-again-7', 'the given request id is echoed from memory too')
      assert.equal(again.headers.get('etag'), publicCommit.headers.get('etag'), 'the same ETag from memory')
      assert.match(again.headers.get('cache-control') ?? '', /immutable/, 'cacheable from memory too')
      const unnamed = await fetch(publicCommit.url)
      assert.match(unnamed.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, 'a request id is made up when none is given')
      await unnamed.arrayBuffer()
      // The OCI registry has no download tokens: the protected app is not exported to it.
      await waitFor('the OCI export after both publishes', async () => {
        const { body } = await graphql(server.url, bot, '{ jobs(first: 100) { ... on QueryJobsConnection { edges { node { kind status } } } } }')
        const jobs = (body.data.jobs.edges as { node: { kind: string; status: string } }[]).map((edge) => edge.node)
        return jobs.some((job) => job.kind === 'OCI_EXPORT') && jobs.every((job) => job.status === 'SUCCEEDED') ? true : undefined
      }, 120_000)
      const index = (await (await fetch(`${server.url}/index/dynamic`)).json()) as { Results: { Name: string }[] }
      assert.deepEqual(index.Results.map((result) => result.Name), ['stable/org.test.hello', 'stable/org.test.platform'])

      // ostree pull: refused without the token, whole with it (commit and deltas to it included).
      const pulled = mkdtempSync(path.join(tmpdir(), 'flatdepot-pull-'))
      try {
        const local = (...args: string[]) => exec('ostree', [`--repo=${pulled}`, ...args])
        await local('init', '--mode=archive-z2')
        await local('remote', 'add', '--no-gpg-verify', 'origin', `${server.url}/repo/stable`)
        await assert.rejects(local('pull', 'origin', fixture.paid.ref), /401|Unauthorized|Server returned HTTP/i)
        await local('pull', `--http-header=Authorization=Bearer ${await download({ prefixes: ['org.test.Paid'] })}`, 'origin', fixture.paid.ref)
        assert.equal((await local('rev-parse', fixture.paid.ref)).stdout.trim(), paidCommit)
        await local('fsck')
      } finally {
        rmSync(pulled, { recursive: true, force: true })
      }

      const client = flatpakClient(fixture)
      try {
        await client.flatpak('remote-add', `--gpg-import=${fixture.keyFile}`, 'test', `${server.url}/repo/stable`)
        await client.flatpak('install', '-y', '--noninteractive', 'test', fixture.app.id)
        assert.equal(await client.installedVersion(), '1', 'the public app installs with no token')
        await assert.rejects(client.flatpak('install', '-y', '--noninteractive', 'test', fixture.paid.id), (error: { stderr?: string }) => {
          // flatpak asks its authenticator for a token (none is configured here) or meets the 401.
          assert.match(String(error.stderr), /authenticator|401|token/i)
          return true
        })
      } finally {
        client.cleanup()
      }
    })

    it('with HS256 switched off, secret-signed tokens are refused and key-signed ones still work', async () => {
      const keysOnly = await startServer({
        config: (port) => ({
          ...signedRepoConfig(fixture, port, {}, 31),
          'accept-secret-tokens': false,
          'token-keys': [{ kid: 'k2', file: (() => {
            const file = path.join(keysDir, 'k2.pub.pem')
            writeFileSync(file, pem(k2.publicKey))
            return file
          })() }],
        }),
      })
      try {
        const secretSigned = await keysOnly.cli('token', 'create', '--name', 'old-bot', '--repo', 'stable')
        const refused = await graphql(keysOnly.url, secretSigned, '{ builds(first: 1) { __typename } }')
        assert.equal(refused.status, 401)
        assert.match(JSON.stringify(refused.body), /switched off here \(\\"accept-secret-tokens\\": false\)/)
        const signed = await keyToken('k2', k2.privateKey, '--scope', 'build')
        const accepted = await graphql(keysOnly.url, signed, '{ builds(first: 1) { __typename } }')
        assert.equal(accepted.status, 200)
        const subset = await graphql(keysOnly.url, signed, 'mutation { subsetToken(input: { name: "x", sub: "build", scope: ["build"], durationSecs: 60 }) { __typename ... on Error { message } } }')
        assert.equal(subset.body.data.subsetToken.__typename, 'ConflictError')
        assert.match(subset.body.data.subsetToken.message, /signs nothing itself/)
      } finally {
        await keysOnly.stop()
      }
    })
  })
}
