import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '../../src/log.ts'
import { JobLog } from '../../workers/jobLog.ts'
import { openTestDatabase, testEngines, type TestDatabase } from '../support/databases.ts'

for (const engine of testEngines) {
  describe(`job log on ${engine}`, () => {
    let t: TestDatabase
    before(async () => {
      t = await openTestDatabase(engine)
    })
    after(async () => t.drop())

    it('keeps every line when two attempts of one job write at once (a lease ran out under a live worker)', async () => {
      const log = createLogger({ level: 'silent' })
      const first = new JobLog(t.db, 501, log)
      const second = new JobLog(t.db, 501, log)
      for (let i = 0; i < 20; i++) {
        first.message(`first ${i}`)
        second.message(`second ${i}`)
        await Promise.all([first.flush(), second.flush()])
      }
      const lines = await t.db.prisma.jobLogLine.findMany({ where: { jobId: 501 }, orderBy: { position: 'asc' } })
      assert.equal(lines.length, 40)
      assert.deepEqual(lines.map((line) => line.position), Array.from({ length: 40 }, (_, i) => i + 1))
      assert.deepEqual(lines.filter((line) => line.text.startsWith('first')).map((line) => line.text), Array.from({ length: 20 }, (_, i) => `first ${i}`), 'each writer\'s lines in its order')
    })

    it('many jobs logging at once share their writes: a few statements, every line in place, a wake-up per job', async () => {
      const log = createLogger({ level: 'silent' })
      let inserts = 0
      const counting = {
        query: <Row>(statement: Parameters<typeof t.db.query>[0]) => {
          if (statement.text.includes('INSERT INTO job_log_lines')) inserts += 1
          return t.db.query<Row>(statement)
        },
      }
      const woken = new Set<string>()
      const unlisten = await t.db.listen('flatdepot_job_log', (payload) => woken.add(payload))
      const jobs = Array.from({ length: 40 }, (_, i) => new JobLog(counting, 600 + i, log))
      for (let round = 0; round < 5; round++) {
        for (const job of jobs) job.message(`round ${round} of job ${job.jobId}`)
        await Promise.all(jobs.map((job) => job.flush()))
      }
      // 200 writes of 40 jobs: each round is one statement, or two when a flush found the previous one still out.
      assert.ok(inserts <= 10, `${inserts} statements for 200 writes`)
      const lines = await t.db.prisma.jobLogLine.findMany({ where: { jobId: { gte: 600, lt: 640 } }, orderBy: [{ jobId: 'asc' }, { position: 'asc' }] })
      assert.equal(lines.length, 200)
      for (const job of jobs) {
        assert.deepEqual(
          lines.filter((line) => line.jobId === job.jobId).map((line) => [line.position, line.text]),
          Array.from({ length: 5 }, (_, round) => [round + 1, `round ${round} of job ${job.jobId}`]),
        )
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
      await unlisten()
      assert.equal(woken.size, 40, 'every job announced')
    })
  })
}
