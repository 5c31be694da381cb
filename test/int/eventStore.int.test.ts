import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setTimeout } from 'node:timers/promises'
import pg from 'pg'
import { buildDecider, buildStreamId } from '../../src/domain/build/decider.ts'
import type { BuildEvent } from '../../src/domain/build/events.ts'
import { jobDecider, jobStreamId } from '../../src/domain/job/job.ts'
import { createEventStore, type EventStore } from '../../src/eventStore/eventStore.ts'
import { logStart, readAll } from '../../src/eventStore/readAll.ts'
import { ConcurrencyError } from '../../src/eventStore/types.ts'
import type { DomainEvent } from '../../src/domain/events.ts'
import { sql } from '../../src/db/sql.ts'
import { createCommandRunner, type CommandRunner } from '../../src/eventStore/unitOfWork.ts'
import { inlineHandlers, readModelTables } from '../../src/projections/index.ts'
import { rebuildReadModels } from '../../src/projections/rebuild.ts'
import { syncRepoConfig } from '../../src/services/repos.ts'
import { createTokenService } from '../../src/services/tokens.ts'
import { createLogger } from '../../src/log.ts'
import { parseConfig } from '../../src/config/config.ts'
import { openTestDatabase, testEngines, type TestDatabase } from '../support/databases.ts'

const metadata = (requestId: string) => ({ now: new Date('2026-02-03T04:05:06Z'), actor: { name: 'bot', jti: 'j1' }, requestId })
const config = parseConfig(
  { secret: Buffer.alloc(32, 1).toString('base64'), 'build-repo-base': 'b', repos: { stable: { path: 'r' }, beta: { path: 'r2', title: 'Beta' } } },
  '/srv/config.json',
)

async function createBuild(run: CommandRunner, repo = 'stable'): Promise<number> {
  const { result } = await run(metadata('create'), async (unit) => {
    const buildId = await unit.nextId('build_ids')
    await unit.decide(buildDecider, buildStreamId(buildId), 'build', {
      type: 'CreateBuild',
      data: { buildId, repo, appId: 'org.example.App', publicDownload: null, buildLogUrl: null, tokenName: 'bot', tokenType: 'app' },
    })
    return buildId
  })
  return result
}

async function snapshotReadModels(t: TestDatabase): Promise<Record<string, unknown[]>> {
  const snapshot: Record<string, unknown[]> = {}
  for (const table of readModelTables) {
    snapshot[table] = await t.db.prisma.$queryRawUnsafe(`SELECT * FROM ${table} ORDER BY 1, 2`)
  }
  return snapshot
}

for (const engine of testEngines) {
  describe(`event store on ${engine}`, () => {
    let t: TestDatabase
    let store: EventStore
    let run: CommandRunner
    let conflicts = 0

    before(async () => {
      t = await openTestDatabase(engine)
      store = createEventStore(t.db, inlineHandlers)
      run = createCommandRunner(store, t.db, { onConflict: () => conflicts++ })
      await syncRepoConfig(run, config.repos.values())
    })
    after(async () => t.drop())

    it('refuses a second append at the same expected version', async () => {
      const buildId = await createBuild(run)
      const streamId = buildStreamId(buildId)
      const event: BuildEvent = { type: 'BuildExtraIdsAdded', data: { buildId, ids: ['org.x'] } }
      await store.append([{ streamId, streamType: 'build', expectedVersion: 1, events: [event] }], { actor: { name: null, jti: null }, requestId: null, at: new Date().toISOString() })
      await assert.rejects(
        store.append([{ streamId, streamType: 'build', expectedVersion: 1, events: [event] }], { actor: { name: null, jti: null }, requestId: null, at: new Date().toISOString() }),
        (error: unknown) => error instanceof ConcurrencyError && error.streamId === streamId,
      )
      const { version, events } = await store.readStream(streamId)
      assert.equal(version, 2)
      assert.deepEqual(events.map((e) => e.streamPosition), [1, 2])
      // Several streams at once, the second stale: the whole append is refused, naming it, and the
      // first stream (new, claimed first) keeps neither its version nor its event.
      const fresh = `token-never-${engine}`
      await assert.rejects(
        store.append(
          [
            { streamId: fresh, streamType: 'token', expectedVersion: 0, events: [{ type: 'TokenRevoked', data: { jti: 'never' } }] },
            { streamId, streamType: 'build', expectedVersion: 1, events: [event] },
          ],
          { actor: { name: null, jti: null }, requestId: null, at: new Date().toISOString() },
        ),
        (error: unknown) => error instanceof ConcurrencyError && error.streamId === streamId,
      )
      assert.deepEqual(await store.readStream(fresh), { version: 0, events: [] }, 'nothing of the refused append is kept')
      assert.equal(await t.db.prisma.stream.count({ where: { id: fresh } }), 0, 'not even the new stream')
    })

    it('concurrent writers to one stream: every version written once, losers retry, nothing lost', async () => {
      const buildId = await createBuild(run)
      const writers = 12
      const ids = Array.from({ length: writers }, (_, i) => `org.example.Extra${i}`)
      conflicts = 0
      await Promise.all(
        ids.map((id) =>
          run(metadata(id), (unit) =>
            unit.decide(buildDecider, buildStreamId(buildId), 'build', { type: 'AddExtraIds', data: { ids: [id] } }),
          ),
        ),
      )
      assert.ok(conflicts > 0, 'writers collided and the losers retried')
      const { version, events } = await store.readStream(buildStreamId(buildId))
      assert.equal(version, writers + 1)
      assert.deepEqual(events.map((e) => e.streamPosition), Array.from({ length: writers + 1 }, (_, i) => i + 1))
      const written = events.flatMap((e) => (e.type === 'BuildExtraIdsAdded' ? e.data.ids : []))
      assert.deepEqual([...written].sort(), [...ids].sort(), 'each writer\'s id exactly once')
      const row = await t.db.prisma.build.findUniqueOrThrow({ where: { id: buildId } })
      assert.deepEqual([...row.extraIds].sort(), [...ids].sort(), 'the read model saw every event once')
      const stream = await t.db.prisma.stream.findUniqueOrThrow({ where: { id: buildStreamId(buildId) } })
      assert.equal(stream.version, writers + 1)
    })

    it('appends to several streams atomically: a build and the job it queues, with the job outbox row', async () => {
      const buildId = await createBuild(run)
      await run(metadata('ref'), (unit) =>
        unit.decide(buildDecider, buildStreamId(buildId), 'build', {
          type: 'CreateBuildRef',
          data: { refId: 99, refName: 'app/org.example.App/x86_64/stable', commit: 'f'.repeat(64), buildLogUrl: null },
        }),
      )
      const { result: jobId } = await run(metadata('commit'), async (unit) => {
        const id = await unit.nextId('job_ids')
        await unit.decide(buildDecider, buildStreamId(buildId), 'build', {
          type: 'RequestCommit',
          data: { jobId: id, endOfLife: null, endOfLifeRebase: null, tokenType: null },
        })
        await unit.decide(jobDecider, jobStreamId(id), 'job', {
          type: 'QueueJob',
          data: { jobId: id, kind: 'commit', repo: null, buildId, contents: { build: buildId }, startAfter: null },
        })
        return id
      })
      const build = await t.db.prisma.build.findUniqueOrThrow({ where: { id: buildId } })
      assert.equal(build.repoState, 'Committing')
      assert.equal(build.commitJobId, jobId)
      const queued = await t.db.prisma.jobQueueEntry.findUniqueOrThrow({ where: { jobId } })
      assert.equal(queued.queue, `build:${buildId}`)
      // A failing decision on the second stream rolls back the first stream too.
      await assert.rejects(
        run(metadata('again'), async (unit) => {
          await unit.decide(jobDecider, jobStreamId(jobId), 'job', { type: 'StartJob', data: { workerId: 'w1' } })
          await unit.decide(buildDecider, buildStreamId(buildId), 'build', {
            type: 'RequestCommit',
            data: { jobId, endOfLife: null, endOfLifeRebase: null, tokenType: null },
          })
        }),
        /Build is currently being committed/,
      )
      assert.equal((await t.db.prisma.job.findUniqueOrThrow({ where: { id: jobId } })).status, 'Queued')
    })

    it('records event metadata: actor, request id, time', async () => {
      const buildId = await createBuild(run)
      const { events } = await store.readStream(buildStreamId(buildId))
      assert.deepEqual(events[0]?.metadata, { actor: { name: 'bot', jti: 'j1' }, requestId: 'create', at: '2026-02-03T04:05:06.000Z' })
    })

    it('stamps each event when it is written: a command that read first and wrote last is not shown older than one written before it', async () => {
      const [slowBuild, fastBuild] = [buildStreamId(await createBuild(run)), buildStreamId(await createBuild(run))]
      const meta = { actor: { name: null, jti: null }, requestId: null, at: new Date().toISOString() }
      const extra = (streamId: string) => ({ streamId, streamType: 'build', expectedVersion: 1, events: [{ type: 'BuildExtraIdsAdded', data: { buildId: 0, ids: ['org.x'] } } as DomainEvent] })
      const slow = store.append([extra(slowBuild)], meta, [
        {
          name: 'reads, then takes its time',
          holds: async (tx) => {
            await tx.read(sql`SELECT 1`)
            await setTimeout(60)
            return true
          },
        },
      ])
      await setTimeout(10)
      await store.append([extra(fastBuild)], meta)
      await slow
      const rows = await t.db.query<{ stream_id: string; recorded_at: Date }>(
        sql`SELECT stream_id, recorded_at FROM events WHERE stream_id IN (${slowBuild}, ${fastBuild}) AND stream_position = 2 ORDER BY global_position`,
      )
      assert.equal(rows.length, 2)
      assert.ok(rows[0]!.recorded_at.getTime() <= rows[1]!.recorded_at.getTime(), `in position order ${rows.map((row) => `${row.stream_id} ${row.recorded_at.toISOString()}`).join(', ')}`)
    })

    it('rebuilt read models equal the live ones', async () => {
      const tokens = createTokenService({ prisma: t.db.prisma, query: t.db.query, run, secret: config.secret, tokenPrefix: null, log: createLogger({ level: 'silent' }) })
      await tokens.revoke({ claims: { sub: '', exp: 0, name: 'admin', jti: 'a', scope: ['tokenmanagement'], prefixes: [], apps: [], repos: [], branches: [], tokenType: null }, requestId: null }, ['revoked-early'])
      const beta = await createBuild(run, 'beta')
      await run(metadata('purge'), (unit) => unit.decide(buildDecider, buildStreamId(beta), 'build', { type: 'RequestPurge', data: {} }))
      const live = await snapshotReadModels(t)
      assert.ok((live.builds ?? []).length >= 4 && (live.jobs ?? []).length >= 1 && (live.tokens ?? []).length === 1)
      const queueBefore = await t.db.prisma.jobQueueEntry.findMany({ orderBy: { jobId: 'asc' } })
      const { events } = await rebuildReadModels(t.db, 7)
      assert.equal(events, await t.db.prisma.event.count(), "every event replayed")
      assert.deepEqual(await snapshotReadModels(t), live)
      assert.deepEqual(await t.db.prisma.jobQueueEntry.findMany({ orderBy: { jobId: 'asc' } }), queueBefore, 'the job queue is not a read model')
    })

    it('orders the log by transaction id as a number: a transaction 999 comes before 1000', async () => {
      const base = 10n ** 12n
      await t.db.prisma.$executeRaw`
        INSERT INTO events (stream_id, stream_position, type, data, metadata, transaction_id)
        VALUES ('order-b', 1, 'TokenRevoked', '{"jti":"b"}', '{}', ${String(base)}::xid8),
               ('order-a', 1, 'TokenRevoked', '{"jti":"a"}', '{}', ${String(base - 1n)}::xid8)`
      const tail = await readAll((statement) => t.db.query(statement), { transactionId: String(base - 2n), position: 0n }, { onlyFinishedTransactions: false })
      assert.deepEqual(tail.map((event) => event.streamId), ['order-a', 'order-b'])
      await t.db.prisma.$executeRaw`DELETE FROM events WHERE stream_id IN ('order-a', 'order-b')`
    })

    it('reads the whole log in order, once, from a checkpoint', async () => {
      const all = []
      let checkpoint = logStart
      for (;;) {
        const batch = await readAll((statement) => t.db.query(statement), checkpoint, { limit: 5 })
        if (batch.length === 0) break
        all.push(...batch)
        checkpoint = batch.at(-1)!.checkpoint
      }
      const total = await t.db.prisma.event.count()
      assert.equal(all.length, total)
      assert.equal(new Set(all.map((e) => `${e.streamId}@${e.streamPosition}`)).size, total)
    })
  })
}

if (testEngines.includes('postgresql')) {
  describe('reading the log on postgresql while transactions commit out of order', () => {
    let t: TestDatabase
    before(async () => {
      t = await openTestDatabase('postgresql')
    })
    after(async () => t.drop())

    it('never steps past an event whose transaction commits after a later position', async () => {
      const connect = async () => {
        const client = new pg.Client({ connectionString: t.url! })
        await client.connect()
        return client
      }
      const [early, late] = [await connect(), await connect()]
      const insert = (client: pg.Client, stream: string) =>
        client.query(
          `INSERT INTO events (stream_id, stream_position, type, data, metadata) VALUES ($1, 1, 'TokenRevoked', $2, '{}') RETURNING global_position`,
          [stream, JSON.stringify({ jti: stream })],
        )
      try {
        await late.query('BEGIN')
        await late.query('SELECT pg_current_xact_id()') // takes its transaction id first…
        await early.query('BEGIN')
        const earlyRow = await insert(early, 'token-early') // …but this one takes the lower position
        const lateRow = await insert(late, 'token-late')
        assert.ok(BigInt(earlyRow.rows[0].global_position) < BigInt(lateRow.rows[0].global_position))
        await early.query('COMMIT')
        // The committed event is not readable yet: an older transaction is still open.
        assert.deepEqual(await readAll((statement) => t.db.query(statement), logStart), [])
        await late.query('COMMIT')
        const events = await readAll((statement) => t.db.query(statement), logStart)
        assert.deepEqual(events.map((e) => e.streamId), ['token-late', 'token-early'], 'ordered by transaction, each once')
        const afterFirst = await readAll((statement) => t.db.query(statement), events[0]!.checkpoint)
        assert.deepEqual(afterFirst.map((e) => e.streamId), ['token-early'], 'the checkpoint does not skip the lower position')
      } finally {
        await early.end()
        await late.end()
      }
    })
  })
}
