import { existsSync } from 'node:fs'
import path from 'node:path'
import type { RepoConfig } from '../config/config.ts'
import { repoGpgKeys } from '../config/config.ts'
import { repoDecider, repoStreamId, type PrunePolicy } from '../domain/repo/repo.ts'
import type { CommandRunner, Intent } from '../eventStore/unitOfWork.ts'
import type { RepoCommand } from '../domain/repo/repo.ts'
import { ConflictError, NotFoundError } from '../domain/shared/errors.ts'
import { refsToDelete, runtimeStillUsed } from '../ostree/deletion.ts'
import { checkAppId, checkClaims, checkRepo, checkScope, isGlobalForApps, type Claims } from '../domain/token/claims.ts'
import { parseRef } from '../domain/build/names.ts'
import { allow, commandMetadata, requireClaims, systemActor, type Actor } from './actor.ts'

/** Who asks for a repo's scheduled prunes, in the audit log. */
const scheduler: Actor = { ...systemActor, systemName: 'scheduler' }

/** Records each configured repo's settings as events when they changed since the last start. */
export async function syncRepoConfig(run: CommandRunner, repos: Iterable<RepoConfig>): Promise<number> {
  const { events } = await run(commandMetadata(systemActor), async (unit) => {
    for (const repo of repos) {
      await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', {
        type: 'ConfigureRepo',
        data: {
          name: repo.name,
          settings: {
            path: repo.path,
            title: repo.title ?? null,
            collectionId: repo['collection-id'] ?? null,
            defaultBranch: repo['default-branch'] ?? null,
            baseUrl: repo['base-url'] ?? null,
            gpgKey: repoGpgKeys(repo).join(',') || null,
          },
        },
      })
    }
  })
  return events.length
}

/** A ref's id must be covered by the token (a screenshots ref needs a token for every app). */
function refIdReason(claims: Claims, refName: string): string | null {
  const ref = parseRef(refName)
  return ref.kind === 'screenshots' ? (isGlobalForApps(claims) ? null : 'A screenshots ref needs a token for every app') : checkAppId(claims, ref.id)
}

/** Maintenance of a repo as a whole: prune, republish (the governance issue adds more). */
export function createRepoService({ run, repos }: { run: CommandRunner; repos: ReadonlyMap<string, RepoConfig> }) {
  const repoExists = (name: string) => repos.has(name)
  const requireUpstream = (repo: string, upstream: string) => {
    const configured = repos.get(repo)
    if (configured && !configured.upstreams[upstream]) {
      throw new NotFoundError(`Repo ${repo} has no upstream "${upstream}" (configured: ${Object.keys(configured.upstreams).join(', ') || 'none'})`)
    }
  }
  const prunePolicy = (repo: string, options: Partial<PrunePolicy>): PrunePolicy => {
    const configured = repos.get(repo)?.prune
    return {
      depth: options.depth ?? configured?.depth ?? 3,
      keepYoungerThanDays: options.keepYoungerThanDays !== undefined ? options.keepYoungerThanDays : (configured?.['keep-younger-than-days'] ?? null),
      dryRun: options.dryRun ?? false,
    }
  }
  /** Decides on the repo's stream; the pipeline queues the job, whose id comes back. */
  async function decideWithJob(actor: Actor, repo: string, intent: Intent<RepoCommand>, kind: string): Promise<number> {
    const jobId = await decideMaybeJob(actor, repo, intent, kind)
    if (jobId === null) throw new Error(`the pipeline queued no ${kind} job`)
    return jobId
  }
  /** null: the decision changed nothing (a scheduled slot another server took). */
  async function decideMaybeJob(actor: Actor, repo: string, intent: Intent<RepoCommand>, kind: string): Promise<number | null> {
    if (!repoExists(repo)) throw new NotFoundError(`No such repo "${repo}"`)
    const { result } = await run(commandMetadata(actor), async (unit) => {
      const events = await unit.decide(repoDecider, repoStreamId(repo), 'repo', intent)
      if (events.length === 0) return null
      return (await unit.settle()).find((reaction) => reaction.kind === kind)?.jobId ?? null
    })
    return result
  }

  return {
    /**
     * Prunes a repo, or dry-runs it. Scope `prune`, or flat-manager's `tokenmanagement` (it checks
     * nothing else; flatdepot also wants the repo among the token's repos). What is not given
     * comes from the repo's `prune` config (depth 3, as flat-manager).
     */
    async requestPrune(actor: Actor, repo: string, options: Partial<PrunePolicy> = {}): Promise<number> {
      const claims = requireClaims(actor)
      const scoped = checkScope(claims, 'prune')
      allow(scoped && checkScope(claims, 'tokenmanagement') ? scoped : null)
      allow(checkRepo(claims, repo))
      return decideWithJob(actor, repo, { type: 'RequestPrune', data: prunePolicy(repo, options) }, 'prune')
    },

    /**
     * The repo's scheduled prune, by its own config (the actor is the scheduler). Each server
     * fires its schedule; the repo's stream takes one request per `slot`, so one job runs.
     */
    async schedulePrune(repo: string, slot: string): Promise<number | null> {
      return decideMaybeJob(scheduler, repo, { type: 'RequestPrune', data: { ...prunePolicy(repo, {}), slot } }, 'prune')
    },

    /** Syncs one of the repo's upstreams now. Scope `mirror`. */
    async requestMirrorSync(actor: Actor, repo: string, upstream: string): Promise<number> {
      const claims = requireClaims(actor)
      allow(checkClaims(claims, 'build', 'mirror'))
      allow(checkRepo(claims, repo))
      requireUpstream(repo, upstream)
      return decideWithJob(actor, repo, { type: 'RequestMirrorSync', data: { upstream } }, 'mirror-sync')
    },

    /** Refreshes the repo's export for downstream mirrors now (updates do it by themselves). Scope `mirror`. */
    async requestExport(actor: Actor, repo: string): Promise<number> {
      const claims = requireClaims(actor)
      allow(checkClaims(claims, 'build', 'mirror'))
      allow(checkRepo(claims, repo))
      if (repos.get(repo) && !repos.get(repo)!.export) throw new NotFoundError(`Repo ${repo} has no "export" in the config`)
      return decideWithJob(actor, repo, { type: 'RequestExport', data: {} }, 'export')
    },

    /** An upstream's scheduled sync (one request per slot across servers, as the prunes). */
    async scheduleMirrorSync(repo: string, upstream: string, slot: string): Promise<number | null> {
      return decideMaybeJob(scheduler, repo, { type: 'RequestMirrorSync', data: { upstream, slot } }, 'mirror-sync')
    },

    /** Deletes an app (with its extensions) or named refs; a reason is required. Scope `delete`. */
    async requestDelete(actor: Actor, repo: string, input: { app: string | null; refs: string[]; reason: string; force: boolean }): Promise<number> {
      const claims = requireClaims(actor)
      allow(checkClaims(claims, 'build', 'delete'))
      allow(checkRepo(claims, repo))
      if (input.app) allow(checkAppId(claims, input.app))
      for (const ref of input.refs) allow(refIdReason(claims, ref))
      const config = repos.get(repo)
      if (config && !input.force && existsSync(path.join(config.path, 'config'))) {
        // Refused here, where the maintainer sees it; the job checks again in the repo's queue.
        const { present, selected } = await refsToDelete(config.path, input)
        const inUse = await runtimeStillUsed(config.path, present, selected)
        if (inUse) throw new ConflictError(inUse)
      }
      return decideWithJob(actor, repo, { type: 'RequestDelete', data: input }, 'delete')
    },

    /** Rolls a ref back to an earlier commit of its history. Scope `rollback`. */
    async requestRollback(actor: Actor, repo: string, input: { ref: string; to: string }): Promise<number> {
      const claims = requireClaims(actor)
      allow(checkClaims(claims, 'build', 'rollback'))
      allow(checkRepo(claims, repo))
      allow(refIdReason(claims, input.ref))
      return decideWithJob(actor, repo, { type: 'RequestRollback', data: input }, 'rollback')
    },

    /** Locks (reason given) or unlocks an app: its builds are not published while locked. Scope `rollback`. */
    async setLock(actor: Actor, repo: string, app: string, reason: string | null): Promise<void> {
      const claims = requireClaims(actor)
      allow(checkClaims(claims, 'build', 'rollback'))
      allow(checkRepo(claims, repo))
      allow(checkAppId(claims, app))
      if (!repoExists(repo)) throw new NotFoundError(`No such repo "${repo}"`)
      await run(commandMetadata(actor), (unit) =>
        unit.decide(repoDecider, repoStreamId(repo), 'repo', reason === null ? { type: 'UnlockApp', data: { app } } : { type: 'LockApp', data: { app, reason } }),
      )
    },

    /** flat-manager's republish: sub "build", scope `republish`, the app and the repo in the token. */
    async requestRepublish(actor: Actor, repo: string, input: { app: string; endOfLife: string | null; endOfLifeRebase: string | null }): Promise<number> {
      const claims = requireClaims(actor)
      allow(checkClaims(claims, 'build', 'republish'))
      allow(checkAppId(claims, input.app))
      allow(checkRepo(claims, repo))
      return decideWithJob(actor, repo, { type: 'RequestRepublish', data: input }, 'republish')
    },
  }
}

export type RepoService = ReturnType<typeof createRepoService>
