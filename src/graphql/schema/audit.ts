import { InvalidInputError, PermissionDeniedError } from '../../domain/shared/errors.ts'
import type { AuditEntry } from '../../services/audit.ts'
import { builder } from '../builder.ts'

const AuditEvent = builder.objectRef<AuditEntry>('AuditEvent').implement({
  description: 'One fact in the event log: what happened, to which stream, who caused it, in which request, when',
  fields: (t) => ({
    position: t.exposeString('position', { description: 'Its place in the whole log (newer is larger)' }),
    streamId: t.exposeString('streamId', { description: 'What it happened to: build-<id>, job-<id>, repo-<name>, token-<jti>' }),
    type: t.exposeString('type'),
    data: t.expose('data', { type: 'JSON' }),
    actorName: t.exposeString('actorName', { nullable: true, description: "The token's name (flatdepot itself for its own decisions)" }),
    actorJti: t.exposeString('actorJti', { nullable: true }),
    requestId: t.exposeString('requestId', { nullable: true }),
    at: t.expose('at', { type: 'DateTime' }),
  }),
})

const AuditPage = builder.objectRef<{ entries: AuditEntry[]; nextBefore: string | null }>('AuditPage').implement({
  fields: (t) => ({
    events: t.field({ type: [AuditEvent], resolve: (page) => page.entries }),
    nextBefore: t.exposeString('nextBefore', { nullable: true, description: 'Pass as `before` for the next (older) page; null at the start of the log' }),
  }),
})

builder.queryFields((t) => ({
  auditLog: t.field({
    type: AuditPage,
    description:
      'Who did what, when: the event log newest first, filtered by repo, build, app id, token name, event type and time (needs the `audit` scope)',
    authScopes: { token: true },
    errors: { types: [PermissionDeniedError, InvalidInputError] },
    args: {
      repo: t.arg.string({ required: false }),
      buildId: t.arg.int({ required: false }),
      appId: t.arg.string({ required: false }),
      tokenName: t.arg.string({ required: false }),
      type: t.arg.string({ required: false }),
      since: t.arg({ type: 'DateTime', required: false }),
      until: t.arg({ type: 'DateTime', required: false }),
      before: t.arg.string({ required: false }),
      first: t.arg.int({ required: false, defaultValue: 50 }),
    },
    resolve: (_root, args, context) => context.audit.read(context.actor, args),
  }),
}))
