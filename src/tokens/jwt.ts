import { randomUUID } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { decodeProtectedHeader, errors, jwtVerify, SignJWT, type JWTPayload } from 'jose'
import { publicAlgs, type KeySet, type PublicAlg, type VerifyKey } from './keys.ts'
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

/**
 * What may verify a token: the shared secret for HS256 (null when such tokens are switched off)
 * and the public keys, each bound to its one algorithm and found by the token's `kid`. Headers
 * that point elsewhere for a key (`jku`, `x5u`, `jwk`, `x5c`) are never followed.
 */
export type Verifier = Readonly<{
  secret: Uint8Array | null
  /** Why HS256 is refused when `secret` is null. */
  secretOff?: string
  keys: KeySet | null
}>

const acceptedAlgs = 'HS256 (the shared secret), EdDSA, ES256 and RS256 (a configured key)'

function invalid(message: string): TokenError {
  return new TokenError('invalid', `Invalid token claims: ${message}`)
}

/**
 * The shared secret as a WebCrypto key, imported once per secret: jose imports a raw secret
 * again for every token it verifies, which cost ~30–100 µs of each verification (measured with
 * jose 6 on Node 20: 43–49 µs a token with the key, 75–150 µs with the bytes).
 */
const secretKeys = new WeakMap<Uint8Array, Promise<CryptoKey>>()
function secretKey(secret: Uint8Array): Promise<CryptoKey> {
  let key = secretKeys.get(secret)
  if (!key) {
    key = crypto.subtle.importKey('raw', new Uint8Array(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
    secretKeys.set(secret, key)
    key.catch(() => secretKeys.delete(secret)) // refused (an empty secret): asked again, and refused again, each time
  }
  return key
}

/** The key that verifies this token, chosen by its header; every refusal says why. */
async function verificationKey(token: string, verifier: Verifier): Promise<{ key: CryptoKey | VerifyKey['key']; alg: string }> {
  let header: ReturnType<typeof decodeProtectedHeader>
  try {
    header = decodeProtectedHeader(token)
  } catch {
    throw invalid('not a valid JWT')
  }
  const alg = header.alg
  const kid = typeof header.kid === 'string' ? header.kid : null
  if (header.kid !== undefined && kid === null) throw invalid('"kid" must be a string')
  if (alg === 'HS256') {
    const named = kid === null ? undefined : verifier.keys?.get(kid)
    // A public key's bytes used as an HMAC secret: the classic confusion, refused by name.
    if (named) throw invalid(`the token names key "${kid}", a ${named.alg} public key, but is signed HS256: a key verifies only its own algorithm`)
    if (!verifier.secret) throw invalid(verifier.secretOff ?? 'tokens signed with the shared secret are not accepted here')
    return { key: await secretKey(verifier.secret), alg }
  }
  if (typeof alg === 'string' && (publicAlgs as readonly string[]).includes(alg)) {
    if (!verifier.keys || (verifier.keys.size === 0 && !verifier.keys.jwksSource)) throw invalid(`${alg} tokens need a configured public key, and this server has none`)
    if (kid === null) throw invalid(`a token signed ${alg} must name its key ("kid" in its header)`)
    const key = await verifier.keys.find(kid)
    if (!key) throw invalid(`unknown key id "${kid}": not among token-keys or the JWKS (rotated out?)`)
    if (key.alg !== alg) throw invalid(`the token is signed ${alg}, but key "${kid}" is a ${key.alg} key: a key verifies only its own algorithm`)
    if (key.expires && key.expires.getTime() <= Date.now()) throw invalid(`key "${kid}" expired at ${key.expires.toISOString()}: ask for a token signed by a current key`)
    return { key: key.key, alg }
  }
  if (alg === 'none') throw invalid('unsigned tokens (alg "none") are never accepted')
  throw invalid(`algorithm ${JSON.stringify(alg)} is not accepted: flatdepot takes ${acceptedAlgs}`)
}

/**
 * Tokens whose signature this process has checked, by the token's exact text, with the key that
 * checked it: a browser's connection and each of its operations, a build bot's many upload
 * requests, present the same token again and again, and each signature check was a WebCrypto job
 * on the thread pool (a quarter of the API's busy time while a thousand browsers connected). What
 * is kept is only that these bytes verify under that key object: the header and its key are
 * resolved again on every use (a rotated-out, expired or replaced key misses), and `exp` and `nbf`
 * are checked again against the clock. fast-jwt's verifier offers the same cache. Oldest first
 * out past `verifiedMemoSize`.
 */
const verifiedMemoSize = 4096
const verified = new Map<string, { key: unknown; claims: Claims; nbf: number | null }>()

function remembered(token: string, key: unknown): Claims | null {
  const entry = verified.get(token)
  if (!entry || entry.key !== key) return null
  const now = Math.floor(Date.now() / 1000)
  if (entry.claims.exp <= now) throw new TokenError('expired', 'Token is expired')
  if (entry.nbf !== null && entry.nbf > now) throw invalid('"nbf" claim timestamp check failed')
  return entry.claims
}

/** Verifies signature and `exp` (required, no leeway), then reads flat-manager's claims. */
export async function verifyToken(token: string, verifier: Verifier | Uint8Array): Promise<Claims> {
  const using: Verifier = verifier instanceof Uint8Array ? { secret: verifier, keys: null } : verifier
  const { key, alg } = await verificationKey(token, using)
  const known = remembered(token, key)
  if (known) return known
  try {
    const { payload } = await jwtVerify(token, key, { algorithms: [alg], requiredClaims: ['exp'] })
    const claims = claimsFromPayload(payload)
    if (verified.size >= verifiedMemoSize) verified.delete(verified.keys().next().value!)
    verified.set(token, { key, claims, nbf: typeof payload.nbf === 'number' ? payload.nbf : null })
    return claims
  } catch (error) {
    if (error instanceof TokenError) throw error
    if (error instanceof errors.JWTExpired) throw new TokenError('expired', 'Token is expired')
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      throw invalid(alg === 'HS256' ? "signature does not match this server's secret" : 'signature does not match the key the token names')
    }
    if (error instanceof errors.JWTClaimValidationFailed) throw invalid(error.message)
    if (error instanceof errors.JOSENotSupported || error instanceof errors.JWSInvalid) throw invalid(`not a token flatdepot can check (${error.message})`)
    throw invalid('not a valid JWT')
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

/** What signs a minted token: the shared secret (HS256), or a private key with its id and algorithm. */
export type Signer = Uint8Array | Readonly<{ key: KeyObject; alg: PublicAlg; kid: string }>

/** gentoken's claim set; a jti is always included so every token can be revoked. */
export async function mintToken(signer: Signer, options: MintOptions): Promise<{ token: string; claims: Claims }> {
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
    .setProtectedHeader(signer instanceof Uint8Array ? { alg: 'HS256', typ: 'JWT' } : { alg: signer.alg, typ: 'JWT', kid: signer.kid })
    .setSubject(claims.sub)
    .setExpirationTime(claims.exp)
    .setJti(claims.jti!)
    .sign(signer instanceof Uint8Array ? signer : signer.key)
  return { token, claims }
}
