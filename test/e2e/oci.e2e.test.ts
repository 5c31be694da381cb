import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { buildFixture, type Fixture } from '../support/fixture.ts'
import { createPostgresDatabase, testEngines } from '../support/databases.ts'
import { flatpakClient } from '../support/flatpakClient.ts'
import { graphql, startServer, waitFor, type ServerProcess } from '../support/server.ts'
import { signedRepoConfig } from '../support/config.ts'

const exec = promisify(execFile)
const flatpakQuery = 'architecture=amd64&label%3Aorg.flatpak.ref%3Aexists=1&os=linux&tag=latest'

/** OCI distribution: published refs become OCI images, listed in the registry index a real flatpak client reads. */
for (const engine of testEngines) {
  describe(`OCI distribution on ${engine}`, () => {
    let fixture: Fixture
    let server: ServerProcess
    let dropDatabase = async () => {}
    let bot: string
    let client: ReturnType<typeof flatpakClient>
    // flatpak asks the session bus for OCI authenticators: a bus of its own per call. Its output
    // goes to a file: services the bus starts inherit the bus's stdout and would hold a pipe open.
    const oci = async (...args: string[]) => {
      const out = path.join(client.home, 'flatpak.out')
      try {
        await exec('sh', ['-c', 'dbus-run-session -- flatpak --user "$@" >"$OUT" 2>&1 </dev/null', 'sh', ...args], { env: { ...client.env, OUT: out }, timeout: 300_000 })
      } catch (error) {
        throw new Error(`flatpak ${args.join(' ')} failed: ${readFileSync(out, 'utf8')}`, { cause: error })
      }
      return readFileSync(out, 'utf8')
    }
    const push = async (source: string) => {
      await exec(process.execPath, [path.join(process.cwd(), 'bin/flatdepot.mjs'), 'push', 'stable', source, '--publish', '--wait-update', '--no-progress', '-q', '--url', server.url, '--token', bot], { cwd: server.dataDir })
      await waitFor('the OCI export', async () => {
        const { body } = await graphql(server.url, bot, '{ jobs(first: 100) { ... on QueryJobsConnection { edges { node { kind status error } } } } }')
        const jobs = body.data.jobs.edges.map((edge: { node: { kind: string; status: string; error: string | null } }) => edge.node)
        const failed = jobs.find((job: { status: string }) => job.status === 'FAILED')
        if (failed) throw new Error(`job failed: ${JSON.stringify(failed)}`)
        return jobs.some((job: { kind: string }) => job.kind === 'OCI_EXPORT') && jobs.every((job: { status: string }) => job.status === 'SUCCEEDED') ? true : undefined
      }, 120_000)
    }

    before(async () => {
      fixture = await buildFixture('small')
      let databaseUrl: string | null = null
      if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
      server = await startServer({ databaseUrl, config: (port) => signedRepoConfig(fixture, port, { oci: {} }, 53) })
      bot = await server.cli('token', 'create', '--name', 'ci-bot', '--repo', 'stable', '--scope', 'jobs', '--scope', 'build', '--scope', 'upload', '--scope', 'publish')
      client = flatpakClient(fixture)
    })
    after(async () => {
      client?.cleanup()
      await server?.stop()
      await dropDatabase()
    })

    it('publishing exports the app and the runtime as OCI images; the index lists them as flatpak asks, the registry serves them', async () => {
      await push(fixture.repoV1)
      const v2 = await fetch(`${server.url}/v2/`)
      assert.equal(v2.status, 200)
      const index = await fetch(`${server.url}/index/static?${flatpakQuery}`)
      assert.equal(index.status, 200)
      assert.equal(index.headers.get('cache-control'), 'public, no-cache', 'kept by caches, revalidated')
      const etag = index.headers.get('etag')!
      assert.equal((await fetch(`${server.url}/index/static?${flatpakQuery}`, { headers: { 'if-none-match': etag } })).status, 304)
      const document = (await index.json()) as { Registry: string; Results: { Name: string; Images: { Digest: string; Tags: string[]; Labels: Record<string, string> }[] }[] }
      assert.deepEqual(document.Results.map((result) => result.Name), ['stable/org.test.hello', 'stable/org.test.platform'])
      const hello = document.Results[0]!.Images[0]!
      assert.equal(hello.Labels['org.flatpak.ref'], fixture.app.ref)
      assert.deepEqual(hello.Tags, ['stable', 'latest'])

      const listed = await graphql(server.url, null, '{ repo(name: "stable") { ociImages { repository ref digest tags size } } }')
      const images = listed.body.data.repo.ociImages as { repository: string; ref: string; digest: string; tags: string[]; size: number }[]
      assert.deepEqual(images.find((found) => found.ref === fixture.app.ref)?.digest, hello.Digest, 'GraphQL shows the same image')
      assert.ok(images.every((found) => found.size > 0))

      const byTag = await fetch(`${server.url}/v2/stable/org.test.hello/manifests/latest`)
      assert.equal(byTag.status, 200)
      assert.equal(byTag.headers.get('docker-content-digest'), hello.Digest)
      assert.equal(byTag.headers.get('content-type'), 'application/vnd.oci.image.manifest.v1+json')
      const manifest = (await byTag.json()) as { layers: { digest: string; size: number }[] }
      const layer = manifest.layers[0]!
      const ranged = await fetch(`${server.url}/v2/stable/org.test.hello/blobs/${layer.digest}`, { headers: { range: 'bytes=0-99' } })
      assert.equal(ranged.status, 206)
      assert.equal((await ranged.arrayBuffer()).byteLength, 100)
      const missing = await fetch(`${server.url}/v2/stable/org.test.hello/manifests/sha256:${'0'.repeat(64)}`)
      assert.equal(missing.status, 404)
      assert.equal(((await missing.json()) as { errors: { code: string }[] }).errors[0]!.code, 'MANIFEST_UNKNOWN')
      const badQuery = await fetch(`${server.url}/index/dynamic?colour=blue`)
      assert.equal(badQuery.status, 400)
    })

    it('a real flatpak client adds the oci+http remote, lists and installs the app; v2 published, flatpak update brings it', async () => {
      await oci('remote-add', '--no-gpg-verify', 'ocirepo', `oci+${server.url}`)
      const listed = await oci('remote-ls', 'ocirepo')
      assert.match(listed, /org\.test\.Hello/)
      assert.match(listed, /org\.test\.Platform/)
      await oci('install', '-y', '--noninteractive', 'ocirepo', fixture.app.id)
      assert.equal(await client.installedVersion(), '1')
      await push(fixture.repoV2)
      await oci('update', '-y', '--noninteractive')
      assert.equal(await client.installedVersion(), '2')
    })
  })
}
