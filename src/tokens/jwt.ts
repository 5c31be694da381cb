import { randomUUID } from 'node:crypto'
import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose'
import { jtiProblem, type Claims } from '../domain/token/claims.ts'

export type TokenErrorKind = 'missing' | 'malformed' | 'invalid' | 'expired' | 'revoked'

/** 401s: each kind has its own message, so a person can tell what to fix. */
export class TokenError extends Error {
  constructor(
    readonly kind: TokenErrorKind,
    message: string,
  ) {
    super(message)
  }
}

const stringList = (value: unknown, claim: string): string[] => {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new TokenError('invalid', `Invalid token claims: "${claim}" must be a list of strings`)
  }
  return value
}

const optionalString = (value: unknown, claim: string): string | null => {
  if (value === undefined || value === null) return null
  if (typeof value !== 'string') throw new TokenError('invalid', `Invalid token claims: "${claim}" must be a string`)
  return value
}

export function claimsFromPayload(payload: JWTPayload): Claims {
  if (typeof payload.sub !== 'string') throw new TokenError('invalid', 'Invalid token claims: "sub" is missing')
  if (typeof payload.exp !== 'number') throw new TokenError('invalid', 'Invalid token claims: "exp" is missing')
  const jti = optionalString(payload.jti, 'jti')
  const problem = jti === null ? null : jtiProblem(jti)
  if (problem) throw new TokenError('invalid', `Invalid token claims: "jti": ${problem}`)
  return {
    sub: payload.sub,
    exp: payload.exp,
    name: optionalString(payload.name, 'name'),
    jti,
    scope: stringList(payload.scope, 'scope'),
    prefixes: stringList(payload.prefixes, 'prefixes'),
    apps: stringList(payload.apps, 'apps'),
    repos: stringList(payload.repos, 'repos'),
    branches: stringList(payload.branches, 'branches'),
    tokenType: optionalString(payload.token_type, 'token_type'),
  }
}

/** The bearer value from an Authorization header, with flat-manager's messages. */
export function bearerToken(header: string, tokenPrefix: string | null): string {
  if (header.length < 8) throw new TokenError('malformed', 'Header length too short')
  const [scheme, value] = header.split(' ', 2)
  if (scheme !== 'Bearer') throw new TokenError('malformed', 'Token scheme is not Bearer')
  if (!value) throw new TokenError('malformed', 'No token value in header')
  return tokenPrefix && value.startsWith(tokenPrefix) ? value.slice(tokenPrefix.length) : value
}

/** HS256 only, `exp` required and checked with no leeway (algorithm pinned: no `none`, no RS/HS confusion). */
export async function verifyToken(token: string, secret: Uint8Array): Promise<Claims> {
  try {
    const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], requiredClaims: ['exp'] })
    return claimsFromPayload(payload)
  } catch (error) {
    if (error instanceof TokenError) throw error
    if (error instanceof errors.JWTExpired) throw new TokenError('expired', 'Token is expired')
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      throw new TokenError('invalid', 'Invalid token claims: signature does not match this server\'s secret')
    }
    if (error instanceof errors.JOSEAlgNotAllowed) {
      throw new TokenError('invalid', 'Invalid token claims: only HS256 tokens are accepted')
    }
    if (error instanceof errors.JWTClaimValidationFailed) {
      throw new TokenError('invalid', `Invalid token claims: ${error.message}`)
    }
    throw new TokenError('invalid', 'Invalid token claims: not a valid JWT')
  }
}

export type MintOptions = {
  name: string | null
  sub: string
  scope: readonly string[]
  prefixes: readonly string[]
  apps?: readonly string[]
  repos: readonly string[]
  branches?: readonly string[]
  tokenType?: string | null
  durationSecs: number
  jti?: string | null
  now?: Date
}

/** gentoken's claim set; a jti is always included so every token can be revoked. */
export async function mintToken(secret: Uint8Array, options: MintOptions): Promise<{ token: string; claims: Claims }> {
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000)
  const problem = options.jti == null ? null : jtiProblem(options.jti)
  if (problem) throw new Error(`cannot mint this token: ${problem}`)
  const claims: Claims = {
    sub: options.sub,
    exp: now + options.durationSecs,
    name: options.name,
    jti: options.jti ?? randomUUID(),
    scope: [...options.scope],
    prefixes: [...options.prefixes],
    apps: [...(options.apps ?? [])],
    repos: [...options.repos],
    branches: [...(options.branches ?? [])],
    tokenType: options.tokenType ?? null,
  }
  const token = await new SignJWT({
    name: claims.name,
    scope: claims.scope,
    prefixes: claims.prefixes,
    apps: claims.apps,
    repos: claims.repos,
    branches: claims.branches,
    token_type: claims.tokenType,
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setExpirationTime(claims.exp)
    .setJti(claims.jti!)
    .sign(secret)
  return { token, claims }
}
