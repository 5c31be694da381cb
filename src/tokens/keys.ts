import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { importJWK, type JWK } from 'jose'
import type { Config } from '../config/config.ts'
import type { Logger } from '../log.ts'

/** The public-key algorithms a token may be signed with; each key is bound to exactly one. */
export type PublicAlg = 'EdDSA' | 'ES256' | 'RS256'
export const publicAlgs: readonly PublicAlg[] = ['EdDSA', 'ES256', 'RS256']

export type VerifyKey = Readonly<{ kid: string; alg: PublicAlg; key: KeyObject | CryptoKey; expires: Date | null; source: string }>

export class KeyError extends Error {}

const supported = 'flatdepot verifies Ed25519 (EdDSA), P-256 (ES256) and RSA of 2048 bits or more (RS256)'

/** The one algorithm a key can verify, from what the key is; a declared algorithm must agree. */
function algOfKeyObject(key: KeyObject, where: string): PublicAlg {
  const type = key.asymmetricKeyType
  const details = key.asymmetricKeyDetails ?? {}
  if (type === 'ed25519') return 'EdDSA'
  if (type === 'ec' && details.namedCurve === 'prime256v1') return 'ES256'
  if (type === 'rsa') {
    if ((details.modulusLength ?? 0) < 2048) throw new KeyError(`${where}: an RSA key of ${details.modulusLength} bits is too weak (${supported})`)
    return 'RS256'
  }
  const what = type === 'ec' ? `EC ${details.namedCurve}` : String(type)
  throw new KeyError(`${where}: unsupported key type (${what}): ${supported}`)
}

function checkDeclared(actual: PublicAlg, declared: string | null | undefined, where: string): void {
  if (declared && declared !== actual) throw new KeyError(`${where}: declared "${declared}", but the key is a ${actual} key`)
}

/** A public key from a JWK: no symmetric keys, no private halves, its algorithm fixed by the key itself. */
export async function keyFromJwk(jwk: JWK & { exp?: unknown }, declared: PublicAlg | null, where: string): Promise<Omit<VerifyKey, 'kid' | 'expires' | 'source'>> {
  if (jwk.kty === 'oct') throw new KeyError(`${where}: a symmetric (oct) key cannot verify tokens here: only public keys are listed`)
  if ('d' in jwk || 'p' in jwk || 'k' in jwk) throw new KeyError(`${where}: holds a private key; list only the public key`)
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new KeyError(`${where}: "use" is "${jwk.use}", not "sig"`)
  const object = createPublicKey({ key: jwk as never, format: 'jwk' })
  const alg = algOfKeyObject(object, where)
  checkDeclared(alg, jwk.alg, where)
  checkDeclared(alg, declared, where)
  // jose checks the key against the algorithm once more as it imports it.
  const key = (await importJWK({ ...jwk, alg }, alg)) as CryptoKey | KeyObject
  return { alg, key }
}

/** A public key from a PEM (SPKI) file's text. */
export function keyFromPem(pem: string, declared: PublicAlg | null, where: string): Omit<VerifyKey, 'kid' | 'expires' | 'source'> {
  if (/PRIVATE KEY/.test(pem)) throw new KeyError(`${where}: holds a private key; give the server only the public key (openssl pkey -pubout)`)
  let key: KeyObject
  try {
    key = createPublicKey(pem)
  } catch (error) {
    throw new KeyError(`${where}: not a PEM public key (${(error as Error).message})`)
  }
  const alg = algOfKeyObject(key, where)
  checkDeclared(alg, declared, where)
  return { alg, key }
}

/** A key file: PEM, or one JWK as JSON. */
async function loadKeyFile(entry: Config['tokenKeys'][number]): Promise<VerifyKey> {
  const where = `token-keys "${entry.kid}" (${entry.file})`
  let text: string
  try {
    text = await readFile(entry.file, 'utf8')
  } catch (error) {
    throw new KeyError(`${where}: cannot read it (${(error as Error).message})`)
  }
  const trimmed = text.trim()
  let parsed: Omit<VerifyKey, 'kid' | 'expires' | 'source'>
  if (trimmed.startsWith('{')) {
    let jwk: JWK
    try {
      jwk = JSON.parse(trimmed) as JWK
    } catch (error) {
      throw new KeyError(`${where}: not valid JSON (${(error as Error).message})`)
    }
    if (jwk.kid !== undefined && jwk.kid !== entry.kid) throw new KeyError(`${where}: the JWK says kid "${jwk.kid}"`)
    parsed = await keyFromJwk(jwk, entry.alg, where)
  } else {
    parsed = keyFromPem(trimmed, entry.alg, where)
  }
  return { ...parsed, kid: entry.kid, expires: entry.expires, source: entry.file }
}

/**
 * A JWKS document's keys. Every key needs a `kid`, unique here and not one of the configured
 * keys'; a key may say when it expires (`exp`, seconds since the epoch, flatdepot's own member).
 * Any bad key refuses the whole document: a half-read key set is a surprise during rotation.
 */
export async function keysFromJwks(text: string, where: string, taken: ReadonlySet<string>): Promise<Map<string, VerifyKey>> {
  let document: { keys?: unknown }
  try {
    document = JSON.parse(text) as { keys?: unknown }
  } catch (error) {
    throw new KeyError(`${where}: not valid JSON (${(error as Error).message})`)
  }
  if (!Array.isArray(document.keys)) throw new KeyError(`${where}: a JWKS is {"keys": [...]}`)
  const keys = new Map<string, VerifyKey>()
  for (const [index, raw] of document.keys.entries()) {
    const jwk = raw as JWK & { exp?: unknown }
    const at = `${where} key ${index}`
    if (typeof jwk.kid !== 'string' || !jwk.kid) throw new KeyError(`${at}: has no "kid": a token names its key by kid`)
    if (keys.has(jwk.kid) || taken.has(jwk.kid)) throw new KeyError(`${at}: key id "${jwk.kid}" is used twice`)
    if (jwk.exp !== undefined && typeof jwk.exp !== 'number') throw new KeyError(`${at}: "exp" is seconds since the epoch`)
    const parsed = await keyFromJwk(jwk, null, `${at} ("${jwk.kid}")`)
    keys.set(jwk.kid, { ...parsed, kid: jwk.kid, expires: typeof jwk.exp === 'number' ? new Date(jwk.exp * 1000) : null, source: where })
  }
  return keys
}

/**
 * The keys tokens may name: the configured ones (fixed until restart) and the JWKS's (read again
 * every refresh-secs, and at most every few seconds when a token names a key not known yet, so
 * a new key works at once). A JWKS that cannot be read or is refused leaves the last good set.
 */
export class KeySet {
  #jwks = new Map<string, VerifyKey>()
  #lastRead = 0
  #reading: Promise<void> | null = null
  #timer: NodeJS.Timeout | null = null

  private constructor(
    readonly configured: ReadonlyMap<string, VerifyKey>,
    readonly jwksSource: NonNullable<Config['jwks']> | null,
    readonly log: Logger,
  ) {}

  static async load(config: Pick<Config, 'tokenKeys' | 'jwks'>, log: Logger): Promise<KeySet> {
    const configured = new Map<string, VerifyKey>()
    for (const entry of config.tokenKeys) configured.set(entry.kid, await loadKeyFile(entry))
    const set = new KeySet(configured, config.jwks, log)
    if (config.jwks) {
      const source = config.jwks.source
      // A file that is wrong at start is a config error. A URL may be down for a moment: it is
      // read in the background (start-up does not wait up to its timeout); a token that arrives
      // meanwhile waits for that read.
      if ('file' in source) await set.#read()
      else void set.refresh()
      set.#timer = setInterval(() => void set.refresh(), config.jwks.refreshSecs * 1000)
      set.#timer.unref()
    }
    return set
  }

  get size(): number {
    return this.configured.size + this.#jwks.size
  }

  get(kid: string): VerifyKey | undefined {
    return this.configured.get(kid) ?? this.#jwks.get(kid)
  }

  /** Looks again for a key not known yet (rate-limited: a flood of made-up kids costs one read per few seconds). */
  async find(kid: string): Promise<VerifyKey | undefined> {
    if (!this.get(kid) && this.#reading) await this.#reading
    const known = this.get(kid)
    if (known || !this.jwksSource || Date.now() - this.#lastRead < 5_000) return known
    await this.refresh()
    return this.get(kid)
  }

  async refresh(): Promise<void> {
    if (!this.jwksSource) return
    this.#reading ??= this.#read()
      .catch((error: unknown) => this.log.error({ err: error }, 'could not read the JWKS: the last good keys stay'))
      .finally(() => (this.#reading = null))
    await this.#reading
  }

  async #read(): Promise<void> {
    const source = this.jwksSource!.source
    this.#lastRead = Date.now()
    let text: string
    if ('file' in source) {
      text = await readFile(source.file, 'utf8').catch((error: Error) => {
        throw new KeyError(`jwks ${source.file}: cannot read it (${error.message})`)
      })
    } else {
      const response = await fetch(source.url, { signal: AbortSignal.timeout(10_000), redirect: 'error' })
      if (!response.ok) throw new KeyError(`jwks ${source.url}: HTTP ${response.status}`)
      text = await response.text()
    }
    const where = 'file' in source ? `jwks ${source.file}` : `jwks ${source.url}`
    const keys = await keysFromJwks(text, where, new Set(this.configured.keys()))
    const before = [...this.#jwks.keys()].sort().join(',')
    this.#jwks = keys
    const after = [...keys.keys()].sort().join(',')
    if (before !== after) this.log.info({ kids: [...keys.keys()] }, 'token keys from the JWKS')
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
  }
}

/** A private key file (PEM) that signs tokens as `kid` (`flatdepot token create --key`), its algorithm from the key. */
export async function signerFromFile(file: string, kid: string): Promise<{ key: KeyObject; alg: PublicAlg; kid: string }> {
  const text = await readFile(file, 'utf8').catch((error: Error) => {
    throw new KeyError(`${file}: cannot read it (${error.message})`)
  })
  let key: KeyObject
  try {
    key = createPrivateKey(text)
  } catch (error) {
    throw new KeyError(`${file}: not a PEM private key (${(error as Error).message})`)
  }
  return { key, alg: algOfKeyObject(createPublicKey(key), file), kid }
}
