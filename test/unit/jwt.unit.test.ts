import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SignJWT, UnsecuredJWT } from 'jose'
import { bearerToken, mintToken, TokenError, verifyToken } from '../../src/tokens/jwt.ts'

const secret = new Uint8Array(Buffer.from('a-test-secret-that-is-long-enough'))
const other = new Uint8Array(Buffer.from('another-secret-that-is-long-enough'))

const rejects = (promise: Promise<unknown>, kind: TokenError['kind'], message: RegExp) =>
  assert.rejects(promise, (error: unknown) => error instanceof TokenError && error.kind === kind && message.test(error.message))

describe('tokens', () => {
  it('round-trips gentoken claims, with a jti for revocation', async () => {
    const { token, claims } = await mintToken(secret, {
      name: 'bot', sub: 'build', scope: ['build', 'upload'], prefixes: ['org.foo'], repos: ['stable'], durationSecs: 60, tokenType: 'app',
    })
    const verified = await verifyToken(token, secret)
    assert.deepEqual(verified, claims)
    assert.match(verified.jti ?? '', /^[0-9a-f-]{36}$/)
  })
  it('says a token is expired', async () => {
    const { token } = await mintToken(secret, { name: 'x', sub: 'build', scope: [], prefixes: [], repos: [], durationSecs: 1, now: new Date(Date.now() - 10_000) })
    await rejects(verifyToken(token, secret), 'expired', /^Token is expired$/)
  })
  it('says when the signature is not ours', async () => {
    const { token } = await mintToken(other, { name: 'x', sub: 'build', scope: [], prefixes: [], repos: [], durationSecs: 60 })
    await rejects(verifyToken(token, secret), 'invalid', /signature does not match/)
  })
  it('refuses unsigned tokens (alg none)', async () => {
    const token = new UnsecuredJWT({ sub: 'build', scope: ['build'] }).setExpirationTime('1h').encode()
    await rejects(verifyToken(token, secret), 'invalid', /Invalid token claims/)
  })
  it('requires exp', async () => {
    const token = await new SignJWT({ sub: 'build' }).setProtectedHeader({ alg: 'HS256' }).sign(secret)
    await rejects(verifyToken(token, secret), 'invalid', /exp/)
  })
  it('refuses claims of the wrong type', async () => {
    const token = await new SignJWT({ sub: 'build', scope: 'build' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(secret)
    await rejects(verifyToken(token, secret), 'invalid', /"scope" must be a list of strings/)
  })
  it('parses Authorization headers with flat-manager\'s messages and optional prefix', () => {
    assert.equal(bearerToken('Bearer abc.def', null), 'abc.def')
    assert.equal(bearerToken('Bearer flathub_abc.def', 'flathub_'), 'abc.def')
    assert.throws(() => bearerToken('Basic dXNlcjpwYXNz', null), /Token scheme is not Bearer/)
    assert.throws(() => bearerToken('Bear', null), /Header length too short/)
    assert.throws(() => bearerToken('Bearer  ', null), /No token value in header/)
  })
})

describe('a token verified before', () => {
  /** Counts WebCrypto signature checks (jose's only way to verify). */
  async function countingChecks<T>(work: () => Promise<T>): Promise<{ result: T; checks: number }> {
    const subtle = globalThis.crypto.subtle
    const original = subtle.verify.bind(subtle)
    let checks = 0
    subtle.verify = ((...args: Parameters<SubtleCrypto['verify']>) => {
      checks++
      return original(...args)
    }) as SubtleCrypto['verify']
    try {
      return { result: await work(), checks }
    } finally {
      subtle.verify = original
    }
  }
  const mint = (signer: Uint8Array, durationSecs = 60) => mintToken(signer, { name: 'x', sub: 'build', scope: ['build'], prefixes: [''], repos: [''], durationSecs })

  it('is not checked again: its next uses cost no signature check', async () => {
    const { token, claims } = await mint(secret)
    const first = await countingChecks(() => verifyToken(token, secret))
    assert.equal(first.checks, 1, 'the first use checks the signature')
    const again = await countingChecks(async () => [await verifyToken(token, secret), await verifyToken(token, secret)])
    assert.equal(again.checks, 0, 'later uses of the same token do not')
    assert.deepEqual(again.result, [claims, claims], 'and get the same claims')
  })
  it('still expires on time', async () => {
    const { token } = await mint(secret, 1)
    await verifyToken(token, secret)
    await new Promise((resolve) => setTimeout(resolve, 2100 - (Date.now() % 1000)))
    await rejects(verifyToken(token, secret), 'expired', /^Token is expired$/)
  })
  it('is checked again under another key, and refused if that key did not sign it', async () => {
    const { token } = await mint(secret)
    await verifyToken(token, secret)
    await rejects(verifyToken(token, other), 'invalid', /signature does not match/)
  })
  it('does not vouch for a token that differs from it in any byte', async () => {
    const { token } = await mint(secret)
    await verifyToken(token, secret)
    const [header, payload, signature] = token.split('.')
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>
    const widened = Buffer.from(JSON.stringify({ ...claims, scope: ['build', 'tokenmanagement'] })).toString('base64url')
    const { checks } = await countingChecks(() => rejects(verifyToken(`${header}.${widened}.${signature}`, secret), 'invalid', /signature does not match/))
    assert.equal(checks, 1, 'the altered token had its own signature check')
  })
})
