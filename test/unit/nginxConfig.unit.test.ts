import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseConfig } from '../../src/config/config.ts'
import { nginxConfig } from '../../src/nginx/config.ts'

const config = parseConfig(
  {
    secret: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==',
    'build-repo-base': '/srv/builds',
    repos: {
      stable: { path: '/srv/repos/stable' },
      paid: { path: '/srv/repos/paid', 'require-auth-for-token-types': [2] },
    },
  },
  '/etc/flatdepot/config.json',
)
const text = nginxConfig(config, { listen: '80', upstream: 'http://127.0.0.1:8080/' })
const locationOf = (pattern: RegExp) => text.split('\n  location').find((block) => pattern.test(block.split('\n')[0] ?? ''))

describe('flatdepot nginx-config', () => {
  it('proxies to the upstream given, with keep-alive and WebSocket upgrades', () => {
    assert.match(text, /upstream flatdepot \{\n {2}server 127\.0\.0\.1:8080;/)
    assert.match(text, /proxy_set_header Connection \$flatdepot_connection;/)
    assert.match(text, /client_max_body_size 0;/)
  })
  it('serves a public repo\'s objects, deltas and summaries from disk, immutable', () => {
    const objects = locationOf(/\/repo\/stable\/objects\//)
    assert.ok(objects, 'a location for /repo/stable/objects')
    assert.match(objects, /commit\|commitmeta/)
    assert.match(objects, /alias "\/srv\/repos\/stable\/objects\/\$1";/)
    assert.match(objects, /immutable/)
    assert.match(objects, /error_page 404 = @flatdepot;/)
    assert.ok(locationOf(/\/repo\/stable\/deltas\//))
    assert.ok(locationOf(/\/repo\/stable\/summaries\//))
  })
  it('leaves the summary set to flatdepot (one snapshot per connection): no location serves it from disk', () => {
    assert.doesNotMatch(text, /\/summary(\.idx)?(\.sig)?[$"]/)
  })
  it('sends a protected repo\'s commit objects and deltas through flatdepot, which checks download tokens', () => {
    const objects = locationOf(/\/repo\/paid\/objects\//)
    assert.ok(objects)
    assert.doesNotMatch(objects.split('\n')[0]!, /commit/)
    assert.equal(locationOf(/\/repo\/paid\/deltas\//), undefined)
  })
  it('serves private build repos after an auth_request to flatdepot', () => {
    const builds = locationOf(/\/build-repo\//)
    assert.ok(builds)
    assert.match(builds, /auth_request \/_flatdepot\/authorize;/)
    assert.match(builds, /alias "\/srv\/builds\/\$1\/objects\/\$2";/)
    assert.match(text, /location = \/_flatdepot\/authorize \{\n {4}internal;/)
    assert.match(text, /proxy_set_header X-Original-URI \$request_uri;/)
  })
})
