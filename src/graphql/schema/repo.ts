import type { Prisma } from '../../generated/prisma/client.ts'
import type { Context } from '../context.ts'
import { mutationErrors } from './errors.ts'
import { builder } from '../builder.ts'

builder.prismaObject('Repo', {
  description: 'A main repository that builds are published into and flatpak clients install from',
  fields: (t) => ({
    name: t.exposeString('name'),
    title: t.exposeString('title', { nullable: true }),
    collectionId: t.exposeString('collectionId', { nullable: true }),
    defaultBranch: t.exposeString('defaultBranch', { nullable: true }),
    baseUrl: t.exposeString('baseUrl', { nullable: true }),
    configuredAt: t.expose('configuredAt', { type: 'DateTime' }),
    refsChangedAt: t.expose('refsChangedAt', { type: 'DateTime', nullable: true, description: 'When the refs last changed: a publish, republish, rollback, mirror sync or delete' }),
    summaryUpdatedAt: t.expose('summaryUpdatedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the appstream and signed summary were last regenerated: clients see what changed before it (earlier than `refsChangedAt`: an update is on its way)',
    }),
    deltasGeneratedAt: t.expose('deltasGeneratedAt', { type: 'DateTime', nullable: true, description: 'When the last delta job finished' }),
    deltasFailed: t.exposeStringList('deltasFailed', { description: 'The static deltas the last delta job could not make (`FROM-TO`, or `TO` from nothing)' }),
    refs: t.relation('refs', {
      description: 'The refs the repo serves (app/…, runtime/…), by name, as the event log has them',
      query: { orderBy: { ref: 'asc' } },
    }),
    ociImages: t.prismaField({
      type: ['OciImage'],
      description: "The repo's refs as OCI images (repos with `oci` in the config), newest first",
      args: { ref: t.arg.string({ required: false }), first: t.arg.int({ required: false, description: 'At most 500; default 100' }) },
      resolve: (query, repo, args, context) =>
        context.prisma.ociImage.findMany({
          ...query,
          where: { repoName: repo.name, ...(args.ref ? { ref: args.ref } : {}) },
          orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
          take: Math.min(Math.max(args.first ?? 100, 1), 500),
        }),
    }),
  }),
})

builder.prismaObject('RepoRef', {
  description: 'A ref a repo serves and the commit it is at',
  fields: (t) => ({
    ref: t.exposeString('ref'),
    commit: t.exposeString('commit'),
    source: t.exposeString('source', { description: 'How it got this commit: publish, republish, rollback or mirror' }),
    buildId: t.exposeInt('buildId', { nullable: true, description: 'The build that published it (source publish)' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
})

builder.prismaObject('OciImage', {
  description: 'A ref exported as an OCI image: pulled by `oci+http(s)` remotes through /v2/ and listed in /index/static',
  fields: (t) => ({
    repository: t.exposeString('repository', { description: 'The OCI repository name (`<prefix>/<id in lower case>`)' }),
    ref: t.exposeString('ref'),
    commit: t.exposeString('commit'),
    digest: t.exposeString('digest', { description: "The manifest's digest" }),
    tags: t.exposeStringList('tags'),
    os: t.exposeString('os'),
    architecture: t.exposeString('architecture'),
    size: t.float({ description: 'Bytes of manifest, config and layers', resolve: (image) => Number(image.size) }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
})

builder.queryFields((t) => ({
  repos: t.prismaField({
    description: 'Every configured repo (public: the same facts a .flatpakrepo file gives)',
    type: ['Repo'],
    resolve: (query, _root, _args, context) => context.prisma.repo.findMany({ ...query, orderBy: { name: 'asc' } }),
  }),
  repo: t.prismaField({
    type: 'Repo',
    nullable: true,
    args: { name: t.arg.string() },
    resolve: (query, _root, args, context) => context.prisma.repo.findUnique({ ...query, where: { name: args.name } }),
  }),
}))

const jobOf = (context: Context, query: { select?: Prisma.JobSelect }, jobId: number) => context.prisma.job.findUniqueOrThrow({ ...query, where: { id: jobId } })

builder.mutationFields((t) => ({
  republishApp: t.prismaField({
    type: 'Job',
    description:
      "Commits an app already in the repo again through the publish hook (FLAT_MANAGER_IS_REPUBLISH=true), optionally end-of-life: clients see the message on `flatpak update` and are offered the rebase target. Needs scope `republish`",
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { repo: t.arg.string(), app: t.arg.string(), endOfLife: t.arg.string({ required: false }), endOfLifeRebase: t.arg.string({ required: false }) },
    resolve: async (query, _root, args, context) =>
      jobOf(context, query, await context.repos.requestRepublish(context.actor, args.repo, { app: args.app, endOfLife: args.endOfLife ?? null, endOfLifeRebase: args.endOfLifeRebase ?? null })),
  }),
  deleteFromRepo: t.prismaField({
    type: 'Job',
    description:
      'Deletes an app with its extensions (every arch and branch), or refs named one by one, from the repo; a reason is required and kept in the audit log. A runtime an app still uses is refused unless `force`. Needs scope `delete`',
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { repo: t.arg.string(), app: t.arg.string({ required: false }), refs: t.arg.stringList({ required: false }), reason: t.arg.string(), force: t.arg.boolean({ required: false }) },
    resolve: async (query, _root, args, context) =>
      jobOf(context, query, await context.repos.requestDelete(context.actor, args.repo, { app: args.app ?? null, refs: args.refs ?? [], reason: args.reason, force: args.force ?? false })),
  }),
  pruneRepo: t.prismaField({
    type: 'Job',
    description:
      "Removes the objects no kept commit needs: `depth` parents behind each ref (0: only the ref's commit), commits younger than `keepYoungerThanDays` besides, what builds in progress borrow and each ref's latest rollback. Unset values come from the repo's `prune` config. The job's results say how many objects and bytes went (with `dryRun`, would go). In a repo with `oci`, OCI images go by the same policy (a tagged image is a ref's commit) and blobs no image uses are collected after an hour. Needs scope `prune` (or flat-manager's `tokenmanagement`)",
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: {
      repo: t.arg.string(),
      depth: t.arg.int({ required: false }),
      keepYoungerThanDays: t.arg.int({ required: false }),
      dryRun: t.arg.boolean({ required: false }),
    },
    resolve: async (query, _root, args, context) =>
      jobOf(
        context,
        query,
        await context.repos.requestPrune(context.actor, args.repo, {
          ...(args.depth != null && { depth: args.depth }),
          ...(args.keepYoungerThanDays != null && { keepYoungerThanDays: args.keepYoungerThanDays }),
          dryRun: args.dryRun ?? false,
        }),
      ),
  }),
  syncMirror: t.prismaField({
    type: 'Job',
    description:
      "Brings the repo's refs from one of its configured upstreams up to date now: pulled with every commit's signature checked against the upstream's key, copied in unchanged and signed by the repo's key too, then a repo update. Needs scope `mirror`",
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { repo: t.arg.string(), upstream: t.arg.string() },
    resolve: async (query, _root, args, context) => jobOf(context, query, await context.repos.requestMirrorSync(context.actor, args.repo, args.upstream)),
  }),
  exportRepo: t.prismaField({
    type: 'Job',
    description:
      "Refreshes the repo's export for downstream mirrors (rsync, a CDN's origin) now; every repo update does it by itself. Needs scope `mirror`",
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { repo: t.arg.string() },
    resolve: async (query, _root, args, context) => jobOf(context, query, await context.repos.requestExport(context.actor, args.repo)),
  }),
  rollbackRef: t.prismaField({
    type: 'Job',
    description: "Gives a ref an earlier commit's content as a new signed commit on top (clients move forward to it). Needs scope `rollback`",
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { repo: t.arg.string(), ref: t.arg.string(), to: t.arg.string({ description: 'A commit in the ref\'s history' }) },
    resolve: async (query, _root, args, context) => jobOf(context, query, await context.repos.requestRollback(context.actor, args.repo, { ref: args.ref, to: args.to })),
  }),
  lockApp: t.prismaField({
    type: 'Repo',
    description: "Stops builds of an app (and its extensions) from being published until it is unlocked; the reason is what a refused publish says. Needs scope `rollback`",
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { repo: t.arg.string(), app: t.arg.string(), reason: t.arg.string() },
    resolve: async (query, _root, args, context) => {
      await context.repos.setLock(context.actor, args.repo, args.app, args.reason)
      return context.prisma.repo.findUniqueOrThrow({ ...query, where: { name: args.repo } })
    },
  }),
  unlockApp: t.prismaField({
    type: 'Repo',
    description: 'Lets builds of a locked app be published again. Needs scope `rollback`',
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { repo: t.arg.string(), app: t.arg.string() },
    resolve: async (query, _root, args, context) => {
      await context.repos.setLock(context.actor, args.repo, args.app, null)
      return context.prisma.repo.findUniqueOrThrow({ ...query, where: { name: args.repo } })
    },
  }),
}))
