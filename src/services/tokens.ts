import { checkClaims, jtiProblem, subsetProblem, type Claims, type SubsetRequest } from '../domain/token/claims.ts'
import { ConflictError, InvalidInputError } from '../domain/shared/errors.ts'
import { tokenDecider, tokenStreamId } from '../domain/token/token.ts'
import { batchedRows } from '../db/batchedRows.ts'
import type { Database } from '../db/database.ts'
import { sql } from '../db/sql.ts'
import type { CommandRunner } from '../eventStore/unitOfWork.ts'
import type { PrismaClient } from '../generated/prisma/client.ts'
import type { Logger } from '../log.ts'
import { bearerToken, mintToken, TokenError, verifyToken, type Verifier } from '../tokens/jwt.ts'
import type { KeySet } from '../tokens/keys.ts'
import { allow, commandMetadata, requireClaims, type Actor } from './actor.ts'

const usageWriteInterval = 60_000
/** One revocation call is one transaction: bounded, so it cannot hold the event log for long. */
export const maxRevokedAtOnce = 1000

export type TokenServiceDeps = {
  prisma: PrismaClient
  /** The revocation check of every authenticated request, on the driver's connection. */
  query: Database['query']
  run: CommandRunner
  secret: Uint8Array
  /** Verifies download tokens (/repo) with HS256 instead of `secret` (flat-manager's repo-secret). */
  repoSecret?: Uint8Array | null
  /** false: HS256 tokens signed with `secret` are refused (key-signed tokens only). */
  acceptSecretTokens?: boolean
  keys?: KeySet | null
  tokenPrefix: string | null
  log: Logger
}

const secretOff = 'tokens signed with the shared secret are switched off here ("accept-secret-tokens": false): use a token signed by a configured key'

export function createTokenService({ prisma, query, run, secret, repoSecret = null, acceptSecretTokens = true, keys = null, tokenPrefix, log }: TokenServiceDeps) {
  const apiVerifier: Verifier = { secret: acceptSecretTokens ? secret : null, secretOff, keys }
  // Download tokens: repo-secret when set (a store's authenticator holds only that), else the API's.
  const downloadVerifier: Verifier = repoSecret ? { secret: repoSecret, keys } : apiVerifier
  const known = new Set<string>()
  const usageWrittenAt = new Map<string, number>()

  async function register(claims: Claims, requestId: string | null): Promise<void> {
    const jti = claims.jti
    if (!jti || known.has(jti)) return
    await run(commandMetadata({ claims, requestId }), (unit) =>
      unit.decide(tokenDecider, tokenStreamId(jti), 'token', {
        type: 'RegisterToken',
        data: {
          jti,
          name: claims.name,
          sub: claims.sub,
          scope: claims.scope,
          repos: claims.repos,
          prefixes: claims.prefixes,
          apps: claims.apps,
          expiresAt: new Date(claims.exp * 1000).toISOString(),
        },
      }),
    )
    known.add(jti)
  }

  async function recordUse(jti: string, now: Date): Promise<void> {
    const last = usageWrittenAt.get(jti) ?? 0
    if (now.getTime() - last < usageWriteInterval) return
    usageWrittenAt.set(jti, now.getTime())
    await prisma.tokenUsage.upsert({
      where: { jti },
      create: { jti, firstUsed: now, lastUsed: now },
      update: { lastUsed: now },
    })
  }

  /**
   * Every authenticated request reads its token's row (revoked? registered?), after the request
   * arrived, so a revocation takes effect at once in every process. On the driver it took
   * 0.2–0.3 ms against 0.7–1.3 ms through Prisma's findUnique (session 12, by hand). The reads of
   * one turn of the event loop go as one query: a thousand browsers opening a build page at once
   * were three thousand reads queued on the pool, ahead of every other request's.
   */
  type TokenRow = { jti: string; revokedAt: Date | null; sub: string | null }
  const tokenRows = batchedRows(
    (jtis: string[]) => query<TokenRow>(sql`SELECT jti, revoked_at AS "revokedAt", sub FROM tokens WHERE jti = ANY(${jtis}::text[])`.prepare()),
    (row) => row.jti,
  )

  return {
    /**
     * Verifies an Authorization header: signature, expiry, then revocation by jti (on every
     * request, from the database, so a revocation takes effect at once in every process).
     * No header is anonymous (null); a bad one is a TokenError, never silently anonymous.
     */
    async authenticate(header: string | null | undefined, requestId: string | null, purpose: 'api' | 'download' = 'api'): Promise<Claims | null> {
      if (header === null || header === undefined || header === '') return null
      const claims = await verifyToken(bearerToken(header, tokenPrefix), purpose === 'download' ? downloadVerifier : apiVerifier)
      if (claims.jti) {
        const row = await tokenRows.load(claims.jti)
        if (row?.revokedAt) throw new TokenError('revoked', 'Token has been revoked')
        if (!row?.sub) await register(claims, requestId)
        else known.add(claims.jti)
        recordUse(claims.jti, new Date()).catch((error: unknown) => log.warn({ requestId, err: error }, 'could not record token use'))
      }
      return claims
    },

    async revoke(actor: Actor, jtis: readonly string[]): Promise<void> {
      const claims = requireClaims(actor)
      allow(checkClaims(claims, '', 'tokenmanagement'))
      if (jtis.length > maxRevokedAtOnce) {
        throw new InvalidInputError(`At most ${maxRevokedAtOnce} tokens can be revoked in one call (got ${jtis.length}): split the list`, 'jtis')
      }
      for (const jti of jtis) {
        const problem = jtiProblem(jti)
        if (problem) throw new InvalidInputError(`Cannot revoke ${JSON.stringify(jti.slice(0, 40))}${jti.length > 40 ? '…' : ''}: ${problem}`, 'jtis')
      }
      await run(commandMetadata(actor), async (unit) => {
        for (const jti of new Set(jtis)) {
          await unit.decide(tokenDecider, tokenStreamId(jti), 'token', { type: 'RevokeToken', data: { jti } })
        }
      })
    },

    /** flat-manager's token_subset: a narrower token, sharing the caller's jti (revoking the parent revokes it). */
    async subset(actor: Actor, request: SubsetRequest): Promise<{ token: string; claims: Claims }> {
      const parent = requireClaims(actor)
      allow(subsetProblem(parent, request, Math.floor(Date.now() / 1000)))
      if (!acceptSecretTokens) {
        throw new ConflictError('This server signs nothing itself ("accept-secret-tokens": false): ask the token service that signed your token for a narrower one')
      }
      return mintToken(secret, {
        name: `${parent.name ?? ''}/${request.name}`,
        sub: request.sub,
        scope: request.scope,
        prefixes: request.prefixes ?? parent.prefixes,
        apps: request.apps ?? parent.apps,
        repos: request.repos ?? parent.repos,
        branches: parent.branches,
        tokenType: parent.tokenType,
        durationSecs: Math.max(request.durationSecs, 0),
        jti: parent.jti,
      })
    },

    /** What is known of these tokens (flat-manager's tokens/get_list): expiry, last use, revocation; unknown ids are left out. */
    async list(actor: Actor, jtis: readonly string[]) {
      allow(checkClaims(requireClaims(actor), '', 'tokenmanagement'))
      const ids = [...new Set(jtis)].slice(0, maxRevokedAtOnce)
      const [rows, usage] = await Promise.all([
        prisma.token.findMany({ where: { jti: { in: ids } } }),
        prisma.tokenUsage.findMany({ where: { jti: { in: ids } } }),
      ])
      const lastUsed = new Map(usage.map((row) => [row.jti, row.lastUsed]))
      return rows.map((row) => ({ jti: row.jti, expiresAt: row.expiresAt, lastUsed: lastUsed.get(row.jti) ?? null, revokedAt: row.revokedAt }))
    },

    /**
     * The pages beside the API (/status, /metrics): open when the config says so, else a token
     * with the `jobs` scope (a bad token is a TokenError as anywhere else).
     */
    async requireJobsReader(header: string | undefined, requestId: string | null, page: { path: string; configKey: string; isPublic: boolean }): Promise<void> {
      if (page.isPublic) return
      const claims = await this.authenticate(header, requestId)
      allow(claims ? checkClaims(claims, 'build', 'jobs') : `No token presented: ${page.path} needs a token with the jobs scope (or "${page.configKey}": true in the config)`)
    },

    requireTokenManagement(actor: Actor): void {
      allow(checkClaims(requireClaims(actor), '', 'tokenmanagement'))
    },
  }
}

export type TokenService = ReturnType<typeof createTokenService>
