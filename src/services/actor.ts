import type { Claims } from '../domain/token/claims.ts'
import type { CommandMetadata } from '../domain/shared/messages.ts'
import { PermissionDeniedError } from '../domain/shared/errors.ts'

/** Who is calling: the verified claims (null when anonymous) and the request id. */
export type Actor = Readonly<{ claims: Claims | null; requestId: string | null; /** flatdepot's own part that acts (no token): the audit log's actor. */ systemName?: string }>

export const systemActor: Actor = { claims: null, requestId: null }

export function commandMetadata(actor: Actor, now = new Date()): CommandMetadata {
  return {
    now,
    actor: { name: actor.claims?.name ?? (actor.claims ? null : (actor.systemName ?? 'flatdepot')), jti: actor.claims?.jti ?? null },
    requestId: actor.requestId,
  }
}

export function requireClaims(actor: Actor): Claims {
  if (!actor.claims) throw new PermissionDeniedError('No token presented')
  return actor.claims
}

/** Turns a matcher's reason (null = allowed) into the error the API edges understand. */
export function allow(reason: string | null): void {
  if (reason !== null) throw new PermissionDeniedError(reason)
}
