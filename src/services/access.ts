import type { Build, Job, Prisma } from '../generated/prisma/client.ts'
import {
  checkBuildAccess,
  checkClaims,
  checkScope,
  checkSub,
  type Claims,
  type Scope,
} from '../domain/token/claims.ts'

/** Scopes that may read a build and its refs, checks and jobs. */
export const buildReadScopes: readonly Scope[] = ['build', 'upload', 'download', 'publish']

export const buildAccessReason = (claims: Claims, build: Pick<Build, 'id' | 'repoName' | 'appId'>, scopes: readonly Scope[]) =>
  checkBuildAccess(claims, { id: build.id, repo: build.repoName, appId: build.appId }, scopes)

/** The builds a token may list, as a filter, so pagination counts only what it can see. */
export function visibleBuildsFilter(claims: Claims): Prisma.BuildWhereInput | null {
  if (checkSub(claims, 'build') !== null) {
    // A build/N token sees build N only.
    const match = /^build\/(\d+)$/.exec(claims.sub)
    if (!match) return null
    if (!buildReadScopes.some((scope) => checkScope(claims, scope) === null)) return null
    return { id: Number(match[1]), ...repoAndAppFilter(claims) }
  }
  if (!buildReadScopes.some((scope) => checkScope(claims, scope) === null)) return null
  return repoAndAppFilter(claims)
}

function repoAndAppFilter(claims: Claims): Prisma.BuildWhereInput {
  const repos = claims.repos.includes('') ? {} : { repoName: { in: [...claims.repos] } }
  if (claims.prefixes.length === 0 || claims.prefixes.includes('')) return repos
  const appMatches: Prisma.BuildWhereInput[] = [
    { appId: null },
    { appId: { in: [...claims.prefixes, ...claims.apps] } },
    ...claims.prefixes.map((prefix) => ({ appId: { startsWith: `${prefix}.` } })),
  ]
  return { ...repos, OR: appMatches }
}

/** A job is readable with the `jobs` scope, or through the build it belongs to. */
export function jobAccessReason(claims: Claims, job: Pick<Job, 'buildId'>, build: Pick<Build, 'id' | 'repoName' | 'appId'> | null): string | null {
  const anyJob = checkClaims(claims, 'build', 'jobs')
  if (anyJob === null) return null
  if (build) return buildAccessReason(claims, build, buildReadScopes)
  return anyJob
}
