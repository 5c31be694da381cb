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
