import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
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
    const indexTag = async () => (await fetch(`${server.url}/index/static?${flatpakQuery}`)).headers.get('etag')
    const push = async (source: string) => {
      const before = await indexTag()
      await exec(process.execPath, [path.join(process.cwd(), 'bin/flatdepot.mjs'), 'push', 'stable', source, '--publish', '--wait-update', '--no-progress', '-q', '--url', server.url, '--token', bot], { cwd: server.dataDir })
      await waitFor('the OCI export', async () => {
        const { body } = await graphql(server.url, bot, '{ jobs(first: 100) { ... on QueryJobsConnection { edges { node { kind status error } } } } }')
        const jobs = body.data.jobs.edges.map((edge: { node: { kind: string; status: string; error: string | null } }) => edge.node)
        const failed = jobs.find((job: { status: string }) => job.status === 'FAILED')
        if (failed) throw new Error(`job failed: ${JSON.stringify(failed)}`)
        return jobs.some((job: { kind: string }) => job.kind === 'OCI_EXPORT') && jobs.every((job: { status: string }) => job.status === 'SUCCEEDED') ? true : undefined
      }, 120_000)
      // The index is cached between change notifications, which arrive a moment after the commit.
      await waitFor('the index to change', async () => ((await indexTag()) !== before ? true : undefined), 10_000)
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
      assert.equal(v2.status, 401, 'the version check tells a client without a token where to get one')
      assert.match(v2.headers.get('www-authenticate') ?? '', /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/v2\/token",service="flatdepot"$/)
      assert.equal((await fetch(`${server.url}/v2/`, { headers: { authorization: `Bearer ${bot}` } })).status, 200)
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
      const builds = await graphql(server.url, bot, '{ builds(first: 5) { ... on QueryBuildsConnection { edges { node { publishedState refs { refName publishedCommit } ociImages { ref digest } } } } } }')
      const published = builds.body.data.builds.edges[0].node as { publishedState: string; refs: { refName: string; publishedCommit: string }[]; ociImages: { ref: string; digest: string }[] }
      assert.equal(published.publishedState, 'PUBLISHED')
      assert.ok(published.refs.every((ref) => /^[0-9a-f]{64}$/.test(ref.publishedCommit)), 'each ref names the commit its publish made')
      assert.equal(published.ociImages.find((found) => found.ref === fixture.app.ref)?.digest, hello.Digest, "the published build's images")

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

    it('skopeo pushes an image with a token; it is indexed and installs; no token, another app\'s token and a wrong digest are refused', async () => {
      const layout = path.join(server.dataDir, 'paid-oci')
      await exec('flatpak', ['build-bundle', '--oci', fixture.paid.repo, layout, fixture.paid.id, 'stable'])
      const pusher = await server.cli('token', 'create', '--name', 'oci-bot', '--repo', 'stable', '--prefix', fixture.paid.id, '--scope', 'upload', '--scope', 'publish')
      const other = await server.cli('token', 'create', '--name', 'hello-bot', '--repo', 'stable', '--prefix', fixture.app.id, '--scope', 'upload', '--scope', 'publish')
      const target = `docker://${new URL(server.url).host}/stable/org.test.paid:latest`
      const skopeo = (...args: string[]) => exec('skopeo', ['copy', '--dest-tls-verify=false', ...args, `oci:${layout}`, target], { timeout: 120_000 })

      const anonymous = await skopeo().catch((error: { stderr: string }) => error)
      assert.match((anonymous as { stderr: string }).stderr, /unauthorized|authentication required/i, 'no token: refused')
      const wrongApp = await skopeo('--dest-registry-token', other).catch((error: { stderr: string }) => error)
      assert.match((wrongApp as { stderr: string }).stderr, /denied|not matching prefix/i, "another app's token: refused")
      const blobsUrl = `${server.url}/v2/stable/org.test.paid/blobs/uploads/`
      const refusedAnonymous = await fetch(blobsUrl, { method: 'POST' })
      assert.equal(refusedAnonymous.status, 401)
      assert.equal(((await refusedAnonymous.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNAUTHORIZED')
      const refusedOther = await fetch(blobsUrl, { method: 'POST', headers: { authorization: `Bearer ${other}` } })
      assert.equal(refusedOther.status, 403)
      const deniedBody = (await refusedOther.json()) as { errors: { code: string; message: string }[] }
      assert.equal(deniedBody.errors[0]!.code, 'DENIED')
      assert.match(deniedBody.errors[0]!.message, /org\.test\.paid not matching prefix/)

      // A blob whose bytes do not hash to the digest given: refused, nothing kept.
      const bytes = Buffer.from('not what the digest says')
      const wrongDigest = `sha256:${'ab'.repeat(32)}`
      const mismatch = await fetch(`${blobsUrl}?digest=${wrongDigest}`, { method: 'POST', body: bytes, headers: { authorization: `Bearer ${pusher}`, 'content-type': 'application/octet-stream' } })
      assert.equal(mismatch.status, 400)
      assert.equal(((await mismatch.json()) as { errors: { code: string }[] }).errors[0]!.code, 'DIGEST_INVALID')
      assert.equal((await fetch(`${server.url}/v2/stable/org.test.paid/blobs/${wrongDigest}`, { method: 'HEAD' })).status, 404, 'nothing stored')
      assert.deepEqual(readdirSync(path.join(server.dataDir, 'oci', 'uploads')), [], 'no upload left behind')

      // Chunked: POST, two PATCHes, the closing PUT; the status GET reports the range.
      const chunked = Buffer.from('{"chunked": true}')
      const chunkedDigest = `sha256:${createHash('sha256').update(chunked).digest('hex')}`
      const started = await fetch(blobsUrl, { method: 'POST', headers: { authorization: `Bearer ${pusher}` } })
      assert.equal(started.status, 202)
      const uploadUrl = new URL(started.headers.get('location')!, server.url).href
      const first = await fetch(uploadUrl, { method: 'PATCH', body: chunked.subarray(0, 5), headers: { authorization: `Bearer ${pusher}`, 'content-range': '0-4' } })
      assert.equal(first.status, 202)
      assert.equal(first.headers.get('range'), '0-4')
      const outOfOrder = await fetch(uploadUrl, { method: 'PATCH', body: chunked.subarray(7), headers: { authorization: `Bearer ${pusher}`, 'content-range': '7-16' } })
      assert.equal(outOfOrder.status, 416)
      await fetch(uploadUrl, { method: 'PATCH', body: chunked.subarray(5), headers: { authorization: `Bearer ${pusher}`, 'content-range': `5-${chunked.length - 1}` } })
      const status = await fetch(uploadUrl, { headers: { authorization: `Bearer ${pusher}` } })
      assert.equal(status.headers.get('range'), `0-${chunked.length - 1}`)
      const closed = await fetch(`${uploadUrl}?digest=${chunkedDigest}`, { method: 'PUT', headers: { authorization: `Bearer ${pusher}` } })
      assert.equal(closed.status, 201)
      assert.equal(closed.headers.get('docker-content-digest'), chunkedDigest)
      // Cross-repository mount of a blob the registry has: no bytes sent.
      const mounted = await fetch(`${blobsUrl}?mount=${chunkedDigest}&from=stable/org.test.hello`, { method: 'POST', headers: { authorization: `Bearer ${pusher}` } })
      assert.equal(mounted.status, 201)

      await skopeo('--dest-registry-token', pusher)
      const index = (await (await fetch(`${server.url}/index/static?${flatpakQuery}`)).json()) as { Results: { Name: string; Images: { Labels: Record<string, string> }[] }[] }
      const paid = index.Results.find((result) => result.Name === 'stable/org.test.paid')
      assert.equal(paid?.Images[0]?.Labels['org.flatpak.ref'], fixture.paid.ref, 'the pushed image is in the index flatpak reads')
      // The same push through a token endpoint round trip (podman/skopeo login style credentials) is accepted too.
      await skopeo('--dest-creds', `bot:${pusher}`)
      // A manifest of another app pushed under this name is refused.
      const manifest = await (await fetch(`${server.url}/v2/stable/org.test.hello/manifests/latest`)).text()
      const misnamed = await fetch(`${server.url}/v2/stable/org.test.paid/manifests/hello`, {
        method: 'PUT',
        body: manifest,
        headers: { authorization: `Bearer ${pusher}`, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      })
      assert.equal(misnamed.status, 400)
      assert.equal(((await misnamed.json()) as { errors: { code: string }[] }).errors[0]!.code, 'NAME_INVALID')

      await oci('install', '-y', '--noninteractive', 'ocirepo', fixture.paid.id)
      assert.match(await oci('list', '--app'), /org\.test\.Paid/)
    })

    it("a prune removes the images the repo's policy no longer keeps; tagged images stay", async () => {
      const maintainer = await server.cli('token', 'create', '--name', 'maintainer', '--repo', 'stable', '--scope', 'prune', '--scope', 'jobs')
      const images = async () =>
        ((await graphql(server.url, null, '{ repo(name: "stable") { ociImages(ref: "' + fixture.app.ref + '") { digest tags } } }')).body.data.repo.ociImages as { digest: string; tags: string[] }[])
      const before = await images()
      assert.equal(before.length, 2, 'v1 and v2 of the app')
      const pruned = await graphql(server.url, maintainer, 'mutation { pruneRepo(repo: "stable", depth: 0) { ... on Job { id } } }')
      const jobId = pruned.body.data.pruneRepo.id as number
      const results = await waitFor('the prune', async () => {
        const { body } = await graphql(server.url, maintainer, `{ job(id: ${jobId}) { ... on Job { status results } } }`)
        return body.data.job.status === 'SUCCEEDED' ? body.data.job.results : body.data.job.status === 'FAILED' ? assert.fail('prune failed') : undefined
      }, 120_000)
      // v2's publish made new commits of the runtime too: its older image goes as well.
      assert.deepEqual(
        (results.ociImages as { repository: string }[]).map((image) => image.repository).sort(),
        ['stable/org.test.hello', 'stable/org.test.platform'],
      )
      assert.ok((results.ociImages as { digest: string }[]).some((image) => image.digest === before.find((found) => found.tags.length === 0)!.digest))
      const after = await images()
      assert.deepEqual(after.map((image) => image.tags), [['stable', 'latest']], 'the tagged v2 stays, the untagged v1 is gone')
      assert.equal((await fetch(`${server.url}/v2/stable/org.test.hello/manifests/${before.find((image) => image.tags.length === 0)!.digest}`)).status, 404)
    })
  })
}
