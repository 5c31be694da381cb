import { parseRef, validateAppId, validateCommitChecksum } from '../build/names.ts'
import { ConflictError, InvalidInputError, NotFoundError } from '../shared/errors.ts'
import { assertNever, type Command, type Decider, type Event } from '../shared/messages.ts'

/** What the event log records of a repo's configuration (the config file is the source). */
export type RepoSettings = Readonly<{
  path: string
  title: string | null
  collectionId: string | null
  defaultBranch: string | null
  baseUrl: string | null
  gpgKey: string | null
}>

export type RepoConfigured = Event<'RepoConfigured', { name: string; settings: RepoSettings }>
/**
 * A delta job planned the repo's static deltas: the ones it made (and the ones that failed) are
 * in deltas/ now, and `unwanted` are there no longer wanted, for the next summary update to
 * retire. Delta names are ostree's (`FROM-TO`, or `TO` for a delta from nothing).
 */
export type RepoDeltasGenerated = Event<'RepoDeltasGenerated', { name: string; generated: string[]; failed: string[]; unwanted: string[] }>
/** Deltas moved out of deltas/ (still served for an hour to clients that hold the previous summary). */
export type RepoDeltasRetired = Event<'RepoDeltasRetired', { name: string; deltas: string[] }>
/** The repo's appstream branches and signed summary were regenerated: what was published is installable. */
export type RepoSummaryUpdated = Event<'RepoSummaryUpdated', { name: string }>
/**
 * How far a prune keeps each ref's history: `depth` parents of every ref (ostree's `--depth`: 0
 * keeps only the commit a ref points at), and besides them every commit younger than
 * `keepYoungerThanDays` (when set). A dry run only reports what would go.
 */
export type PrunePolicy = Readonly<{ depth: number; keepYoungerThanDays: number | null; dryRun: boolean }>
/** A maintainer (or the repo's schedule) asked for the objects no kept commit needs to be removed. Events from before prune policies carry only the name. */
export type RepoPruneRequested = Event<'RepoPruneRequested', { name: string; slot?: string | null } & Partial<PrunePolicy>>
/** What a prune removed (or, dry, would remove): objects and their bytes on disk; what it kept for builds in progress and rollbacks. */
export type RepoPruned = Event<'RepoPruned', { name: string } & Partial<PrunePolicy & PruneReport>>
export type PruneReport = Readonly<{
  objects: number
  bytes: number
  heldBuilds: number[]
  heldCommits: number
  /** OCI images the prune removes (repos with `oci`): past the depth, older than the age kept. */
  ociImages?: readonly Readonly<{ repository: string; digest: string }>[]
}>
/**
 * A maintainer asked for an app already in the repo to be committed again (flat-manager's
 * republish): through the publish hook, optionally end-of-life.
 */
export type RepoRepublishRequested = Event<'RepoRepublishRequested', { name: string; app: string; endOfLife: string | null; endOfLifeRebase: string | null }>
export type RepoAppRepublished = Event<'RepoAppRepublished', { name: string; app: string; refs: Record<string, string> }>
/** A maintainer asked for refs to leave the repo; the reason is required and kept. */
export type RepoDeleteRequested = Event<'RepoDeleteRequested', { name: string; app: string | null; refs: string[]; reason: string; force: boolean }>
export type RepoRefsDeleted = Event<'RepoRefsDeleted', { name: string; refs: string[]; reason: string }>
/** A maintainer asked for a ref to get an earlier commit's content as a new commit on top. */
export type RepoRollbackRequested = Event<'RepoRollbackRequested', { name: string; ref: string; to: string }>
export type RepoRolledBack = Event<'RepoRolledBack', { name: string; ref: string; from: string; to: string; commit: string }>
/** While an app is locked, builds of it are not published (a rollback is not overwritten by the next CI run). */
export type RepoAppLocked = Event<'RepoAppLocked', { name: string; app: string; reason: string }>
export type RepoAppUnlocked = Event<'RepoAppUnlocked', { name: string; app: string }>
/** Someone (or the upstream's schedule) asked for the repo's refs from an upstream to be brought up to date. */
export type RepoMirrorSyncRequested = Event<'RepoMirrorSyncRequested', { name: string; upstream: string; slot?: string | null }>
/** Refs pulled from an upstream (its signatures verified) and now in the repo, at these commits. */
export type RepoRefsMirrored = Event<'RepoRefsMirrored', { name: string; upstream: string; refs: Record<string, string> }>
/** A copy for downstream mirrors was asked for (by hand; updates ask by themselves) and made. */
export type RepoExportRequested = Event<'RepoExportRequested', { name: string }>
export type RepoExported = Event<'RepoExported', { name: string; generation: string; linked: number; removed: number }>
/** What an OCI image of a ref is: the registry index and the distribution API serve these. */
export type OciImageRecord = Readonly<{
  repository: string
  ref: string
  commit: string
  digest: string
  mediaType: string
  os: string
  architecture: string
  tags: string[]
  labels: Record<string, string>
  annotations: Record<string, string>
  size: number
}>
/** A ref exported as an OCI image (its blobs stored by digest); its tags move to it from the repository's older images. */
export type RepoOciImageExported = Event<'RepoOciImageExported', { name: string } & OciImageRecord>
/** An image pushed through the registry's push API (skopeo, an OCI build system): indexed like an exported one. */
export type RepoOciImagePushed = Event<'RepoOciImagePushed', { name: string } & OciImageRecord>
export type RepoEvent =
  | RepoOciImageExported
  | RepoOciImagePushed
  | RepoExportRequested
  | RepoExported
  | RepoMirrorSyncRequested
  | RepoRefsMirrored
  | RepoDeleteRequested
  | RepoRefsDeleted
  | RepoRollbackRequested
  | RepoRolledBack
  | RepoAppLocked
  | RepoAppUnlocked
  | RepoConfigured
  | RepoDeltasGenerated
  | RepoDeltasRetired
  | RepoSummaryUpdated
  | RepoPruneRequested
  | RepoPruned
  | RepoRepublishRequested
  | RepoAppRepublished

export type ConfigureRepo = Command<'ConfigureRepo', { name: string; settings: RepoSettings }>
export type RecordDeltasGenerated = Command<'RecordDeltasGenerated', { generated: string[]; failed: string[]; unwanted: string[] }>
/** `retired`: the deltas the update moved aside before it wrote the summary. */
export type RecordSummaryUpdated = Command<'RecordSummaryUpdated', { retired: string[] }>
/** `slot`: a scheduled prune's time; servers that share the database ask for each slot once. */
export type RequestPrune = Command<'RequestPrune', PrunePolicy & { slot?: string | null }>
export type RecordPruned = Command<'RecordPruned', PrunePolicy & PruneReport>
export type RequestRepublish = Command<'RequestRepublish', { app: string; endOfLife: string | null; endOfLifeRebase: string | null }>
export type RecordRepublished = Command<'RecordRepublished', { app: string; refs: Record<string, string> }>
/** `app`: the app and its extensions (`<app>.Locale` …), every arch and branch; or `refs`, named one by one. */
export type RequestDelete = Command<'RequestDelete', { app: string | null; refs: string[]; reason: string; force: boolean }>
export type RecordDeleted = Command<'RecordDeleted', { refs: string[]; reason: string }>
export type RequestRollback = Command<'RequestRollback', { ref: string; to: string }>
export type RecordRolledBack = Command<'RecordRolledBack', { ref: string; from: string; to: string; commit: string }>
export type LockApp = Command<'LockApp', { app: string; reason: string }>
export type UnlockApp = Command<'UnlockApp', { app: string }>
export type RequestMirrorSync = Command<'RequestMirrorSync', { upstream: string; slot?: string | null }>
export type RecordMirrored = Command<'RecordMirrored', { upstream: string; refs: Record<string, string> }>
export type RequestExport = Command<'RequestExport', Record<string, never>>
export type RecordExported = Command<'RecordExported', { generation: string; linked: number; removed: number }>
export type RecordOciImage = Command<'RecordOciImage', OciImageRecord>
export type RecordOciPush = Command<'RecordOciPush', OciImageRecord>
export type RepoCommand =
  | RecordOciImage
  | RecordOciPush
  | RequestExport
  | RecordExported
  | RequestMirrorSync
  | RecordMirrored
  | RequestDelete
  | RecordDeleted
  | RequestRollback
  | RecordRolledBack
  | LockApp
  | UnlockApp
  | ConfigureRepo | RecordDeltasGenerated | RecordSummaryUpdated | RequestPrune | RecordPruned | RequestRepublish | RecordRepublished

export type RepoState =
  | Readonly<{ status: 'Unconfigured' }>
  | Readonly<{
      status: 'Configured'
      name: string
      settings: RepoSettings
      retiring: readonly string[]
      /** Locked apps and why. */
      locks: Readonly<Record<string, string>>
      /**
       * Each ref's latest rollback: the commit it left and the one whose content it took. A prune
       * keeps both, so the rollback can be undone (or done again) whatever the depth.
       */
      rollbacks: Readonly<Record<string, Readonly<{ from: string; to: string }>>>
      /** Ids (apps, runtimes, extensions) that come from an upstream, and which: uploads of them are refused. */
      mirrored: Readonly<Record<string, string>>
      /** Each schedule's latest slot (`prune`, `sync:<upstream>`): servers sharing a database ask once per slot. */
      scheduledSlots: Readonly<Record<string, string>>
    }>

export const initialState = (): RepoState => ({ status: 'Unconfigured' })

const sameSettings = (a: RepoSettings, b: RepoSettings) =>
  (Object.keys(a) as (keyof RepoSettings)[]).every((key) => a[key] === b[key])

export function decide(command: RepoCommand, state: RepoState): RepoEvent[] {
  if (command.type === 'ConfigureRepo') {
    // Start-up replays the config every time; only a change is a fact worth recording.
    if (state.status === 'Configured' && sameSettings(state.settings, command.data.settings)) return []
    return [{ type: 'RepoConfigured', data: command.data }]
  }
  if (state.status === 'Unconfigured') throw new NotFoundError('No such repo')
  const { name } = state
  switch (command.type) {
    case 'RecordDeltasGenerated':
      return [{ type: 'RepoDeltasGenerated', data: { name, ...command.data } }]
    case 'RecordSummaryUpdated': {
      const retired = command.data.retired
      return [...(retired.length ? [{ type: 'RepoDeltasRetired' as const, data: { name, deltas: retired } }] : []), { type: 'RepoSummaryUpdated', data: { name } }]
    }
    case 'RequestPrune': {
      const { depth, keepYoungerThanDays, slot } = command.data
      if (slot && state.scheduledSlots.prune === slot) return []
      if (!Number.isInteger(depth) || depth < 0) throw new InvalidInputError('depth is the number of parents kept behind each ref\'s commit: 0 or more', 'depth')
      if (keepYoungerThanDays !== null && (!Number.isInteger(keepYoungerThanDays) || keepYoungerThanDays < 0)) {
        throw new InvalidInputError('keepYoungerThanDays is a whole number of days, 0 or more', 'keepYoungerThanDays')
      }
      return [{ type: 'RepoPruneRequested', data: { name, ...command.data } }]
    }
    case 'RecordPruned':
      return [{ type: 'RepoPruned', data: { name, ...command.data } }]
    case 'RequestExport':
      return [{ type: 'RepoExportRequested', data: { name } }]
    case 'RecordOciImage':
      return [{ type: 'RepoOciImageExported', data: { name, ...command.data } }]
    case 'RecordOciPush': {
      // A push publishes: what refuses a publish of the app refuses its image too.
      const id = parseRef(command.data.ref)
      const app = id.kind === 'screenshots' ? null : id.id
      if (app && state.locks[app] !== undefined) {
        throw new ConflictError(`App ${app} is locked in repo ${name}: ${state.locks[app]}. A maintainer unlocks it (\`flatdepot unlock ${name} ${app}\`) before new images of it are taken`)
      }
      if (app && state.mirrored[app] !== undefined) {
        throw new ConflictError(`${app} in repo ${name} comes from the upstream "${state.mirrored[app]}": its images come from there, not from pushes`)
      }
      return [{ type: 'RepoOciImagePushed', data: { name, ...command.data } }]
    }
    case 'RecordExported':
      return [{ type: 'RepoExported', data: { name, ...command.data } }]
    case 'RequestMirrorSync': {
      const { upstream, slot } = command.data
      if (slot && state.scheduledSlots[`sync:${upstream}`] === slot) return []
      return [{ type: 'RepoMirrorSyncRequested', data: { name, upstream, ...(slot ? { slot } : {}) } }]
    }
    case 'RecordMirrored':
      if (Object.keys(command.data.refs).length === 0) return []
      return [{ type: 'RepoRefsMirrored', data: { name, ...command.data } }]
    case 'RequestRepublish':
      validateAppId(command.data.app)
      return [{ type: 'RepoRepublishRequested', data: { name, ...command.data } }]
    case 'RecordRepublished':
      return [{ type: 'RepoAppRepublished', data: { name, ...command.data } }]
    case 'RequestDelete': {
      if (!command.data.reason.trim()) throw new InvalidInputError('A reason is required to delete from a repo: it is kept in the audit log', 'reason')
      if (command.data.refs.length === 0 && command.data.app === null) throw new InvalidInputError('Nothing to delete: name an app or refs', 'refs')
      if (command.data.app !== null) validateAppId(command.data.app)
      command.data.refs.forEach(parseRef)
      return [{ type: 'RepoDeleteRequested', data: { name, ...command.data } }]
    }
    case 'RecordDeleted':
      return [{ type: 'RepoRefsDeleted', data: { name, ...command.data } }]
    case 'RequestRollback':
      parseRef(command.data.ref)
      validateCommitChecksum(command.data.to)
      return [{ type: 'RepoRollbackRequested', data: { name, ...command.data } }]
    case 'RecordRolledBack':
      return [{ type: 'RepoRolledBack', data: { name, ...command.data } }]
    case 'LockApp':
      validateAppId(command.data.app)
      if (!command.data.reason.trim()) throw new InvalidInputError('A lock needs a reason: it is what a refused publish says', 'reason')
      if (state.locks[command.data.app] === command.data.reason) return []
      return [{ type: 'RepoAppLocked', data: { name, ...command.data } }]
    case 'UnlockApp':
      if (!(command.data.app in state.locks)) return []
      return [{ type: 'RepoAppUnlocked', data: { name, app: command.data.app } }]
    default:
      return assertNever(command)
  }
}

const scheduled = (state: RepoState, task: string, slot: string | null | undefined): RepoState =>
  state.status === 'Configured' && slot ? { ...state, scheduledSlots: { ...state.scheduledSlots, [task]: slot } } : state

export function evolve(state: RepoState, event: RepoEvent): RepoState {
  switch (event.type) {
    case 'RepoConfigured':
      return state.status === 'Configured'
        ? { ...state, settings: event.data.settings }
        : { status: 'Configured', name: event.data.name, settings: event.data.settings, retiring: [], locks: {}, rollbacks: {}, mirrored: {}, scheduledSlots: {} }
    case 'RepoDeltasGenerated':
      // The latest planning is the whole truth about what is unwanted.
      return state.status === 'Configured' ? { ...state, retiring: event.data.unwanted } : state
    case 'RepoDeltasRetired':
      return state.status === 'Configured' ? { ...state, retiring: state.retiring.filter((delta) => !event.data.deltas.includes(delta)) } : state
    case 'RepoAppLocked':
      return state.status === 'Configured' ? { ...state, locks: { ...state.locks, [event.data.app]: event.data.reason } } : state
    case 'RepoAppUnlocked': {
      if (state.status !== 'Configured') return state
      const { [event.data.app]: _unlocked, ...locks } = state.locks
      return { ...state, locks }
    }
    case 'RepoRolledBack':
      return state.status === 'Configured' ? { ...state, rollbacks: { ...state.rollbacks, [event.data.ref]: { from: event.data.from, to: event.data.to } } } : state
    case 'RepoRefsDeleted': {
      if (state.status !== 'Configured') return state
      const rollbacks = Object.fromEntries(Object.entries(state.rollbacks).filter(([ref]) => !event.data.refs.includes(ref)))
      const deletedIds = new Set(event.data.refs.map((refName) => parseRef(refName)).flatMap((ref) => (ref.kind === 'screenshots' ? [] : [ref.id])))
      const mirrored = Object.fromEntries(Object.entries(state.mirrored).filter(([id]) => !deletedIds.has(id)))
      return { ...state, rollbacks, mirrored }
    }
    case 'RepoPruneRequested':
      return scheduled(state, 'prune', event.data.slot)
    case 'RepoMirrorSyncRequested':
      return scheduled(state, `sync:${event.data.upstream}`, event.data.slot)
    case 'RepoRefsMirrored': {
      if (state.status !== 'Configured') return state
      const ids = Object.keys(event.data.refs).flatMap((refName) => {
        const ref = parseRef(refName)
        return ref.kind === 'screenshots' ? [] : [[ref.id, event.data.upstream] as const]
      })
      return { ...state, mirrored: { ...state.mirrored, ...Object.fromEntries(ids) } }
    }
    case 'RepoOciImageExported':
    case 'RepoOciImagePushed':
    case 'RepoExportRequested':
    case 'RepoExported':
    case 'RepoDeleteRequested':
    case 'RepoRollbackRequested':
    case 'RepoSummaryUpdated':
    case 'RepoPruned':
    case 'RepoRepublishRequested':
    case 'RepoAppRepublished':
      return state
    default:
      return assertNever(event)
  }
}

export const repoDecider: Decider<RepoState, RepoCommand, RepoEvent> = { decide, evolve, initialState }
export const repoStreamId = (name: string) => `repo-${name}`
