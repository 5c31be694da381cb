import { InvalidInputError, PermissionDeniedError } from '../domain/shared/errors.ts'
import { checkClaims } from '../domain/token/claims.ts'
import type { Prisma, PrismaClient } from '../generated/prisma/client.ts'
import { allow, requireClaims, type Actor } from './actor.ts'

export type AuditFilter = {
  repo?: string | null
  buildId?: number | null
  appId?: string | null
  tokenName?: string | null
  type?: string | null
  since?: Date | null
  until?: Date | null
  /** Events before this position (a page's `nextBefore`), newest first. */
  before?: string | null
  first?: number | null
}

export type AuditEntry = {
  position: string
  streamId: string
  type: string
  data: unknown
  actorName: string | null
  actorJti: string | null
  requestId: string | null
  at: Date
}

const pageLimit = 200

/**
 * The audit log: the event log itself, read newest first, as "who did what, when". Needs the
 * `audit` scope; a token limited to some repos must name one of them (the log of a repo is its
 * stream, its builds' streams and their jobs').
 */
export function createAuditService({ prisma }: { prisma: PrismaClient }) {
  async function streamsOf(filter: AuditFilter): Promise<string[] | null> {
    const sets: string[][] = []
    if (filter.repo) {
      const builds = await prisma.build.findMany({ where: { repoName: filter.repo }, select: { id: true } })
      const jobs = await prisma.job.findMany({ where: { OR: [{ repoName: filter.repo }, { buildId: { in: builds.map((build) => build.id) } }] }, select: { id: true } })
      sets.push([`repo-${filter.repo}`, ...builds.map((build) => `build-${build.id}`), ...jobs.map((job) => `job-${job.id}`)])
    }
    if (filter.buildId != null) {
      const jobs = await prisma.job.findMany({ where: { buildId: filter.buildId }, select: { id: true } })
      sets.push([`build-${filter.buildId}`, ...jobs.map((job) => `job-${job.id}`)])
    }
    if (filter.appId) {
      const builds = await prisma.build.findMany({ where: { appId: filter.appId }, select: { id: true } })
      sets.push(builds.map((build) => `build-${build.id}`))
    }
    if (sets.length === 0) return null
    return sets.reduce((kept, set) => kept.filter((id) => set.includes(id)))
  }

  return {
    async read(actor: Actor, filter: AuditFilter): Promise<{ entries: AuditEntry[]; nextBefore: string | null }> {
      const claims = requireClaims(actor)
      allow(checkClaims(claims, 'build', 'audit'))
      if (!claims.repos.includes('')) {
        if (!filter.repo) throw new PermissionDeniedError(`This token covers only the repos ${claims.repos.join(', ')}: name one with "repo"`)
        if (!claims.repos.includes(filter.repo)) throw new PermissionDeniedError('Not matching repo in token')
      }
      let before: bigint | null = null
      if (filter.before) {
        if (!/^\d{1,19}$/.test(filter.before)) throw new InvalidInputError('"before" is a position from a previous page', 'before')
        before = BigInt(filter.before)
      }
      const first = Math.min(Math.max(filter.first ?? 50, 1), pageLimit)
      const streams = await streamsOf(filter)
      const appEvents: Prisma.EventWhereInput | null = filter.appId ? { data: { path: ['app'], equals: filter.appId } } : null
      const where: Prisma.EventWhereInput = {
        ...(before !== null ? { globalPosition: { lt: before } } : {}),
        ...(filter.type ? { type: filter.type } : {}),
        ...(filter.tokenName ? { metadata: { path: ['actor', 'name'], equals: filter.tokenName } } : {}),
        ...(filter.since || filter.until ? { recordedAt: { ...(filter.since ? { gte: filter.since } : {}), ...(filter.until ? { lte: filter.until } : {}) } } : {}),
        ...(streams !== null ? { OR: [{ streamId: { in: streams } }, ...(appEvents ? [appEvents] : [])] } : {}),
      }
      const rows = await prisma.event.findMany({
        where,
        orderBy: { globalPosition: 'desc' },
        take: first + 1,
        select: { globalPosition: true, streamId: true, type: true, data: true, metadata: true, recordedAt: true },
      })
      const page = rows.slice(0, first)
      const entries = page.map((row) => {
        const metadata = (row.metadata ?? {}) as { actor?: { name?: string | null; jti?: string | null }; requestId?: string | null }
        return {
          position: row.globalPosition.toString(),
          streamId: row.streamId,
          type: row.type,
          data: row.data,
          actorName: metadata.actor?.name ?? null,
          actorJti: metadata.actor?.jti ?? null,
          requestId: metadata.requestId ?? null,
          at: row.recordedAt,
        }
      })
      return { entries, nextBefore: rows.length > first ? (entries.at(-1)?.position ?? null) : null }
    },
  }
}

export type AuditService = ReturnType<typeof createAuditService>
