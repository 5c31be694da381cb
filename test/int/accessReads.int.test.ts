import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { buildDecider, buildStreamId } from '../../src/domain/build/decider.ts'
import { jobDecider, jobStreamId } from '../../src/domain/job/job.ts'
import type { Claims } from '../../src/domain/token/claims.ts'
import type { Statement } from '../../src/db/sql.ts'
import { parseConfig } from '../../src/config/config.ts'
import { createEventStore } from '../../src/eventStore/eventStore.ts'
import { createCommandRunner, type CommandRunner } from '../../src/eventStore/unitOfWork.ts'
import { createLogger } from '../../src/log.ts'
import { inlineHandlers } from '../../src/projections/index.ts'
import { createBuildService, type BuildService } from '../../src/services/builds.ts'
import { syncRepoConfig } from '../../src/services/repos.ts'
import { createTokenService, type TokenService } from '../../src/services/tokens.ts'
import { mintToken, TokenError } from '../../src/tokens/jwt.ts'
import { openTestDatabase, testEngines, type TestDatabase } from '../support/databases.ts'

/**
 * The reads that authorize requests are batched per turn of the event loop (a thousand browsers
 * opening one build page at once): each caller must still get the answer for its own token and
 * its own job, whatever else was asked in the same batch.
 */
const config = parseConfig({ secret: Buffer.alloc(32, 7).toString('base64'), 'build-repo-base': 'b', repos: { stable: { path: 'r' } } }, '/srv/config.json')
const metadata = { now: new Date('2026-02-03T04:05:06Z'), actor: { name: 'bot', jti: 'j1' }, requestId: 'access' }
const claims = (overrides: Partial<Claims>): Claims => ({ sub: '', exp: 0, name: 'test', jti: null, scope: [], prefixes: [], apps: [], repos: [], branches: [], tokenType: null, ...overrides })

for (const engine of testEngines) {
  describe(`authorizing reads made at once, on ${engine}`, () => {
    let t: TestDatabase
    let run: CommandRunner
    let builds: BuildService
    let tokens: TokenService
    /** The statements each service sent, by the table they read. */
    const sent = { jobs: 0, tokens: 0 }
    const counting = <Row,>(statement: Statement): Promise<Row[]> => {
      if (/FROM jobs j LEFT JOIN builds/.test(statement.text)) sent.jobs++
      if (/FROM tokens WHERE jti/.test(statement.text)) sent.tokens++
      return t.db.query<Row>(statement)
    }

    before(async () => {
      t = await openTestDatabase(engine)
      run = createCommandRunner(createEventStore(t.db, inlineHandlers), t.db)
      await syncRepoConfig(run, config.repos.values())
      builds = createBuildService({ prisma: t.db.prisma, query: counting, run, repoExists: (name) => config.repos.has(name) })
      tokens = createTokenService({ prisma: t.db.prisma, query: counting, run, secret: config.secret, tokenPrefix: null, log: createLogger({ level: 'silent' }) })
    })
    after(async () => t.drop())

    async function createBuild(): Promise<number> {
      const { result } = await run(metadata, async (unit) => {
        const buildId = await unit.nextId('build_ids')
        await unit.decide(buildDecider, buildStreamId(buildId), 'build', {
          type: 'CreateBuild',
          data: { buildId, repo: 'stable', appId: 'org.example.App', publicDownload: null, buildLogUrl: null, tokenName: 'bot', tokenType: 'app' },
        })
        return buildId
      })
      return result
    }
    async function queueJob(buildId: number | null): Promise<number> {
      const { result } = await run(metadata, async (unit) => {
        const jobId = await unit.nextId('job_ids')
        await unit.decide(jobDecider, jobStreamId(jobId), 'job', {
          type: 'QueueJob',
          data: { jobId, kind: 'update-repo', repo: 'stable', buildId, contents: { repo: 'stable' }, startAfter: null },
        })
        return jobId
      })
      return result
    }

    it("answers follows of several jobs asked at once from one read, each by its own job's build", async () => {
      const [mine, other] = [await createBuild(), await createBuild()]
      const [mineJob, otherJob, repoJob] = [await queueJob(mine), await queueJob(other), await queueJob(null)]
      const buildToken = { claims: claims({ sub: `build/${mine}`, scope: ['build'], repos: ['stable'] }), requestId: null }
      const maintainer = { claims: claims({ sub: 'build', scope: ['jobs', 'build'], repos: ['stable'] }), requestId: null }
      const asked = [
        [buildToken, mineJob],
        [buildToken, otherJob],
        [buildToken, repoJob],
        [maintainer, otherJob],
        [maintainer, repoJob],
        [buildToken, mineJob],
        [maintainer, 999_999],
      ] as const
      sent.jobs = 0
      const outcomes = await Promise.allSettled(asked.map(([actor, jobId]) => builds.mayFollowJob(actor, jobId)))
      assert.equal(sent.jobs, 1, `seven follows asked in one turn took ${sent.jobs} reads`)
      assert.deepEqual(
        outcomes.map((outcome) => (outcome.status === 'fulfilled' ? 'allowed' : (outcome.reason as Error).constructor.name)),
        ['allowed', 'PermissionDeniedError', 'PermissionDeniedError', 'allowed', 'allowed', 'allowed', 'NotFoundError'],
        'the build token follows its own build only; the maintainer follows any job; a missing job is not found',
      )
      // One follow alone still reads (nothing is kept between turns).
      await builds.mayFollowJob(buildToken, mineJob)
      assert.equal(sent.jobs, 2, 'a later follow reads again')
    })

    it('answers authentications made at once by each token’s own row, and reads a revocation made between them', async () => {
      const mint = (jti: string) => mintToken(config.secret, { name: jti, sub: '', scope: ['build'], prefixes: [], repos: ['stable'], durationSecs: 3600, jti })
      const [kept, revoked, other] = await Promise.all([mint('batch-kept'), mint('batch-revoked'), mint('batch-other')])
      // Known to the server (a first use registers a token).
      for (const token of [kept, revoked, other]) await tokens.authenticate(`Bearer ${token.token}`, null)
      await tokens.revoke({ claims: claims({ jti: 'admin', scope: ['tokenmanagement'] }), requestId: null }, ['batch-revoked'])
      sent.tokens = 0
      const presented = [kept, revoked, other, kept, revoked, other, kept]
      const outcomes = await Promise.allSettled(presented.map((token) => tokens.authenticate(`Bearer ${token.token}`, null)))
      assert.ok(sent.tokens >= 1 && sent.tokens <= presented.length, `${presented.length} authentications took ${sent.tokens} reads`)
      assert.deepEqual(
        outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value?.jti : outcome.reason instanceof TokenError ? `refused: ${outcome.reason.message}` : String(outcome.reason))),
        ['batch-kept', 'refused: Token has been revoked', 'batch-other', 'batch-kept', 'refused: Token has been revoked', 'batch-other', 'batch-kept'],
        'each request is answered by its own token',
      )
    })
  })
}
