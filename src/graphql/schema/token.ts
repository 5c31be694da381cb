import { PermissionDeniedError } from '../../domain/shared/errors.ts'
import { builder } from '../builder.ts'
import { mutationErrors } from './errors.ts'

builder.prismaObject('Token', {
  description: 'What flatdepot knows of a token it minted or has seen: its claims, use and revocation',
  fields: (t) => ({
    jti: t.exposeString('jti'),
    name: t.exposeString('name', { nullable: true }),
    sub: t.exposeString('sub', { nullable: true }),
    scope: t.exposeStringList('scope'),
    repos: t.exposeStringList('repos'),
    prefixes: t.exposeStringList('prefixes'),
    apps: t.exposeStringList('apps'),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    issuedAt: t.expose('issuedAt', { type: 'DateTime', nullable: true }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    lastUsedAt: t.field({
      type: 'DateTime',
      nullable: true,
      resolve: async (token, _args, context) =>
        (await context.prisma.tokenUsage.findUnique({ where: { jti: token.jti } }))?.lastUsed ?? null,
    }),
  }),
})

builder.queryFields((t) => ({
  tokens: t.prismaField({
    type: ['Token'],
    description: 'Known tokens (needs sub "" and scope `tokenmanagement`)',
    authScopes: { token: true },
    errors: { types: [PermissionDeniedError] },
    args: { jtis: t.arg.stringList({ required: false }) },
    resolve: (query, _root, args, context) => {
      context.tokens.requireTokenManagement(context.actor)
      return context.prisma.token.findMany({
        ...query,
        where: args.jtis ? { jti: { in: args.jtis } } : {},
        orderBy: { jti: 'asc' },
      })
    },
  }),
}))

builder.mutationFields((t) => ({
  revokeTokens: t.prismaField({
    type: ['Token'],
    description: 'Revokes tokens by jti, at once for every process (needs sub "" and `tokenmanagement`)',
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { jtis: t.arg.stringList() },
    resolve: async (query, _root, args, context) => {
      await context.tokens.revoke(context.actor, args.jtis)
      return context.prisma.token.findMany({ ...query, where: { jti: { in: args.jtis } }, orderBy: { jti: 'asc' } })
    },
  }),
}))
