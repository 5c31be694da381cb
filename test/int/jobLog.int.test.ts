import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '../../src/log.ts'
import { jobLogChannel } from '../../src/notifications/changeFeed.ts'
import { JobLogWriter } from '../../workers/jobLog.ts'
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
      // Two worker processes, each with its own writer.
      const first = new JobLogWriter(t.db, log).open(501)
      const second = new JobLogWriter(t.db, log).open(501)
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

    it('stores the lines of many jobs written at once in few commits, each job numbered from its own end, and announces the jobs once a commit', async () => {
      const log = createLogger({ level: 'silent' })
      // Job 611 already has two lines (an earlier attempt): its numbering continues after them.
      await new JobLogWriter(t.db, log).open(611).flush()
      const earlier = new JobLogWriter(t.db, log).open(611)
      earlier.message('attempt 1, line 1')
      earlier.message('attempt 1, line 2')
      await earlier.flush()
      let transactions = 0
      const counting = { query: t.db.query.bind(t.db), transaction: ((work) => (transactions++, t.db.transaction(work))) as typeof t.db.transaction }
      const announced: string[] = []
      const unlisten = await t.db.listen(jobLogChannel, (payload) => announced.push(payload))
      const writer = new JobLogWriter(counting, log)
      const jobs = Array.from({ length: 10 }, (_, i) => writer.open(611 + i))
      for (let line = 1; line <= 5; line++) for (const job of jobs) job.output(`job ${job.jobId} line ${line}`, 'stdout')
      assert.equal(await jobs[0]!.lineCount(), 7, 'two stored before, five waiting')
      await writer.flush()
      assert.ok(transactions <= 2, `50 lines of 10 jobs written at once took ${transactions} transactions`)
      for (const job of jobs) {
        const lines = await t.db.prisma.jobLogLine.findMany({ where: { jobId: job.jobId }, orderBy: { position: 'asc' } })
        const own = lines.filter((line) => line.text.startsWith('job '))
        assert.deepEqual(own.map((line) => line.text), [1, 2, 3, 4, 5].map((line) => `job ${job.jobId} line ${line}`), `job ${job.jobId}'s lines in order`)
        assert.deepEqual(lines.map((line) => line.position), Array.from({ length: lines.length }, (_, i) => i + 1), `job ${job.jobId} numbered without gaps`)
      }
      assert.equal(await jobs[0]!.lineCount(), 7)
      const announcedJobs = () => announced.flatMap((payload) => JSON.parse(payload) as string[])
      await waitUntil(() => jobs.every((job) => announcedJobs().includes(String(job.jobId))), 'every job announced')
      // Each write names its jobs in one notification.
      assert.ok(announced.length <= transactions, `${announced.length} notifications for ${transactions} writes: ${announced.join(' ')}`)
      await unlisten()
    })
  })
}

async function waitUntil(done: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !done(); waited += 20) {
    if (waited > 5_000) assert.fail(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
