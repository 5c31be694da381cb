import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  checkAppId,
  checkBuildAccess,
  checkClaims,
  checkRepo,
  idMatchesPrefix,
  subHasPrefix,
  type Claims,
} from '../../src/domain/token/claims.ts'

const token = (overrides: Partial<Claims>): Claims => ({
  sub: 'build',
  exp: 0,
  name: 't',
  jti: null,
  scope: ['build', 'upload'],
  prefixes: [],
  apps: [],
  repos: [''],
  branches: [],
  tokenType: null,
  ...overrides,
})

describe('sub is a path prefix (sub_has_prefix)', () => {
  const table: [required: string, claimed: string, allowed: boolean][] = [
    ['build', 'build', true],
    ['build/5', 'build', true],
    ['build/5', 'build/5', true],
    ['build/50', 'build/5', false],
    ['build', 'build/5', false],
    ['buildx', 'build', false],
    ['', '', true],
    ['build', '', false],
    ['/x', '', true],
    ['delta', 'build', false],
  ]
  for (const [required, claimed, allowed] of table) {
    it(`claimed "${claimed}" ${allowed ? 'covers' : 'does not cover'} "${required}"`, () =>
      assert.equal(subHasPrefix(required, claimed), allowed))
  }
})

describe('app id prefixes on dot boundaries', () => {
  const table: [id: string, prefix: string, allowed: boolean][] = [
    ['org.foo.Bar', '', true],
    ['org.foo', 'org.foo', true],
    ['org.foo.Bar', 'org.foo', true],
    ['org.foobar', 'org.foo', false],
    ['org.fo', 'org.foo', false],
    ['com.foo.Bar', 'org', false],
  ]
  for (const [id, prefix, allowed] of table) {
    it(`prefix "${prefix}" ${allowed ? 'matches' : 'does not match'} ${id}`, () => assert.equal(idMatchesPrefix(id, prefix), allowed))
  }
})

describe('token prefixes and apps (has_token_prefix)', () => {
  const table: [name: string, claims: Partial<Claims>, id: string, reason: string | null][] = [
    ['no prefixes allow every id', { prefixes: [] }, 'org.any.App', null],
    ['an empty prefix allows every id', { prefixes: [''] }, 'org.any.App', null],
    ['a prefix covers its sub-ids', { prefixes: ['org.foo'] }, 'org.foo.Bar.Locale', null],
    ['a prefix does not cover a longer name', { prefixes: ['org.foo'] }, 'org.foobar.App', 'Id org.foobar.App not matching prefix in token'],
    ['apps match exactly', { prefixes: ['org.other'], apps: ['org.foo.App'] }, 'org.foo.App', null],
    ['apps do not cover extensions', { prefixes: ['org.other'], apps: ['org.foo.App'] }, 'org.foo.App.Locale', 'Id org.foo.App.Locale not matching prefix in token'],
  ]
  for (const [name, claims, id, reason] of table) {
    it(name, () => assert.equal(checkAppId(token(claims), id), reason))
  }
})

describe('repos: [""] grants all, [] grants none', () => {
  const table: [repos: string[], repo: string, reason: string | null][] = [
    [[''], 'stable', null],
    [['stable'], 'stable', null],
    [['beta'], 'stable', 'Not matching repo in token'],
    [[], 'stable', 'Not matching repo in token'],
    [['beta', ''], 'stable', null],
  ]
  for (const [repos, repo, reason] of table) {
    it(`${JSON.stringify(repos)} for ${repo}: ${reason ?? 'allowed'}`, () => assert.equal(checkRepo(token({ repos }), repo), reason))
  }
})

describe('sub and scope together (has_token_claims)', () => {
  const table: [name: string, claims: Partial<Claims>, sub: string, scope: 'build' | 'publish' | 'tokenmanagement', reason: string | null][] = [
    ['a build token may create builds', {}, 'build', 'build', null],
    ['a build/5 token may not create builds', { sub: 'build/5' }, 'build', 'build', "Not matching sub 'build' in token"],
    ['a missing scope is named', {}, 'build/3', 'publish', "Not matching scope 'publish' in token"],
    ['token management needs sub ""', { scope: ['tokenmanagement'] }, '', 'tokenmanagement', "Not matching sub '' in token"],
    ['a sub "" token manages tokens', { sub: '', scope: ['tokenmanagement'] }, '', 'tokenmanagement', null],
    ['unknown scope names never match', { scope: ['everything'] }, 'build', 'build', "Not matching scope 'build' in token"],
  ]
  for (const [name, claims, sub, scope, reason] of table) {
    it(name, () => assert.equal(checkClaims(token(claims), sub, scope), reason))
  }
})

describe('build access (lookup_authorized_build)', () => {
  const build = { id: 5, repo: 'stable', appId: 'org.foo.App' }
  const table: [name: string, claims: Partial<Claims>, reason: string | null][] = [
    ['a global build token', {}, null],
    ['a token for this build', { sub: 'build/5' }, null],
    ['a token for another build', { sub: 'build/6' }, "Not matching sub 'build/5' in token"],
    ['a token for another repo', { repos: ['beta'] }, 'Not matching repo in token'],
    ['a token for another app', { prefixes: ['org.bar'] }, "Build's app ID not matching prefix in token"],
    ['a token without the scope', { scope: ['download'] }, "Not matching scope 'upload' in token"],
  ]
  for (const [name, claims, reason] of table) {
    it(name, () => assert.equal(checkBuildAccess(token(claims), build, ['build', 'upload']), reason))
  }
})
