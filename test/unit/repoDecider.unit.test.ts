import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildDecider } from '../../src/domain/build/decider.ts'
import type { BuildEvent } from '../../src/domain/build/events.ts'
import { repoDecider, type RepoEvent } from '../../src/domain/repo/repo.ts'
import { ConflictError, InvalidInputError, NotFoundError } from '../../src/domain/shared/errors.ts'
import { deciderSpec } from '../support/decider.ts'

const spec = deciderSpec(repoDecider)
const settings = { path: '/srv/stable', title: null, collectionId: null, defaultBranch: null, baseUrl: null, gpgKey: null }
const configured: RepoEvent = { type: 'RepoConfigured', data: { name: 'stable', settings } }
const ref = 'app/org.example.App/x86_64/stable'
const commit = 'c'.repeat(64)

describe('repo decider: deltas', () => {
  it('keeps the latest planning\'s unwanted deltas until a summary update retires them', () => {
    const planned: RepoEvent = { type: 'RepoDeltasGenerated', data: { name: 'stable', generated: [], failed: [], unwanted: ['a', 'b'] } }
    spec([configured, planned]).when({ type: 'RecordSummaryUpdated', data: { retired: ['a'] } }).then([
      { type: 'RepoDeltasRetired', data: { name: 'stable', deltas: ['a'] } },
      { type: 'RepoSummaryUpdated', data: { name: 'stable' } },
    ])
  })
  it('refuses anything but configuration for a repo that is not configured', () => {
    spec([]).when({ type: 'RequestPrune', data: policy }).thenThrows(NotFoundError, 'No such repo')
  })
})

const policy = { depth: 3, keepYoungerThanDays: null, dryRun: false }

describe('repo decider: prune', () => {
  it('refuses a negative depth or a fractional age, naming the field', () => {
    spec([configured]).when({ type: 'RequestPrune', data: { ...policy, depth: -1 } }).thenThrows(InvalidInputError, /depth is the number of parents/, { field: 'depth' })
    spec([configured]).when({ type: 'RequestPrune', data: { ...policy, keepYoungerThanDays: 1.5 } }).thenThrows(InvalidInputError, /whole number of days/, { field: 'keepYoungerThanDays' })
  })
  it('takes one request per scheduled slot: the second server to fire changes nothing', () => {
    const slot = '2026-12-04T03:00:00.000Z'
    const first: RepoEvent = { type: 'RepoPruneRequested', data: { name: 'stable', ...policy, slot } }
    spec([configured]).when({ type: 'RequestPrune', data: { ...policy, slot } }).then([first])
    spec([configured, first]).when({ type: 'RequestPrune', data: { ...policy, slot } }).then([])
    spec([configured, first]).when({ type: 'RequestPrune', data: { ...policy, slot: '2026-12-05T03:00:00.000Z' } }).then([
      { type: 'RepoPruneRequested', data: { name: 'stable', ...policy, slot: '2026-12-05T03:00:00.000Z' } },
    ])
    spec([configured, first]).when({ type: 'RequestPrune', data: { ...policy, dryRun: true } }).then([{ type: 'RepoPruneRequested', data: { name: 'stable', ...policy, dryRun: true } }])
  })
  it('remembers each ref\'s latest rollback for the prune to keep, until the ref is deleted', () => {
    const other = 'd'.repeat(64)
    const rolled: RepoEvent = { type: 'RepoRolledBack', data: { name: 'stable', ref, from: other, to: commit, commit: 'e'.repeat(64) } }
    const state = [configured, rolled].reduce(repoDecider.evolve, repoDecider.initialState())
    assert.deepEqual(state.status === 'Configured' && state.rollbacks, { [ref]: { from: other, to: commit } })
    const deleted: RepoEvent = { type: 'RepoRefsDeleted', data: { name: 'stable', refs: [ref], reason: 'gone' } }
    const after = [configured, rolled, deleted].reduce(repoDecider.evolve, repoDecider.initialState())
    assert.deepEqual(after.status === 'Configured' && after.rollbacks, {})
  })
})

describe('repo decider: governance', () => {
  it('wants a reason to delete, and something to delete', () => {
    spec([configured]).when({ type: 'RequestDelete', data: { app: 'org.example.App', refs: [], reason: '  ', force: false } }).thenThrows(InvalidInputError, /reason is required/, { field: 'reason' })
    spec([configured]).when({ type: 'RequestDelete', data: { app: null, refs: [], reason: 'old', force: false } }).thenThrows(InvalidInputError, /Nothing to delete/)
    spec([configured]).when({ type: 'RequestDelete', data: { app: null, refs: ['app/broken'], reason: 'old', force: false } }).thenThrows(InvalidInputError, /Invalid ref_name/)
  })
  it('records a delete request with its reason', () => {
    spec([configured]).when({ type: 'RequestDelete', data: { app: 'org.example.App', refs: [], reason: 'unmaintained', force: false } }).then([
      { type: 'RepoDeleteRequested', data: { name: 'stable', app: 'org.example.App', refs: [], reason: 'unmaintained', force: false } },
    ])
  })
  it('rolls back only to a commit checksum', () => {
    spec([configured]).when({ type: 'RequestRollback', data: { ref, to: 'abc' } }).thenThrows(InvalidInputError)
    spec([configured]).when({ type: 'RequestRollback', data: { ref, to: commit } }).then([{ type: 'RepoRollbackRequested', data: { name: 'stable', ref, to: commit } }])
  })
  it('locks with a reason, once; unlocking an unlocked app changes nothing', () => {
    const locked: RepoEvent = { type: 'RepoAppLocked', data: { name: 'stable', app: 'org.example.App', reason: 'bug 42' } }
    spec([configured]).when({ type: 'LockApp', data: { app: 'org.example.App', reason: '' } }).thenThrows(InvalidInputError, /needs a reason/)
    spec([configured, locked]).when({ type: 'LockApp', data: { app: 'org.example.App', reason: 'bug 42' } }).then([])
    spec([configured]).when({ type: 'UnlockApp', data: { app: 'org.example.App' } }).then([])
    spec([configured, locked]).when({ type: 'UnlockApp', data: { app: 'org.example.App' } }).then([{ type: 'RepoAppUnlocked', data: { name: 'stable', app: 'org.example.App' } }])
  })
})

describe('build decider: a locked app is not published', () => {
  const build = deciderSpec(buildDecider)
  const ready: BuildEvent[] = [
    { type: 'BuildCreated', data: { buildId: 5, repo: 'stable', appId: null, publicDownload: true, buildLogUrl: null, tokenName: 'bot', tokenType: null } },
    { type: 'BuildRefCreated', data: { buildId: 5, refId: 1, refName: 'runtime/org.example.App.Locale/x86_64/stable', commit, buildLogUrl: null } },
    { type: 'BuildCommitRequested', data: { buildId: 5, jobId: 1, endOfLife: null, endOfLifeRebase: null, tokenType: null } },
    { type: 'BuildCommitted', data: { buildId: 5, refs: { 'runtime/org.example.App.Locale/x86_64/stable': commit }, checks: [] } },
  ]
  it('refuses a build of the locked app\'s extension, with the lock\'s reason', () => {
    build(ready).when({ type: 'RequestPublish', data: { jobId: 2, locks: { 'org.example.App': 'rolled back for bug 42' } } }).thenThrows(ConflictError, /App org\.example\.App is locked in repo stable: rolled back for bug 42/)
  })
  it('publishes when another app is locked', () => {
    build(ready).when({ type: 'RequestPublish', data: { jobId: 2, locks: { 'org.example.Other': 'x' } } }).then([{ type: 'BuildPublishRequested', data: { buildId: 5, jobId: 2 } }])
  })
})
