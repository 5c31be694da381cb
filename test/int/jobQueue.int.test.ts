import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { jobDecider, jobStreamId, type JobKind } from '../../src/domain/job/job.ts'
import { createEventStore } from '../../src/eventStore/eventStore.ts'
import { createCommandRunner, type CommandRunner } from '../../src/eventStore/unitOfWork.ts'
import { claimJob } from '../../src/jobs/queue.ts'
import { inlineHandlers } from '../../src/projections/index.ts'
import { openTestDatabase, testEngines, type TestDatabase } from '../support/databases.ts'

const metadata = { now: new Date(), actor: { name: 'test', jti: null }, requestId: null }

for (const engine of testEngines) {
  describe(`job queue on ${engine}`, () => {
    let t: TestDatabase
    let run: CommandRunner
    const queue = async (kind: JobKind, repo: string) => {
      const { result } = await run(metadata, async (unit) => {
        const jobId = await unit.nextId('job_ids')
        await unit.decide(jobDecider, jobStreamId(jobId), 'job', {
          type: 'QueueJob',
          data: { jobId, kind, repo, buildId: null, contents: { repo }, startAfter: null },
        })
        return jobId
      })
      return result
    }

    before(async () => {
      t = await openTestDatabase(engine)
      run = createCommandRunner(createEventStore(t.db, inlineHandlers), t.db)
    })
    after(async () => t.drop())

    it('runs one repo job at a time per repo, and generates deltas beside them, one delta job at a time', async () => {
      const deltas = await queue('delta', 'stable')
      const update = await queue('update-repo', 'stable')
      const publish = await queue('publish', 'stable')
      const secondDeltas = await queue('delta', 'stable')
      const otherRepo = await queue('update-repo', 'beta')

      // Publishes first, then updates, then deltas (flat-manager's order of job kinds).
      assert.equal((await claimJob(t.db, 'w1', 60_000))?.jobId, publish)
      // The repo is busy with the publish: its update waits, the other repo's does not, and the
      // delta generation (minutes for a large runtime) runs beside the publish.
      assert.equal((await claimJob(t.db, 'w2', 60_000))?.jobId, otherRepo)
      assert.equal((await claimJob(t.db, 'w3', 60_000))?.jobId, deltas)
      // Nothing else may run: the update waits for the publish, the second delta job for the first.
      assert.equal(await claimJob(t.db, 'w4', 60_000), null)
      assert.ok(update && secondDeltas)
    })

    it('never hands one job to two slots claiming at once', async () => {
      for (let round = 0; round < 20; round++) {
        const jobId = await queue('update-repo', `race-${round}`)
        const claims = await Promise.all(Array.from({ length: 8 }, (_, slot) => claimJob(t.db, `w-${round}-${slot}`, 60_000)))
        const winners = claims.filter((claim) => claim?.jobId === jobId)
        assert.equal(winners.length, 1, `round ${round}: ${winners.length} slots claimed job ${jobId}`)
        assert.equal(winners[0]!.attempts, 1)
      }
    })

    it('bounds the compute jobs of a host over all its worker processes, never the jobs that do not compute', async () => {
      const first = await queue('update-repo', 'compute-a')
      const second = await queue('update-repo', 'compute-b')
      const files = await queue('export', 'compute-c')
      // Host h1 with one compute slot: its first process takes a repo update…
      assert.equal((await claimJob(t.db, 'h1:100:a', 60_000, 1))?.jobId, first)
      // …and its second process leaves the other update for later and takes the export instead.
      assert.equal((await claimJob(t.db, 'h1:200:b', 60_000, 1))?.jobId, files)
      assert.equal(await claimJob(t.db, 'h1:200:b', 60_000, 1), null)
      // Another host counts its own.
      assert.equal((await claimJob(t.db, 'h2:100:c', 60_000, 1))?.jobId, second)
    })

    it('finds another queue\'s job behind fifty waiting for a busy repo', async () => {
      const running = await queue('publish', 'busy')
      for (let i = 0; i < 50; i++) await queue('publish', 'busy')
      const other = await queue('update-repo', 'quiet')
      assert.equal((await claimJob(t.db, 'w5', 60_000))?.jobId, running)
      // Before: the claim looked at the first 20 runnable jobs by priority, all the busy repo's,
      // and an idle worker found nothing.
      assert.equal((await claimJob(t.db, 'w6', 60_000))?.jobId, other)
      assert.equal(await claimJob(t.db, 'w7', 60_000), null)
    })
  })
}
