import { buildDecider, buildStreamId } from '../domain/build/decider.ts'
import { repoDecider, repoStreamId } from '../domain/repo/repo.ts'
import type { BuildCommand } from '../domain/build/commands.ts'
import { parseRef } from '../domain/build/names.ts'
import { NotFoundError, PermissionDeniedError } from '../domain/shared/errors.ts'
import { checkAppId, checkClaims, checkClaimsAny, checkRepo, isGlobalForApps, type Scope } from '../domain/token/claims.ts'
import type { Build, BuildRef, Check, Job, Prisma, PrismaClient } from '../generated/prisma/client.ts'
import type { CheckStatus } from '../domain/build/events.ts'
import type { CommandRunner, Intent } from '../eventStore/unitOfWork.ts'
import { buildAccessReason, buildReadScopes, jobAccessReason } from './access.ts'
import { allow, commandMetadata, requireClaims, type Actor } from './actor.ts'
import { batchedRows } from '../db/batchedRows.ts'
import type { Database } from '../db/database.ts'
import { sql } from '../db/sql.ts'

export type CreateBuildInput = {
  repo: string
  appId?: string | null
  publicDownload?: boolean | null
  buildLogUrl?: string | null
}

/** What a GraphQL resolver selects (Pothos passes it on, so one query loads what the response needs). */
type BuildQuery = { include?: Prisma.BuildInclude; select?: Prisma.BuildSelect }
type JobQuery = { select?: Prisma.JobSelect }

export type BuildServiceDeps = {
  prisma: PrismaClient
  /** The driver's connection, for the access check every live-log subscriber makes. */
  query: Database['query']
  run: CommandRunner
  repoExists: (name: string) => boolean
  /** Makes a new build's build repo and upload repo: uploads and queries only ever use them. */
  prepareBuildRepos?: (buildId: number, repoName: string) => Promise<void>
}

export function createBuildService({ prisma, query: driverQuery, run, repoExists, prepareBuildRepos }: BuildServiceDeps) {
  async function findBuild<Q extends BuildQuery>(buildId: number, query?: Q): Promise<Build> {
    const build = await prisma.build.findUnique({ ...query, where: { id: buildId } })
    if (!build) throw new NotFoundError(`Build ${buildId} not found`)
    return build
  }

  /**
   * Loads a build the caller may act on with one of `scopes` (flat-manager's
   * lookup_authorized_build): every command on a build starts here.
   */
  async function authorizedBuild(actor: Actor, buildId: number, scopes: readonly Scope[]): Promise<Build> {
    const claims = requireClaims(actor)
    // sub and scope before the lookup: a token without rights learns nothing about which builds exist.
    allow(checkClaimsAny(claims, `build/${buildId}`, scopes))
    const build = await findBuild(buildId)
    allow(buildAccessReason(claims, build, scopes))
    return build
  }

  /** A build the caller may read (its refs, checks, jobs): GraphQL's build queries. */
  async function readableBuild<Q extends BuildQuery>(actor: Actor, buildId: number, query?: Q): Promise<Build> {
    const claims = requireClaims(actor)
    const build = await findBuild(buildId, query)
    allow(buildAccessReason(claims, build, buildReadScopes))
    return build
  }

  /** A build whose repo the caller may download: anyone for a public build, else the `download` scope. */
  async function downloadableBuild(actor: Actor, buildId: number): Promise<Build> {
    const build = await findBuild(buildId)
    if (build.publicDownload) return build
    if (!actor.claims) throw new PermissionDeniedError(`Build ${buildId} is private: send a token with the download scope for it`)
    allow(buildAccessReason(actor.claims, build, ['download']))
    return build
  }

  /** A job the caller may read: the `jobs` scope, or read rights on the job's build. */
  async function readableJob<Q extends JobQuery>(actor: Actor, jobId: number, query?: Q): Promise<Job> {
    const claims = requireClaims(actor)
    const job = await prisma.job.findUnique({ ...query, where: { id: jobId } })
    if (!job) throw new NotFoundError(`Job ${jobId} not found`)
    const build = job.buildId === null ? null : await prisma.build.findUnique({ where: { id: job.buildId } })
    allow(jobAccessReason(claims, job, build))
    return job
  }

  async function decideOnBuild(actor: Actor, buildId: number, intent: Intent<BuildCommand>) {
    return run(commandMetadata(actor), (unit) => unit.decide(buildDecider, buildStreamId(buildId), 'build', intent))
  }

  /**
   * A build decision that starts a job: the job id is allocated here and decided on; the pipeline
   * (src/pipeline/processManager.ts) queues the job in the same unit of work.
   */
  async function decideWithJob(actor: Actor, build: Build, intent: (jobId: number) => Intent<BuildCommand>): Promise<number> {
    const { result } = await run(commandMetadata(actor), async (unit) => {
      const jobId = await unit.nextId('job_ids')
      await unit.decide(buildDecider, buildStreamId(build.id), 'build', intent(jobId))
      return jobId
    })
    return result
  }

  /** A job of a build (its commit, its publish, one of its checks) the caller may see the build of. */
  async function buildJob(actor: Actor, buildId: number, which: { commit: true } | { publish: true } | { check: string }): Promise<Job> {
    const build = await authorizedBuild(actor, buildId, ['build'])
    let jobId: number | null
    if ('commit' in which) jobId = build.commitJobId
    else if ('publish' in which) jobId = build.publishJobId
    else jobId = (await prisma.check.findUnique({ where: { buildId_name: { buildId, name: which.check } } }))?.jobId ?? null
    const job = jobId === null ? null : await prisma.job.findUnique({ where: { id: jobId } })
    if (!job) throw new NotFoundError('check' in which ? `Build ${buildId} has no check named ${which.check}` : `Build ${buildId} has no ${'commit' in which ? 'commit' : 'publish'} job`)
    return job
  }

  /**
   * What a follower of a job's log or state needs, without loading the job for a response: the
   * job's status and its build, one read on the driver (through Prisma, two reads were a tenth of
   * the API's time while a thousand browsers connected), the reads of one pass in one query.
   */
  type FollowedJobRow = { jobId: number; status: string; buildId: number | null; id: number | null; repoName: string | null; appId: string | null }
  const followedJobRows = batchedRows(
    (jobIds: number[]) =>
      driverQuery<FollowedJobRow>(
        sql`SELECT j.id AS "jobId", j.status, j.build_id AS "buildId", b.id, b.repo_name AS "repoName", b.app_id AS "appId"
            FROM jobs j LEFT JOIN builds b ON b.id = j.build_id WHERE j.id = ANY(${jobIds.map(String)}::int[])`.prepare(),
      ),
    (row) => row.jobId,
  )

  async function followedJob(jobId: number): Promise<FollowedJobRow> {
    const row = await followedJobRows.load(jobId)
    if (!row) throw new NotFoundError(`Job ${jobId} not found`)
    return row
  }

  /** readableJob's check, for a subscriber to a job's log or state. */
  async function mayFollowJob(actor: Actor, jobId: number): Promise<void> {
    const claims = requireClaims(actor)
    const row = await followedJob(jobId)
    const build = row.id === null ? null : { id: row.id, repoName: row.repoName!, appId: row.appId }
    allow(jobAccessReason(claims, row, build))
  }

  /** A job's status for a follower of its state, which stops once it has finished. */
  async function jobStatus(jobId: number): Promise<string> {
    return (await followedJob(jobId)).status
  }

  return {
    authorizedBuild,
    readableBuild,
    downloadableBuild,
    readableJob,
    mayFollowJob,
    jobStatus,
    buildJob,

    /** A build with its refs and checks (flat-manager's /extended). */
    async extendedBuild(actor: Actor, buildId: number) {
      const build = await authorizedBuild(actor, buildId, ['build', 'upload'])
      const [refs, checks] = await Promise.all([
        prisma.buildRef.findMany({ where: { buildId }, orderBy: { id: 'asc' } }),
        prisma.check.findMany({ where: { buildId }, orderBy: { name: 'asc' } }),
      ])
      return { build, refs, checks }
    },

    async buildRef(actor: Actor, buildId: number, refId: number): Promise<BuildRef> {
      await authorizedBuild(actor, buildId, ['build'])
      const ref = await prisma.buildRef.findFirst({ where: { id: refId, buildId } })
      if (!ref) throw new NotFoundError(`Build ${buildId} has no ref ${refId}`)
      return ref
    },

    /**
     * flat-manager's build list: a token with the build or download scope; with an app id, the
     * builds of that app (the token must cover it), else the builds made without one. Purged
     * builds are left out. Unlike flat-manager, only the repos the token names.
     */
    async listBuilds(actor: Actor, appId: string | null): Promise<Build[]> {
      const claims = requireClaims(actor)
      allow(checkClaimsAny(claims, 'build', ['build', 'download']))
      if (appId !== null) allow(checkAppId(claims, appId))
      const repos = claims.repos.includes('') ? {} : { repoName: { in: [...claims.repos] } }
      return prisma.build.findMany({ where: { ...repos, appId, repoState: { not: 'Purged' } }, orderBy: { id: 'asc' } })
    },

    async createBuild(actor: Actor, input: CreateBuildInput): Promise<number> {
      const claims = requireClaims(actor)
      allow(checkClaims(claims, 'build', 'build'))
      allow(checkRepo(claims, input.repo))
      if (input.appId) allow(checkAppId(claims, input.appId))
      if (!repoExists(input.repo)) throw new NotFoundError(`No such repo "${input.repo}"`)
      const { result } = await run(commandMetadata(actor), async (unit) => {
        const buildId = await unit.nextId('build_ids')
        await unit.decide(buildDecider, buildStreamId(buildId), 'build', {
          type: 'CreateBuild',
          data: {
            buildId,
            repo: input.repo,
            appId: input.appId ?? null,
            publicDownload: input.publicDownload ?? null,
            buildLogUrl: input.buildLogUrl ?? null,
            tokenName: claims.name ?? '-',
            tokenType: claims.tokenType,
          },
        })
        return buildId
      })
      await prepareBuildRepos?.(result, input.repo)
      return result
    },

    async createBuildRef(
      actor: Actor,
      input: { buildId: number; refName: string; commit: string; buildLogUrl?: string | null },
    ): Promise<BuildRef> {
      const build = await authorizedBuild(actor, input.buildId, ['upload'])
      const claims = requireClaims(actor)
      const ref = parseRef(input.refName)
      if (ref.kind === 'screenshots') {
        allow(await screenshotRefReason(build, ref.arch))
      } else {
        allow(checkAppId(claims, ref.id))
      }
      await run(commandMetadata(actor), async (unit) => {
        const refId = await unit.nextId('build_ref_ids')
        await unit.decide(buildDecider, buildStreamId(build.id), 'build', {
          type: 'CreateBuildRef',
          data: { refId, refName: input.refName, commit: input.commit, buildLogUrl: input.buildLogUrl ?? null },
        })
      })
      return prisma.buildRef.findUniqueOrThrow({ where: { buildId_refName: { buildId: build.id, refName: input.refName } } })

      /** flat-manager's rule: a screenshots ref belongs to the build's app, or to its one app ref. */
      async function screenshotRefReason(target: Build, arch: string): Promise<string | null> {
        if (target.appId) return checkAppId(claims, target.appId)
        const appRefs = await prisma.buildRef.findMany({
          where: { buildId: target.id, refName: { startsWith: 'app/', endsWith: `/${arch}` } },
        })
        const appIds = [...new Set(appRefs.map((row) => row.refName.split('/')[1] ?? ''))]
        const [only, ...others] = appIds
        if (only === undefined) return isGlobalForApps(claims) ? null : 'Screenshot ref needs an app ref for the same arch first'
        if (others.length) return 'Screenshot ref matches multiple app IDs'
        return checkAppId(claims, only)
      }
    },

    /** Commit: Uploading → Committing, and a commit job in the same transaction. */
    async requestCommit(
      actor: Actor,
      buildId: number,
      options: { endOfLife?: string | null; endOfLifeRebase?: string | null; tokenType?: number | null } = {},
    ): Promise<number> {
      const build = await authorizedBuild(actor, buildId, ['build'])
      const data = {
        endOfLife: options.endOfLife ?? null,
        endOfLifeRebase: options.endOfLifeRebase ?? null,
        tokenType: options.tokenType ?? null,
      }
      return decideWithJob(actor, build, (jobId) => ({ type: 'RequestCommit', data: { jobId, ...data } }))
    },

    /** Publish: only a Ready build; the publish job runs in the repo's queue. */
    async requestPublish(actor: Actor, buildId: number): Promise<number> {
      const build = await authorizedBuild(actor, buildId, ['publish'])
      const { result } = await run(commandMetadata(actor), async (unit) => {
        const repo = await unit.state(repoDecider, repoStreamId(build.repoName), 'repo')
        // A lock decided meanwhile sends this round again, so it is never missed.
        unit.dependsOn(repoStreamId(build.repoName))
        const jobId = await unit.nextId('job_ids')
        await unit.decide(buildDecider, buildStreamId(build.id), 'build', {
          type: 'RequestPublish',
          data: { jobId, locks: repo.status === 'Configured' ? repo.locks : {}, mirrored: repo.status === 'Configured' ? repo.mirrored : {} },
        })
        return jobId
      })
      return result
    },

    /** Purge: removes the build's files in a job; purging a purged build changes nothing. */
    async requestPurge(actor: Actor, buildId: number): Promise<number | null> {
      const build = await authorizedBuild(actor, buildId, ['build'])
      const { result } = await run(commandMetadata(actor), async (unit) => {
        const events = await unit.decide(buildDecider, buildStreamId(build.id), 'build', { type: 'RequestPurge', data: {} })
        if (events.length === 0) return null
        const purge = (await unit.settle()).find((reaction) => reaction.kind === 'purge')
        return purge?.jobId ?? null
      })
      return result
    },

    /** A check hook or a reviewer sets a check's status (flat-manager: sub "build", scope reviewcheck). */
    async reviewCheck(
      actor: Actor,
      jobId: number,
      review: { status: CheckStatus; reason: string | null; results: string | null },
    ): Promise<Pick<Check, 'buildId' | 'name'>> {
      allow(checkClaims(requireClaims(actor), 'build', 'reviewcheck'))
      const check = await prisma.check.findFirst({ where: { jobId } })
      if (!check) throw new NotFoundError(`Job ${jobId} is not a check`)
      await decideOnBuild(actor, check.buildId, { type: 'SetCheckStatus', data: { name: check.name, ...review } })
      return { buildId: check.buildId, name: check.name }
    },

    async addExtraIds(actor: Actor, buildId: number, ids: string[]): Promise<void> {
      await authorizedBuild(actor, buildId, ['upload'])
      await decideOnBuild(actor, buildId, { type: 'AddExtraIds', data: { ids } })
    },
  }
}

export type BuildService = ReturnType<typeof createBuildService>
