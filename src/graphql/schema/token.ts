import { PermissionDeniedError } from '../../domain/shared/errors.ts'
import type { Claims } from '../../domain/token/claims.ts'
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

/** A token just minted: the JWT (shown once, never stored) and the claims it carries. */
const MintedToken = builder.objectRef<{ token: string; claims: Claims }>('MintedToken').implement({
  description: 'A token just minted: the JWT itself (flatdepot keeps only its claims) and what it allows',
  fields: (t) => ({
    token: t.exposeString('token'),
    jti: t.string({ nullable: true, resolve: ({ claims }) => claims.jti }),
    name: t.string({ nullable: true, resolve: ({ claims }) => claims.name }),
    sub: t.string({ resolve: ({ claims }) => claims.sub }),
    scope: t.stringList({ resolve: ({ claims }) => [...claims.scope] }),
    prefixes: t.stringList({ resolve: ({ claims }) => [...claims.prefixes] }),
    apps: t.stringList({ resolve: ({ claims }) => [...claims.apps] }),
    repos: t.stringList({ resolve: ({ claims }) => [...claims.repos] }),
    expiresAt: t.field({ type: 'DateTime', resolve: ({ claims }) => new Date(claims.exp * 1000) }),
  }),
})

const SubsetTokenInput = builder.inputType('SubsetTokenInput', {
  description: "What the narrower token may do: each list no wider than the caller's, its life no longer",
  fields: (t) => ({
    name: t.string({ required: true, description: 'Appended to the caller\'s name: "<caller>/<name>"' }),
    sub: t.string({ required: true, description: 'The caller\'s sub or one under it ("build" → "build/12")' }),
    scope: t.stringList({ required: true }),
    durationSecs: t.int({ required: true }),
    prefixes: t.stringList({ required: false, description: "Default: the caller's" }),
    apps: t.stringList({ required: false, description: "Default: the caller's" }),
    repos: t.stringList({ required: false, description: "Default: the caller's" }),
  }),
})

builder.queryFields((t) => ({
  tokens: t.prismaField({
    type: ['Token'],
    description: 'Known tokens, newest first (needs sub "" and scope `tokenmanagement`): by jti, name (part of it), revoked or not, expired or not',
    authScopes: { token: true },
    errors: { types: [PermissionDeniedError] },
    args: {
      jtis: t.arg.stringList({ required: false }),
      nameContains: t.arg.string({ required: false }),
      revoked: t.arg.boolean({ required: false }),
      expired: t.arg.boolean({ required: false }),
      first: t.arg.int({ required: false, description: 'At most 500; default 100' }),
    },
    resolve: (query, _root, args, context) => {
      context.tokens.requireTokenManagement(context.actor)
      const now = new Date()
      return context.prisma.token.findMany({
        ...query,
        where: {
          ...(args.jtis && { jti: { in: args.jtis } }),
          ...(args.nameContains && { name: { contains: args.nameContains } }),
          ...(args.revoked != null && { revokedAt: args.revoked ? { not: null } : null }),
          ...(args.expired != null && { expiresAt: args.expired ? { lte: now } : { gt: now } }),
        },
        orderBy: [{ issuedAt: { sort: 'desc', nulls: 'last' } }, { jti: 'asc' }],
        take: Math.min(Math.max(args.first ?? 100, 1), 500),
      })
    },
  }),
}))

builder.mutationFields((t) => ({
  subsetToken: t.field({
    type: MintedToken,
    description:
      "Mints a narrower token from the caller's own (flat-manager's token_subset): sub, scopes, prefixes, apps, repos and lifetime can only shrink. It shares the caller's jti, so revoking the caller's token revokes it too. Any valid token may ask",
    authScopes: { token: true },
    errors: { types: mutationErrors },
    args: { input: t.arg({ type: SubsetTokenInput, required: true }) },
    resolve: (_root, { input }, context) =>
      context.tokens.subset(context.actor, {
        name: input.name,
        sub: input.sub,
        scope: input.scope,
        durationSecs: input.durationSecs,
        prefixes: input.prefixes ?? undefined,
        apps: input.apps ?? undefined,
        repos: input.repos ?? undefined,
      }),
  }),
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
