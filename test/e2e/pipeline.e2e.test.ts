import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { buildFixture, type Fixture } from '../support/fixture.ts'
import { createPostgresDatabase, testEngines } from '../support/databases.ts'
import { graphql, startServer, waitFor, type ServerProcess } from '../support/server.ts'
import { uploadMissing } from '../support/upload.ts'
import { signedRepoConfig } from '../support/config.ts'
import { flatpakClient } from '../support/flatpakClient.ts'
import { deltaRelativeDir } from '../../src/storage/deltas.ts'

const exec = promisify(execFile)

type BuildView = { id: number; repoState: string; publishedState: string; repoStateReason: string | null; checks: { name: string; status: string }[] }

async function buildState(server: ServerProcess, token: string, id: number): Promise<BuildView> {
  const { body } = await graphql(server.url, token, `query($id: Int!) { build(id: $id) { ... on Build {
    id repoState publishedState repoStateReason checks { name status } } ... on Error { message } } }`, { id })
  return body.data.build
}

async function jobsSettled(server: ServerProcess, token: string): Promise<true | undefined> {
  const { body } = await graphql(server.url, token, `{ jobs(first: 100) { ... on QueryJobsConnection { edges { node { id kind status error } } } } }`)
  const jobs = body.data.jobs.edges.map((edge: { node: { status: string; kind: string; error: string | null } }) => edge.node)
  const failed = jobs.find((job: { status: string }) => job.status === 'FAILED')
  if (failed) throw new Error(`job failed: ${JSON.stringify(failed)}`)
  return jobs.every((job: { status: string }) => job.status === 'SUCCEEDED') ? true : undefined
}

/** What a build bot does: create a build, create refs, upload what is missing, commit, wait, publish, wait. */
async function publish(server: ServerProcess, token: string, source: string, refs: Record<string, string>): Promise<number> {
  const created = await graphql(server.url, token, 'mutation { createBuild(input: { repo: "stable" }) { ... on Build { id } ... on Error { message } } }')
  const id = created.body.data.createBuild.id as number
  assert.ok(id, JSON.stringify(created.body))
  for (const [ref, commit] of Object.entries(refs)) {
    const made = await graphql(server.url, token, `mutation($id: Int!, $ref: String!, $commit: String!) {
      createBuildRef(buildId: $id, refName: $ref, commit: $commit) { __typename ... on Error { message } } }`, { id, ref, commit })
    assert.equal(made.body.data.createBuildRef.__typename, 'BuildRef', JSON.stringify(made.body))
  }
  await uploadMissing(server.url, token, id, source)
  const commit = await graphql(server.url, token, 'mutation($id: Int!) { commitBuild(buildId: $id) { __typename ... on Job { id } ... on Error { message } } }', { id })
  assert.equal(commit.body.data.commitBuild.__typename, 'Job', JSON.stringify(commit.body))
  await waitFor(`build ${id} ready`, async () => {
    const build = await buildState(server, token, id)
    if (build.repoState === 'FAILED') throw new Error(`commit failed: ${build.repoStateReason}`)
    return build.repoState === 'READY' ? build : undefined
  })
  const published = await graphql(server.url, token, 'mutation($id: Int!) { publishBuild(buildId: $id) { __typename ... on Error { message } } }', { id })
  assert.equal(published.body.data.publishBuild.__typename, 'Job', JSON.stringify(published.body))
  await waitFor(`build ${id} published`, async () => ((await buildState(server, token, id)).publishedState === 'PUBLISHED' ? true : undefined))
  await waitFor('update-repo and delta jobs', () => jobsSettled(server, token), 120_000)
  return id
}

for (const engine of testEngines) {
  describe(`build pipeline on ${engine}: upload, commit, check, publish, install and update with a real flatpak client`, () => {
    let fixture: Fixture
    let server: ServerProcess
    let token: string
    let dropDatabase = async () => {}
    let checkScript: string

    before(async () => {
      fixture = await buildFixture('small')
      let databaseUrl: string | null = null
      if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
      const hooks = mkdtempSync(path.join(tmpdir(), 'flatdepot-hooks-'))
      checkScript = path.join(hooks, 'check.sh')
      writeFileSync(checkScript, '#!/bin/sh\necho "checking build $FLAT_MANAGER_BUILD_ID in job $FLATDEPOT_JOB_ID"\ntest -d . && ls > /dev/null\n')
      chmodSync(checkScript, 0o755)
      server = await startServer({
        databaseUrl,
        config: (port) =>
          signedRepoConfig(fixture, port, {
            title: 'flatdepot test repo',
            'default-branch': 'stable',
            hooks: { checks: { smoke: { command: [checkScript] } } },
          }),
      })
      token = await server.cli('token', 'create', '--name', 'pipeline-bot', '--repo', 'stable')
    })
    after(async () => {
      if (process.env.DEBUG_E2E) console.log(server.logs().filter((l) => Number(l.status) >= 400 || Number(l.level) >= 40))
      await server?.stop()
      await dropDatabase()
    })

    it('publishes v1, a real client installs it; publishes v2, the client updates through the static delta', async () => {
      await publish(server, token, fixture.repoV1, { [fixture.runtime.ref]: fixture.runtime.commit, [fixture.app.ref]: fixture.app.v1 })
      const client = flatpakClient(fixture)
      try {
        await client.flatpak('remote-add', `--gpg-import=${fixture.keyFile}`, 'test', `${server.url}/repo/stable`)
        await client.flatpak('install', '-y', '--noninteractive', 'test', fixture.app.id)
        assert.equal(await client.installedVersion(), '1')
        const deltaRequestsBefore = server.logs().filter((line) => line.msg === 'request' && String(line.path).includes('/deltas/')).length

        await publish(server, token, fixture.repoV2, { [fixture.app.ref]: fixture.app.v2 })
        await client.flatpak('update', '-y', '--noninteractive')
        assert.equal(await client.installedVersion(), '2')
        const deltaRequests = server.logs().filter((line) => line.msg === 'request' && String(line.path).includes('/deltas/') && line.status === 200)
        assert.ok(deltaRequests.length > deltaRequestsBefore, 'the update fetched static delta parts')
      } finally {
        client.cleanup()
      }
    })

    it('keeps the static deltas the depth policy wants, and still serves a retired one', async () => {
      const repo = path.join(server.dataDir, 'repos/stable')
      const ostree = async (...args: string[]) => (await exec('ostree', [`--repo=${repo}`, ...args])).stdout.trim()
      const [v2, v1] = [await ostree('rev-parse', fixture.app.ref), await ostree('rev-parse', `${fixture.app.ref}^`)]
      const runtime = await ostree('rev-parse', fixture.runtime.ref)
      const deltas = (await ostree('static-delta', 'list')).split('\n')
      // No `deltas` in the config: depth 2 for apps and runtimes (from scratch, from the parent).
      assert.deepEqual(deltas.filter((name) => [v1, v2, runtime].some((commit) => name.endsWith(commit))).sort(), [`${v1}-${v2}`, runtime, v2].sort())
      // v1's from-scratch delta is no longer wanted: moved aside, out of the summary, still served.
      const retired = deltaRelativeDir({ from: null, to: v1 })
      assert.ok(!existsSync(path.join(repo, retired)))
      const superblock = await fetch(`${server.url}/repo/stable/${retired}/superblock`)
      assert.equal(superblock.status, 200, 'a client holding the previous summary can still fetch it')
      assert.equal((await fetch(`${server.url}/repo/stable/deltas/.tmp/${retired.slice('deltas/'.length)}/superblock`)).status, 404, 'the grace directory itself is not a URL')
    })

    it('serves the summary and its signatures from the last complete update, never half of one', async () => {
      const repo = path.join(server.dataDir, 'repos/stable')
      const served = Buffer.from(await (await fetch(`${server.url}/repo/stable/summary.idx`)).arrayBuffer())
      assert.deepEqual(served, readFileSync(path.join(repo, 'summary.idx')))
      // What a client reading the repo's own files mid-update could get: a summary whose signature is not written yet.
      const originals = new Map(['summary.sig', 'summary.idx.sig', 'summary.idx'].map((name) => [name, readFileSync(path.join(repo, name))]))
      try {
        writeFileSync(path.join(repo, 'summary.idx'), Buffer.concat([originals.get('summary.idx')!, Buffer.from('half-written')]))
        writeFileSync(path.join(repo, 'summary.idx.sig'), 'not yet signed')
        writeFileSync(path.join(repo, 'summary.sig'), 'not yet signed')
        assert.deepEqual(Buffer.from(await (await fetch(`${server.url}/repo/stable/summary.idx`)).arrayBuffer()), served)
        const client = flatpakClient(fixture)
        try {
          await client.flatpak('remote-add', `--gpg-import=${fixture.keyFile}`, 'test', `${server.url}/repo/stable`)
          assert.match(await client.flatpak('remote-ls', 'test'), new RegExp(fixture.app.id.replaceAll('.', '\\.')))
        } finally {
          client.cleanup()
        }
        const dir = mkdtempSync(path.join(tmpdir(), 'ostree-summary-'))
        try {
          await exec('ostree', [`--repo=${dir}`, 'init', '--mode=bare-user-only'])
          await exec('ostree', [`--repo=${dir}`, 'remote', 'add', `--gpg-import=${fixture.keyFile}`, 'test', `${server.url}/repo/stable`])
          assert.match((await exec('ostree', [`--repo=${dir}`, 'remote', 'refs', 'test'])).stdout, new RegExp(fixture.app.ref))
        } finally {
          rmSync(dir, { recursive: true, force: true })
        }
      } finally {
        for (const [name, bytes] of originals) writeFileSync(path.join(repo, name), bytes)
      }
    })

    it('installs from the generated .flatpakref, titled from the appstream name', async () => {
      const ref = await (await fetch(`${server.url}/repo/stable/appstream/${fixture.app.id}.flatpakref`)).text()
      assert.match(ref, /^Title=Hello World$/m)
      assert.match(ref, /^GPGKey=/m)
      const client = flatpakClient(fixture)
      try {
        const file = path.join(client.home, 'hello.flatpakref')
        writeFileSync(file, ref)
        await client.flatpak('install', '-y', '--noninteractive', '--from', file)
        assert.equal(await client.installedVersion(), '2')
      } finally {
        client.cleanup()
      }
    })

    it('serves a repo that ostree pulls with GPG verification, and that fsck finds clean', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'ostree-pull-'))
      try {
        const repo = path.join(dir, 'repo')
        await exec('ostree', [`--repo=${repo}`, 'init', '--mode=bare-user-only'])
        await exec('ostree', [`--repo=${repo}`, 'remote', 'add', `--gpg-import=${fixture.keyFile}`, 'test', `${server.url}/repo/stable`])
        await exec('ostree', [`--repo=${repo}`, 'pull', 'test', fixture.app.ref])
        const shown = await exec('ostree', [`--repo=${repo}`, 'show', `test:${fixture.app.ref}`])
        assert.match(shown.stdout, /Good signature/)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
      const fsck = await exec('ostree', [`--repo=${path.join(server.dataDir, 'repos/stable')}`, 'fsck'])
      assert.match(fsck.stdout, /completed successfully - no errors found/)
      assert.ok(existsSync(path.join(server.dataDir, 'repos/stable/stable.flatpakrepo')))
    })

    it('keeps a durable job log with the check hook\'s output', async () => {
      const { body } = await graphql(server.url, token, `{ jobs(first: 100, kind: CHECK) { ... on QueryJobsConnection { edges { node {
        id buildId status log { position stream text } } } } } }`)
      const check = body.data.jobs.edges.at(-1).node
      assert.equal(check.status, 'SUCCEEDED')
      assert.deepEqual(check.log.map((line: { position: number }) => line.position), check.log.map((_: unknown, i: number) => i + 1))
      assert.ok(check.log.some((line: { stream: string; text: string }) => line.stream === 'stdout' && line.text === `checking build ${check.buildId} in job ${check.id}`), JSON.stringify(check.log))
      const commits = await graphql(server.url, token, `{ jobs(first: 100, kind: COMMIT) { ... on QueryJobsConnection { edges { node { log { text } } } } } }`)
      const commitLog = commits.body.data.jobs.edges.at(-1).node.log.map((line: { text: string }) => line.text)
      assert.ok(commitLog.includes(`Committing ref ${fixture.runtime.ref} (${fixture.runtime.commit})`), commitLog.join('\n'))
    })

    it('republishes the app over flat-manager\'s REST API: a new signed commit with the end of life, the repo updated, the client told', async () => {
      const maintainer = await server.cli('token', 'create', '--name', 'maintainer', '--repo', 'stable', '--scope', 'republish', '--scope', 'jobs')
      const repo = path.join(server.dataDir, 'repos/stable')
      const before = (await exec('ostree', [`--repo=${repo}`, 'rev-parse', fixture.app.ref])).stdout.trim()
      const answer = await fetch(`${server.url}/api/v1/repo/stable/republish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${maintainer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ app: fixture.app.id, endoflife: 'No longer maintained' }),
      })
      assert.equal(answer.status, 200)
      const job = (await answer.json()) as { id: number; kind: number }
      assert.equal(job.kind, 3, 'a Republish job')
      assert.equal(answer.headers.get('location'), `${server.url}/api/v1/job/${job.id}`)
      const ended = await waitFor('the republish job', async () => {
        const { body } = await graphql(server.url, token, `{ job(id: ${job.id}) { ... on Job { status error results } } }`)
        if (body.data.job.status === 'FAILED') throw new Error(body.data.job.error)
        return body.data.job.status === 'SUCCEEDED' ? body.data.job : undefined
      }, 120_000)
      const after = (await exec('ostree', [`--repo=${repo}`, 'rev-parse', fixture.app.ref])).stdout.trim()
      assert.notEqual(after, before, 'a new commit')
      assert.equal(ended.results.refs[fixture.app.ref], after)
      assert.match((await exec('ostree', [`--repo=${repo}`, 'show', fixture.app.ref])).stdout, /Found 1 signature:[\s\S]*key ID/, 'signed with the repo key')
      // The repo update follows (the pipeline queues it), so a client sees the end of life.
      const client = flatpakClient(fixture)
      try {
        await client.flatpak('remote-add', `--gpg-import=${fixture.keyFile}`, 'test', `${server.url}/repo/stable`)
        await waitFor('the summary with the republished commit', async () => {
          const info = await client.flatpak('remote-info', 'test', fixture.app.ref)
          return /End-of-life: No longer maintained/.test(info) ? true : undefined
        }, 60_000)
      } finally {
        client.cleanup()
      }
    })
  })
}
