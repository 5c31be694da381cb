import type { Command } from '../shared/messages.ts'
import type { CheckStatus } from './events.ts'

export type CreateBuild = Command<
  'CreateBuild',
  {
    buildId: number
    repo: string
    appId: string | null
    publicDownload: boolean | null
    buildLogUrl: string | null
    tokenName: string | null
    tokenType: string | null
    mirrorUpstream?: string | null
  }
>
export type RecordObjectsUploaded = Command<'RecordObjectsUploaded', { objects: number; bytes: number }>
export type CreateBuildRef = Command<
  'CreateBuildRef',
  { refId: number; refName: string; commit: string; buildLogUrl: string | null }
>
export type AddExtraIds = Command<'AddExtraIds', { ids: string[] }>
export type RequestCommit = Command<
  'RequestCommit',
  { jobId: number; endOfLife: string | null; endOfLifeRebase: string | null; tokenType: number | null }
>
/** A mirror build's upstream commits, verified and copied into its build repo unchanged: committed without a commit job. */
export type RecordMirrorImported = Command<'RecordMirrorImported', { refs: Record<string, string>; checks: { name: string; jobId: number }[] }>
export type RecordCommitSucceeded = Command<
  'RecordCommitSucceeded',
  { refs: Record<string, string>; checks: { name: string; jobId: number }[] }
>
export type RecordCommitFailed = Command<'RecordCommitFailed', { reason: string }>
export type SetCheckStatus = Command<
  'SetCheckStatus',
  { name: string; status: CheckStatus; reason: string | null; results: string | null }
>
/** `locks`: the repo's locked apps and why (a locked app's builds are not published). */
/** `mirrored`: ids the repo takes from an upstream, and which (their uploaded builds are not published). */
export type RequestPublish = Command<'RequestPublish', { jobId: number; locks?: Readonly<Record<string, string>>; mirrored?: Readonly<Record<string, string>> }>
export type RecordPublishSucceeded = Command<'RecordPublishSucceeded', { refs: Record<string, string> }>
export type RecordPublishFailed = Command<'RecordPublishFailed', { reason: string }>
export type RequestPurge = Command<'RequestPurge', Record<string, never>>
export type RecordPurgeSucceeded = Command<'RecordPurgeSucceeded', Record<string, never>>
export type RecordPurgeFailed = Command<'RecordPurgeFailed', { reason: string }>

export type BuildCommand =
  | CreateBuild
  | RecordMirrorImported
  | RecordObjectsUploaded
  | CreateBuildRef
  | AddExtraIds
  | RequestCommit
  | RecordCommitSucceeded
  | RecordCommitFailed
  | SetCheckStatus
  | RequestPublish
  | RecordPublishSucceeded
  | RecordPublishFailed
  | RequestPurge
  | RecordPurgeSucceeded
  | RecordPurgeFailed
