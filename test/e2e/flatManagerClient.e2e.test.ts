import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { buildFixture, type Fixture } from '../support/fixture.ts'
import { createPostgresDatabase, testEngines } from '../support/databases.ts'
import { flatpakClient, installedFrom } from '../support/flatpakClient.ts'
import { graphql, startServer, waitFor, type ServerProcess } from '../support/server.ts'
import { signedRepoConfig } from '../support/config.ts'

/**
 * flat-manager's own Python client (0.4.6, unmodified), driven the way build farms and
 * flatpak-github-actions' flat-manager action drive it, against a real flatdepot. The client is
 * test equipment that is not part of this project: FLAT_MANAGER_CLIENT names it (.ci/run points
 * it at the vendored copy). Without it this file says so and skips.
 */
const client = process.env.FLAT_MANAGER_CLIENT
const python = process.env.FLAT_MANAGER_CLIENT_PYTHON ?? '/usr/bin/python3'
const skip = !client
  ? 'FLAT_MANAGER_CLIENT is not set: the interoperability test with flat-manager-client 0.4.6 was skipped (point it at flat-manager-client, e.g. ../shared/vendor/flat-manager-client-0.4.6/flat-manager-client; it needs python3-aiohttp python3-gi gir1.2-ostree-1.0 python3-tenacity)'
  : !existsSync(client)
    ? `FLAT_MANAGER_CLIENT=${client} does not exist: the interoperability test was skipped`
    : false
if (skip) process.stderr.write(`${skip}\n`)

const exec = promisify(execFile)

for (const engine of testEngines) {
  describe(`flat-manager-client 0.4.6 against flatdepot on ${engine}`, { skip }, () => {
    let fixture: Fixture
    let server: ServerProcess
    let token: string
    let dropDatabase = async () => {}

    /** The client's exit status, stdout and stderr; it never throws. */
    async function fmc(args: string[], options: { token?: string } = {}) {
      try {
        const { stdout, stderr } = await exec(python, [client!, '--token', options.token ?? token, ...args], { maxBuffer: 16 << 20, timeout: 300_000 })
        return { code: 0, stdout: stdout.trim(), stderr }
      } catch (error) {
        const failed = error as { code?: number; stdout?: string; stderr?: string }
        return { code: typeof failed.code === 'number' ? failed.code : 1, stdout: (failed.stdout ?? '').trim(), stderr: failed.stderr ?? '' }
      }
    }
    const ok = (result: { code: number; stdout: string; stderr: string }) => assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)
    const build = async (id: number) =>
      (await graphql(server.url, token, 'query($id: Int!) { build(id: $id) { ... on Build { repoState publishedState repoStateReason } } }', { id })).body.data.build

    before(async () => {
      fixture = await buildFixture('small')
      let databaseUrl: string | null = null
      if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
      server = await startServer({ databaseUrl, config: (port) => signedRepoConfig(fixture, port, {}, 11) })
      const scopes = ['build', 'upload', 'download', 'publish', 'jobs', 'republish', 'tokenmanagement', 'reviewcheck']
      token = await server.cli('token', 'create', '--name', 'ci', '--repo', 'stable', ...scopes.flatMap((scope) => ['--scope', scope]))
    })
    after(async () => {
      await server?.stop()
      await dropDatabase()
    })

    it('the GitHub action\'s calls: static deltas made locally, create, push --commit --publish --wait, purge; a real flatpak client installs the app', async () => {
      // flatpak-github-actions' flat-manager action: `flatpak build-update-repo --generate-static-deltas repo` first.
      const local = path.join(mkdtempSync(path.join(tmpdir(), 'fmc-action-')), 'repo')
      cpSync(fixture.repoV1, local, { recursive: true })
      await exec('flatpak', ['build-update-repo', '--generate-static-deltas', local])
      const created = await fmc(['create', server.url, 'stable', '--build-log-url=https://ci.example.test/run/1'])
      ok(created)
      assert.match(created.stdout, new RegExp(`^${server.url}/api/v1/build/\\d+$`))
      const buildUrl = created.stdout
      const id = Number(buildUrl.split('/').at(-1))
      ok(await fmc(['push', '--commit', '--publish', '--wait', buildUrl, local]))
      const published = await waitFor('published', async () => ((await build(id)).publishedState === 'PUBLISHED' ? true : undefined))
      assert.ok(published)
      // Without --wait-update the action does not wait for the repo update; a user installing does.
      await waitFor('the repo update', async () => {
        const { body } = await graphql(server.url, token, '{ jobs(first: 50, kind: UPDATE_REPO) { ... on QueryJobsConnection { edges { node { status } } } } }')
        const statuses = body.data.jobs.edges.map((edge: { node: { status: string } }) => edge.node.status)
        return statuses.length > 0 && statuses.every((status: string) => status === 'SUCCEEDED') ? true : undefined
      })

      assert.equal(await installedFrom(fixture, server.url), '1')
      // flatpak-github-actions purges every build after publishing it.
      ok(await fmc(['purge', buildUrl]))
      assert.equal((await build(id)).repoState, 'PURGED')
    })

    it('a second version with --end-of-life and --end-of-life-rebase: the client sees the end of life', async () => {
      const created = await fmc(['create', server.url, 'stable'])
      ok(created)
      ok(await fmc(['push', '--commit', '--publish', '--wait', '--wait-update', '--end-of-life', 'Replaced by org.test.Hello2', '--end-of-life-rebase', 'org.test.Hello2', created.stdout, fixture.repoV2]))
      const flatpak = flatpakClient(fixture)
      try {
        await flatpak.flatpak('remote-add', `--gpg-import=${fixture.keyFile}`, 'test', `${server.url}/repo/stable`)
        const info = await flatpak.flatpak('remote-info', 'test', fixture.app.ref)
        assert.match(info, /End-of-life: Replaced by org\.test\.Hello2/)
        assert.match(info, /End-of-life-rebase: app\/org\.test\.Hello2\/x86_64\/stable/)
      } finally {
        flatpak.cleanup()
      }
    })

    it('commit --wait, publish --wait and follow-job, one at a time', async () => {
      const created = await fmc(['create', server.url, 'stable'])
      ok(created)
      ok(await fmc(['push', created.stdout, fixture.repoV1]))
      ok(await fmc(['commit', '--wait', created.stdout]))
      const outputFile = path.join(mkdtempSync(path.join(tmpdir(), 'fmc-')), 'publish.json')
      ok(await fmc(['--output', outputFile, 'publish', '--wait', created.stdout]))
      const output = JSON.parse(readFileSync(outputFile, 'utf8')) as { result: { id: number; status: number; results: Record<string, unknown> } }
      assert.equal(output.result.status, 2, 'ended')
      assert.equal(typeof output.result.results['update-repo-job'], 'number')
      const followed = await fmc(['follow-job', `${server.url}/api/v1/job/${output.result.results['update-repo-job'] as number}`])
      ok(followed)
      assert.match(followed.stdout + followed.stderr, /summary/i)
      ok(await fmc(['purge', created.stdout]))
    })

    it('create-token mints a narrower token that works where it may and is refused where it may not', async () => {
      const created = await fmc(['create', server.url, 'stable'])
      ok(created)
      const id = Number(created.stdout.split('/').at(-1))
      const minted = await fmc(['create-token', server.url, 'uploader', `build/${id}`, 'upload'])
      ok(minted)
      const subset = minted.stdout.trim()
      assert.match(subset, /^[\w-]+\.[\w-]+\.[\w-]+$/)
      // It may upload into its build...
      ok(await fmc(['push', created.stdout, fixture.repoV1], { token: subset }))
      // ...but not create builds, nor commit (no build scope).
      const refused = await fmc(['create', server.url, 'stable'], { token: subset })
      assert.equal(refused.code, 1)
      assert.match(refused.stdout + refused.stderr, /token-insufficient|Not enough permissions/)
      const noCommit = await fmc(['commit', created.stdout], { token: subset })
      assert.equal(noCommit.code, 1)
      ok(await fmc(['purge', created.stdout]))
    })

    it('prune runs flatpak\'s prune on the repo as a job', async () => {
      const outputFile = path.join(mkdtempSync(path.join(tmpdir(), 'fmc-')), 'prune.json')
      ok(await fmc(['--output', outputFile, 'prune', server.url, 'stable']))
      const job = JSON.parse(readFileSync(outputFile, 'utf8')) as { result: { id: number } }
      await waitFor('the prune job', async () => {
        const { body } = await graphql(server.url, token, 'query($id: Int!) { job(id: $id) { ... on Job { status error } } }', { id: job.result.id })
        if (body.data.job.status === 'FAILED') throw new Error(body.data.job.error)
        return body.data.job.status === 'SUCCEEDED' ? true : undefined
      })
    })
  })
}
