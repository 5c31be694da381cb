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
