/**
 * flat-manager's token claims and matching rules (common/src/tokens.rs, src/tokens.rs), pure.
 * Every rule here has a row in test/unit/claims.unit.test.ts.
 */
export const scopes = {
  jobs: 'read any job',
  build: 'create, list and purge builds, read their jobs, commit',
  upload: 'upload objects and create refs in a build',
  publish: 'publish a build',
  generate: 'upload static deltas',
  download: 'list builds and download private build repos',
  republish: 'republish an app',
  reviewcheck: 'change the status of any check',
  tokenmanagement: 'list and revoke tokens, prune repos',
  audit: "read the audit log (who did what, when) of the token's repos",
  delete: 'delete apps and refs from a repo',
  rollback: 'roll an app back to an earlier commit, lock and unlock it',
  prune: 'prune repos, or dry-run a prune to see what it would remove',
  mirror: "sync a repo's upstream mirrors, and refresh its export for downstream mirrors, on demand",
} as const
export type Scope = keyof typeof scopes
export const scopeNames = Object.keys(scopes) as Scope[]
export const isScope = (name: string): name is Scope => Object.hasOwn(scopes, name)

/**
 * A jti names a revocation stream and goes into notifications and indexes: bounded, printable.
 * flat-manager mints UUIDs; 128 characters leaves room for any id scheme a token service uses.
 */
export const maxJtiLength = 128
const jtiPattern = /^[\x21-\x7e]+$/

/** Why a jti cannot be used, or null when it can. */
export function jtiProblem(jti: string): string | null {
  if (jti.length === 0) return 'a jti must not be empty'
  if (jti.length > maxJtiLength) return `a jti is at most ${maxJtiLength} characters (got ${jti.length})`
  if (!jtiPattern.test(jti)) return 'a jti is printable ASCII without spaces'
  return null
}

export type Claims = Readonly<{
  sub: string
  exp: number
  name: string | null
  jti: string | null
  /** Unknown scope names are kept as strings and never match (flat-manager's `Unknown`). */
  scope: readonly string[]
  prefixes: readonly string[]
  apps: readonly string[]
  repos: readonly string[]
  branches: readonly string[]
  tokenType: string | null
}>

/** `claimed` must be a path prefix of `required`: "build" covers "build" and "build/5". */
export function subHasPrefix(required: string, claimed: string): boolean {
  if (!required.startsWith(claimed)) return false
  const rest = required.slice(claimed.length)
  return rest === '' || rest.startsWith('/')
}

/** Dot-boundary prefix: "org.foo" covers "org.foo" and "org.foo.Bar", not "org.foobar". */
export function idMatchesPrefix(id: string, prefix: string): boolean {
  return prefix === '' || id === prefix || id.startsWith(`${prefix}.`)
}

export const idMatchesOnePrefix = (id: string, prefixes: readonly string[]) =>
  prefixes.some((prefix) => idMatchesPrefix(id, prefix))

/** null when allowed, else the reason flat-manager gives. */
export function checkSub(claims: Claims, required: string): string | null {
  return subHasPrefix(required, claims.sub) ? null : `Not matching sub '${required}' in token`
}

export function checkScope(claims: Claims, scope: Scope): string | null {
  return claims.scope.includes(scope) ? null : `Not matching scope '${scope}' in token`
}

/** `prefixes: []` allows every id; otherwise a prefix or an exact `apps` entry must match. */
export function checkAppId(claims: Claims, id: string): string | null {
  if (claims.prefixes.length === 0) return null
  if (idMatchesOnePrefix(id, claims.prefixes) || claims.apps.includes(id)) return null
  return `Id ${id} not matching prefix in token`
}

/** `repos: [""]` allows every repo; `repos: []` allows none. */
export function checkRepo(claims: Claims, repo: string): string | null {
  return claims.repos.some((claimed) => claimed === '' || claimed === repo) ? null : 'Not matching repo in token'
}

/** A token with no prefixes, or an empty prefix, may act on builds of any app. */
export const isGlobalForApps = (claims: Claims) => claims.prefixes.length === 0 || claims.prefixes.includes('')

/** sub + scope, the `has_token_claims` check every endpoint starts with. */
export function checkClaims(claims: Claims, requiredSub: string, scope: Scope): string | null {
  return checkSub(claims, requiredSub) ?? checkScope(claims, scope)
}

/** sub + any one of the scopes; the reason given is the last scope's, as in flat-manager. */
export function checkClaimsAny(claims: Claims, requiredSub: string, anyOf: readonly Scope[]): string | null {
  let reason: string | null = 'No scope required'
  for (const scope of anyOf) {
    reason = checkClaims(claims, requiredSub, scope)
    if (reason === null) return null
  }
  return reason
}

/** What `lookup_authorized_build` checks once the build is loaded: any of the scopes, repo, app. */
export function checkBuildAccess(
  claims: Claims,
  build: { id: number; repo: string; appId: string | null },
  anyOf: readonly Scope[],
): string | null {
  const reason = checkClaimsAny(claims, `build/${build.id}`, anyOf)
  if (reason !== null) return reason
  if (checkRepo(claims, build.repo) !== null) return 'Not matching repo in token'
  if (build.appId !== null && checkAppId(claims, build.appId) !== null) {
    return "Build's app ID not matching prefix in token"
  }
  return null
}

/** What `POST /api/v1/token_subset` asks for. */
export type SubsetRequest = Readonly<{
  sub: string
  scope: readonly string[]
  durationSecs: number
  name: string
  prefixes?: readonly string[] | undefined
  apps?: readonly string[] | undefined
  repos?: readonly string[] | undefined
}>

/**
 * flat-manager's token_subset: a token may mint a token that can do no more than itself and
 * expires no later. null when allowed, else the reason (flat-manager always says "No token
 * presented"; the real reason is more use to the caller).
 */
export function subsetProblem(parent: Claims, request: SubsetRequest, nowSecs: number): string | null {
  if (nowSecs + Math.max(request.durationSecs, 0) > parent.exp) return 'The new token would expire after the token that asks for it'
  if (!subHasPrefix(request.sub, parent.sub)) return `Not matching sub '${request.sub}' in token`
  for (const scope of request.scope) if (!parent.scope.includes(scope)) return `Not matching scope '${scope}' in token`
  for (const prefix of request.prefixes ?? []) if (!idMatchesOnePrefix(prefix, parent.prefixes)) return `Prefix ${prefix} not matching prefix in token`
  for (const app of request.apps ?? []) if (!parent.apps.includes(app)) return `App ${app} not matching apps in token`
  for (const repo of request.repos ?? []) if (!parent.repos.some((claimed) => claimed === '' || claimed === repo)) return `Repo ${repo} not matching repo in token`
  return null
}
