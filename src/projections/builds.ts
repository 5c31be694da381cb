import type { PrismaTx } from '../db/database.ts'
import { evolve, type BuildState, type ExistingBuild } from '../domain/build/decider.ts'
import { buildEventTypes, type BuildEvent, type CheckStatus, type PublishedState, type RepoState } from '../domain/build/events.ts'
import type { InlineHandler } from '../eventStore/eventStore.ts'
import type { StoredEvent } from '../eventStore/types.ts'

const isBuildEvent = (event: StoredEvent): event is StoredEvent & BuildEvent => (buildEventTypes as readonly string[]).includes(event.type)

/**
 * Builds, their refs and their checks: the rows the API reads. The state machine (repo state,
 * published state, reasons, checks and their jobs) is not written here a second time: each
 * event goes through the build decider's own `evolve`, from the state the rows hold, and the
 * rows take the result. What the decider does not keep (upload counters, refs as uploaded,
 * check reasons and results, times) is written from the event.
 */
export const buildsProjection: InlineHandler = {
  name: 'builds',
  rebuildable: true,
  async handle(tx, event) {
    if (isBuildEvent(event)) await applyBuildEvent(tx, event, new Date(event.metadata.at))
  },
}

async function applyBuildEvent(tx: PrismaTx, event: BuildEvent, at: Date): Promise<void> {
  const id = event.data.buildId
  switch (event.type) {
    case 'BuildCreated': {
      const { buildId, repo, mirrorUpstream = null, ...rest } = event.data
      const state = evolve({ status: 'Nonexistent' }, event) as ExistingBuild
      await tx.build.create({ data: { id: buildId, repoName: repo, ...rest, mirrorUpstream, ...stateColumns(state), createdAt: at, updatedAt: at } })
      return
    }
    case 'BuildObjectsUploaded':
      await tx.build.update({
        where: { id },
        data: { uploadedObjects: { increment: event.data.objects }, uploadedBytes: { increment: event.data.bytes }, updatedAt: at },
      })
      return
    case 'BuildRefCreated': {
      const { refId, refName, commit, buildLogUrl } = event.data
      await tx.buildRef.upsert({
        where: { buildId_refName: { buildId: id, refName } },
        create: { id: refId, buildId: id, refName, commit, buildLogUrl, createdAt: at },
        update: { commit, buildLogUrl },
      })
      await tx.build.update({ where: { id }, data: { updatedAt: at } })
      return
    }
    default: {
      const before = await stateFromRows(tx, id)
      const after = evolve(before, event)
      if (after.status !== 'Existing') return
      await tx.build.update({ where: { id }, data: { ...stateColumns(after), updatedAt: at } })
      if (event.type === 'BuildPublished') {
        for (const [refName, publishedCommit] of Object.entries(event.data.refs)) {
          await tx.buildRef.updateMany({ where: { buildId: id, refName }, data: { publishedCommit } })
        }
      }
      for (const [name, check] of Object.entries(after.checks)) {
        const previous = before.status === 'Existing' ? before.checks[name] : undefined
        const reported = event.type === 'BuildCheckStatusChanged' && event.data.name === name ? event.data : null
        if (!previous) {
          await tx.check.create({ data: { buildId: id, name, jobId: check.jobId, status: check.status, updatedAt: at } })
        } else if (reported || previous.status !== check.status) {
          await tx.check.update({
            where: { buildId_name: { buildId: id, name } },
            data: {
              status: check.status,
              ...(reported ? { statusReason: reported.reason, ...(reported.results === null ? {} : { results: reported.results }) } : {}),
              updatedAt: at,
            },
          })
        }
      }
    }
  }
}

/** The build decider's state columns, as the rows store them. */
function stateColumns(state: ExistingBuild) {
  return {
    repoState: state.repoState,
    repoStateReason: state.repoStateReason,
    publishedState: state.publishedState,
    publishedStateReason: state.publishedStateReason,
    extraIds: [...state.extraIds],
    commitJobId: state.commitJobId,
    publishJobId: state.publishJobId,
  }
}

/**
 * The decider's state as the rows hold it, but for `refs`: left empty, since the rows never take
 * them from `evolve` (they keep the refs as uploaded; the committed commits matter only to the
 * decider's own idempotency check), so the append does not read them for every event.
 */
export async function stateFromRows(tx: Pick<PrismaTx, 'build'>, id: number): Promise<BuildState> {
  const row = await tx.build.findUnique({ where: { id }, include: { checks: true } })
  if (!row) return { status: 'Nonexistent' }
  return {
    status: 'Existing',
    id: row.id,
    repo: row.repoName,
    appId: row.appId,
    repoState: row.repoState as RepoState,
    repoStateReason: row.repoStateReason,
    publishedState: row.publishedState as PublishedState,
    publishedStateReason: row.publishedStateReason,
    mirrorUpstream: row.mirrorUpstream,
    refs: {},
    extraIds: row.extraIds,
    checks: Object.fromEntries(row.checks.map((check) => [check.name, { jobId: check.jobId, status: check.status as CheckStatus }])),
    commitJobId: row.commitJobId,
    publishJobId: row.publishJobId,
  }
}
