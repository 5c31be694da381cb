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
  })
}
