import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { buildFixture, type Fixture } from '../support/fixture.ts'
import { createPostgresDatabase, testEngines } from '../support/databases.ts'
import { freePort, graphql, runCli, startServer, startWorkerProcess, waitFor, type ServerProcess } from '../support/server.ts'
import { signedRepoConfig } from '../support/config.ts'
import { installedFrom } from '../support/flatpakClient.ts'

const exec = promisify(execFile)

const ticks = 8

/** A check hook that prints a line, pauses, prints the next…: a job whose log grows slowly. */
function tickingHook(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ticking-hook-'))
  const script = path.join(dir, 'check.sh')
  writeFileSync(script, `#!/bin/sh\nfor i in $(seq 1 ${ticks}); do echo "tick $i of build $FLAT_MANAGER_BUILD_ID"; sleep 0.25; done\n`)
  chmodSync(script, 0o755)
  return script
}


type Line = { position: number; stream: string; text: string }

function subscriber(server: ServerProcess, token: string) {
  return createClient({ url: `${server.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` } })
}

const jobLogQuery = 'subscription($jobId: Int!, $after: Int!) { jobLog(jobId: $jobId, after: $after) { position stream text } }'

for (const engine of testEngines) {
  describe(`job logs over graphql-ws and the flatdepot CLI on ${engine}${engine === 'postgresql' ? ' (worker in its own process)' : ''}`, () => {
    let small: Fixture
    let large: Fixture
    let server: ServerProcess
    let worker: ReturnType<typeof startWorkerProcess> | null = null
    let token: string
    let dropDatabase = async () => {}

    const buildView = async (id: number) =>
      (
        await graphql(
          server.url,
          token,
          'query($id: Int!) { build(id: $id) { ... on Build { repoState publishedState uploadedObjects checks { name jobId status } } } }',
          { id },
        )
      ).body.data.build as { repoState: string; publishedState: string; uploadedObjects: number; checks: { name: string; jobId: number; status: string }[] }
    const storedLog = async (jobId: number): Promise<{ status: string; finishedAt: string | null; log: Line[] }> =>
      (await graphql(server.url, token, 'query($id: Int!) { job(id: $id) { ... on Job { status finishedAt log { position stream text } } } }', { id: jobId })).body.data.job

    /** Pushes and commits the small fixture with the CLI; returns the build and its check job. */
    async function pushAndCommit(): Promise<{ buildId: number; checkJobId: number }> {
      const pushed = await runCli(server, token, ['push', 'stable', small.repoV1, '--commit', '--json'])
      assert.equal(pushed.code, 0, pushed.stderr)
      const { buildId } = JSON.parse(pushed.stdout) as { buildId: number }
      const checkJobId = await waitFor('the check job', async () => (await buildView(buildId)).checks[0]?.jobId)
      return { buildId, checkJobId }
    }

    before(async () => {
      ;[small, large] = await Promise.all([buildFixture('small'), buildFixture('large')])
      let databaseUrl: string | null = null
      if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
      const config = (port: number) => signedRepoConfig(large, port, { hooks: { checks: { ticking: { command: [tickingHook()] } } } }, 7)
      if (engine === 'postgresql') {
        // The API serves subscriptions; the jobs (and their log lines) happen in another process.
        server = await startServer({ databaseUrl, config, args: ['--workers', '0'] })
        worker = startWorkerProcess(server)
      } else {
        server = await startServer({ config })
      }
      token = await server.cli('token', 'create', '--repo', 'stable')
    })
    after(async () => {
      await worker?.stop()
      await server?.stop()
      await dropDatabase()
    })

    it('a subscriber started mid-job gets the earlier lines from the backlog, then the rest live, in order', async () => {
      const { checkJobId } = await pushAndCommit()
      const backlog = await waitFor('a few lines logged', async () => {
        const { log, status } = await storedLog(checkJobId)
        assert.notEqual(status, 'SUCCEEDED', 'the hook pauses between lines; the job cannot be done yet')
        return log.filter((line) => line.text.startsWith('tick')).length >= 2 ? log.length : undefined
      })
      const client = subscriber(server, token)
      const received: (Line & { at: number })[] = []
      try {
        for await (const result of client.iterate<{ jobLog: Line }>({ query: jobLogQuery, variables: { jobId: checkJobId, after: 0 } })) {
          assert.equal(result.errors, undefined)
          received.push({ ...result.data!.jobLog, at: Date.now() })
        }
      } finally {
        await client.dispose()
      }
      const final = await storedLog(checkJobId)
      assert.equal(final.status, 'SUCCEEDED')
      // Everything the job logged, once each, in order, and the subscription ended with the job.
      assert.deepEqual(
        received.map(({ position, stream, text }) => ({ position, stream, text })),
        final.log,
      )
      assert.deepEqual(
        received.map((line) => line.position),
        final.log.map((_, index) => index + 1),
      )
      const tickLines = received.filter((line) => line.text.startsWith('tick')).map((line) => line.text)
      assert.deepEqual(
        tickLines,
        Array.from({ length: ticks }, (_, index) => tickLines[0]!.replace(/^tick 1 /, `tick ${index + 1} `)),
      )
      assert.ok(backlog < received.length, `the backlog (${backlog} lines) was followed by live lines`)
      // The last tick reached the subscriber while the job was still running (the hook sleeps after it).
      const lastTick = received.findLast((line) => line.text.startsWith(`tick ${ticks} `))!
      assert.ok(lastTick.at < Date.parse(final.finishedAt!), 'the last line arrived live, before the job finished')
    })

    it('a subscriber that disconnects and resumes from its last position misses nothing and gets nothing twice', async () => {
      const { checkJobId } = await pushAndCommit()
      const seen: Line[] = []
      // First connection: read three lines, then drop the connection while the job runs.
      const first = subscriber(server, token)
      for await (const result of first.iterate<{ jobLog: Line }>({ query: jobLogQuery, variables: { jobId: checkJobId, after: 0 } })) {
        seen.push(result.data!.jobLog)
        if (seen.length === 3) break
      }
      await first.dispose()
      assert.notEqual((await storedLog(checkJobId)).status, 'SUCCEEDED', 'the job was still running when the subscriber left')
      await new Promise((resolve) => setTimeout(resolve, 600)) // lines keep coming while it is away
      const second = subscriber(server, token)
      try {
        for await (const result of second.iterate<{ jobLog: Line }>({ query: jobLogQuery, variables: { jobId: checkJobId, after: seen.at(-1)!.position } })) {
          seen.push(result.data!.jobLog)
        }
      } finally {
        await second.dispose()
      }
      const final = await storedLog(checkJobId)
      assert.equal(final.status, 'SUCCEEDED')
      assert.deepEqual(seen, final.log)
      assert.equal(new Set(seen.map((line) => line.position)).size, seen.length)
    })

    it('follow prints a job log until it ends; a token for another build is refused', async () => {
      const { buildId, checkJobId } = await pushAndCommit()
      const followed = await runCli(server, token, ['follow', String(checkJobId)])
      assert.equal(followed.code, 0, followed.stderr)
      assert.equal(followed.stdout.split('\n').filter((line) => line.startsWith('stdout: tick')).length, ticks, followed.stdout)
      assert.match(followed.stderr, /job \d+ \(check\) succeeded/)

      const other = await server.cli('token', 'create', '--sub', `build/${buildId + 100}`, '--scope', 'build', '--repo', 'stable')
      const refused = await runCli(server, other, ['follow', String(checkJobId)])
      assert.equal(refused.code, 1)
      assert.match(refused.stderr, /Not enough permissions/)
      // The subscriptions themselves refuse it too (the CLI asks over HTTP first), each the same way.
      const otherClient = subscriber(server, other)
      try {
        for (const field of [`jobLog(jobId: ${checkJobId}) { position }`, `jobLogLines(jobId: ${checkJobId}) { position }`, `jobUpdated(id: ${checkJobId}) { id }`]) {
          const results = otherClient.iterate({ query: `subscription { ${field} }` })
          const first = await results.next()
          const [error] = (first.value?.errors ?? []) as { message: string; extensions?: { code?: string } }[]
          assert.equal(error?.extensions?.code, 'PERMISSION_DENIED', `${field}: refused with its code: ${JSON.stringify(first.value)}`)
          assert.equal(first.value?.data ?? null, null, `${field}: and no data`)
          assert.equal((await results.next()).done, true, `${field}: and the subscription ends`)
        }
      } finally {
        await otherClient.dispose()
      }
      const badToken = await runCli(server, 'not-a-token', ['build', 'list'])
      assert.equal(badToken.code, 1)
      assert.match(badToken.stderr, /not a valid JWT \(TOKEN_INVALID\)/)
      const nowhere = `http://127.0.0.1:${await freePort()}`
      const noServer = await runCli({ ...server, url: nowhere }, token, ['build', 'list'])
      assert.equal(noServer.code, 1)
      assert.ok(noServer.stderr.includes(`cannot reach flatdepot at ${nowhere}: ECONNREFUSED`), noServer.stderr)
    })

    it('push --publish --wait-deltas after an interrupted push uploads only the rest; a real client installs the app; its deltas are in place', async () => {
      // The large fixture in small requests, one at a time, so there is a "halfway" to kill it at.
      let buildId = 0
      const interrupted = await runCli(server, token, ['push', 'stable', large.repoV1, '--concurrency', '1', '--batch-objects', '50'], (child) => {
        void (async () => {
          buildId = await waitFor('the build', async () => {
            const { body } = await graphql(server.url, token, '{ builds(first: 1) { ... on QueryBuildsConnection { edges { node { id repoState } } } } }')
            const node = body.data.builds.edges[0]?.node as { id: number; repoState: string } | undefined
            return node?.repoState === 'UPLOADING' ? node.id : undefined
          })
          await waitFor('some objects uploaded', async () => ((await buildView(buildId)).uploadedObjects >= 500 ? true : undefined), 30_000)
          child.kill('SIGKILL')
        })()
      })
      assert.equal(interrupted.signal, 'SIGKILL', `killed, not finished: ${interrupted.stderr}`)
      // The server finishes the request that was cut off (its complete parts are kept and counted).
      let settled = -1
      const before = await waitFor('the cut-off request handled', async () => {
        const count = (await buildView(buildId)).uploadedObjects
        if (count === settled) return count
        settled = count
        await new Promise((resolve) => setTimeout(resolve, 300))
        return undefined
      })

      const resumed = await runCli(server, token, ['push', 'stable', large.repoV1, '--build-id', String(buildId), '--publish', '--wait-deltas', '--json'])
      assert.equal(resumed.code, 0, resumed.stderr)
      const counts = /(\d+) objects; (\d+) missing on the server .*, (\d+) already there/.exec(resumed.stderr)
      assert.ok(counts, resumed.stderr)
      // The objects reachable from the refs: the walk finds the same set each time.
      const [, total, missing, already] = counts.map(Number) as [number, number, number, number]
      assert.ok(total > 4000, resumed.stderr)
      assert.ok(before > 0 && before < total, `killed halfway: ${before} of ${total}`)
      assert.equal(already, before, 'what the first run uploaded is not sent again')
      assert.equal(missing, total - before)
      const result = JSON.parse(resumed.stdout) as { uploaded: number; build: { publishedState: string }; deltaJobId: number }
      assert.equal(result.uploaded, total - before)
      assert.equal(result.build.publishedState, 'PUBLISHED')
      // --wait-deltas returned once the app's delta exists and a summary lists it.
      const repo = path.join(server.dataDir, 'repos/stable')
      const appCommit = (await exec('ostree', [`--repo=${repo}`, 'rev-parse', large.app.ref])).stdout.trim()
      assert.ok((await exec('ostree', [`--repo=${repo}`, 'static-delta', 'list'])).stdout.split('\n').includes(appCommit), 'the app has its from-scratch delta')
      const summary = await exec('ostree', [`--repo=${repo}`, 'summary', '--view'], { maxBuffer: 64 << 20 })
      assert.ok(summary.stdout.includes(`'${appCommit}'`), 'the summary indexes it (its static-deltas map, where names are quoted)')
      const { body: deltaBody } = await graphql(server.url, token, `{ job(id: ${result.deltaJobId}) { ... on Job { kind status } } }`)
      assert.deepEqual(deltaBody.data.job, { kind: 'DELTA', status: 'SUCCEEDED' })
      assert.equal((await buildView(buildId)).uploadedObjects, total, 'every object uploaded exactly once over both runs')

      assert.equal(await installedFrom(large, server.url), '1')
    })
  })
}
