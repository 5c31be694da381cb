import { PermissionDeniedError } from '../../domain/shared/errors.ts'
import { buildStreamId } from '../../domain/build/decider.ts'
import type { Prisma } from '../../generated/prisma/client.ts'
import { visibleBuildsFilter } from '../../services/access.ts'
import { requireClaims } from '../../services/actor.ts'
import { anyBuildKey } from '../../notifications/changeFeed.ts'
import { builder } from '../builder.ts'
import type { Context } from '../context.ts'
import { CheckStatusEnum, PublishedStateEnum, RepoStateEnum } from './enums.ts'
import { lookupErrors, mutationErrors } from './errors.ts'

builder.prismaObject('BuildRef', {
  description: 'A ref the build bot created in a build: app/…, runtime/… or screenshots/…',
  fields: (t) => ({
    id: t.exposeInt('id'),
    buildId: t.exposeInt('buildId'),
    refName: t.exposeString('refName'),
    commit: t.exposeString('commit'),
    publishedCommit: t.exposeString('publishedCommit', { nullable: true, description: 'The commit the publish made in the repo (null until published)' }),
    buildLogUrl: t.exposeString('buildLogUrl', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
})

builder.prismaObject('Check', {
  description: 'A configured check hook run on a committed build, or its review',
  fields: (t) => ({
    name: t.exposeString('name'),
    buildId: t.exposeInt('buildId'),
    jobId: t.exposeInt('jobId'),
    status: t.field({ type: CheckStatusEnum, resolve: (check) => check.status as never }),
    statusReason: t.exposeString('statusReason', { nullable: true }),
    results: t.exposeString('results', { nullable: true }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
})

builder.prismaObject('Build', {
  description: 'One upload of one or more refs, on its way to a repo',
  fields: (t) => ({
    id: t.exposeInt('id'),
    repo: t.exposeString('repoName'),
    appId: t.exposeString('appId', { nullable: true }),
    publicDownload: t.exposeBoolean('publicDownload'),
    buildLogUrl: t.exposeString('buildLogUrl', { nullable: true }),
    repoState: t.field({ type: RepoStateEnum, resolve: (build) => build.repoState as never }),
    repoStateReason: t.exposeString('repoStateReason', { nullable: true }),
    publishedState: t.field({ type: PublishedStateEnum, resolve: (build) => build.publishedState as never }),
    publishedStateReason: t.exposeString('publishedStateReason', { nullable: true }),
    extraIds: t.exposeStringList('extraIds'),
    tokenName: t.exposeString('tokenName', { nullable: true }),
    mirrorUpstream: t.exposeString('mirrorUpstream', { nullable: true, description: "The upstream a mirror build's commits came from (null: uploaded)" }),
    tokenType: t.exposeString('tokenType', { nullable: true }),
    commitJobId: t.exposeInt('commitJobId', { nullable: true }),
    publishJobId: t.exposeInt('publishJobId', { nullable: true }),
    uploadedObjects: t.exposeInt('uploadedObjects'),
    uploadedBytes: t.float({ resolve: (build) => Number(build.uploadedBytes) }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    refs: t.relation('refs', { query: { orderBy: { refName: 'asc' } } }),
    checks: t.relation('checks', { query: { orderBy: { name: 'asc' } } }),
    ociImages: t.prismaField({
      type: ['OciImage'],
      description: "The OCI images of the commits this build published (repos with `oci` in the config; empty until the export after its publish ran)",
      select: { refs: { select: { publishedCommit: true } } },
      resolve: (query, build, _args, context) => {
        const commits = build.refs.flatMap((ref) => (ref.publishedCommit ? [ref.publishedCommit] : []))
        if (commits.length === 0) return []
        return context.prisma.ociImage.findMany({ ...query, where: { repoName: build.repoName, commit: { in: commits } }, orderBy: [{ repository: 'asc' }, { id: 'asc' }] })
      },
    }),
    jobs: t.prismaField({
      type: ['Job'],
      description: "The build's commit, check and publish jobs",
      resolve: (query, build, _args, context) =>
        context.prisma.job.findMany({ ...query, where: { buildId: build.id }, orderBy: { id: 'asc' } }),
    }),
  }),
})

/** A build the token may read (the builds service decides), or an error. */
const readableBuild = (context: Context, id: number, query: { include?: Prisma.BuildInclude; select?: Prisma.BuildSelect }) =>
  context.builds.readableBuild(context.actor, id, query)

builder.queryFields((t) => ({
  build: t.prismaField({
    type: 'Build',
    authScopes: { token: true },
    errors: { types: lookupErrors },
    args: { id: t.arg.int() },
    resolve: (query, _root, args, context) => readableBuild(context, args.id, query),
  }),
  builds: t.prismaConnection({
    type: 'Build',
    cursor: 'id',
    description: 'The builds this token may see, newest first',
    authScopes: { token: true },
    errors: { types: [PermissionDeniedError] },
    args: {
      repo: t.arg.string({ required: false }),
      appId: t.arg.string({ required: false }),
      repoState: t.arg({ type: RepoStateEnum, required: false }),
      publishedState: t.arg({ type: PublishedStateEnum, required: false }),
    },
    resolve: (query, _root, args, context) => context.prisma.build.findMany({ ...query, where: buildsWhere(context, args), orderBy: { id: 'desc' } }),
  }),
}))

type BuildFilter = { repo?: string | null; appId?: string | null; repoState?: string | null; publishedState?: string | null }

/** The builds the caller's token may see, narrowed by the list's filters. */
function buildsWhere(context: Context, args: BuildFilter): Prisma.BuildWhereInput {
  const visible = visibleBuildsFilter(requireClaims(context.actor))
  if (!visible) throw new PermissionDeniedError("Not matching scope 'build' in token")
  return {
    AND: [
      visible,
      {
        ...(args.repo ? { repoName: args.repo } : {}),
        ...(args.appId ? { appId: args.appId } : {}),
        ...(args.repoState ? { repoState: args.repoState } : {}),
        ...(args.publishedState ? { publishedState: args.publishedState } : {}),
      },
    ],
  } as Prisma.BuildWhereInput
}

/** How far back a wake-up looks for changed builds: commits of concurrent writers land out of their decision order by this much at most. */
const changedBuildsSlackMs = 10_000

const CreateBuildInput = builder.inputType('CreateBuildInput', {
  fields: (t) => ({
    repo: t.string(),
    appId: t.string({ required: false, description: 'Restricts the build to refs of this app (and its extensions)' }),
    publicDownload: t.boolean({ required: false, description: 'Defaults to true without appId, false with it' }),
    buildLogUrl: t.string({ required: false }),
  }),
})

builder.mutationFields((t) => ({
  createBuild: t.prismaField({
    type: 'Build',
    description: 'Starts a build in a repo; needs a token with sub `build` and scope `build`',
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { input: t.arg({ type: CreateBuildInput }) },
    resolve: async (query, _root, { input }, context) => {
      const id = await context.builds.createBuild(context.actor, input)
      return context.prisma.build.findUniqueOrThrow({ ...query, where: { id } })
    },
  }),
  createBuildRef: t.prismaField({
    type: 'BuildRef',
    description: 'Creates (or moves) a ref in a build that is still uploading; needs scope `upload`',
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: {
      buildId: t.arg.int(),
      refName: t.arg.string(),
      commit: t.arg.string(),
      buildLogUrl: t.arg.string({ required: false }),
    },
    resolve: async (query, _root, args, context) => {
      const ref = await context.builds.createBuildRef(context.actor, args)
      return context.prisma.buildRef.findUniqueOrThrow({ ...query, where: { id: ref.id } })
    },
  }),
  addExtraIds: t.prismaField({
    type: 'Build',
    description: 'Adds extra collection ids to a build that is still uploading; needs scope `upload`',
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { buildId: t.arg.int(), ids: t.arg.stringList() },
    resolve: async (query, _root, args, context) => {
      await context.builds.addExtraIds(context.actor, args.buildId, args.ids)
      return context.prisma.build.findUniqueOrThrow({ ...query, where: { id: args.buildId } })
    },
  }),
}))

builder.subscriptionFields((t) => ({
  buildUpdated: t.prismaField({
    type: 'Build',
    description: 'The build now, then again after every change to it (state, refs, checks…)',
    authScopes: { token: true },
    args: { id: t.arg.int() },
    subscribe: async function* (_root, args, context) {
      await readableBuild(context, args.id, {})
      for await (const _change of context.changes.watch(buildStreamId(args.id))) yield args.id
    },
    resolve: (query, _buildId, args, context) =>
      context.prisma.build.findUniqueOrThrow({ ...query, where: { id: args.id } }),
  }),
  buildsUpdated: t.prismaField({
    type: 'Build',
    description:
      'Every build this token may see (narrowed by the filters, as for `builds`) each time it changes from now on: new builds, uploads, state and checks. A live list: merge by id; a build that no longer matches a state filter is sent once more with its new state',
    authScopes: { token: true },
    args: {
      repo: t.arg.string({ required: false }),
      appId: t.arg.string({ required: false }),
      repoState: t.arg({ type: RepoStateEnum, required: false }),
      publishedState: t.arg({ type: PublishedStateEnum, required: false }),
    },
    subscribe: async function* (_root, args, context) {
      // The state filters apply to what a build was, too: a build leaving the filtered state is sent once more.
      const { repoState, publishedState, ...scope } = args
      const where = buildsWhere(context, scope)
      const matches = (build: { repoState: string; publishedState: string }) => (!repoState || build.repoState === repoState) && (!publishedState || build.publishedState === publishedState)
      // The database is the truth: each wake-up reads the builds changed since a little before the
      // last read (writers' commits land out of order by milliseconds), each version sent once.
      let since = Date.now()
      const sent = new Map<number, { at: number; matched: boolean }>()
      for await (const _change of context.changes.watch(anyBuildKey)) {
        const now = Date.now()
        const changed = await context.prisma.build.findMany({
          where: { AND: [where, { updatedAt: { gt: new Date(since - changedBuildsSlackMs) } }] },
          select: { id: true, updatedAt: true, repoState: true, publishedState: true },
          orderBy: { id: 'asc' },
        })
        for (const build of changed) {
          const at = build.updatedAt.getTime()
          const previous = sent.get(build.id)
          if (previous && previous.at >= at) continue
          const matched = matches(build)
          if (!matched && !previous?.matched) continue
          sent.set(build.id, { at, matched })
          yield build.id
        }
        since = now
        for (const [id, { at }] of sent) if (at < now - 2 * changedBuildsSlackMs) sent.delete(id)
      }
    },
    resolve: (query, buildId, _args, context) => context.prisma.build.findUniqueOrThrow({ ...query, where: { id: buildId } }),
  }),
}))
