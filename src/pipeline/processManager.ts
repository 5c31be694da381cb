import type { BuildCommand } from '../domain/build/commands.ts'
import { buildDecider, buildStreamId } from '../domain/build/decider.ts'
import type { DomainEvent } from '../domain/events.ts'
import { jobDecider, jobStreamId, type JobKind } from '../domain/job/job.ts'
import { DomainError } from '../domain/shared/errors.ts'
import type { Intent, Reaction, Reactor, UnitOfWork } from '../eventStore/unitOfWork.ts'
import { enqueue, type Enqueued } from '../jobs/enqueue.ts'

export type PipelineSettings = Readonly<{
  /** flat-manager's delay-update-secs: publishes within this window share one repo update. */
  delayUpdateSecs: number
  /** Repos with an `export`: each summary update is followed by an export. */
  exporting?: ReadonlySet<string>
  /** Repos with `oci`: each summary update is followed by an OCI export of what changed. */
  oci?: ReadonlySet<string>
}>

/**
 * The build pipeline's workflow, in one place: which job follows which fact. It runs inside the
 * unit of work that decided the fact (see UnitOfWork.settle), so a follow-up job is queued in the
 * same transaction as its cause or not at all.
 *
 *   commit requested ─▶ commit job ─▶ build committed ─▶ one check job per configured check
 *   publish requested ─▶ publish job ─▶ build published ─▶ repo update (after delay-update-secs, shared)
 *   republish requested ─▶ republish job ─▶ app republished ─▶ repo update (the same way)
 *   prune requested ─▶ prune job ─▶ pruned ─▶ deltas planned again (shared)
 *   delete / rollback requested ─▶ delete / rollback job ─▶ refs deleted / rolled back ─▶ repo update
 *   mirror sync requested ─▶ mirror-sync job ─▶ refs mirrored ─▶ repo update
 *   purge requested ─▶ purge job
 *   summary updated ─▶ export job (shared, repos with an export)
 *   summary updated ─▶ delta job (shared) ─▶ deltas generated or unwanted ─▶ repo update (shared)
 *   a commit, check, publish or purge job failed ─▶ the build records that failure
 *
 * The delta job queues an update only when there is something to index or retire; that update
 * queues the delta job again, which then finds nothing to do, and the loop ends.
 */
export function pipelineReactor(settings: PipelineSettings): Reactor {
  return async (unit, events) => {
    const reactions: Reaction[] = []
    const react = (kind: JobKind, queued: Enqueued, note: string) => reactions.push({ kind, ...queued, note })
    for (const event of events) {
      for (const [kind, queued, note] of await followUps(unit, event, settings)) react(kind, queued, note)
    }
    return reactions
  }
}

type FollowUp = [JobKind, Enqueued, string]

async function followUps(unit: UnitOfWork, event: DomainEvent, settings: PipelineSettings): Promise<FollowUp[]> {
  switch (event.type) {
    case 'BuildCommitRequested': {
      const { buildId, jobId, endOfLife, endOfLifeRebase, tokenType } = event.data
      const queued = await enqueue(unit, 'commit', { build: buildId, endOfLife, endOfLifeRebase, tokenType }, { jobId })
      return [['commit', queued, `Queued commit job ${queued.jobId}`]]
    }
    case 'BuildCommitted': {
      const { buildId } = event.data
      const queued: FollowUp[] = []
      for (const check of event.data.checks) {
        const job = await enqueue(unit, 'check', { build: buildId, name: check.name }, { jobId: check.jobId })
        queued.push(['check', job, `Queued check ${check.name} (job ${job.jobId})`])
      }
      return queued
    }
    case 'BuildPublishRequested': {
      const repo = await buildRepo(unit, event.data.buildId)
      const queued = await enqueue(unit, 'publish', { build: event.data.buildId }, { jobId: event.data.jobId, repo })
      return [['publish', queued, `Queued publish job ${queued.jobId}`]]
    }
    case 'BuildPurgeRequested': {
      const queued = await enqueue(unit, 'purge', { build: event.data.buildId })
      return [['purge', queued, `Queued purge job ${queued.jobId}`]]
    }
    case 'BuildPublished':
      return [await scheduleRepoUpdate(unit, await buildRepo(unit, event.data.buildId), settings)]
    case 'RepoAppRepublished':
      return [await scheduleRepoUpdate(unit, event.data.name, settings)]
    case 'RepoDeleteRequested': {
      const { name, app, refs, reason, force } = event.data
      const queued = await enqueue(unit, 'delete', { repo: name, app, refs, reason, force })
      return [['delete', queued, `Queued delete job ${queued.jobId}`]]
    }
    case 'RepoRollbackRequested': {
      const { name, ref, to } = event.data
      const queued = await enqueue(unit, 'rollback', { repo: name, ref, to })
      return [['rollback', queued, `Queued rollback job ${queued.jobId}`]]
    }
    case 'RepoMirrorSyncRequested': {
      const queued = await enqueue(unit, 'mirror-sync', { repo: event.data.name, upstream: event.data.upstream })
      return [['mirror-sync', queued, `Queued mirror sync job ${queued.jobId}`]]
    }
    case 'RepoRefsMirrored':
    case 'RepoRefsDeleted':
    case 'RepoRolledBack':
      return [await scheduleRepoUpdate(unit, event.data.name, settings)]
    case 'RepoPruneRequested': {
      // Events from before prune policies: flat-manager's prune, three parents deep.
      const { name, depth = 3, keepYoungerThanDays = null, dryRun = false } = event.data
      const queued = await enqueue(unit, 'prune', { repo: name, depth, keepYoungerThanDays, dryRun })
      return [['prune', queued, `Queued ${dryRun ? 'dry-run ' : ''}prune job ${queued.jobId}`]]
    }
    case 'RepoPruned': {
      // Commits went: the deltas are planned again, and those whose commits went are retired.
      if (event.data.dryRun || !event.data.objects) return []
      const queued = await enqueue(unit, 'delta', { repo: event.data.name })
      return [['delta', queued, queued.joined ? `The static deltas are planned again in delta job ${queued.jobId}` : `Queued static delta job ${queued.jobId}`]]
    }
    case 'RepoRepublishRequested': {
      const { name, app, endOfLife, endOfLifeRebase } = event.data
      const queued = await enqueue(unit, 'republish', { repo: name, app, endOfLife, endOfLifeRebase })
      return [['republish', queued, `Queued republish job ${queued.jobId}`]]
    }
    case 'RepoSummaryUpdated': {
      const queued = await enqueue(unit, 'delta', { repo: event.data.name })
      const followUps: FollowUp[] = [['delta', queued, queued.joined ? `The static deltas follow in delta job ${queued.jobId}` : `Queued static delta job ${queued.jobId}`]]
      if (settings.oci?.has(event.data.name)) {
        const images = await enqueue(unit, 'oci-export', { repo: event.data.name })
        followUps.push(['oci-export', images, images.joined ? `The OCI images follow in job ${images.jobId}` : `Queued OCI export job ${images.jobId}`])
      }
      if (settings.exporting?.has(event.data.name)) {
        const exported = await enqueue(unit, 'export', { repo: event.data.name })
        followUps.push(['export', exported, exported.joined ? `The export follows in job ${exported.jobId}` : `Queued export job ${exported.jobId}`])
      }
      return followUps
    }
    case 'RepoExportRequested': {
      const queued = await enqueue(unit, 'export', { repo: event.data.name })
      return [['export', queued, queued.joined ? `Joined the waiting export job ${queued.jobId}` : `Queued export job ${queued.jobId}`]]
    }
    case 'RepoDeltasGenerated': {
      const { name, generated, unwanted } = event.data
      if (generated.length === 0 && unwanted.length === 0) return []
      const queued = await enqueue(unit, 'update-repo', { repo: name })
      const note = queued.joined
        ? `The summary follows in update job ${queued.jobId}`
        : `Queued repository update job ${queued.jobId} for the summary`
      return [['update-repo', queued, note]]
    }
    case 'JobFailed':
      await recordFailureOnBuild(unit, event.data.jobId, event.data.error)
      return []
    default:
      return []
  }
}

/**
 * What a failed job means for its build: the commit, publish or purge failed, or the check did.
 * A build that has moved on (purged meanwhile) refuses it; the job still ends as failed.
 */
async function recordFailureOnBuild(unit: UnitOfWork, jobId: number, error: string): Promise<void> {
  const job = await unit.state(jobDecider, jobStreamId(jobId), 'job')
  if (job.status === 'Nonexistent' || job.buildId === null) return
  const intent = failureIntent(job.kind, job.contents, error)
  if (!intent) return
  try {
    await unit.decide(buildDecider, buildStreamId(job.buildId), 'build', intent)
  } catch (refused) {
    if (!(refused instanceof DomainError)) throw refused
  }
}

function failureIntent(kind: JobKind, contents: Readonly<Record<string, unknown>>, reason: string): Intent<BuildCommand> | null {
  switch (kind) {
    case 'commit':
      return { type: 'RecordCommitFailed', data: { reason } }
    case 'publish':
      return { type: 'RecordPublishFailed', data: { reason } }
    case 'purge':
      return { type: 'RecordPurgeFailed', data: { reason: `Failed to Purge build: ${reason}` } }
    case 'check':
      return { type: 'SetCheckStatus', data: { name: String(contents.name ?? ''), status: 'Failed', reason, results: null } }
    default:
      return null
  }
}

/**
 * The repo update that makes a publish visible, batched by delay-update-secs: a publish joins an
 * update that has not started yet, else queues one that starts after the delay. Both run in the
 * repo's queue, so an update never overlaps a publish.
 */
async function scheduleRepoUpdate(unit: UnitOfWork, repo: string, settings: PipelineSettings): Promise<FollowUp> {
  const startAfter = new Date(unit.metadata.now.getTime() + settings.delayUpdateSecs * 1000)
  const queued = await enqueue(unit, 'update-repo', { repo }, { startAfter })
  const note = queued.joined
    ? `Piggy-backed on existing update job ${queued.jobId}`
    : `Queued repository update job ${queued.jobId} in ${settings.delayUpdateSecs} secs`
  return ['update-repo', queued, note]
}

async function buildRepo(unit: UnitOfWork, buildId: number): Promise<string> {
  const build = await unit.state(buildDecider, buildStreamId(buildId), 'build')
  if (build.status === 'Nonexistent') throw new Error(`build ${buildId} has no events`)
  return build.repo
}
