import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { buildFixture, type Fixture } from '../support/fixture.ts'
import { createPostgresDatabase, testEngines } from '../support/databases.ts'
import { graphql, startServer, startWorkerProcess, waitFor, type ServerProcess } from '../support/server.ts'
import { uploadMissing } from '../support/upload.ts'
import { signedRepoConfig } from '../support/config.ts'

const exec = promisify(execFile)
const leaseMs = 2000

/**
 * The real flatpak, then a long pause before returning, for build-commit-from only: a worker
 * killed in that pause has changed the repo but not recorded it, the hardest place to crash.
 */
function slowFlatpakPath(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'slow-flatpak-'))
  const wrapper = path.join(dir, 'flatpak')
  writeFileSync(wrapper, '#!/bin/sh\ncase "$1" in\n  build-commit-from) /usr/bin/flatpak "$@"; rc=$?; sleep 60; exit $rc ;;\n  *) exec /usr/bin/flatpak "$@" ;;\nesac\n')
  chmodSync(wrapper, 0o755)
  return `${dir}:${process.env.PATH}`
}

type Job = { id: number; kind: string; status: string; attempts: number }

for (const engine of testEngines) {
  describe(`a worker killed with SIGKILL on ${engine}: the build still gets there`, () => {
    let fixture: Fixture
    let server: ServerProcess
    let token: string
    let dropDatabase = async () => {}
    let databaseUrl: string | null = null
    const slowPath = slowFlatpakPath()
    const config = (port: number) => signedRepoConfig(fixture, port, {}, 5)

    const job = async (kind: string): Promise<Job | undefined> => {
      const { body } = await graphql(server.url, token, `{ jobs(first: 50) { ... on QueryJobsConnection { edges { node { id kind status attempts } } } } }`)
      return body.data.jobs.edges.map((edge: { node: Job }) => edge.node).find((node: Job) => node.kind === kind)
    }
    const build = async (id: number) =>
      (await graphql(server.url, token, 'query($id: Int!) { build(id: $id) { ... on Build { repoState publishedState repoStateReason publishedStateReason } } }', { id })).body.data.build

    /** Runs `kind` on a worker that gets killed half-way, then lets a healthy worker finish it. */
    async function crashDuring(kind: string, restartHealthy: () => Promise<void>, killCrashing: () => Promise<void>) {
      const running = await waitFor(`${kind} job running`, async () => ((await job(kind))?.status === 'RUNNING' ? true : undefined))
      assert.ok(running)
      await new Promise((resolve) => setTimeout(resolve, 2500)) // the real command has finished; the wrapper sleeps
      await killCrashing()
      await restartHealthy()
    }

    before(async () => {
      fixture = await buildFixture('small')
      if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
    })
    after(async () => {
      await server?.stop()
      await dropDatabase()
    })

    it('commit and publish each survive a SIGKILL mid-job; ostree fsck is clean', async () => {
      const env = { FLATDEPOT_JOB_LEASE_MS: String(leaseMs) }
      let worker: ReturnType<typeof startWorkerProcess> | null = null
      if (engine === 'postgresql') {
        // API and workers in separate processes, as in production.
        server = await startServer({ databaseUrl, config, args: ['--workers', '0'], env, keepDataDir: true })
        worker = startWorkerProcess(server, { PATH: slowPath })
      } else {
        // The embedded default runs workers inside the server: the whole process dies.
        server = await startServer({ config, env: { ...env, PATH: slowPath }, keepDataDir: true })
      }
      token = await server.cli('token', 'create', '--repo', 'stable')
      const restartWithHealthyWorkers = async (slow: boolean) => {
        if (engine === 'postgresql') {
          worker = startWorkerProcess(server, slow ? { PATH: slowPath } : {})
        } else {
          server = await startServer({ config, env: slow ? { ...env, PATH: slowPath } : env, restart: { dataDir: server.dataDir, port: server.port }, keepDataDir: true })
        }
      }
      const kill = async () => (engine === 'postgresql' ? worker!.kill() : server.kill())

      const { body } = await graphql(server.url, token, 'mutation { createBuild(input: { repo: "stable" }) { ... on Build { id } } }')
      const id = body.data.createBuild.id as number
      for (const [ref, commit] of [[fixture.runtime.ref, fixture.runtime.commit], [fixture.app.ref, fixture.app.v1]] as const) {
        await graphql(server.url, token, `mutation { createBuildRef(buildId: ${id}, refName: "${ref}", commit: "${commit}") { __typename } }`)
      }
      await uploadMissing(server.url, token, id, fixture.repoV1)
      await graphql(server.url, token, `mutation { commitBuild(buildId: ${id}) { __typename } }`)
      await crashDuring('COMMIT', () => restartWithHealthyWorkers(false), kill)
      // The job runs again on the healthy worker once the dead worker's lease has run out.
      await waitFor('ready after the crash', async () => {
        const state = await build(id)
        if (state.repoState === 'FAILED') throw new Error(state.repoStateReason)
        return state.repoState === 'READY' ? state : undefined
      }, 120_000)
      const commitJob = await job('COMMIT')
      assert.equal(commitJob?.status, 'SUCCEEDED')
      assert.ok(commitJob!.attempts >= 2, `the commit job ran again (attempts: ${commitJob!.attempts})`)
      // Every attempt's lines stay, in order: the killed one's, then the note of the next attempt.
      const { body: logBody } = await graphql(server.url, token, `{ job(id: ${commitJob!.id}) { ... on Job { log { position text } } } }`)
      const lines = (logBody.data.job.log as { position: number; text: string }[]).map((line) => line.text)
      const firstCommitting = lines.findIndex((line) => line.startsWith('Committing ref'))
      const attemptNote = lines.findIndex((line) => /^Attempt \d+: the previous worker stopped before finishing/.test(line))
      assert.ok(firstCommitting >= 0 && attemptNote > firstCommitting, `the killed attempt's lines come before the next attempt's note:\n${lines.join('\n')}`)
      assert.ok(lines.slice(attemptNote).some((line) => line.startsWith('Committing ref')), 'the next attempt logged its own work')

      // Back to a worker that will be killed in the middle of the publish.
      if (engine === 'postgresql') await worker!.stop()
      else await server.stopKeepingData()
      await restartWithHealthyWorkers(true)
      await graphql(server.url, token, `mutation { publishBuild(buildId: ${id}) { __typename } }`)
      await crashDuring('PUBLISH', () => restartWithHealthyWorkers(false), kill)
      await waitFor('published after the crash', async () => {
        const state = await build(id)
        if (state.publishedState === 'FAILED') throw new Error(state.publishedStateReason)
        return state.publishedState === 'PUBLISHED' ? state : undefined
      }, 120_000)
      await waitFor('the repo update', async () => ((await job('DELTA'))?.status === 'SUCCEEDED' ? true : undefined), 120_000)
      const publishJob = await job('PUBLISH')
      assert.ok(publishJob!.attempts >= 2, `the publish job ran again (attempts: ${publishJob!.attempts})`)

      const fsck = await exec('ostree', [`--repo=${path.join(server.dataDir, 'repos/stable')}`, 'fsck'])
      assert.match(fsck.stdout, /completed successfully - no errors found/)
      const refs = await exec('ostree', [`--repo=${path.join(server.dataDir, 'repos/stable')}`, 'refs'])
      assert.deepEqual(refs.stdout.split('\n').filter((line) => !line.startsWith('appstream')).filter(Boolean).sort(), [fixture.app.ref, fixture.runtime.ref].sort())
      await worker?.stop()
    })
  })
}
