import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { BuildCommand } from '../../src/domain/build/commands.ts'
import { buildDecider, buildStreamId } from '../../src/domain/build/decider.ts'
import { buildEventTypes } from '../../src/domain/build/events.ts'
import { createEventStore } from '../../src/eventStore/eventStore.ts'
import { createCommandRunner, type CommandRunner, type Intent } from '../../src/eventStore/unitOfWork.ts'
import { parseConfig } from '../../src/config/config.ts'
import { enqueue } from '../../src/jobs/enqueue.ts'
import { claimJob } from '../../src/jobs/queue.ts'
import { createLogger } from '../../src/log.ts'
import { inlineHandlers, readModelTables } from '../../src/projections/index.ts'
import { stateFromRows } from '../../src/projections/builds.ts'
import { rebuildReadModels } from '../../src/projections/rebuild.ts'
import { syncRepoConfig } from '../../src/services/repos.ts'
import { startWorkers } from '../../workers/pool.ts'
import { openTestDatabase, testEngines, type TestDatabase } from '../support/databases.ts'

const metadata = () => ({ now: new Date(), actor: { name: 'test', jti: null }, requestId: null })
const config = parseConfig({ secret: Buffer.alloc(32, 1).toString('base64'), 'build-repo-base': 'b', repos: { stable: { path: 'r' } } }, '/srv/config.json')
const silent = createLogger({ level: 'silent' })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

for (const engine of testEngines) {
  describe(`pipeline building blocks on ${engine}`, () => {
    let t: TestDatabase
    let run: CommandRunner

    before(async () => {
      t = await openTestDatabase(engine)
      run = createCommandRunner(createEventStore(t.db, inlineHandlers), t.db)
      await syncRepoConfig(run, config.repos.values())
    })
    after(async () => t.drop())

    it('the decider and the builds read model agree after every kind of build event, and a rebuild gives the same tables', async () => {
      const seen = new Set<string>()
      const decide = async (buildId: number, intent: Intent<BuildCommand>) => {
        const { events } = await run(metadata(), (unit) => unit.decide(buildDecider, buildStreamId(buildId), 'build', intent))
        for (const event of events) seen.add(event.type)
        // The decider's state, folded from the stream, against the state the rows hold.
        const stream = await t.db.prisma.event.findMany({ where: { streamId: buildStreamId(buildId) }, orderBy: { streamPosition: 'asc' } })
        const decided = stream.reduce((state, row) => buildDecider.evolve(state, row as never), buildDecider.initialState())
        const projected = await stateFromRows((statement) => t.db.query(statement), buildId)
        assert.ok(decided.status === 'Existing' && projected.status === 'Existing')
        const { refs: _decidedRefs, ...decidedRest } = decided
        const { refs: _projectedRefs, ...projectedRest } = projected
        assert.deepEqual(projectedRest, decidedRest, `after ${intent.type}`)
      }
      const commit = 'a'.repeat(64)
      let nextBuild = 9000
      const newBuild = async () => {
        const buildId = nextBuild++
        await decide(buildId, { type: 'CreateBuild', data: { buildId, repo: 'stable', appId: null, publicDownload: null, buildLogUrl: null, tokenName: 't', tokenType: null } })
        await decide(buildId, { type: 'RecordObjectsUploaded', data: { objects: 3, bytes: 100 } })
        await decide(buildId, { type: 'CreateBuildRef', data: { refId: buildId, refName: 'app/org.example.App/x86_64/stable', commit, buildLogUrl: null } })
        await decide(buildId, { type: 'AddExtraIds', data: { ids: ['org.example.Extra'] } })
        await decide(buildId, { type: 'RequestCommit', data: { jobId: buildId * 10, endOfLife: null, endOfLifeRebase: null, tokenType: null } })
        return buildId
      }
      const refs = { 'app/org.example.App/x86_64/stable': 'b'.repeat(64) }
      // Checks pass: validated, published, purged.
      const good = await newBuild()
      await decide(good, { type: 'RecordCommitSucceeded', data: { refs, checks: [{ name: 'lint', jobId: 1 }, { name: 'review', jobId: 2 }] } })
      await decide(good, { type: 'SetCheckStatus', data: { name: 'review', status: 'ReviewRequired', reason: 'look at it', results: null } })
      await decide(good, { type: 'SetCheckStatus', data: { name: 'lint', status: 'Passed', reason: null, results: '{"ok":true}' } })
      await decide(good, { type: 'SetCheckStatus', data: { name: 'review', status: 'PassedWithWarnings', reason: 'fine', results: null } })
      await decide(good, { type: 'RequestPublish', data: { jobId: 3 } })
      await decide(good, { type: 'RecordPublishSucceeded', data: { refs } })
      await decide(good, { type: 'RequestPurge', data: {} })
      await decide(good, { type: 'RecordPurgeSucceeded', data: {} })
      // A check fails: validation fails; the purge fails.
      const failing = await newBuild()
      await decide(failing, { type: 'RecordCommitSucceeded', data: { refs, checks: [{ name: 'lint', jobId: 4 }] } })
      await decide(failing, { type: 'SetCheckStatus', data: { name: 'lint', status: 'Failed', reason: 'bad', results: null } })
      await decide(failing, { type: 'RequestPurge', data: {} })
      await decide(failing, { type: 'RecordPurgeFailed', data: { reason: 'disk on fire' } })
      // No checks: ready at once; the publish fails.
      const unchecked = await newBuild()
      await decide(unchecked, { type: 'RecordCommitSucceeded', data: { refs, checks: [] } })
      await decide(unchecked, { type: 'RequestPublish', data: { jobId: 5 } })
      await decide(unchecked, { type: 'RecordPublishFailed', data: { reason: 'hook said no' } })
      // The commit fails.
      const broken = await newBuild()
      await decide(broken, { type: 'RecordCommitFailed', data: { reason: 'missing object' } })

      assert.deepEqual([...seen].sort(), [...buildEventTypes].sort(), 'every build event type was projected')
      const check = await t.db.prisma.check.findUniqueOrThrow({ where: { buildId_name: { buildId: good, name: 'lint' } } })
      assert.equal(check.results, '{"ok":true}', 'what the decider does not keep is still written')

      const snapshot = async () => {
        const tables: Record<string, unknown[]> = {}
        for (const table of readModelTables) tables[table] = await t.db.prisma.$queryRawUnsafe(`SELECT * FROM ${table} ORDER BY 1, 2`)
        return tables
      }
      const live = await snapshot()
      await rebuildReadModels(t.db, 5)
      assert.deepEqual(await snapshot(), live)
    })

    it('a debounce key holds under two concurrent enqueues, and a claimed job no longer takes in new work', async () => {
      const both = await Promise.all([0, 1].map(() => run(metadata(), (unit) => enqueue(unit, 'update-repo', { repo: 'debounced' }))))
      const ids = both.map(({ result }) => result.jobId)
      assert.equal(ids[0], ids[1], 'both callers got the same job')
      assert.deepEqual(both.map(({ result }) => result.joined).sort(), [false, true])
      assert.equal(await t.db.prisma.job.count({ where: { kind: 'update-repo', repoName: 'debounced' } }), 1)
      // Once a worker has it, a new request needs a job of its own (the running one may have read the repo already).
      assert.equal((await claimJob(t.db, 'w1', 60_000))?.jobId, ids[0])
      const { result: later } = await run(metadata(), (unit) => enqueue(unit, 'update-repo', { repo: 'debounced' }))
      assert.equal(later.joined, false)
      assert.notEqual(later.jobId, ids[0])
      await t.db.prisma.jobQueueEntry.deleteMany({})
      // Two facts of one unit that each want an update (a mirror build's publish) share one job.
      const { result: pair } = await run(metadata(), async (unit) => [await enqueue(unit, 'update-repo', { repo: 'paired' }), await enqueue(unit, 'update-repo', { repo: 'paired' })])
      assert.equal(pair[0]!.jobId, pair[1]!.jobId)
      assert.deepEqual(pair.map((queued) => queued.joined), [false, true])
      await t.db.prisma.jobQueueEntry.deleteMany({})
    })

    it('retries a transient failure with backoff, then succeeds; a real failure fails at once with its message', async () => {
      const tries: number[] = []
      const workers = startWorkers({
        db: t.db,
        run,
        config,
        log: silent,
        concurrency: 1,
        pollMs: 50,
        retry: { prune: { retries: 3, minMs: 200, maxMs: 1000 } },
        handlers: {
          prune: {
            async run() {
              tries.push(performance.now())
              if (tries.length < 3) throw Object.assign(new Error('spawn ./hook ETXTBSY'), { code: 'ETXTBSY' })
              return { results: { pruned: 1 } }
            },
          },
          'mirror-sync': {
            async run() {
              throw new Error('Command ostree pull exited unsuccessfully (1): error: no such ref')
            },
          },
        },
      })
      try {
        const { result: pruned } = await run(metadata(), (unit) => enqueue(unit, 'prune', { repo: 'retried' }))
        const { result: mirrored } = await run(metadata(), (unit) => enqueue(unit, 'mirror-sync', { repo: 'failing', upstream: 'flathub' }))
        const finished = async (jobId: number) => {
          for (let i = 0; i < 200; i++) {
            const job = await t.db.prisma.job.findUniqueOrThrow({ where: { id: jobId } })
            if (job.status === 'Succeeded' || job.status === 'Failed') return job
            await sleep(50)
          }
          throw new Error(`job ${jobId} did not finish`)
        }
        const prune = await finished(pruned.jobId)
        assert.equal(prune.status, 'Succeeded')
        assert.deepEqual(prune.results, { pruned: 1 })
        assert.equal(tries.length, 3)
        // Backoff: at least the policy's minimum before the first retry, and longer before the second.
        assert.ok(tries[1]! - tries[0]! >= 190, `first pause ${tries[1]! - tries[0]!} ms`)
        assert.ok(tries[2]! - tries[1]! >= 390, `second pause ${tries[2]! - tries[1]!} ms`)
        const log = await t.db.prisma.jobLogLine.findMany({ where: { jobId: pruned.jobId }, orderBy: { position: 'asc' } })
        assert.equal(log.filter((line) => /failed for a passing reason \(try \d of 4\): spawn \.\/hook ETXTBSY/.test(line.text)).length, 2)

        const mirror = await finished(mirrored.jobId)
        assert.equal(mirror.status, 'Failed')
        assert.equal(mirror.error, 'Command ostree pull exited unsuccessfully (1): error: no such ref')
        assert.equal(mirror.attempts, 1)
      } finally {
        await workers.stop()
      }
    })

    it('three jobs queued in one command start in three idle slots at once, without waiting for a poll', async () => {
      let release = () => {}
      const gate = new Promise<void>((resolve) => (release = resolve))
      const started = new Map<string, number>()
      const workers = startWorkers({
        db: t.db,
        run,
        config,
        log: silent,
        concurrency: 3,
        // Far beyond the test's patience: only the notifications can start these jobs in time.
        pollMs: 60_000,
        handlers: {
          republish: {
            async run(context) {
              started.set(context.job.repoName ?? '', performance.now())
              await gate
              return { results: {} }
            },
          },
        },
      })
      try {
        // Let every slot make its first (empty) claim and fall asleep.
        await sleep(300)
        const queuedAt = performance.now()
        await run(metadata(), async (unit) => {
          for (const repo of ['a', 'b', 'c']) await enqueue(unit, 'republish', { repo, app: 'org.example.App' }, { repo })
        })
        for (let i = 0; i < 150 && started.size < 3; i++) await sleep(20)
        assert.deepEqual([...started.keys()].sort(), ['a', 'b', 'c'], 'all three jobs started side by side')
        const latest = Math.max(...started.values()) - queuedAt
        assert.ok(latest < 3_000, `the last one started ${Math.round(latest)} ms after they were queued`)
      } finally {
        release()
        await workers.stop()
        await t.db.prisma.jobQueueEntry.deleteMany({})
      }
    })

    it('with 50 jobs waiting behind a busy repo, an idle worker starts another queue\'s job within one poll interval', async () => {
      let release = () => {}
      const busy = new Promise<void>((resolve) => (release = resolve))
      let otherStarted = 0
      const pollMs = 1000
      const workers = startWorkers({
        db: t.db,
        run,
        config,
        log: silent,
        concurrency: 2,
        pollMs,
        handlers: {
          publish: {
            async run() {
              await busy
              return { results: {} }
            },
          },
          republish: {
            async run() {
              otherStarted = performance.now()
              return { results: {} }
            },
          },
        },
      })
      try {
        const { result: first } = await run(metadata(), (unit) => enqueue(unit, 'publish', { build: 1 }, { repo: 'busy' }))
        for (let i = 0; i < 50; i++) await run(metadata(), (unit) => enqueue(unit, 'publish', { build: 2 + i }, { repo: 'busy' }))
        for (let i = 0; i < 100 && (await t.db.prisma.job.findUniqueOrThrow({ where: { id: first.jobId } })).status !== 'Running'; i++) await sleep(20)
        const queuedAt = performance.now()
        await run(metadata(), (unit) => enqueue(unit, 'republish', { repo: 'quiet', app: 'org.example.App' }))
        for (let i = 0; i < 100 && otherStarted === 0; i++) await sleep(20)
        assert.ok(otherStarted > 0, 'the other queue\'s job started')
        assert.ok(otherStarted - queuedAt <= pollMs + 250, `started ${Math.round(otherStarted - queuedAt)} ms after it was queued`)
      } finally {
        release()
        await workers.stop()
        await t.db.prisma.jobQueueEntry.deleteMany({})
      }
    })
  })
}
