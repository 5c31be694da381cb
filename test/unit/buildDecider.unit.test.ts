import { describe, it } from 'node:test'
import { buildDecider } from '../../src/domain/build/decider.ts'
import type { BuildEvent } from '../../src/domain/build/events.ts'
import { ConflictError, InvalidInputError, NotFoundError, WrongStateError } from '../../src/domain/shared/errors.ts'
import { deciderSpec } from '../support/decider.ts'

const given = deciderSpec(buildDecider)
const buildId = 7
const commit = 'a'.repeat(64)
const appRef = 'app/org.example.App/x86_64/stable'

const created: BuildEvent = {
  type: 'BuildCreated',
  data: { buildId, repo: 'stable', appId: 'org.example.App', publicDownload: false, buildLogUrl: null, tokenName: 'bot', tokenType: 'app' },
}
const refCreated: BuildEvent = { type: 'BuildRefCreated', data: { buildId, refId: 1, refName: appRef, commit, buildLogUrl: null } }
const commitRequested: BuildEvent = {
  type: 'BuildCommitRequested',
  data: { buildId, jobId: 10, endOfLife: null, endOfLifeRebase: null, tokenType: null },
}
const committedNoChecks: BuildEvent = { type: 'BuildCommitted', data: { buildId, refs: { [appRef]: 'b'.repeat(64) }, checks: [] } }
const committedWithChecks: BuildEvent = {
  type: 'BuildCommitted',
  data: { buildId, refs: { [appRef]: 'b'.repeat(64) }, checks: [{ name: 'lint', jobId: 11 }, { name: 'scan', jobId: 12 }] },
}
const commitFailed: BuildEvent = { type: 'BuildCommitFailed', data: { buildId, reason: 'Couldn\'t find file object' } }
const publishRequested: BuildEvent = { type: 'BuildPublishRequested', data: { buildId, jobId: 20 } }
const published: BuildEvent = { type: 'BuildPublished', data: { buildId, refs: { [appRef]: 'c'.repeat(64) } } }
const publishFailed: BuildEvent = { type: 'BuildPublishFailed', data: { buildId, reason: 'hook failed' } }
const purgeRequested: BuildEvent = { type: 'BuildPurgeRequested', data: { buildId } }
const purged: BuildEvent = { type: 'BuildPurged', data: { buildId } }
const check = (name: string, status: 'Passed' | 'Failed' | 'ReviewRequired' | 'PassedWithWarnings'): BuildEvent => ({
  type: 'BuildCheckStatusChanged',
  data: { buildId, name, status, reason: null, results: null },
})

const uploading = [created, refCreated]
const committing = [...uploading, commitRequested]
const ready = [...committing, committedNoChecks]
const validating = [...committing, committedWithChecks]
const failed = [...committing, commitFailed]
const publishing = [...ready, publishRequested]
const publishedBuild = [...publishing, published]
const purging = [...ready, purgeRequested]
const purgedBuild = [...purging, purged]

const requestCommit = { type: 'RequestCommit', data: { jobId: 10, endOfLife: null, endOfLifeRebase: null, tokenType: null } } as const
const requestPublish = { type: 'RequestPublish', data: { jobId: 20 } } as const
const requestPurge = { type: 'RequestPurge', data: {} } as const
const createRef = { type: 'CreateBuildRef', data: { refId: 2, refName: appRef, commit: 'd'.repeat(64), buildLogUrl: null } } as const

describe('Build: creating', () => {
  it('creates a private build when an app id is given', () =>
    given([])
      .when({ type: 'CreateBuild', data: { ...created.data, publicDownload: null } as never })
      .then([created]))
  it('creates a public build without an app id (flat-manager default)', () =>
    given([])
      .when({ type: 'CreateBuild', data: { ...created.data, appId: null, publicDownload: null } as never })
      .then([{ type: 'BuildCreated', data: { ...created.data, appId: null, publicDownload: true } }]))
  it('refuses a malformed app id', () =>
    given([])
      .when({ type: 'CreateBuild', data: { ...created.data, appId: '../etc' } as never })
      .thenThrows(InvalidInputError, /Invalid app id "..\/etc"/))
  it('refuses to create a build twice', () =>
    given([created]).when({ type: 'CreateBuild', data: created.data as never }).thenThrows(ConflictError))
  it('answers not found for any other command on a missing build', () =>
    given([]).when(requestCommit).thenThrows(NotFoundError, 'Build not found'))
})

describe('Build: uploading', () => {
  it('records an upload batch', () =>
    given(uploading)
      .when({ type: 'RecordObjectsUploaded', data: { objects: 3, bytes: 4096 } })
      .then([{ type: 'BuildObjectsUploaded', data: { buildId, objects: 3, bytes: 4096 } }]))
  it('creates a ref', () => given([created]).when(createRef).then([{ type: 'BuildRefCreated', data: { buildId, ...createRef.data } }]))
  it('is a no-op when the ref already points at that commit', () =>
    given(uploading).when({ type: 'CreateBuildRef', data: { refId: 3, refName: appRef, commit, buildLogUrl: null } }).then([]))
  for (const refName of ['app/org.example.App/x86_64', 'foo/org.example.App/x86_64/stable', 'app/../x86_64/stable', 'screenshots/x86_64/extra']) {
    it(`refuses the ref name ${refName}`, () =>
      given(uploading)
        .when({ type: 'CreateBuildRef', data: { ...createRef.data, refName } })
        .thenThrows(InvalidInputError, new RegExp(`^Invalid ref_name ${refName.replace(/[.]/g, '\\.')}`)))
  }
  it('refuses a commit that is not a sha256', () =>
    given(uploading).when({ type: 'CreateBuildRef', data: { ...createRef.data, commit: 'abc' } }).thenThrows(InvalidInputError, /Invalid commit/))
  it('adds only new extra ids', () =>
    given([...uploading, { type: 'BuildExtraIdsAdded', data: { buildId, ids: ['org.example.App.Locale'] } }])
      .when({ type: 'AddExtraIds', data: { ids: ['org.example.App.Locale', 'org.example.App.Debug', 'org.example.App.Debug'] } })
      .then([{ type: 'BuildExtraIdsAdded', data: { buildId, ids: ['org.example.App.Debug'] } }]))
  it('refuses a malformed extra id', () =>
    given(uploading).when({ type: 'AddExtraIds', data: { ids: ['org..x'] } }).thenThrows(InvalidInputError, 'Invalid extra id org..x'))
  for (const [name, history] of [['committing', committing], ['ready', ready], ['purged', purgedBuild]] as const) {
    it(`refuses uploads, refs and extra ids once ${name}`, () => {
      const intents: Parameters<ReturnType<typeof given>['when']>[0][] = [
        { type: 'RecordObjectsUploaded', data: { objects: 1, bytes: 1 } },
        createRef,
        { type: 'AddExtraIds', data: { ids: ['org.example.X'] } },
      ]
      for (const intent of intents) {
        given([...history]).when(intent).thenThrows(WrongStateError, /Build is no longer accepting uploads/, {
          expectedState: 'uploading',
          currentState: name,
        })
      }
    })
  }
})

describe('Build: committing', () => {
  it('requests a commit', () =>
    given(uploading).when(requestCommit).then([{ type: 'BuildCommitRequested', data: { buildId, ...requestCommit.data } }]))
  it('refuses to commit a build without refs', () =>
    given([created]).when(requestCommit).thenThrows(InvalidInputError, /No refs in build/))
  const refusals = [
    ['committing', committing, 'Build is currently being committed'],
    ['ready', ready, 'Build is already committed'],
    ['validating', validating, 'Build is already committed'],
    ['failed', failed, "Commit already failed: Couldn't find file object"],
    ['purging', purging, 'Build has been purged'],
    ['purged', purgedBuild, 'Build has been purged'],
  ] as const
  for (const [state, history, message] of refusals) {
    it(`refuses to commit a ${state} build: "${message}"`, () =>
      given([...history]).when(requestCommit).thenThrows(WrongStateError, message, { stateKind: 'repo', expectedState: 'uploading', currentState: state }))
  }
  it('becomes ready when committed with no checks', () =>
    given(committing).when({ type: 'RecordCommitSucceeded', data: committedNoChecks.data as never }).then([committedNoChecks]))
  it('records a failed commit', () =>
    given(committing).when({ type: 'RecordCommitFailed', data: { reason: commitFailed.data.reason as string } }).then([commitFailed]))
  it('accepts the same commit outcome again (a re-run job) without new events', () =>
    given(ready).when({ type: 'RecordCommitSucceeded', data: committedNoChecks.data as never }).then([]))
  it('refuses a commit outcome for a build that is not committing', () =>
    given(uploading).when({ type: 'RecordCommitFailed', data: { reason: 'x' } }).thenThrows(WrongStateError, 'Build is not being committed'))
})

describe('Build: checks', () => {
  const setCheck = (name: string, status: 'Passed' | 'Failed' | 'ReviewRequired' | 'PassedWithWarnings') =>
    ({ type: 'SetCheckStatus', data: { name, status, reason: null, results: null } }) as const
  it('stays validating while a check is pending', () => given(validating).when(setCheck('lint', 'Passed')).then([check('lint', 'Passed')]))
  it('becomes ready when every check has passed', () =>
    given([...validating, check('lint', 'Passed')])
      .when(setCheck('scan', 'PassedWithWarnings'))
      .then([check('scan', 'PassedWithWarnings'), { type: 'BuildValidated', data: { buildId } }]))
  it('fails with flat-manager\'s count message when a check failed', () =>
    given([...validating, check('lint', 'Failed')])
      .when(setCheck('scan', 'Passed'))
      .then([check('scan', 'Passed'), { type: 'BuildValidationFailed', data: { buildId, reason: '1 out of 2 checks failed (lint)' } }]))
  it('waits for a review when a check requires one', () =>
    given([...validating, check('lint', 'Passed')]).when(setCheck('scan', 'ReviewRequired')).then([check('scan', 'ReviewRequired')]))
  it('lets a reviewer pass a check that required review', () =>
    given([...validating, check('lint', 'Passed'), check('scan', 'ReviewRequired')])
      .when(setCheck('scan', 'Passed'))
      .then([check('scan', 'Passed'), { type: 'BuildValidated', data: { buildId } }]))
  it('refuses an unknown check', () =>
    given(validating).when(setCheck('nope', 'Passed')).thenThrows(NotFoundError, `Build ${buildId} has no check named nope`))
  it('refuses to publish while validating', () =>
    given(validating).when(requestPublish).thenThrows(WrongStateError, 'Build is still validating', { expectedState: 'ready', currentState: 'validating' }))
})

describe('Build: publishing', () => {
  it('requests a publish of a ready build', () => given(ready).when(requestPublish).then([publishRequested]))
  const refusals = [
    ['publishing', publishing, 'Build is currently being published', 'published'],
    ['published', publishedBuild, 'Build has already been published', 'published'],
    ['failed', [...publishing, publishFailed], 'Previous publish failed: hook failed', 'published'],
    ['uploading', uploading, 'Build is not committed', 'repo'],
    ['committing', committing, 'Build is not committed', 'repo'],
    ['failed', failed, "Build failed: Couldn't find file object", 'repo'],
    ['purged', purgedBuild, 'Build has been purged', 'repo'],
  ] as const
  for (const [state, history, message, stateKind] of refusals) {
    it(`refuses to publish (${stateKind} state ${state}): "${message}"`, () =>
      given([...history]).when(requestPublish).thenThrows(WrongStateError, message, { stateKind, currentState: state }))
  }
  it('records a publish', () => given(publishing).when({ type: 'RecordPublishSucceeded', data: { refs: published.data.refs as never } }).then([published]))
  it('records a failed publish', () => given(publishing).when({ type: 'RecordPublishFailed', data: { reason: 'hook failed' } }).then([publishFailed]))
  it('accepts a repeated publish outcome without new events', () =>
    given(publishedBuild).when({ type: 'RecordPublishSucceeded', data: { refs: {} } }).then([]))
  it('refuses a publish outcome for a build that is not publishing', () =>
    given(ready).when({ type: 'RecordPublishFailed', data: { reason: 'x' } }).thenThrows(WrongStateError, 'Build is not being published'))
})

describe('Build: purging', () => {
  for (const [state, history] of [['uploading', uploading], ['ready', ready], ['failed', failed], ['published', publishedBuild]] as const) {
    it(`purges a ${state} build`, () => given([...history]).when(requestPurge).then([purgeRequested]))
  }
  for (const [state, history] of [['committing', committing], ['validating', validating], ['purging', purging], ['publishing', publishing]] as const) {
    it(`refuses to purge a ${state} build`, () => given([...history]).when(requestPurge).thenThrows(WrongStateError, "Can't prune build while in use"))
  }
  it('purging a purged build is a no-op', () => given(purgedBuild).when(requestPurge).then([]))
  it('completes a purge', () => given(purging).when({ type: 'RecordPurgeSucceeded', data: {} }).then([purged]))
  it('records a failed purge as a failed build', () =>
    given(purging)
      .when({ type: 'RecordPurgeFailed', data: { reason: 'Failed to Purge build: EBUSY' } })
      .then([{ type: 'BuildPurgeFailed', data: { buildId, reason: 'Failed to Purge build: EBUSY' } }]))
  it('refuses a purge outcome for a build that is not purging', () =>
    given(ready).when({ type: 'RecordPurgeSucceeded', data: {} }).thenThrows(WrongStateError, 'Build is not being purged'))
})
