import { builder } from '../builder.ts'
import { CheckStatusEnum } from './enums.ts'
import { mutationErrors } from './errors.ts'

/** Commit, publish, purge and review: each queues a job and answers with it at once. */
builder.mutationFields((t) => ({
  commitBuild: t.prismaField({
    type: 'Job',
    description: 'Commits an uploading build: checks every object and signs the commits; needs scope `build`',
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: {
      buildId: t.arg.int(),
      endOfLife: t.arg.string({ required: false }),
      endOfLifeRebase: t.arg.string({ required: false, description: 'The app id this app is renamed to' }),
      tokenType: t.arg.int({ required: false }),
    },
    resolve: async (query, _root, args, context) => {
      const jobId = await context.builds.requestCommit(context.actor, args.buildId, args)
      return context.prisma.job.findUniqueOrThrow({ ...query, where: { id: jobId } })
    },
  }),
  publishBuild: t.prismaField({
    type: 'Job',
    description: 'Publishes a Ready build into its repo (all checks must have passed); needs scope `publish`',
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { buildId: t.arg.int() },
    resolve: async (query, _root, args, context) => {
      const jobId = await context.builds.requestPublish(context.actor, args.buildId)
      return context.prisma.job.findUniqueOrThrow({ ...query, where: { id: jobId } })
    },
  }),
  purgeBuild: t.prismaField({
    type: 'Build',
    description: "Removes a build's files; purging a purged build is a no-op; needs scope `build`",
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { buildId: t.arg.int() },
    resolve: async (query, _root, args, context) => {
      await context.builds.requestPurge(context.actor, args.buildId)
      return context.prisma.build.findUniqueOrThrow({ ...query, where: { id: args.buildId } })
    },
  }),
  reviewCheck: t.prismaField({
    type: 'Check',
    description: "Sets a check's status (a hook about itself, or a reviewer); needs sub `build` and scope `reviewcheck`",
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: {
      jobId: t.arg.int({ description: "The check's job id" }),
      status: t.arg({ type: CheckStatusEnum }),
      reason: t.arg.string({ required: false }),
      results: t.arg.string({ required: false }),
    },
    resolve: async (query, _root, args, context) => {
      const check = await context.builds.reviewCheck(context.actor, args.jobId, {
        status: args.status,
        reason: args.reason ?? null,
        results: args.results ?? null,
      })
      return context.prisma.check.findUniqueOrThrow({ ...query, where: { buildId_name: check } })
    },
  }),
}))

builder.queryFields((t) => ({
  missingObjects: t.stringList({
    description: 'Which of these objects (<sha256>.<type>) the build still needs: neither uploaded nor in its repo',
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { buildId: t.arg.int(), objects: t.arg.stringList() },
    resolve: (_root, args, context) => context.uploads.missingObjects(context.actor, args.buildId, args.objects),
  }),
}))
