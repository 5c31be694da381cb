import { validateAppId } from '../build/names.ts'
import { NotFoundError } from '../shared/errors.ts'
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
/** A maintainer asked for unreachable objects to be removed (flat-manager's prune). */
export type RepoPruneRequested = Event<'RepoPruneRequested', { name: string }>
export type RepoPruned = Event<'RepoPruned', { name: string }>
/**
 * A maintainer asked for an app already in the repo to be committed again (flat-manager's
 * republish): through the publish hook, optionally end-of-life.
 */
export type RepoRepublishRequested = Event<'RepoRepublishRequested', { name: string; app: string; endOfLife: string | null; endOfLifeRebase: string | null }>
export type RepoAppRepublished = Event<'RepoAppRepublished', { name: string; app: string; refs: Record<string, string> }>
export type RepoEvent =
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
export type RequestPrune = Command<'RequestPrune', Record<string, never>>
export type RecordPruned = Command<'RecordPruned', Record<string, never>>
export type RequestRepublish = Command<'RequestRepublish', { app: string; endOfLife: string | null; endOfLifeRebase: string | null }>
export type RecordRepublished = Command<'RecordRepublished', { app: string; refs: Record<string, string> }>
export type RepoCommand = ConfigureRepo | RecordDeltasGenerated | RecordSummaryUpdated | RequestPrune | RecordPruned | RequestRepublish | RecordRepublished

export type RepoState =
  | Readonly<{ status: 'Unconfigured' }>
  | Readonly<{ status: 'Configured'; name: string; settings: RepoSettings; retiring: readonly string[] }>

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
    case 'RequestPrune':
      return [{ type: 'RepoPruneRequested', data: { name } }]
    case 'RecordPruned':
      return [{ type: 'RepoPruned', data: { name } }]
    case 'RequestRepublish':
      validateAppId(command.data.app)
      return [{ type: 'RepoRepublishRequested', data: { name, ...command.data } }]
    case 'RecordRepublished':
      return [{ type: 'RepoAppRepublished', data: { name, ...command.data } }]
    default:
      return assertNever(command)
  }
}

export function evolve(state: RepoState, event: RepoEvent): RepoState {
  switch (event.type) {
    case 'RepoConfigured':
      return { status: 'Configured', name: event.data.name, settings: event.data.settings, retiring: state.status === 'Configured' ? state.retiring : [] }
    case 'RepoDeltasGenerated':
      // The latest planning is the whole truth about what is unwanted.
      return state.status === 'Configured' ? { ...state, retiring: event.data.unwanted } : state
    case 'RepoDeltasRetired':
      return state.status === 'Configured' ? { ...state, retiring: state.retiring.filter((delta) => !event.data.deltas.includes(delta)) } : state
    case 'RepoSummaryUpdated':
    case 'RepoPruneRequested':
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
