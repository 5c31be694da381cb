import type { PrismaTx } from '../db/database.ts'
import type { BuildEvent } from '../domain/build/events.ts'
import { assertNever } from '../domain/shared/messages.ts'
import type { InlineHandler } from '../eventStore/eventStore.ts'
import type { StoredEvent } from '../eventStore/types.ts'

const buildEventTypes = new Set<string>([
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
] satisfies BuildEvent['type'][])

const isBuildEvent = (event: StoredEvent): event is StoredEvent & BuildEvent => buildEventTypes.has(event.type)

/** Builds, their refs and their checks: the rows the API reads. */
export const buildsProjection: InlineHandler = {
  name: 'builds',
  rebuildable: true,
  async handle(tx, event) {
    if (isBuildEvent(event)) await applyBuildEvent(tx, event, new Date(event.metadata.at))
  },
}

async function applyBuildEvent(tx: PrismaTx, event: BuildEvent, at: Date): Promise<void> {
  const id = event.data.buildId
  const update = (data: Parameters<PrismaTx['build']['update']>[0]['data']) =>
    tx.build.update({ where: { id }, data: { ...data, updatedAt: at } })
  switch (event.type) {
    case 'BuildCreated': {
      const { buildId, repo, ...rest } = event.data
      await tx.build.create({
        data: {
          id: buildId,
          repoName: repo,
          ...rest,
          repoState: 'Uploading',
          publishedState: 'Unpublished',
          extraIds: [],
          createdAt: at,
          updatedAt: at,
        },
      })
      return
    }
    case 'BuildObjectsUploaded':
      await update({
        uploadedObjects: { increment: event.data.objects },
        uploadedBytes: { increment: event.data.bytes },
      })
      return
    case 'BuildRefCreated': {
      const { refId, refName, commit, buildLogUrl } = event.data
      await tx.buildRef.upsert({
        where: { buildId_refName: { buildId: id, refName } },
        create: { id: refId, buildId: id, refName, commit, buildLogUrl, createdAt: at },
        update: { commit, buildLogUrl },
      })
      await update({})
      return
    }
    case 'BuildExtraIdsAdded':
      await update({ extraIds: { push: event.data.ids } })
      return
    case 'BuildCommitRequested':
      await update({ repoState: 'Committing', commitJobId: event.data.jobId })
      return
    case 'BuildCommitted':
      await tx.check.createMany({
        data: event.data.checks.map((check) => ({
          buildId: id,
          name: check.name,
          jobId: check.jobId,
          status: 'Pending',
          updatedAt: at,
        })),
      })
      await update({ repoState: event.data.checks.length ? 'Validating' : 'Ready' })
      return
    case 'BuildCommitFailed':
    case 'BuildValidationFailed':
    case 'BuildPurgeFailed':
      await update({ repoState: 'Failed', repoStateReason: event.data.reason })
      return
    case 'BuildCheckStatusChanged': {
      const { name, status, reason, results } = event.data
      await tx.check.update({
        where: { buildId_name: { buildId: id, name } },
        data: { status, statusReason: reason, ...(results === null ? {} : { results }), updatedAt: at },
      })
      return
    }
    case 'BuildValidated':
      await update({ repoState: 'Ready' })
      return
    case 'BuildPublishRequested':
      await update({ publishedState: 'Publishing', publishJobId: event.data.jobId })
      return
    case 'BuildPublished':
      await update({ publishedState: 'Published' })
      return
    case 'BuildPublishFailed':
      await update({ publishedState: 'Failed', publishedStateReason: event.data.reason })
      return
    case 'BuildPurgeRequested':
      await update({ repoState: 'Purging' })
      return
    case 'BuildPurged':
      await update({ repoState: 'Purged' })
      return
    default:
      assertNever(event)
  }
}
