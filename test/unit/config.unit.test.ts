import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import { ConfigError, loadConfig, parseConfig } from '../../src/config/config.ts'

const secret = Buffer.alloc(32, 7).toString('base64')
const minimal = { secret, 'build-repo-base': 'builds', repos: { stable: { path: 'repos/stable' } } }

describe('config', () => {
  it('resolves paths against the config file and picks PGlite without a database URL', () => {
    const config = parseConfig(minimal, '/srv/flatdepot/config.json')
    assert.equal(config.repos.get('stable')?.path, '/srv/flatdepot/repos/stable')
    assert.equal(config.buildRepoBase, '/srv/flatdepot/builds')
    assert.deepEqual(config.database, { engine: 'pglite', dataDir: '/srv/flatdepot/db' })
    assert.equal(config.port, 8080)
  })
  it('takes the database URL and secret from the environment', () => {
    const config = parseConfig({ ...minimal, secret: undefined }, '/c.json', {
      DATABASE_URL: 'postgresql://postgres@127.0.0.1/x',
      FLATDEPOT_SECRET: secret,
    })
    assert.equal(config.database.engine, 'postgresql')
  })
  const errors: [name: string, json: unknown, message: RegExp][] = [
    ['an unknown key', { ...minimal, 'delay-update-sec': 5 }, /\(top level\): Unrecognized key: "delay-update-sec"/],
    ['a wrong type', { ...minimal, port: '8080' }, /port: Invalid input: expected number, received string/],
    ['a missing repo path', { ...minimal, repos: { stable: {} } }, /repos\.stable\.path: Invalid input: expected string/],
    ['an unknown repo key', { ...minimal, repos: { stable: { path: 'x', gpg_key: 'k' } } }, /repos\.stable: Unrecognized key: "gpg_key"/],
    ['a bad collection id', { ...minimal, repos: { stable: { path: 'x', 'collection-id': 'nodots' } } }, /repos\.stable\.collection-id: must be a reverse-DNS id/],
    ['a short secret', { ...minimal, secret: 'c2hvcnQ=' }, /secret: must be the base64 of at least 16 random bytes/],
    ['no secret at all', { ...minimal, secret: undefined }, /secret: required \(or set FLATDEPOT_SECRET\)/],
  ]
  for (const [name, json, message] of errors) {
    it(`names the key for ${name}`, () =>
      assert.throws(() => parseConfig(json, '/c.json'), (error: unknown) => error instanceof ConfigError && message.test(error.message)))
  }
  it('creates a working default on first start, and reuses it after', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flatdepot-config-'))
    const env = { FLATDEPOT_DATA_DIR: dir }
    let created = ''
    const first = loadConfig({ env, createDefault: true, onCreated: (file) => (created = file) })
    assert.equal(created, path.join(dir, 'config.json'))
    assert.equal(first.repos.get('stable')?.path, path.join(dir, 'repos/stable'))
    const second = loadConfig({ env, createDefault: true, onCreated: () => assert.fail('created twice') })
    assert.deepEqual(second.secret, first.secret)
  })
  it('refuses an explicit config path that does not exist', () =>
    assert.throws(() => loadConfig({ env: { FLATDEPOT_CONFIG: '/nonexistent/flatdepot.json' }, createDefault: true }), /does not exist/))
  it('reports JSON syntax errors with the file name', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flatdepot-config-'))
    const file = path.join(dir, 'config.json')
    writeFileSync(file, '{ "repos": ')
    assert.throws(() => loadConfig({ env: { FLATDEPOT_CONFIG: file } }), new RegExp(`cannot read config ${file}`))
    assert.ok(readFileSync(file, 'utf8'))
  })
})
