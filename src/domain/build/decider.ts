import { ConflictError, InvalidInputError, NotFoundError, WrongStateError } from '../shared/errors.ts'
import { assertNever, type Decider } from '../shared/messages.ts'
import type { BuildCommand } from './commands.ts'
import type { BuildEvent, CheckStatus, PublishedState, RepoState } from './events.ts'
import { parseRef, validateAppId, validateCommitChecksum, validateExtraId } from './names.ts'

export type ExistingBuild = Readonly<{
  status: 'Existing'
  id: number
  repo: string
  appId: string | null
  repoState: RepoState
  repoStateReason: string | null
  publishedState: PublishedState
  publishedStateReason: string | null
  refs: Readonly<Record<string, string>>
  extraIds: readonly string[]
  checks: Readonly<Record<string, { jobId: number; status: CheckStatus }>>
  commitJobId: number | null
  publishJobId: number | null
  /** The upstream a mirror build's commits came from; null for an uploaded build. */
  mirrorUpstream: string | null
}>
export type BuildState = Readonly<{ status: 'Nonexistent' }> | ExistingBuild

export const initialState = (): BuildState => ({ status: 'Nonexistent' })

const lower = (state: string) => state.toLowerCase()

function wrongRepoState(message: string, expected: RepoState, current: RepoState): WrongStateError {
  // flat-manager reports Purging as "purged" and Validating-with-commit as "ready" in some places;
  // we report the real current state, which is what a person needs to act on.
  return new WrongStateError(message, 'repo', lower(expected), lower(current))
}

function requireBuild(state: BuildState): ExistingBuild {
  if (state.status === 'Nonexistent') throw new NotFoundError('Build not found')
  return state
}

/** The guard for everything an upload does (objects, refs, extra ids); the upload service checks it before it streams a byte. */
export function requireUploading(build: Pick<ExistingBuild, 'repoState'>): void {
  if (build.repoState !== 'Uploading') {
    throw wrongRepoState(
      `Build is no longer accepting uploads: it is ${lower(build.repoState)}`,
      'Uploading',
      build.repoState,
    )
  }
}

/** flat-manager's commit guard, message for message (api/build.rs). */
function requireCommittable(build: ExistingBuild): void {
  switch (build.repoState) {
    case 'Uploading':
      return
    case 'Committing':
      throw wrongRepoState('Build is currently being committed', 'Uploading', build.repoState)
    case 'Ready':
    case 'Validating':
      throw wrongRepoState('Build is already committed', 'Uploading', build.repoState)
    case 'Failed':
      throw wrongRepoState(`Commit already failed: ${build.repoStateReason ?? 'unknown reason'}`, 'Uploading', build.repoState)
    case 'Purging':
    case 'Purged':
      throw wrongRepoState('Build has been purged', 'Uploading', build.repoState)
    default:
      return assertNever(build.repoState)
  }
}

/** flat-manager's publish guard: published state first, then repo state. */
function requirePublishable(build: ExistingBuild): void {
  const published = (message: string) =>
    new WrongStateError(message, 'published', 'unpublished', lower(build.publishedState))
  switch (build.publishedState) {
    case 'Unpublished':
      break
    case 'Publishing':
      throw published('Build is currently being published')
    case 'Published':
      throw published('Build has already been published')
    case 'Failed':
      throw published(`Previous publish failed: ${build.publishedStateReason ?? 'unknown reason'}`)
    default:
      assertNever(build.publishedState)
  }
  switch (build.repoState) {
    case 'Ready':
      return
    case 'Uploading':
    case 'Committing':
      throw wrongRepoState('Build is not committed', 'Ready', build.repoState)
    case 'Validating':
      throw wrongRepoState('Build is still validating', 'Ready', build.repoState)
    case 'Failed':
      throw wrongRepoState(`Build failed: ${build.repoStateReason ?? 'unknown reason'}`, 'Ready', build.repoState)
    case 'Purging':
    case 'Purged':
      throw wrongRepoState('Build has been purged', 'Ready', build.repoState)
    default:
      return assertNever(build.repoState)
  }
}

/** An uploaded build of an id the repo mirrors is refused: the upstream owns it. */
function requireNotMirrored(build: ExistingBuild, mirrored: Readonly<Record<string, string>>): void {
  for (const refName of Object.keys(build.refs)) {
    const ref = parseRef(refName)
    if (ref.kind === 'screenshots') continue
    const upstream = mirrored[ref.id]
    if (upstream !== undefined && upstream !== build.mirrorUpstream) {
      throw new ConflictError(`${ref.id} is mirrored from upstream ${upstream} in repo ${build.repo}: its refs come from there, not from uploaded builds. Take it out of that upstream's refs and delete it from the repo to publish your own`)
    }
  }
}

/** A build of a locked app (or of its extensions, `<app>.Locale` …) is not published. */
function requireUnlocked(build: ExistingBuild, locks: Readonly<Record<string, string>>): void {
  for (const refName of Object.keys(build.refs)) {
    const ref = parseRef(refName)
    if (ref.kind === 'screenshots') continue
    const app = Object.keys(locks).find((locked) => ref.id === locked || ref.id.startsWith(`${locked}.`))
    if (app !== undefined) {
      throw new ConflictError(`App ${app} is locked in repo ${build.repo}: ${locks[app]}. A maintainer unlocks it (\`flatdepot unlock ${build.repo} ${app}\`) before its builds are published again`)
    }
  }
}

const finishedCheck = (status: CheckStatus) => status === 'Passed' || status === 'PassedWithWarnings' || status === 'Failed'

/** After a check changes: once every check has finished, the build is Ready or Failed. */
function validationOutcome(build: ExistingBuild, changed: { name: string; status: CheckStatus }): BuildEvent[] {
  if (build.repoState !== 'Validating') return []
  const statuses = Object.entries(build.checks).map(([name, check]) => ({
    name,
    status: name === changed.name ? changed.status : check.status,
  }))
  if (!statuses.every((check) => finishedCheck(check.status))) return []
  const failed = statuses.filter((check) => check.status === 'Failed').map((check) => check.name)
  if (failed.length === 0) return [{ type: 'BuildValidated', data: { buildId: build.id } }]
  const reason = `${failed.length} out of ${statuses.length} checks failed (${failed.join(', ')})`
  return [{ type: 'BuildValidationFailed', data: { buildId: build.id, reason } }]
}

const sameRefs = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([ref, commit]) => b[ref] === commit)

export function decide(command: BuildCommand, state: BuildState): BuildEvent[] {
  if (command.type === 'CreateBuild') {
    if (state.status === 'Existing') throw new ConflictError(`Build ${state.id} already exists`)
    const { appId } = command.data
    if (appId !== null) validateAppId(appId)
    return [
      {
        type: 'BuildCreated',
        data: {
          ...command.data,
          // flat-manager: public unless an app id is given.
          publicDownload: command.data.publicDownload ?? appId === null,
        },
      },
    ]
  }
  const build = requireBuild(state)
  const buildId = build.id
  switch (command.type) {
    case 'RecordObjectsUploaded':
      requireUploading(build)
      return [{ type: 'BuildObjectsUploaded', data: { buildId, ...command.data } }]
    case 'CreateBuildRef': {
      requireUploading(build)
      parseRef(command.data.refName)
      validateCommitChecksum(command.data.commit)
      if (build.refs[command.data.refName] === command.data.commit) return []
      return [{ type: 'BuildRefCreated', data: { buildId, ...command.data } }]
    }
    case 'AddExtraIds': {
      requireUploading(build)
      command.data.ids.forEach(validateExtraId)
      const fresh = [...new Set(command.data.ids)].filter((id) => !build.extraIds.includes(id))
      return fresh.length ? [{ type: 'BuildExtraIdsAdded', data: { buildId, ids: fresh } }] : []
    }
    case 'RequestCommit':
      requireCommittable(build)
      if (Object.keys(build.refs).length === 0) {
        throw new InvalidInputError('No refs in build: create at least one ref before committing', 'refs')
      }
      return [{ type: 'BuildCommitRequested', data: { buildId, ...command.data } }]
    case 'RecordMirrorImported':
      if (build.mirrorUpstream === null) throw new ConflictError(`Build ${buildId} was uploaded: only a mirror sync imports commits into a build`)
      if ((build.repoState === 'Ready' || build.repoState === 'Validating') && sameRefs(build.refs, command.data.refs)) return []
      if (build.repoState !== 'Uploading') throw wrongRepoState('Build is not waiting for its commits', 'Uploading', build.repoState)
      return [{ type: 'BuildCommitted', data: { buildId, ...command.data } }]
    case 'RecordCommitSucceeded':
      // A worker that crashed after recording its outcome runs again: the same outcome is a no-op.
      if ((build.repoState === 'Ready' || build.repoState === 'Validating') && sameRefs(build.refs, command.data.refs)) {
        return []
      }
      if (build.repoState !== 'Committing') {
        throw wrongRepoState('Build is not being committed', 'Committing', build.repoState)
      }
      return [{ type: 'BuildCommitted', data: { buildId, ...command.data } }]
    case 'RecordCommitFailed':
      if (build.repoState === 'Failed') return []
      if (build.repoState !== 'Committing') {
        throw wrongRepoState('Build is not being committed', 'Committing', build.repoState)
      }
      return [{ type: 'BuildCommitFailed', data: { buildId, reason: command.data.reason } }]
    case 'SetCheckStatus': {
      const check = build.checks[command.data.name]
      if (!check) throw new NotFoundError(`Build ${buildId} has no check named ${command.data.name}`)
      if (build.repoState === 'Purging' || build.repoState === 'Purged') {
        throw wrongRepoState('Build has been purged', 'Validating', build.repoState)
      }
      return [
        { type: 'BuildCheckStatusChanged', data: { buildId, ...command.data } },
        ...validationOutcome(build, command.data),
      ]
    }
    case 'RequestPublish':
      requirePublishable(build)
      requireUnlocked(build, command.data.locks ?? {})
      requireNotMirrored(build, command.data.mirrored ?? {})
      return [{ type: 'BuildPublishRequested', data: { buildId, jobId: command.data.jobId } }]
    case 'RecordPublishSucceeded':
      if (build.publishedState === 'Published') return []
      if (build.publishedState !== 'Publishing') {
        throw new WrongStateError('Build is not being published', 'published', 'publishing', lower(build.publishedState))
      }
      return [{ type: 'BuildPublished', data: { buildId, refs: command.data.refs } }]
    case 'RecordPublishFailed':
      if (build.publishedState === 'Failed') return []
      if (build.publishedState !== 'Publishing') {
        throw new WrongStateError('Build is not being published', 'published', 'publishing', lower(build.publishedState))
      }
      return [{ type: 'BuildPublishFailed', data: { buildId, reason: command.data.reason } }]
    case 'RequestPurge': {
      const busy = ['Committing', 'Purging', 'Validating'].includes(build.repoState) || build.publishedState === 'Publishing'
      if (busy) throw wrongRepoState("Can't prune build while in use", 'Ready', build.repoState)
      // Purging a purged build is a no-op (flat-manager answers 200 and clients rely on it).
      if (build.repoState === 'Purged') return []
      return [{ type: 'BuildPurgeRequested', data: { buildId } }]
    }
    case 'RecordPurgeSucceeded':
      if (build.repoState === 'Purged') return []
      if (build.repoState !== 'Purging') throw wrongRepoState('Build is not being purged', 'Purging', build.repoState)
      return [{ type: 'BuildPurged', data: { buildId } }]
    case 'RecordPurgeFailed':
      if (build.repoState !== 'Purging') throw wrongRepoState('Build is not being purged', 'Purging', build.repoState)
      return [{ type: 'BuildPurgeFailed', data: { buildId, reason: command.data.reason } }]
    default:
      return assertNever(command)
  }
}

export function evolve(state: BuildState, event: BuildEvent): BuildState {
  if (event.type === 'BuildCreated') {
    return {
      status: 'Existing',
      id: event.data.buildId,
      repo: event.data.repo,
      appId: event.data.appId,
      repoState: 'Uploading',
      repoStateReason: null,
      publishedState: 'Unpublished',
      publishedStateReason: null,
      refs: {},
      extraIds: [],
      checks: {},
      commitJobId: null,
      publishJobId: null,
      mirrorUpstream: event.data.mirrorUpstream ?? null,
    }
  }
  if (state.status === 'Nonexistent') return state
  switch (event.type) {
    case 'BuildObjectsUploaded':
      return state
    case 'BuildRefCreated':
      return { ...state, refs: { ...state.refs, [event.data.refName]: event.data.commit } }
    case 'BuildExtraIdsAdded':
      return { ...state, extraIds: [...state.extraIds, ...event.data.ids] }
    case 'BuildCommitRequested':
      return { ...state, repoState: 'Committing', commitJobId: event.data.jobId }
    case 'BuildCommitted': {
      const checks = Object.fromEntries(
        event.data.checks.map((check) => [check.name, { jobId: check.jobId, status: 'Pending' as const }]),
      )
      const repoState = event.data.checks.length ? 'Validating' : 'Ready'
      return { ...state, refs: event.data.refs, checks, repoState }
    }
    case 'BuildCommitFailed':
      return { ...state, repoState: 'Failed', repoStateReason: event.data.reason }
    case 'BuildCheckStatusChanged': {
      const check = state.checks[event.data.name]
      if (!check) return state
      return { ...state, checks: { ...state.checks, [event.data.name]: { ...check, status: event.data.status } } }
    }
    case 'BuildValidated':
      return { ...state, repoState: 'Ready' }
    case 'BuildValidationFailed':
      return { ...state, repoState: 'Failed', repoStateReason: event.data.reason }
    case 'BuildPublishRequested':
      return { ...state, publishedState: 'Publishing', publishJobId: event.data.jobId }
    case 'BuildPublished':
      return { ...state, publishedState: 'Published' }
    case 'BuildPublishFailed':
      return { ...state, publishedState: 'Failed', publishedStateReason: event.data.reason }
    case 'BuildPurgeRequested':
      return { ...state, repoState: 'Purging' }
    case 'BuildPurged':
      return { ...state, repoState: 'Purged' }
    case 'BuildPurgeFailed':
      return { ...state, repoState: 'Failed', repoStateReason: event.data.reason }
    default:
      return assertNever(event)
  }
}

export const buildDecider: Decider<BuildState, BuildCommand, BuildEvent> = { decide, evolve, initialState }
export const buildStreamId = (buildId: number) => `build-${buildId}`
