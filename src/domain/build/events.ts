import type { Event } from '../shared/messages.ts'

export const repoStates = ['Uploading', 'Committing', 'Validating', 'Ready', 'Failed', 'Purging', 'Purged'] as const
export type RepoState = (typeof repoStates)[number]

export const publishedStates = ['Unpublished', 'Publishing', 'Published', 'Failed'] as const
export type PublishedState = (typeof publishedStates)[number]

export const checkStatuses = ['Pending', 'Passed', 'PassedWithWarnings', 'Failed', 'ReviewRequired'] as const
export type CheckStatus = (typeof checkStatuses)[number]

export type BuildCreated = Event<
  'BuildCreated',
  {
    buildId: number
    repo: string
    appId: string | null
    publicDownload: boolean
    buildLogUrl: string | null
    tokenName: string | null
    tokenType: string | null
    /** A build a mirror sync made of an upstream's commits (absent: uploaded). */
    mirrorUpstream?: string | null
  }
>
/** One event per upload request (a batch of objects), never one per object. */
export type BuildObjectsUploaded = Event<'BuildObjectsUploaded', { buildId: number; objects: number; bytes: number }>
export type BuildRefCreated = Event<
  'BuildRefCreated',
  { buildId: number; refId: number; refName: string; commit: string; buildLogUrl: string | null }
>
export type BuildExtraIdsAdded = Event<'BuildExtraIdsAdded', { buildId: number; ids: string[] }>
export type BuildCommitRequested = Event<
  'BuildCommitRequested',
  { buildId: number; jobId: number; endOfLife: string | null; endOfLifeRebase: string | null; tokenType: number | null }
>
export type BuildCommitted = Event<
  'BuildCommitted',
  { buildId: number; refs: Record<string, string>; checks: { name: string; jobId: number }[] }
>
export type BuildCommitFailed = Event<'BuildCommitFailed', { buildId: number; reason: string }>
export type BuildCheckStatusChanged = Event<
  'BuildCheckStatusChanged',
  { buildId: number; name: string; status: CheckStatus; reason: string | null; results: string | null }
>
export type BuildValidated = Event<'BuildValidated', { buildId: number }>
export type BuildValidationFailed = Event<'BuildValidationFailed', { buildId: number; reason: string }>
export type BuildPublishRequested = Event<'BuildPublishRequested', { buildId: number; jobId: number }>
export type BuildPublished = Event<'BuildPublished', { buildId: number; refs: Record<string, string> }>
export type BuildPublishFailed = Event<'BuildPublishFailed', { buildId: number; reason: string }>
export type BuildPurgeRequested = Event<'BuildPurgeRequested', { buildId: number }>
export type BuildPurged = Event<'BuildPurged', { buildId: number }>
export type BuildPurgeFailed = Event<'BuildPurgeFailed', { buildId: number; reason: string }>

export type BuildEvent =
  | BuildCreated
  | BuildObjectsUploaded
  | BuildRefCreated
  | BuildExtraIdsAdded
  | BuildCommitRequested
  | BuildCommitted
  | BuildCommitFailed
  | BuildCheckStatusChanged
  | BuildValidated
  | BuildValidationFailed
  | BuildPublishRequested
  | BuildPublished
  | BuildPublishFailed
  | BuildPurgeRequested
  | BuildPurged
  | BuildPurgeFailed

export const buildEventTypes = [
  'BuildCreated',
  'BuildObjectsUploaded',
  'BuildRefCreated',
  'BuildExtraIdsAdded',
  'BuildCommitRequested',
  'BuildCommitted',
  'BuildCommitFailed',
  'BuildCheckStatusChanged',
  'BuildValidated',
  'BuildValidationFailed',
  'BuildPublishRequested',
  'BuildPublished',
  'BuildPublishFailed',
  'BuildPurgeRequested',
  'BuildPurged',
  'BuildPurgeFailed',
] as const satisfies readonly BuildEvent['type'][]
/** Fails to compile when an event type is missing from the list above. */
export const everyBuildEventListed: [Exclude<BuildEvent['type'], (typeof buildEventTypes)[number]>] extends [never] ? true : never = true
