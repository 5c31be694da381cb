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
export type RepoEvent = RepoConfigured

export type ConfigureRepo = Command<'ConfigureRepo', { name: string; settings: RepoSettings }>
export type RepoCommand = ConfigureRepo

export type RepoState = Readonly<{ status: 'Unconfigured' }> | Readonly<{ status: 'Configured'; settings: RepoSettings }>

export const initialState = (): RepoState => ({ status: 'Unconfigured' })

const sameSettings = (a: RepoSettings, b: RepoSettings) =>
  (Object.keys(a) as (keyof RepoSettings)[]).every((key) => a[key] === b[key])

export function decide(command: RepoCommand, state: RepoState): RepoEvent[] {
  switch (command.type) {
    case 'ConfigureRepo':
      // Start-up replays the config every time; only a change is a fact worth recording.
      if (state.status === 'Configured' && sameSettings(state.settings, command.data.settings)) return []
      return [{ type: 'RepoConfigured', data: command.data }]
    default:
      return assertNever(command.type)
  }
}

export function evolve(_state: RepoState, event: RepoEvent): RepoState {
  switch (event.type) {
    case 'RepoConfigured':
      return { status: 'Configured', settings: event.data.settings }
    default:
      return assertNever(event.type)
  }
}

export const repoDecider: Decider<RepoState, RepoCommand, RepoEvent> = { decide, evolve, initialState }
export const repoStreamId = (name: string) => `repo-${name}`
