import { PermissionDeniedError } from '../../domain/shared/errors.ts'
import { buildStreamId } from '../../domain/build/decider.ts'
import type { Prisma } from '../../generated/prisma/client.ts'
import { visibleBuildsFilter } from '../../services/access.ts'
import { requireClaims } from '../../services/actor.ts'
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
    resolve: (query, _root, args, context) => {
      const visible = visibleBuildsFilter(requireClaims(context.actor))
      if (!visible) throw new PermissionDeniedError("Not matching scope 'build' in token")
      const where: Prisma.BuildWhereInput = {
        AND: [
          visible,
          {
            ...(args.repo ? { repoName: args.repo } : {}),
            ...(args.appId ? { appId: args.appId } : {}),
            ...(args.repoState ? { repoState: args.repoState } : {}),
            ...(args.publishedState ? { publishedState: args.publishedState } : {}),
          },
        ],
      }
      return context.prisma.build.findMany({ ...query, where, orderBy: { id: 'desc' } })
    },
  }),
}))

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
}))
