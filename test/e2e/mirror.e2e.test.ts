import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { buildFixture, type Fixture } from '../support/fixture.ts'
import { createPostgresDatabase, testEngines } from '../support/databases.ts'
import { flatpakClient } from '../support/flatpakClient.ts'
import { graphql, startServer, waitFor, type ServerProcess } from '../support/server.ts'
import { signedRepoConfig } from '../support/config.ts'

const exec = promisify(execFile)

/** A GPG key of the mirror's own (the fixture's key stands for the upstream's). */
async function mirrorKey(): Promise<{ home: string; keyId: string; keyFile: string }> {
  const home = mkdtempSync(path.join(tmpdir(), 'flatdepot-mirror-gpg-'))
  const gpg = (...args: string[]) => exec('gpg', ['--homedir', home, '--batch', ...args])
  await gpg('--passphrase', '', '--quick-gen-key', 'flatdepot mirror <mirror@example.invalid>', 'rsa2048', 'sign', 'never')
  const keyId = (await gpg('--with-colons', '--list-secret-keys')).stdout.split('\n').find((line) => line.startsWith('fpr'))!.split(':')[9]!
  const keyFile = path.join(home, 'mirror.gpg')
  await gpg('--yes', '--output', keyFile, '--export', keyId)
  return { home, keyId, keyFile }
}

/**
 * An enterprise mirror: a second flatdepot serves upstream (its own repo and key, over HTTP);
 * this one follows the selected app with its runtime, verifies upstream's signature on every
 * commit, signs with its own key too, and serves clients that trust only it.
 */
for (const engine of testEngines) {
  describe(`mirroring an upstream on ${engine}`, () => {
    let fixture: Fixture
    let upstream: ServerProcess
    let mirror: ServerProcess
    let dropDatabase = async () => {}
    let key: Awaited<ReturnType<typeof mirrorKey>>
    let upstreamBot: string
    let upstreamMaintainer: string
    let maintainer: string
    let bot: string
    let installed: ReturnType<typeof flatpakClient>
    const mirrorRepo = () => path.join(mirror.dataDir, 'repos/stable')
    const upstreamRepo = () => path.join(upstream.dataDir, 'repos/stable')
    const ostree = async (repo: string, ...args: string[]) => (await exec('ostree', [`--repo=${repo}`, ...args])).stdout.trim()

    const cli = (server: ServerProcess, token: string, ...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [path.join(process.cwd(), 'bin/flatdepot.mjs'), ...args, '--url', server.url, '--token', token], { cwd: server.dataDir }, (error, stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        )
      })
    const ok = <T extends { code: number; stderr: string }>(result: T): T => {
      assert.equal(result.code, 0, result.stderr)
      return result
    }
    const settled = (server: ServerProcess, token: string) =>
      waitFor('the jobs', async () => {
        const { body } = await graphql(server.url, token, '{ jobs(first: 100) { ... on QueryJobsConnection { edges { node { kind status } } } } }')
        const nodes = body.data.jobs.edges.map((edge: { node: { status: string } }) => edge.node)
        return nodes.every((node: { status: string }) => node.status === 'SUCCEEDED' || node.status === 'FAILED') ? true : undefined
      }, 120_000)
    const sync = async (name = 'up') => {
      const result = await cli(mirror, maintainer, 'mirror', 'sync', 'stable', name, '--wait', '--json')
      return { ...result, job: result.code === 0 ? (JSON.parse(result.stdout) as { job: { results: { refs: Record<string, string> } } }).job : null }
    }

    before(async () => {
      fixture = await buildFixture('small')
      key = await mirrorKey()
      let databaseUrl: string | null = null
      if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
      // Upstream: another flatdepot, signed with the fixture's key.
      upstream = await startServer({ config: (port) => signedRepoConfig(fixture, port, {}, 37) })
      upstreamBot = await upstream.cli('token', 'create', '--name', 'upstream-bot', '--repo', 'stable')
      upstreamMaintainer = await upstream.cli('token', 'create', '--name', 'upstream-maintainer', '--repo', 'stable', '--scope', 'republish', '--scope', 'jobs')
      ok(await cli(upstream, upstreamBot, 'push', 'stable', fixture.repoV1, '--publish', '--wait-update', '--no-progress', '-q'))
      ok(await cli(upstream, upstreamBot, 'push', 'stable', fixture.paid.repo, '--publish', '--wait-update', '--no-progress', '-q'))
      // The mirror: its own key; follows org.test.Hello (and the runtime it names) from upstream.
      mirror = await startServer({
        databaseUrl,
        config: (port) => {
          const { 'build-gpg-key': _build, ...base } = signedRepoConfig(fixture, port, {}, 43)
          return {
            ...base,
            'gpg-homedir': key.home,
            repos: {
              stable: {
                path: 'repos/stable',
                'gpg-key': key.keyId,
                export: { path: 'export/stable', 'grace-secs': 30 },
                upstreams: {
                  up: { url: `${upstream.url}/repo/stable`, 'gpg-key': fixture.keyFile, refs: [{ id: ['org.test.Hello'] }] },
                  // The same upstream again: org.test.Paid goes through review first.
                  reviewed: { url: `${upstream.url}/repo/stable`, 'gpg-key': fixture.keyFile, refs: [{ id: ['org.test.Paid'], 'with-runtime': false }], review: true },
                  // And once more, for when this repo publishes that app itself (a conflict).
                  clash: { url: `${upstream.url}/repo/stable`, 'gpg-key': fixture.keyFile, refs: [{ id: ['org.test.Paid'], 'with-runtime': false }] },
                },
              },
            },
          }
        },
      })
      maintainer = await mirror.cli('token', 'create', '--name', 'maintainer', '--repo', 'stable', '--scope', 'mirror', '--scope', 'jobs', '--scope', 'build', '--scope', 'publish', '--scope', 'delete')
      bot = await mirror.cli('token', 'create', '--name', 'ci-bot', '--repo', 'stable')
    })
    after(async () => {
      installed?.cleanup()
      await mirror?.stop()
      await upstream?.stop()
      await dropDatabase()
      if (key) rmSync(key.home, { recursive: true, force: true })
    })

    it('mirrors the selected app and its runtime: upstream\'s signature kept, refs not selected absent, a client trusting only the mirror installs it', async () => {
      const synced = ok(await sync())
      assert.deepEqual(Object.keys(synced.job!.results.refs).sort(), [fixture.app.ref, fixture.runtime.ref])
      await settled(mirror, maintainer)
      const refs = await ostree(mirrorRepo(), 'refs')
      assert.match(refs, /app\/org\.test\.Hello\//)
      assert.match(refs, /runtime\/org\.test\.Platform\//)
      assert.doesNotMatch(refs, /org\.test\.Paid/)
      const commit = await ostree(mirrorRepo(), 'rev-parse', fixture.app.ref)
      assert.equal(commit, await ostree(upstreamRepo(), 'rev-parse', fixture.app.ref), 'the upstream commit, unchanged')
      // ostree checks signatures against the keyring files of a directory: one with each key alone.
      const trusting = (keyFile: string) => {
        const dir = mkdtempSync(path.join(tmpdir(), 'flatdepot-trust-'))
        copyFileSync(keyFile, path.join(dir, 'trustedkeys.gpg'))
        return dir
      }
      const shown = async (keyFile: string) => ostree(mirrorRepo(), 'show', commit, `--gpg-homedir=${trusting(keyFile)}`)
      assert.match(await shown(fixture.keyFile), /Good signature from "flatdepot test/, 'upstream\'s signature')
      assert.match(await shown(key.keyFile), /Good signature from "flatdepot mirror/, 'and the mirror\'s')

      installed = flatpakClient(fixture)
      await installed.flatpak('remote-add', `--gpg-import=${key.keyFile}`, 'mirror', `${mirror.url}/repo/stable`)
      await installed.flatpak('install', '-y', '--noninteractive', 'mirror', fixture.app.id)
      assert.equal(await installed.installedVersion(), '1')
    })

    it('upstream publishes v2: the next sync brings it, and the client updates through a static delta made here', async () => {
      ok(await cli(upstream, upstreamBot, 'push', 'stable', fixture.repoV2, '--publish', '--wait-update', '--no-progress', '-q'))
      const synced = ok(await sync())
      // Upstream's publish made new commits of what the push held (the app, and its runtime again).
      assert.ok(fixture.app.ref in synced.job!.results.refs, 'the new version')
      await settled(mirror, maintainer)
      const [v2, v1] = [await ostree(mirrorRepo(), 'rev-parse', fixture.app.ref), await ostree(mirrorRepo(), 'rev-parse', `${fixture.app.ref}^`)]
      assert.match(await ostree(mirrorRepo(), 'static-delta', 'list'), new RegExp(`${v1}-${v2}`), 'a delta from the mirrored v1 to v2, made here')
      const before = mirror.logs().filter((line) => line.msg === 'request' && String(line.path).includes('/deltas/') && line.status === 200).length
      await installed.flatpak('update', '-y', '--noninteractive')
      assert.equal(await installed.installedVersion(), '2')
      assert.ok(mirror.logs().filter((line) => line.msg === 'request' && String(line.path).includes('/deltas/') && line.status === 200).length > before, 'the update fetched a delta')
      assert.deepEqual(ok(await sync()).job!.results.refs, {}, 'a sync with nothing new changes nothing')
    })

    it('upstream\'s end-of-life reaches the mirror\'s clients', async () => {
      const eol = await graphql(upstream.url, upstreamMaintainer, 'mutation { republishApp(repo: "stable", app: "org.test.Hello", endOfLife: "Moved to org.test.Hello2") { __typename ... on Error { message } } }')
      assert.equal(eol.body.data.republishApp.__typename, 'Job', JSON.stringify(eol.body))
      await settled(upstream, upstreamMaintainer)
      ok(await sync())
      await settled(mirror, maintainer)
      const { stdout, stderr } = await exec('flatpak', ['--user', 'update', '-y', '--noninteractive'], { env: installed.env })
      assert.match(stdout + stderr, /end-of-life[\s\S]*Moved to org\.test\.Hello2/i)
    })

    it('with review, a new upstream version waits as a build through checks and review; publishing it imports the same commit', async () => {
      const first = ok(await cli(mirror, maintainer, 'mirror', 'sync', 'stable', 'reviewed', '--wait', '--json'))
      const results = (JSON.parse(first.stdout) as { job: { results: { build: number; pending: Record<string, string> } } }).job.results
      assert.deepEqual(Object.keys(results.pending), [fixture.paid.ref])
      assert.doesNotMatch(await ostree(mirrorRepo(), 'refs'), /org\.test\.Paid/, 'not served before it is published')
      const { body } = await graphql(mirror.url, maintainer, `{ build(id: ${results.build}) { ... on Build { repoState publishedState tokenName mirrorUpstream refs { refName commit } } } }`)
      assert.deepEqual(
        { ...body.data.build, refs: undefined },
        { repoState: 'READY', publishedState: 'UNPUBLISHED', tokenName: 'mirror:reviewed', mirrorUpstream: 'reviewed', refs: undefined },
      )
      const again = JSON.parse(ok(await cli(mirror, maintainer, 'mirror', 'sync', 'stable', 'reviewed', '--wait', '--json')).stdout) as { job: { results: { waiting: number } } }
      assert.equal(again.job.results.waiting, results.build, 'no second build for the same commits')
      ok(await cli(mirror, maintainer, 'publish', String(results.build), '--wait'))
      await settled(mirror, maintainer)
      const upstreamCommit = await ostree(upstreamRepo(), 'rev-parse', fixture.paid.ref)
      assert.equal(await ostree(mirrorRepo(), 'rev-parse', fixture.paid.ref), upstreamCommit, 'the upstream commit, unchanged')
      assert.equal(results.pending[fixture.paid.ref], upstreamCommit)
    })

    it('an uploaded build of a mirrored app is refused naming its upstream; once deleted and published here, a sync of it is refused naming the build', async () => {
      const refused = await cli(mirror, bot, 'push', 'stable', fixture.repoV2, '--publish', '--no-progress', '-q')
      assert.equal(refused.code, 1)
      assert.match(refused.stderr, /is mirrored from upstream up in repo stable/)
      const paid = await cli(mirror, bot, 'push', 'stable', fixture.paid.repo, '--publish', '--no-progress', '-q')
      assert.match(paid.stderr, /org\.test\.Paid is mirrored from upstream reviewed/)
      ok(await cli(mirror, maintainer, 'delete', 'stable', fixture.paid.id, '--reason', 'we build it ourselves now', '--wait'))
      await settled(mirror, maintainer)
      ok(await cli(mirror, bot, 'push', 'stable', fixture.paid.repo, '--publish', '--wait-update', '--no-progress', '-q'))
      const clash = await sync('clash')
      assert.equal(clash.code, 1)
      assert.match(clash.stderr, /app\/org\.test\.Paid\/\S+ is published in repo stable by uploaded build \d+/)
    })

    it('an rsync loop copying the export while builds publish and syncs run: every copy verifies with the mirror\'s key', async () => {
      // CI copies a dozen times; the campaign (npm run campaign:export) 200 times.
      const copies = Number(process.env.FLATDEPOT_EXPORT_COPIES ?? 12)
      const exported = path.join(mirror.dataDir, 'export/stable')
      const copy = mkdtempSync(path.join(tmpdir(), 'flatdepot-rsync-copy-'))
      let stop = false
      let rounds = 0
      const round = async () => {
        rounds += 1
        ok(await cli(upstream, upstreamBot, 'push', 'stable', rounds % 2 ? fixture.repoV1 : fixture.repoV2, '--publish', '--wait-update', '--no-progress', '-q'))
        ok(await sync())
        ok(await cli(mirror, bot, 'push', 'stable', fixture.paid.repo, '--publish', '--wait-update', '--no-progress', '-q'))
      }
      // Something to copy first (the campaign runs this test alone), then copies while it changes.
      await round()
      ok(await cli(mirror, maintainer, 'export', 'stable', '--wait'))
      const churn = (async () => {
        while (!stop) await round()
      })()
      const failures: string[] = []
      let vanished = 0
      try {
        for (let i = 0; i < copies; i++) {
          // Exit 24 ("some files vanished"): an old set or pruned content went at the end of its
          // grace period during the run; what the copy's summary names is whole all the same.
          await exec('rsync', ['-a', '--delete', `${exported}/`, `${copy}/`]).catch((error: { code?: number }) => {
            if (error.code !== 24) throw error
            vanished += 1
          })
          const client = mkdtempSync(path.join(tmpdir(), 'flatdepot-rsync-client-'))
          try {
            const local = (...args: string[]) => exec('ostree', [`--repo=${client}`, ...args])
            await local('init', '--mode=archive-z2')
            await local('remote', 'add', '--set=gpg-verify=true', '--set=gpg-verify-summary=true', `--gpg-import=${key.keyFile}`, 'origin', `file://${copy}`)
            const refs = (await local('remote', 'refs', 'origin')).stdout.split('\n').map((line) => line.trim().replace(/^origin:/, '')).filter((ref) => /^(app|runtime)\//.test(ref))
            assert.deepEqual(refs.sort(), [fixture.app.ref, fixture.paid.ref, fixture.runtime.ref].sort(), 'the copy lists both apps and the runtime')
            await local('pull', 'origin', ...refs)
            await local('fsck')
          } catch (error) {
            failures.push(`copy ${i + 1}: ${(error as { stderr?: string }).stderr ?? String(error)}`)
          } finally {
            rmSync(client, { recursive: true, force: true })
          }
        }
      } finally {
        stop = true
        await churn
        rmSync(copy, { recursive: true, force: true })
      }
      assert.deepEqual(failures, [], `${failures.length} of ${copies} copies failed while ${rounds} rounds of publishes and syncs ran`)
      console.log(`# export campaign: ${copies} copies verified, ${rounds} rounds of upstream publish + sync + local publish, ${vanished} rsync runs saw a file go at the end of its grace period`)
      assert.ok(rounds >= 1)
      assert.ok(existsSync(path.join(exported, 'current')), 'the export points at its current set')
    })

    it('a tampered upstream commit is refused with the signature error, and nothing of it reaches the repo', async () => {
      // Someone with write access to upstream's files, but not its key, moves the app to an unsigned commit.
      const current = await ostree(upstreamRepo(), 'rev-parse', fixture.app.ref)
      const tampered = await ostree(upstreamRepo(), 'commit', `--branch=${fixture.app.ref}`, `--tree=ref=${current}`, '--subject=tampered', '--bind-ref', fixture.app.ref)
      // Upstream's own next update signs a summary that lists it (its summary key is not the issue here).
      const republish = await graphql(upstream.url, upstreamMaintainer, 'mutation { republishApp(repo: "stable", app: "org.test.Paid") { __typename } }')
      assert.equal(republish.body.data.republishApp.__typename, 'Job')
      await settled(upstream, upstreamMaintainer)
      const before = await ostree(mirrorRepo(), 'rev-parse', fixture.app.ref)
      const result = await sync()
      assert.equal(result.code, 1)
      assert.match(result.stderr, /GPG|signature/i)
      assert.equal(await ostree(mirrorRepo(), 'rev-parse', fixture.app.ref), before, 'the ref did not move')
      assert.ok(!existsSync(path.join(mirrorRepo(), 'objects', tampered.slice(0, 2), `${tampered.slice(2)}.commit`)), 'the tampered commit is not in the served repo')
      assert.match(await ostree(mirrorRepo(), 'fsck'), /no errors/i)
    })
  })
}
