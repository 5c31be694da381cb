import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseConfig } from '../../src/config/config.ts'
import { flatpakrepo } from '../../src/storage/descriptors.ts'
import { subsetGroups } from '../../workers/jobs/publish.ts'

describe('subsets', () => {
  const config = parseConfig(
    {
      secret: Buffer.alloc(32, 1).toString('base64'),
      'build-repo-base': 'b',
      // flat-manager's keys (collection-id, base-url) still parse beside flatdepot's ids.
      repos: { stable: { path: 'r', subsets: { verified: { 'collection-id': 'org.example.Verified', ids: ['org.example.*'] }, sdk: { ids: ['org.example.Sdk'] } } } },
    },
    '/srv/config.json',
  )
  const repo = config.repos.get('stable')!

  it('groups a build\'s refs by the subsets their ids join, extensions by their own ids', () => {
    const groups = subsetGroups(repo, ['app/org.example.App/x86_64/stable', 'runtime/org.example.App.Locale/x86_64/stable', 'runtime/org.example.Sdk/x86_64/1', 'app/org.other.Tool/x86_64/stable'])
    assert.deepEqual(groups, [
      { subsets: ['verified'], refs: ['app/org.example.App/x86_64/stable', 'runtime/org.example.App.Locale/x86_64/stable'] },
      { subsets: ['verified', 'sdk'], refs: ['runtime/org.example.Sdk/x86_64/1'] },
      { subsets: [], refs: ['app/org.other.Tool/x86_64/stable'] },
    ])
  })

  it('a subset\'s .flatpakrepo names it', () => {
    assert.match(flatpakrepo({ title: 'Stable (verified)', url: 'https://example.org/repo/stable', subset: 'verified' }), /^Subset=verified$/m)
  })

  it('refuses a subset name that could not be a file name', () => {
    assert.throws(() => parseConfig({ secret: Buffer.alloc(32, 1).toString('base64'), 'build-repo-base': 'b', repos: { stable: { path: 'r', subsets: { '../x': {} } } } }, '/srv/c.json'), /subset names are letters/)
  })
})
