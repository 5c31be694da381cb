import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, copyFileSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import type { BuildCommand } from '../../src/domain/build/commands.ts'
import { buildDecider, buildStreamId } from '../../src/domain/build/decider.ts'
import { repoDecider, repoStreamId } from '../../src/domain/repo/repo.ts'
import type { CommandRunner, Intent } from '../../src/eventStore/unitOfWork.ts'
import { createAppRunner } from '../../src/pipeline/runner.ts'
import { parseConfig, type Config } from '../../src/config/config.ts'
import { createLogger } from '../../src/log.ts'
import { createRepoService, syncRepoConfig } from '../../src/services/repos.ts'
import { ensureBuildRepos, uploadDir } from '../../src/storage/buildArea.ts'
import { listHolds } from '../../src/ostree/prune.ts'
import { startWorkers } from '../../workers/pool.ts'
import { openTestDatabase, testEngines, type TestDatabase } from '../support/databases.ts'
import type { Claims } from '../../src/domain/token/claims.ts'

const exec = promisify(execFile)
const ostree = async (repo: string, ...args: string[]) => (await exec('ostree', [`--repo=${repo}`, ...args])).stdout.trim()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const metadata = () => ({ now: new Date(), actor: { name: 'test', jti: null }, requestId: null })
const ref = 'app/org.example.App/x86_64/stable'
const maintainer: Claims = { sub: 'build', exp: 2 ** 40, name: 'maintainer', jti: null, scope: ['prune'], prefixes: [''], apps: [], repos: ['stable'], branches: [], tokenType: null }
const objectFile = (repo: string, checksum: string, suffix: string) => path.join(repo, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.${suffix}`)

/** The checksum of the one regular file in a commit's root (`ostree ls -C`). */
async function fileChecksum(repo: string, commit: string, file: string): Promise<string> {
  const line = (await ostree(repo, 'ls', '-C', commit, `/${file}`)).split('\n')[0]!
  return /([0-9a-f]{64})\s+\/\S+$/.exec(line)![1]!
}

/**
 * The prune job on real repos: what it keeps (a build in progress's borrowed objects, a
 * rollback's commits), that its dry run counts what the prune then removes, byte for byte.
 */
for (const engine of testEngines) {
  describe(`prune on real ostree repos on ${engine}`, () => {
    let t: TestDatabase
    let run: CommandRunner
    let dir: string
    let config: Config
    let main: string
    let workers: ReturnType<typeof startWorkers>
    const commits: string[] = []
    let borrowed: string

    const decideBuild = (buildId: number, intent: Intent<BuildCommand>) => run(metadata(), (unit) => unit.decide(buildDecider, buildStreamId(buildId), 'build', intent))
    const finished = async (jobId: number) => {
      for (let i = 0; i < 600; i++) {
        const job = await t.db.prisma.job.findUniqueOrThrow({ where: { id: jobId } })
        if (job.status === 'Succeeded' || job.status === 'Failed') return job
        await sleep(50)
      }
      throw new Error(`job ${jobId} did not finish`)
    }
    const pruneNow = async (options: { depth?: number; dryRun?: boolean }) => {
      const service = createRepoService({ run, repos: config.repos })
      const job = await finished(await service.requestPrune({ claims: maintainer, requestId: null }, 'stable', options))
      assert.equal(job.status, 'Succeeded', job.error ?? '')
      return job.results as { objects: number; bytes: number; heldBuilds: number[]; heldCommits: number }
    }

    before(async () => {
      t = await openTestDatabase(engine)
      dir = mkdtempSync(path.join(tmpdir(), 'flatdepot-prune-'))
      main = path.join(dir, 'repo')
      // No static deltas: the pipeline's delta job after a prune then has nothing to do here.
      config = parseConfig({ secret: Buffer.alloc(32, 1).toString('base64'), 'build-repo-base': path.join(dir, 'builds'), repos: { stable: { path: main, deltas: [] } } }, path.join(dir, 'config.json'))
      run = createAppRunner(t.db, config)
      await syncRepoConfig(run, config.repos.values())
      await ostree(main, 'init', '--mode=archive-z2')
      // Three releases of the app, each with a file of its own (v1's is what the build borrows).
      for (const version of [1, 2, 3]) {
        const tree = path.join(dir, `tree${version}`)
        mkdirSync(tree)
        writeFileSync(path.join(tree, `v${version}`), randomBytes(200_000))
        commits.push(await ostree(main, 'commit', `--branch=${ref}`, `--tree=dir=${tree}`, `--subject=v${version}`))
      }
      borrowed = await fileChecksum(main, commits[0]!, 'v1')
      workers = startWorkers({ db: t.db, run, config, log: createLogger({ level: 'silent' }), concurrency: 1, pollMs: 50 })
    })
    after(async () => {
      await workers?.stop()
      await t.drop()
      rmSync(dir, { recursive: true, force: true })
    })

    it('keeps what a build in progress borrows, and lets it go once the build has failed; the dry run counts exactly what goes', async () => {
      // A client pushed a commit whose file v1 it skipped: the repo has it (only in v1's commit).
      await ensureBuildRepos(config.buildRepoBase, 1, config.repos.get('stable')!)
      const client = path.join(dir, 'client')
      await ostree(client, 'init', '--mode=archive-z2')
      const pushed = await ostree(client, 'commit', '--orphan', `--tree=dir=${path.join(dir, 'tree1')}`)
      const upload = uploadDir(config.buildRepoBase, 1)
      for (const sub of readdirSync(path.join(client, 'objects'))) {
        for (const name of readdirSync(path.join(client, 'objects', sub))) {
          if (name.endsWith('.filez')) continue // skipped: the main repo has it
          mkdirSync(path.join(upload, 'objects', sub), { recursive: true })
          copyFileSync(path.join(client, 'objects', sub, name), path.join(upload, 'objects', sub, name))
        }
      }
      assert.ok(!existsSync(objectFile(upload, borrowed, 'filez')), 'the upload borrows v1\'s file')
      await decideBuild(1, { type: 'CreateBuild', data: { buildId: 1, repo: 'stable', appId: 'org.example.App', publicDownload: null, buildLogUrl: null, tokenName: 'bot', tokenType: null } })
      await decideBuild(1, { type: 'CreateBuildRef', data: { refId: 1, refName: ref, commit: pushed, buildLogUrl: null } })

      const dry = await pruneNow({ depth: 0, dryRun: true })
      assert.ok(dry.objects > 0 && dry.bytes > 200_000, `v2's file and the old commits would go: ${JSON.stringify(dry)}`)
      assert.deepEqual(dry.heldBuilds, [1])
      assert.ok(existsSync(objectFile(main, commits[0]!, 'commit')), 'a dry run deletes nothing')

      const pruned = await pruneNow({ depth: 0 })
      assert.deepEqual({ objects: pruned.objects, bytes: pruned.bytes }, { objects: dry.objects, bytes: dry.bytes }, 'the dry run counted exactly what went')
      assert.ok(!existsSync(objectFile(main, commits[1]!, 'commit')), 'v2 went')
      assert.ok(existsSync(objectFile(main, borrowed, 'filez')), 'the file the build borrows stayed')
      assert.deepEqual(await listHolds(main), [], 'no hold is left behind')
      assert.match(await ostree(main, 'fsck'), /no errors|^$/i)
      await ostree(uploadDir(config.buildRepoBase, 1), 'fsck') // the build's commit is still whole

      await decideBuild(1, { type: 'RequestCommit', data: { jobId: 999, endOfLife: null, endOfLifeRebase: null, tokenType: null } })
      await decideBuild(1, { type: 'RecordCommitFailed', data: { reason: 'test' } })
      const after = await pruneNow({ depth: 0 })
      assert.deepEqual(after.heldBuilds, [])
      assert.ok(!existsSync(objectFile(main, borrowed, 'filez')), 'a failed build holds nothing')
    })

    it('keeps the commits of a ref\'s latest rollback, whatever the depth', async () => {
      const tree = path.join(dir, 'tree4')
      mkdirSync(tree)
      writeFileSync(path.join(tree, 'v4'), randomBytes(1000))
      const v3 = commits[2]!
      const v4 = await ostree(main, 'commit', `--branch=${ref}`, `--tree=dir=${tree}`, '--subject=v4')
      const rolled = await ostree(main, 'commit', `--branch=${ref}`, `--tree=ref=${v3}`, '--subject=back to v3')
      await run(metadata(), (unit) => unit.decide(repoDecider, repoStreamId('stable'), 'repo', { type: 'RecordRolledBack', data: { ref, from: v4, to: v3, commit: rolled } }))
      const pruned = await pruneNow({ depth: 0 })
      assert.equal(pruned.heldCommits, 2)
      assert.ok(existsSync(objectFile(main, v4, 'commit')), 'the commit rolled away from stays (the rollback can be undone)')
      assert.ok(existsSync(objectFile(main, v3, 'commit')), 'the commit rolled back to stays')
    })
  })
}
