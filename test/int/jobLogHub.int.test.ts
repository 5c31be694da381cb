import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '../../src/log.ts'
import { jobStreamId } from '../../src/domain/job/job.ts'
import { eventsChannel } from '../../src/eventStore/eventStore.ts'
import { createChangeFeed, jobLogChannel, jobLogKey } from '../../src/notifications/changeFeed.ts'
import { sql } from '../../src/db/sql.ts'
import { createJobLogHub, type LogLine } from '../../src/notifications/jobLogHub.ts'
import { pushEvents } from '../../src/notifications/push.ts'
import { isShareable } from '../../src/notifications/shareable.ts'
import type { Database } from '../../src/db/database.ts'
import { JobLogWriter } from '../../workers/jobLog.ts'
import { openTestDatabase, testEngines, type TestDatabase } from '../support/databases.ts'

for (const engine of testEngines) {
  describe(`live job logs for many followers on ${engine}`, () => {
    let t: TestDatabase
    before(async () => {
      t = await openTestDatabase(engine)
    })
    after(async () => t.drop())

    it('200 followers of one job, pulling or pushed to, get every line once, in order, from one reader: reads grow with writes, not with followers', async () => {
      const log = createLogger({ level: 'silent' })
      const jobId = 7001
      await t.db.prisma.job.create({ data: { id: jobId, kind: 'check', status: 'Running', contents: {}, createdAt: new Date() } })
      // Counts the reads the hub makes (the log's lines and the job's status).
      let reads = 0
      const counting: Database['query'] = (statement) => {
        reads += 1
        return t.db.query(statement)
      }
      const changes = createChangeFeed(t.db, log)
      await changes.start()
      const hub = createJobLogHub({ query: counting, changes, log })
      const writer = new JobLogWriter(t.db, log).open(jobId)
      writer.message('before anyone watched')
      await writer.flush()

      const followers = Number(process.env.FOLLOWERS ?? 200)
      const received = Array.from({ length: followers }, () => [] as LogLine[])
      const batches = new Set<LogLine[]>()
      let deliveries = 0
      let waits = 0
      const following = received.map(async (lines, index) => {
        // Half start from the beginning, half from the line already written.
        const follower = hub.follow(jobId, index % 2 === 0 ? 0 : 1)
        const take = (batch: LogLine[]) => {
          lines.push(...batch)
          batches.add(batch)
          deliveries += 1
        }
        // A third pull their batches; a third are pushed to (as the WebSocket edge is); a third
        // are pushed to and now and then make the follower wait, as a socket with too much
        // waiting does.
        if (index % 3 === 0) for await (const batch of follower) take(batch)
        else if (index % 3 === 1) await follower[pushEvents](take)
        else {
          await follower[pushEvents]((batch) => {
            take(batch)
            return lines.length % 4 === 0 ? new Promise<void>((resolve) => setTimeout(resolve, 2, waits++)) : undefined
          })
        }
      })
      const writes = 30
      for (let i = 1; i <= writes; i++) {
        writer.message(`line ${i}`)
        await writer.flush()
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      assert.equal(hub.followedJobs, 1, 'one reader for the job')
      // The job finishes: its recorded count tells followers the log is whole.
      await t.db.prisma.job.update({ where: { id: jobId }, data: { status: 'Succeeded', logLines: writes + 1 } })
      // What the event store's append announces when the job's stream changes.
      await t.db.prisma.$executeRaw`SELECT pg_notify(${eventsChannel}, ${JSON.stringify([jobStreamId(jobId)])})`
      await Promise.all(following)
      for (const [index, lines] of received.entries()) {
        const from = index % 2 === 0 ? 1 : 2
        assert.deepEqual(lines.map((line) => line.position), Array.from({ length: writes + 2 - from }, (_, i) => i + from), `follower ${index}: every line once, in order`)
      }
      const [first] = received[0]!
      assert.ok(first && first.jobId === jobId && first.text === 'before anyone watched' && first.stream, `a line as stored: ${JSON.stringify(first)}`)
      assert.ok(first.at instanceof Date && Math.abs(first.at.getTime() - Date.now()) < 60_000, `its time is a Date, now: ${String(first.at)}`)
      assert.equal(hub.followedJobs, 0, 'the reader is released when its followers leave')
      // One read per write and per status change (plus catch-ups); far below one per follower per line.
      assert.ok(reads < writes * 3, `${reads} reads for ${writes} writes and ${followers} followers`)
      // Followers in step get one array per batch, marked for the GraphQL edge to execute once.
      assert.ok(batches.size * 10 < deliveries, `${batches.size} distinct batches in ${deliveries} deliveries`)
      // Followers at two places share an array each (not one that each side replaces in turn):
      // about one array per write, two while the halves are apart (a single shared slot gave 256–266 on PGlite).
      assert.ok(batches.size < 4 * (writes + 1), `${batches.size} distinct batches for ${writes + 1} writes`)
      assert.ok([...batches].every((batch) => isShareable(batch)), 'every batch from the shared window is shareable')
      assert.ok(waits > 0, 'some pushed followers made the reader wait')

      // A watcher that leaves while its job is quiet (a closed tab) is let go at once.
      const quiet = 7002
      await t.db.prisma.job.create({ data: { id: quiet, kind: 'check', status: 'Running', contents: {}, createdAt: new Date() } })
      const iterator = hub.follow(quiet, 0)
      const pending = iterator.next()
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.equal(hub.followedJobs, 1)
      await iterator.return?.()
      assert.deepEqual(await pending, { done: true, value: undefined })
      assert.equal(hub.followedJobs, 0, 'released without waiting for a line')
      // The same for one that is pushed to.
      const pushed = hub.follow(quiet, 0)
      const following2 = pushed[pushEvents](() => assert.fail('a quiet job has no lines'))
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.equal(hub.followedJobs, 1)
      await pushed.return?.()
      await following2
      assert.equal(hub.followedJobs, 0, 'a pushed follower is released without waiting for a line')
      await changes.stop()
    })

    it('wakes the followers of every job a notification names, as a list or as one job id (a worker of the earlier version)', async () => {
      const changes = createChangeFeed(t.db, createLogger({ level: 'silent' }))
      await changes.start()
      const woken: number[] = []
      const offs = [7101, 7102, 7103, 7104].map((jobId) => changes.onChange([jobLogKey(jobId)], () => woken.push(jobId)))
      await t.db.query(sql`SELECT pg_notify(${jobLogChannel}, ${'["7101","7103"]'})`)
      await t.db.query(sql`SELECT pg_notify(${jobLogChannel}, ${'7104'})`)
      await t.db.query(sql`SELECT pg_notify(${jobLogChannel}, ${'not a list'})`)
      for (let waited = 0; woken.length < 3 && waited < 5_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20))
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.deepEqual(woken.sort(), [7101, 7103, 7104], 'the jobs named, each once, and no other')
      for (const off of offs) off()
      await changes.stop()
    })

    it('a long log comes in pages of at most the batch size a subscriber asks for, every line once, whichever line it starts after', async () => {
      const log = createLogger({ level: 'silent' })
      const jobId = 7003
      const total = 2_500
      await t.db.prisma.job.create({ data: { id: jobId, kind: 'check', status: 'Running', contents: {}, createdAt: new Date() } })
      const writer = new JobLogWriter(t.db, log).open(jobId)
      for (let i = 1; i <= total; i++) writer.message(`line ${i}`)
      await writer.flush()
      await t.db.prisma.job.update({ where: { id: jobId }, data: { status: 'Succeeded', logLines: total } })
      const changes = createChangeFeed(t.db, log)
      await changes.start()
      const hub = createJobLogHub({ query: t.db.query, changes, log })
      const follow = async (after: number) => {
        const sizes: number[] = []
        const positions: number[] = []
        for await (const batch of hub.follow(jobId, after, 1_000)) {
          sizes.push(batch.length)
          positions.push(...batch.map((line) => line.position))
        }
        return { sizes, positions }
      }
      // Side by side: the first makes the reader and waits on it, the others join its window.
      const [first, second, late] = await Promise.all([follow(0), follow(0), follow(1_200)])
      for (const [name, got, after] of [['first', first, 0], ['second', second, 0], ['late', late, 1_200]] as const) {
        assert.deepEqual(got.positions, Array.from({ length: total - after }, (_, i) => after + i + 1), `${name}: every line once, in order`)
        assert.ok(got.sizes.every((size) => size <= 1_000), `${name}: batches of ${got.sizes.join(', ')}`)
      }
      assert.equal(hub.followedJobs, 0)
      await changes.stop()
    })
  })
}
