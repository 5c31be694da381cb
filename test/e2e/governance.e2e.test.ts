import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
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

/** Maintaining a published repo: republish with end-of-life, roll back and lock, delete, and the audit log of it all. */
for (const engine of testEngines) {
  describe(`repo governance on ${engine}`, () => {
    let fixture: Fixture
    let server: ServerProcess
    let dropDatabase = async () => {}
    let bot: string
    let maintainer: string
    let hookLog: string
    const client = () => flatpakClient(fixture)
    let installed: ReturnType<typeof flatpakClient>
    const repoDir = () => path.join(server.dataDir, 'repos/stable')
    const ostree = async (...args: string[]) => (await exec('ostree', [`--repo=${repoDir()}`, ...args])).stdout.trim()

    const cli = (token: string, ...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [path.join(process.cwd(), 'bin/flatdepot.mjs'), ...args, '--url', server.url, '--token', token], { cwd: server.dataDir }, (error, stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        )
      })
    const ok = (result: { code: number; stdout: string; stderr: string }) => {
      assert.equal(result.code, 0, result.stderr)
      return result
    }
    const job = async (id: number) => {
      return waitFor(`job ${id}`, async () => {
        const { body } = await graphql(server.url, maintainer, `{ job(id: ${id}) { ... on Job { status error results } } }`)
        const found = body.data.job as { status: string; error: string | null; results: Record<string, unknown> }
        return found.status === 'SUCCEEDED' || found.status === 'FAILED' ? found : undefined
      }, 120_000)
    }
    const updated = () =>
      waitFor('the repo update', async () => {
        const { body } = await graphql(server.url, maintainer, '{ jobs(first: 100) { ... on QueryJobsConnection { edges { node { kind status } } } } }')
        const nodes = body.data.jobs.edges.map((edge: { node: { kind: string; status: string } }) => edge.node)
        return nodes.every((node: { status: string }) => node.status === 'SUCCEEDED' || node.status === 'FAILED') ? true : undefined
      }, 120_000)
    const mutate = async (query: string, variables: Record<string, unknown> = {}, token = maintainer) => (await graphql(server.url, token, query, variables)).body.data
    /** What the repo read model says stable serves (the dashboard's repo page). */
    const servedRefs = async (): Promise<Record<string, { commit: string; source: string }>> => {
      const data = await mutate('{ repo(name: "stable") { refs { ref commit source } } }')
      return Object.fromEntries((data.repo.refs as { ref: string; commit: string; source: string }[]).map(({ ref, commit, source }) => [ref, { commit, source }]))
    }

    before(async () => {
      fixture = await buildFixture('small')
      let databaseUrl: string | null = null
      if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
      const hooks = mkdtempSync(path.join(tmpdir(), 'governance-hooks-'))
      hookLog = path.join(hooks, 'hook.log')
      const hook = path.join(hooks, 'publish.sh')
      writeFileSync(hook, `#!/bin/sh\necho "republish=$FLAT_MANAGER_IS_REPUBLISH build=\${FLAT_MANAGER_BUILD_ID:-none}" >> ${hookLog}\n`)
      chmodSync(hook, 0o755)
      const subsets = { runtimes: { ids: ['org.test.Platform'] }, everything: { ids: ['org.test.*'] } }
      server = await startServer({ databaseUrl, config: (port) => signedRepoConfig(fixture, port, { hooks: { publish: [hook] }, subsets }, 17) })
      bot = await server.cli('token', 'create', '--name', 'ci-bot', '--repo', 'stable')
      const scopes = ['republish', 'delete', 'rollback', 'prune', 'audit', 'jobs', 'build', 'download', 'publish']
      maintainer = await server.cli('token', 'create', '--name', 'maintainer', '--repo', 'stable', ...scopes.flatMap((scope) => ['--scope', scope]))
      ok(await cli(bot, 'push', 'stable', fixture.repoV1, '--publish', '--wait-update', '--no-progress', '-q'))
      installed = client()
      await installed.flatpak('remote-add', `--gpg-import=${fixture.keyFile}`, 'test', `${server.url}/repo/stable`)
      await installed.flatpak('install', '-y', '--noninteractive', 'test', fixture.app.id)
      ok(await cli(bot, 'push', 'stable', fixture.repoV2, '--publish', '--wait-update', '--no-progress', '-q'))
      await installed.flatpak('update', '-y', '--noninteractive')
      assert.equal(await installed.installedVersion(), '2')
    })
    after(async () => {
      installed?.cleanup()
      await server?.stop()
      await dropDatabase()
    })

    it('rolls the app back to v1: a new commit with v1\'s content, and a client updates to it', async () => {
      const v2 = await ostree('rev-parse', fixture.app.ref)
      const v1 = await ostree('rev-parse', `${fixture.app.ref}^`)
      const rolled = ok(await cli(maintainer, 'rollback', 'stable', fixture.app.ref, v1, '--wait', '--json'))
      const done = await job((JSON.parse(rolled.stdout) as { jobId: number }).jobId)
      assert.equal(done.status, 'SUCCEEDED', done.error ?? '')
      const now = await ostree('rev-parse', fixture.app.ref)
      assert.notEqual(now, v1, 'a new commit, not the old one')
      assert.equal(await ostree('rev-parse', `${fixture.app.ref}^`), v2, 'on top of v2')
      assert.match(await ostree('show', fixture.app.ref), /Found 1 signature/)
      assert.deepEqual((await servedRefs())[fixture.app.ref], { commit: now, source: 'rollback' }, 'the repo read model follows the rollback')
      await updated()
      await installed.flatpak('update', '-y', '--noninteractive')
      assert.equal(await installed.installedVersion(), '1')
    })

    it('a locked app refuses a bot\'s publish with the lock\'s reason, until unlocked', async () => {
      ok(await cli(maintainer, 'lock', 'stable', fixture.app.id, '--reason', 'rolled back for bug 42'))
      const refused = await cli(bot, 'push', 'stable', fixture.repoV2, '--publish', '--no-progress', '-q')
      assert.equal(refused.code, 1)
      assert.match(refused.stderr, /locked in repo stable: rolled back for bug 42/)
      const noScope = await mutate('mutation { lockApp(repo: "stable", app: "org.test.Hello", reason: "x") { __typename ... on Error { message } } }', {}, bot)
      assert.equal(noScope.lockApp.__typename, 'PermissionDeniedError')
      ok(await cli(maintainer, 'unlock', 'stable', fixture.app.id))
    })

    it('republishes with an end-of-life: the publish hook runs as a republish, and a client\'s flatpak update prints the message', async () => {
      const data = await mutate('mutation($m: String) { republishApp(repo: "stable", app: "org.test.Hello", endOfLife: $m) { __typename ... on Job { id } ... on Error { message } } }', { m: 'Use org.test.Hello2 instead' })
      assert.equal(data.republishApp.__typename, 'Job', JSON.stringify(data))
      const done = await job(data.republishApp.id)
      assert.equal(done.status, 'SUCCEEDED', done.error ?? '')
      assert.match(readFileSync(hookLog, 'utf8'), /republish=true build=none/)
      assert.deepEqual((await servedRefs())[fixture.app.ref], { commit: await ostree('rev-parse', fixture.app.ref), source: 'republish' })
      await updated()
      const { stdout, stderr } = await exec('flatpak', ['--user', 'update', '-y', '--noninteractive'], { env: installed.env })
      assert.match(stdout + stderr, /end-of-life[\s\S]*Use org\.test\.Hello2 instead/i)
    })

    it('a subset\'s .flatpakrepo gives a client only the subset\'s refs', async () => {
      const listed = async (subset: string) => {
        const sub = client()
        try {
          const descriptor = path.join(sub.home, `${subset}.flatpakrepo`)
          const response = await fetch(`${server.url}/repo/stable/stable-${subset}.flatpakrepo`)
          assert.equal(response.status, 200)
          const text = await response.text()
          assert.match(text, new RegExp(`^Subset=${subset}$`, 'm'))
          writeFileSync(descriptor, text)
          await sub.flatpak('remote-add', '--from', 'sub', descriptor)
          return await sub.flatpak('remote-ls', '--all', 'sub')
        } finally {
          sub.cleanup()
        }
      }
      const runtimes = await listed('runtimes')
      assert.match(runtimes, /org\.test\.Platform/)
      assert.doesNotMatch(runtimes, /org\.test\.Hello/)
      const everything = await listed('everything')
      assert.match(everything, /org\.test\.Platform/)
      assert.match(everything, /org\.test\.Hello/)
    })

    it('prunes by depth: the dry run reports what goes and the prune removes exactly that; a build in progress and the rollback\'s commits are kept', async () => {
      const history = (await ostree('log', fixture.app.ref)).match(/^commit [0-9a-f]{64}$/gm)!.map((line) => line.slice(7))
      assert.ok(history.length >= 4, 'v1, v2, the rollback, the end-of-life republish')
      const [, rollbackCommit, v2, v1] = history as [string, string, string, string]
      const held = await mutate('{ builds(first: 100) { ... on QueryBuildsConnection { edges { node { id repoState publishedState } } } } }')
      const inProgress = held.builds.edges.map((edge: { node: { id: number; repoState: string; publishedState: string } }) => edge.node).find((build: { repoState: string; publishedState: string }) => build.repoState === 'READY' && build.publishedState === 'UNPUBLISHED')
      assert.ok(inProgress, 'the build the lock refused is still waiting to be published')

      const badDepth = await mutate('mutation { pruneRepo(repo: "stable", depth: -1) { __typename ... on InvalidInputError { field } } }')
      assert.deepEqual(badDepth.pruneRepo, { __typename: 'InvalidInputError', field: 'depth' })
      const noScope = await mutate('mutation { pruneRepo(repo: "stable", dryRun: true) { __typename } }', {}, bot)
      assert.equal(noScope.pruneRepo.__typename, 'PermissionDeniedError')

      const dry = JSON.parse(ok(await cli(maintainer, 'prune', 'stable', '--depth', '0', '--dry-run', '--json')).stdout).job.results as { objects: number; bytes: number; heldBuilds: number[]; dryRun: boolean }
      assert.equal(dry.dryRun, true)
      assert.ok(dry.objects > 0 && dry.bytes > 0, JSON.stringify(dry))
      assert.deepEqual(dry.heldBuilds, [inProgress.id])
      assert.match(await ostree('show', rollbackCommit), /^commit /, 'a dry run removes nothing')

      const printed = ok(await cli(maintainer, 'prune', 'stable', '--depth', '0', '--wait'))
      assert.match(printed.stdout, new RegExp(`removed ${dry.objects} objects`))
      const pruned = await mutate('{ auditLog(repo: "stable", type: "RepoPruned", first: 1) { ... on AuditPage { events { data } } } }')
      assert.deepEqual(
        (({ objects, bytes }) => ({ objects, bytes }))(pruned.auditLog.events[0].data as { objects: number; bytes: number }),
        { objects: dry.objects, bytes: dry.bytes },
        'the prune removed what the dry run reported',
      )
      await assert.rejects(ostree('show', rollbackCommit), 'the rollback\'s own commit, beyond depth 0, went')
      for (const kept of [v1, v2]) assert.match(await ostree('show', kept), /^commit /, 'the commits the rollback left and went back to stay')
      assert.match(await ostree('fsck'), /no errors found/)
      await updated()
      // The build held through the prune still publishes whole.
      ok(await cli(maintainer, 'publish', String(inProgress.id), '--wait'))
      await updated()
      assert.match(await ostree('fsck'), /no errors found/)
    })

    it('deletes: a runtime an app uses is refused; the app leaves remote-ls and appstream, a client that had it keeps working, fsck is clean', async () => {
      const refused = await mutate('mutation($refs: [String!]) { deleteFromRepo(repo: "stable", refs: $refs, reason: "old runtime") { __typename ... on Error { message } } }', { refs: [fixture.runtime.ref] })
      assert.equal(refused.deleteFromRepo.__typename, 'ConflictError')
      assert.match(refused.deleteFromRepo.message, /Runtime org\.test\.Platform\/\S+ is still used by app\/org\.test\.Hello\/\S+: delete that first, or force/)
      const noReason = await mutate('mutation { deleteFromRepo(repo: "stable", app: "org.test.Hello", reason: " ") { __typename ... on InvalidInputError { field } } }')
      assert.deepEqual(noReason.deleteFromRepo, { __typename: 'InvalidInputError', field: 'reason' })
      const noScope = await mutate('mutation { deleteFromRepo(repo: "stable", app: "org.test.Hello", reason: "x") { __typename } }', {}, bot)
      assert.equal(noScope.deleteFromRepo.__typename, 'PermissionDeniedError')

      const deleted = ok(await cli(maintainer, 'delete', 'stable', fixture.app.id, '--reason', 'unmaintained, see issue 7', '--wait', '--json'))
      assert.equal((await job((JSON.parse(deleted.stdout) as { jobId: number }).jobId)).status, 'SUCCEEDED')
      await updated()
      assert.doesNotMatch(await ostree('refs'), /app\/org\.test\.Hello\//)
      assert.deepEqual(Object.keys(await servedRefs()), [fixture.runtime.ref], 'the app left the repo read model; the runtime stays')
      assert.ok(!existsSync(path.join(repoDir(), 'appstream', `${fixture.app.id}.flatpakref`)))
      const fresh = client()
      try {
        await fresh.flatpak('remote-add', `--gpg-import=${fixture.keyFile}`, 'test', `${server.url}/repo/stable`)
        assert.doesNotMatch(await fresh.flatpak('remote-ls', 'test'), /org\.test\.Hello\b(?!2)/)
      } finally {
        fresh.cleanup()
      }
      await installed.flatpak('update', '-y', '--noninteractive')
      assert.equal(await installed.installedVersion(), '1', 'the installed app keeps working')
      assert.match(await ostree('fsck'), /no errors found/)
    })

    it('the audit log shows who rolled back, locked, republished and deleted, and when', async () => {
      const data = await mutate('{ auditLog(repo: "stable", first: 200) { __typename ... on AuditPage { events { type actorName requestId at data } } } }')
      const events = data.auditLog.events as { type: string; actorName: string; requestId: string | null; at: string; data: Record<string, unknown> }[]
      for (const type of ['RepoRollbackRequested', 'RepoRolledBack', 'RepoAppLocked', 'RepoAppUnlocked', 'RepoRepublishRequested', 'RepoPruneRequested', 'RepoPruned', 'RepoDeleteRequested', 'RepoRefsDeleted']) {
        assert.ok(events.some((event) => event.type === type), `${type} is in the log`)
      }
      const request = events.find((event) => event.type === 'RepoDeleteRequested')!
      assert.equal(request.actorName, 'maintainer')
      assert.ok(request.requestId, 'with the request id')
      assert.equal(request.data.reason, 'unmaintained, see issue 7')
      assert.ok(events.find((event) => event.type === 'BuildPublished'), 'the bot\'s publishes too')
      const sorted = [...events].sort((a, b) => b.at.localeCompare(a.at))
      assert.deepEqual(events.map((event) => event.at), sorted.map((event) => event.at), 'newest first')
      const byToken = await mutate('{ auditLog(repo: "stable", tokenName: "ci-bot", type: "BuildPublishRequested") { ... on AuditPage { events { actorName } } } }')
      assert.ok(byToken.auditLog.events.length >= 2 && byToken.auditLog.events.every((event: { actorName: string }) => event.actorName === 'ci-bot'))
      const printed = ok(await cli(maintainer, 'log', '--repo', 'stable', '--type', 'RepoDeleteRequested'))
      assert.match(printed.stdout, /maintainer\tRepoDeleteRequested\trepo-stable\t.*unmaintained, see issue 7/)
      const refused = await mutate('{ auditLog { __typename } }', {}, bot)
      assert.equal(refused.auditLog.__typename, 'PermissionDeniedError')
    })

    it('rebuild-read-models reproduces the same builds, jobs and audit log', async () => {
      const snapshot = async () => {
        const builds = await mutate('{ builds(first: 100) { ... on QueryBuildsConnection { edges { node { id repoState publishedState refs { refName commit } } } } } }')
        const jobs = await mutate('{ jobs(first: 100) { ... on QueryJobsConnection { edges { node { id kind status attempts } } } } }')
        const log = await mutate('{ auditLog(repo: "stable", first: 200) { ... on AuditPage { events { position type actorName } } } }')
        const repos = await mutate('{ repos { name refsChangedAt summaryUpdatedAt deltasGeneratedAt deltasFailed refs { ref commit source buildId updatedAt } } }')
        return { builds: builds.builds, jobs: jobs.jobs, log: log.auditLog, repos: repos.repos }
      }
      const before = await snapshot()
      const { dataDir, port, env } = server
      await server.stopKeepingData()
      await exec(process.execPath, [path.join(process.cwd(), 'bin/flatdepot.mjs'), 'rebuild-read-models'], { cwd: dataDir, env })
      server = await startServer({ databaseUrl: env.DATABASE_URL ?? null, env: {}, restart: { dataDir, port }, keepDataDir: false })
      assert.deepEqual(await snapshot(), before)
    })
  })
}
