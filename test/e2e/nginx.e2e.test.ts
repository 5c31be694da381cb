import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { buildFixture, type Fixture } from '../support/fixture.ts'
import { flatpakClient } from '../support/flatpakClient.ts'
import { freePort, graphql, startServer, waitFor, type ServerProcess } from '../support/server.ts'
import { signedRepoConfig } from '../support/config.ts'
import { repoObjects, uploadMissing } from '../support/upload.ts'

const exec = promisify(execFile)

/**
 * `flatdepot nginx-config` in front of a real server: a real nginx runs the printed config, and a
 * real flatpak client installs and updates through it. Content-addressed files come from disk
 * (nginx answers them itself: no flatdepot request id on them), the rest is proxied (uploads and
 * publishes from the CLI go through it too), private build repos pass nginx's auth_request.
 */
describe('flatpak through nginx with the printed front', () => {
  let fixture: Fixture
  let server: ServerProcess
  let nginx: ChildProcess
  let nginxUrl: string
  let work: string
  let token: string
  const cli = (...args: string[]) => exec(process.execPath, [path.join(process.cwd(), 'bin/flatdepot.mjs'), ...args], { cwd: server.dataDir })

  before(async () => {
    fixture = await buildFixture('small')
    server = await startServer({ config: (port) => signedRepoConfig(fixture, port, {}, 61) })
    token = await server.cli('token', 'create', '--name', 'ci-bot', '--repo', 'stable')
    work = mkdtempSync(path.join(tmpdir(), 'flatdepot-nginx-'))
    const port = await freePort()
    const front = await server.cli('nginx-config', '--listen', `127.0.0.1:${port}`, '--upstream', `127.0.0.1:${server.port}`)
    writeFileSync(
      path.join(work, 'nginx.conf'),
      `user root; worker_processes 1; daemon off; pid ${work}/nginx.pid; error_log ${work}/error.log;
events { worker_connections 1024; }
http {
  access_log ${work}/access.log; default_type application/octet-stream;
  client_body_temp_path ${work}/body; proxy_temp_path ${work}/proxy; fastcgi_temp_path ${work}/fcgi; uwsgi_temp_path ${work}/uwsgi; scgi_temp_path ${work}/scgi;
${front}
}`,
    )
    await exec('nginx', ['-t', '-c', path.join(work, 'nginx.conf')])
    nginx = spawn('nginx', ['-c', path.join(work, 'nginx.conf')], { stdio: 'ignore' })
    nginxUrl = `http://127.0.0.1:${port}`
    await waitFor('nginx', async () => ((await fetch(`${nginxUrl}/healthz`).catch(() => null))?.ok ? true : undefined), 10_000)
  })
  after(async () => {
    nginx?.kill('SIGTERM')
    await server?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('a bot pushes through nginx; a real client installs v1 and updates to v2; objects come from disk, the summary from flatdepot', async () => {
    await cli('push', 'stable', fixture.repoV1, '--publish', '--wait-update', '--no-progress', '-q', '--url', nginxUrl, '--token', token)
    const client = flatpakClient(fixture)
    try {
      await client.flatpak('remote-add', `--gpg-import=${fixture.keyFile}`, 'test', `${nginxUrl}/repo/stable`)
      await client.flatpak('install', '-y', '--noninteractive', 'test', fixture.app.id)
      assert.equal(await client.installedVersion(), '1')
      await cli('push', 'stable', fixture.repoV2, '--publish', '--wait-update', '--wait-deltas', '--no-progress', '-q', '--url', nginxUrl, '--token', token)
      await client.flatpak('update', '-y', '--noninteractive')
      assert.equal(await client.installedVersion(), '2')
    } finally {
      client.cleanup()
    }
    const [object] = repoObjects(path.join(server.dataDir, 'repos/stable')).filter((found) => found.name.endsWith('.filez'))
    const fromDisk = await fetch(`${nginxUrl}/repo/stable/objects/${object!.name.slice(0, 2)}/${object!.name.slice(2)}`)
    assert.equal(fromDisk.status, 200)
    assert.equal(fromDisk.headers.get('x-request-id'), null, 'nginx answered it from disk')
    assert.match(fromDisk.headers.get('cache-control') ?? '', /immutable/)
    const summary = await fetch(`${nginxUrl}/repo/stable/summary`)
    assert.equal(summary.status, 200)
    assert.ok(summary.headers.get('x-request-id'), 'the summary set comes from flatdepot (one consistent snapshot per connection)')
    const missing = await fetch(`${nginxUrl}/repo/stable/objects/00/${'0'.repeat(62)}.filez`)
    assert.equal(missing.status, 404, 'what is not on disk is asked of flatdepot, which says so')
    const traversal = await fetch(`${nginxUrl}/repo/stable/objects/../config`)
    assert.notEqual(traversal.status, 500)
    const log = readFileSync(path.join(work, 'access.log'), 'utf8')
    assert.match(log, /GET \/repo\/stable\/objects\/[0-9a-f]{2}\/[0-9a-f]{62}\.(?:commit|dirtree|dirmeta|filez) HTTP\/1\.1" 200/)
  })

  it("a private build repo's objects pass nginx's auth_request: no token 401, another build's token 403, the build's token 200", async () => {
    const { body } = await graphql(nginxUrl, token, 'mutation { createBuild(input: { repo: "stable", publicDownload: false }) { ... on Build { id } } }')
    const buildId = body.data.createBuild.id as number
    await uploadMissing(nginxUrl, token, buildId, fixture.repoV1)
    await graphql(nginxUrl, token, `mutation { createBuildRef(buildId: ${buildId}, refName: "${fixture.app.ref}", commit: "${fixture.app.v1}") { __typename } }`)
    await graphql(nginxUrl, token, `mutation { commitBuild(buildId: ${buildId}) { __typename } }`)
    await waitFor('the commit', async () => {
      const { body: build } = await graphql(nginxUrl, token, `{ build(id: ${buildId}) { ... on Build { repoState } } }`)
      return build.data.build.repoState === 'READY' ? true : undefined
    }, 120_000)
    const commits = repoObjects(path.join(server.dataDir, 'builds', String(buildId))).filter((found) => found.name.endsWith('.commit'))
    assert.ok(commits.length > 0, 'the build repo holds its commits')
    const url = `${nginxUrl}/build-repo/${buildId}/objects/${commits[0]!.name.slice(0, 2)}/${commits[0]!.name.slice(2)}`
    assert.equal((await fetch(url)).status, 401)
    const other = await server.cli('token', 'create', '--name', 'other-build', '--sub', 'build/999999', '--scope', 'download', '--repo', 'stable')
    assert.equal((await fetch(url, { headers: { authorization: `Bearer ${other}` } })).status, 403)
    const allowed = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(allowed.status, 200)
    assert.equal(allowed.headers.get('x-request-id'), null, 'served by nginx from disk once allowed')
    assert.equal(allowed.headers.get('cache-control'), 'private, no-store')
  })
})
