import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildDecider } from '../../src/domain/build/decider.ts'
import type { BuildEvent } from '../../src/domain/build/events.ts'
import { selectMirroredRefs } from '../../src/domain/repo/mirror.ts'
import { repoDecider, type RepoEvent } from '../../src/domain/repo/repo.ts'
import { ConflictError } from '../../src/domain/shared/errors.ts'
import { deciderSpec } from '../support/decider.ts'

const upstream = [
  'app/org.gnome.Calculator/x86_64/stable',
  'app/org.gnome.Calculator/aarch64/stable',
  'app/org.gnome.Calculator/x86_64/beta',
  'runtime/org.gnome.Calculator.Locale/x86_64/stable',
  'runtime/org.gnome.Calculator.Debug/x86_64/stable',
  'app/org.gnome.Calculatorish/x86_64/stable',
  'app/org.mozilla.firefox/x86_64/stable',
  'runtime/org.gnome.Platform/x86_64/46',
  'appstream/x86_64',
  'ostree-metadata',
]
const rule = { id: ['org.gnome.Calculator'], branch: [], arch: [], 'with-runtime': true, 'with-extensions': true }

describe('which upstream refs a mirror follows', () => {
  it('takes the app on every arch and branch with its extensions, not an id that only starts the same, nor the repo\'s own refs', () => {
    assert.deepEqual(selectMirroredRefs(upstream, [rule]), [
      'app/org.gnome.Calculator/aarch64/stable',
      'app/org.gnome.Calculator/x86_64/beta',
      'app/org.gnome.Calculator/x86_64/stable',
      'runtime/org.gnome.Calculator.Debug/x86_64/stable',
      'runtime/org.gnome.Calculator.Locale/x86_64/stable',
    ])
  })
  it('narrows by arch and branch, and leaves extensions out when asked', () => {
    assert.deepEqual(selectMirroredRefs(upstream, [{ ...rule, arch: ['x86_64'], branch: ['stable'], 'with-extensions': false }]), ['app/org.gnome.Calculator/x86_64/stable'])
  })
  it('matches globs (one or more characters for *), across rules', () => {
    assert.deepEqual(selectMirroredRefs(upstream, [{ ...rule, id: ['org.mozilla.*'] }, { ...rule, id: ['org.gnome.Platform'] }]), ['app/org.mozilla.firefox/x86_64/stable', 'runtime/org.gnome.Platform/x86_64/46'])
  })
})

describe('mirror ownership in the deciders', () => {
  const configured: RepoEvent = { type: 'RepoConfigured', data: { name: 'stable', settings: { path: '/r', title: null, collectionId: null, defaultBranch: null, baseUrl: null, gpgKey: null } } }
  it('takes one scheduled sync per upstream and slot; on demand always', () => {
    const slot = '2026-12-04T03:00:00.000Z'
    const first: RepoEvent = { type: 'RepoMirrorSyncRequested', data: { name: 'stable', upstream: 'flathub', slot } }
    deciderSpec(repoDecider)([configured, first]).when({ type: 'RequestMirrorSync', data: { upstream: 'flathub', slot } }).then([])
    deciderSpec(repoDecider)([configured, first]).when({ type: 'RequestMirrorSync', data: { upstream: 'other', slot } }).then([{ type: 'RepoMirrorSyncRequested', data: { name: 'stable', upstream: 'other', slot } }])
    deciderSpec(repoDecider)([configured, first]).when({ type: 'RequestMirrorSync', data: { upstream: 'flathub' } }).then([{ type: 'RepoMirrorSyncRequested', data: { name: 'stable', upstream: 'flathub' } }])
  })
  it('refuses to publish an uploaded build of an id the repo mirrors, naming the upstream', () => {
    const commit = 'c'.repeat(64)
    const ready: BuildEvent[] = [
      { type: 'BuildCreated', data: { buildId: 5, repo: 'stable', appId: null, publicDownload: true, buildLogUrl: null, tokenName: 'bot', tokenType: null } },
      { type: 'BuildRefCreated', data: { buildId: 5, refId: 1, refName: 'app/org.gnome.Calculator/x86_64/stable', commit, buildLogUrl: null } },
      { type: 'BuildCommitRequested', data: { buildId: 5, jobId: 1, endOfLife: null, endOfLifeRebase: null, tokenType: null } },
      { type: 'BuildCommitted', data: { buildId: 5, refs: { 'app/org.gnome.Calculator/x86_64/stable': commit }, checks: [] } },
    ]
    deciderSpec(buildDecider)(ready)
      .when({ type: 'RequestPublish', data: { jobId: 2, mirrored: { 'org.gnome.Calculator': 'flathub' } } })
      .thenThrows(ConflictError, /org\.gnome\.Calculator is mirrored from upstream flathub in repo stable/)
  })
})
