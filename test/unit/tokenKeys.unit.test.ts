import assert from 'node:assert/strict'
import { generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { SignJWT } from 'jose'
import { parseConfig } from '../../src/config/config.ts'
import { createLogger } from '../../src/log.ts'
import { TokenError, verifyToken, type Verifier } from '../../src/tokens/jwt.ts'
import { KeyError, KeySet } from '../../src/tokens/keys.ts'

const log = createLogger({ level: 'silent' })
const secret = new Uint8Array(Buffer.alloc(32, 7))
const dir = mkdtempSync(path.join(tmpdir(), 'flatdepot-keys-'))
const claims = { sub: 'build', scope: ['build'], prefixes: [''], repos: [''] }

const pair = (type: 'ed25519' | 'ed448' | 'ec' | 'rsa', options: Record<string, unknown> = {}) => generateKeyPairSync(type as 'ed25519', options as never) as unknown as { publicKey: KeyObject; privateKey: KeyObject }
const pem = (key: KeyObject) => key.export({ type: key.type === 'private' ? 'pkcs8' : 'spki', format: 'pem' }) as string
const jwk = (key: KeyObject, extra: Record<string, unknown> = {}) => ({ ...key.export({ format: 'jwk' }), ...extra })
const file = (name: string, text: string) => {
  const target = path.join(dir, name)
  writeFileSync(target, text)
  return target
}
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

async function sign(key: KeyObject | Uint8Array, header: Record<string, unknown>, payload: Record<string, unknown> = claims, expiresIn = '10m') {
  return new SignJWT(payload).setProtectedHeader(header as never).setExpirationTime(expiresIn).setJti('j1').sign(key)
}

async function refused(token: string, verifier: Verifier, pattern: RegExp) {
  await assert.rejects(verifyToken(token, verifier), (error: unknown) => {
    assert.ok(error instanceof TokenError, String(error))
    assert.match(error.message, pattern)
    return true
  })
}

const keySetFrom = (config: Record<string, unknown>) =>
  KeySet.load(parseConfig({ secret: Buffer.from(secret).toString('base64'), 'build-repo-base': 'b', repos: {}, ...config }, path.join(dir, 'config.json')), log)

describe('public-key tokens: the 35 ways a token or a key can be wrong', () => {
  const ed = pair('ed25519')
  const ec = pair('ec', { namedCurve: 'P-256' })
  const rsa = pair('rsa', { modulusLength: 2048 })
  const attacker = pair('ed25519')
  const p384 = pair('ec', { namedCurve: 'P-384' })
  const rotated = pair('ed25519')
  let keys: KeySet
  let verifier: Verifier
  let jwksFile: string

  before(async () => {
    jwksFile = file('jwks.json', JSON.stringify({ keys: [jwk(rsa.publicKey, { kid: 'rsa-1', alg: 'RS256', use: 'sig' }), jwk(ec.publicKey, { kid: 'ec-old', exp: Math.floor(Date.now() / 1000) - 60 })] }))
    keys = await keySetFrom({
      'token-keys': [
        { kid: 'ed-1', file: file('ed.pem', pem(ed.publicKey)) },
        { kid: 'ec-1', alg: 'ES256', file: file('ec.jwk', JSON.stringify(jwk(ec.publicKey))) },
        { kid: 'ed-expired', file: file('ed2.pem', pem(ed.publicKey)), expires: '2020-01-01T00:00:00Z' },
      ],
      jwks: { file: jwksFile, 'refresh-secs': 3600 },
    })
    verifier = { secret, keys }
  })
  after(() => keys?.stop())

  // Accepted: each algorithm with its own key, and the shared secret while it is on.
  it('1-4: accepts EdDSA, ES256 and RS256 tokens signed by their keys, and HS256 with the secret', async () => {
    assert.equal((await verifyToken(await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed-1' }), verifier)).sub, 'build')
    assert.equal((await verifyToken(await sign(ec.privateKey, { alg: 'ES256', kid: 'ec-1' }), verifier)).sub, 'build')
    assert.equal((await verifyToken(await sign(rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' }), verifier)).sub, 'build')
    assert.equal((await verifyToken(await sign(secret, { alg: 'HS256' }), verifier)).sub, 'build')
  })
  it('5: refuses HS256 with the secret once secret tokens are switched off', async () => {
    await refused(await sign(secret, { alg: 'HS256' }), { secret: null, secretOff: 'switched off here', keys }, /switched off here/)
  })
  it('6: alg confusion: an HS256 token keyed with a public key\'s PEM and naming it is refused by name', async () => {
    await refused(await sign(new Uint8Array(Buffer.from(pem(ed.publicKey))), { alg: 'HS256', kid: 'ed-1' }), verifier, /key "ed-1", a EdDSA public key, but is signed HS256/)
  })
  it('7: alg confusion without a kid: HMAC with the RSA public key\'s bytes does not match the secret', async () => {
    await refused(await sign(new Uint8Array(Buffer.from(pem(rsa.publicKey))), { alg: 'HS256' }), verifier, /signature does not match this server's secret/)
  })
  it('8-9: alg "none" is refused, with or without a kid', async () => {
    const unsigned = (header: Record<string, unknown>) => `${b64(header)}.${b64({ ...claims, exp: Math.floor(Date.now() / 1000) + 600 })}.`
    await refused(unsigned({ alg: 'none' }), verifier, /alg "none"/)
    await refused(unsigned({ alg: 'none', kid: 'ed-1' }), verifier, /alg "none"/)
  })
  it('10: a token naming an EdDSA key but signed ES256 is refused: a key verifies only its own algorithm', async () => {
    await refused(await sign(ec.privateKey, { alg: 'ES256', kid: 'ed-1' }), verifier, /signed ES256, but key "ed-1" is a EdDSA key/)
  })
  it('11-13: algorithms outside the four (PS256, RS512, ES384) are refused whatever key they name', async () => {
    await refused(await sign(rsa.privateKey, { alg: 'PS256', kid: 'rsa-1' }), verifier, /algorithm "PS256" is not accepted/)
    await refused(await sign(rsa.privateKey, { alg: 'RS512', kid: 'rsa-1' }), verifier, /algorithm "RS512" is not accepted/)
    await refused(await sign(p384.privateKey, { alg: 'ES384', kid: 'ec-1' }), verifier, /algorithm "ES384" is not accepted/)
  })
  it('14: wrong curve: a P-384 key cannot be listed as an ES256 key', async () => {
    await assert.rejects(keySetFrom({ 'token-keys': [{ kid: 'bad', alg: 'ES256', file: file('p384.pem', pem(p384.publicKey)) }] }), (error: unknown) => error instanceof KeyError && /unsupported key type \(EC secp384r1\)/.test(error.message))
    await assert.rejects(keySetFrom({ 'token-keys': [{ kid: 'bad', file: file('p384.jwk', JSON.stringify(jwk(p384.publicKey, { alg: 'ES256' }))) }] }), KeyError)
  })
  it('15-16: an unknown kid, or none on a public-key token, is refused', async () => {
    await refused(await sign(ed.privateKey, { alg: 'EdDSA', kid: 'nobody' }), verifier, /unknown key id "nobody"/)
    await refused(await sign(ed.privateKey, { alg: 'EdDSA' }), verifier, /must name its key/)
  })
  it('17-18: jku and x5u headers are never followed: the kid must be one of ours', async () => {
    await refused(await sign(attacker.privateKey, { alg: 'EdDSA', kid: 'attacker', jku: 'http://127.0.0.1:9/jwks.json' }), verifier, /unknown key id "attacker"/)
    await refused(await sign(attacker.privateKey, { alg: 'EdDSA', kid: 'attacker', x5u: 'http://127.0.0.1:9/cert.pem' }), verifier, /unknown key id "attacker"/)
  })
  it('19-20: an embedded jwk or x5c header does not replace our key: the signature must match ours', async () => {
    await refused(await sign(attacker.privateKey, { alg: 'EdDSA', kid: 'ed-1', jwk: jwk(attacker.publicKey) }), verifier, /signature does not match the key the token names/)
    await refused(await sign(attacker.privateKey, { alg: 'EdDSA', kid: 'ed-1', x5c: ['MIIB'] }), verifier, /signature does not match the key the token names/)
  })
  it('21-22: a key past its expiry verifies nothing (config "expires", JWKS "exp")', async () => {
    await refused(await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed-expired' }), verifier, /key "ed-expired" expired at 2020-01-01T00:00:00.000Z/)
    await refused(await sign(ec.privateKey, { alg: 'ES256', kid: 'ec-old' }), verifier, /key "ec-old" expired at/)
  })
  it('23-25: key id collisions are refused: twice in the config, twice in a JWKS, a JWKS kid that is a configured one', async () => {
    assert.throws(() => parseConfig({ secret: 'x'.repeat(24), 'build-repo-base': 'b', repos: {}, 'token-keys': [{ kid: 'k', file: 'a' }, { kid: 'k', file: 'b' }] }, '/c.json'), /key id "k" is used twice/)
    const twice = file('twice.json', JSON.stringify({ keys: [jwk(ed.publicKey, { kid: 'k' }), jwk(ec.publicKey, { kid: 'k' })] }))
    await assert.rejects(keySetFrom({ jwks: { file: twice } }), /key id "k" is used twice/)
    const clash = file('clash.json', JSON.stringify({ keys: [jwk(attacker.publicKey, { kid: 'ed-1' })] }))
    await assert.rejects(keySetFrom({ 'token-keys': [{ kid: 'ed-1', file: path.join(dir, 'ed.pem') }], jwks: { file: clash } }), /key id "ed-1" is used twice/)
  })
  it('26-28: no symmetric keys and no private keys in the key lists', async () => {
    await assert.rejects(keySetFrom({ jwks: { file: file('oct.json', JSON.stringify({ keys: [{ kty: 'oct', kid: 's', k: 'c2VjcmV0' }] })) } }), /symmetric \(oct\) key/)
    await assert.rejects(keySetFrom({ jwks: { file: file('private.json', JSON.stringify({ keys: [jwk(ed.privateKey, { kid: 'p' })] })) } }), /holds a private key/)
    await assert.rejects(keySetFrom({ 'token-keys': [{ kid: 'p', file: file('private.pem', pem(ed.privateKey)) }] }), /holds a private key/)
  })
  it('29-30: weak and unsupported keys are refused (RSA 1024, Ed448)', async () => {
    const weak = pair('rsa', { modulusLength: 1024 })
    await assert.rejects(keySetFrom({ 'token-keys': [{ kid: 'w', file: file('weak.pem', pem(weak.publicKey)) }] }), /1024 bits is too weak/)
    await assert.rejects(keySetFrom({ 'token-keys': [{ kid: 'x', file: file('ed448.pem', pem(pair('ed448').publicKey)) }] }), /unsupported key type \(ed448\)/)
  })
  it('31: a token signed by another Ed25519 key under our kid fails its signature', async () => {
    await refused(await sign(attacker.privateKey, { alg: 'EdDSA', kid: 'ed-1' }), verifier, /signature does not match the key the token names/)
  })
  it('32: an expired token signed by a good key is expired', async () => {
    await assert.rejects(verifyToken(await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed-1' }, claims, '-1m'), verifier), /Token is expired/)
  })
  it('33-34: an unknown critical header, or a kid that is not a string, is refused', async () => {
    // Signed by hand: jose will not sign a header it could not itself verify.
    const input = `${b64({ alg: 'EdDSA', kid: 'ed-1', crit: ['x-flatdepot-unknown'], 'x-flatdepot-unknown': 1 })}.${b64({ ...claims, exp: Math.floor(Date.now() / 1000) + 600 })}`
    const critical = `${input}.${cryptoSign(null, Buffer.from(input), ed.privateKey).toString('base64url')}`
    await refused(critical, verifier, /not a token flatdepot can check .*x-flatdepot-unknown/)
    await refused(`${b64({ alg: 'EdDSA', kid: 7 })}.${b64(claims)}.AAAA`, verifier, /"kid" must be a string/)
  })
  it('35: a declared algorithm that is not the key\'s is refused at load', async () => {
    await assert.rejects(keySetFrom({ 'token-keys': [{ kid: 'e', alg: 'RS256', file: path.join(dir, 'ed.pem') }] }), /declared "RS256", but the key is a EdDSA key/)
  })
  it('rotates: a new JWKS key works as soon as a token names it, and a key taken out stops at the next read', async () => {
    writeFileSync(jwksFile, JSON.stringify({ keys: [jwk(rotated.publicKey, { kid: 'new-1' })] }))
    await new Promise((resolve) => setTimeout(resolve, 5_100)) // past the unknown-kid re-read limit
    assert.equal((await verifyToken(await sign(rotated.privateKey, { alg: 'EdDSA', kid: 'new-1' }), verifier)).sub, 'build')
    await refused(await sign(rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' }), verifier, /unknown key id "rsa-1"/)
  })
})
