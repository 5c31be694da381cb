import type { RepoConfigured, RepoEvent } from '../domain/repo/repo.ts'
import type { TokenEvent } from '../domain/token/token.ts'
import type { InlineHandler } from '../eventStore/eventStore.ts'
import type { StoredEvent } from '../eventStore/types.ts'

const isRepoConfigured = (event: StoredEvent): event is StoredEvent & RepoConfigured => event.type === 'RepoConfigured'
const isRepoEvent = <T extends RepoEvent['type']>(event: StoredEvent, type: T): event is StoredEvent & Extract<RepoEvent, { type: T }> => event.type === type
const isTokenEvent = (event: StoredEvent): event is StoredEvent & TokenEvent => event.type.startsWith('Token')

export const reposProjection: InlineHandler = {
  name: 'repos',
  rebuildable: true,
  async handle(tx, event) {
    if (!isRepoConfigured(event)) return
    const { name, settings } = event.data
    const row = { ...settings, configuredAt: new Date(event.metadata.at) }
    await tx.repo.upsert({ where: { name }, create: { name, ...row }, update: row })
  },
}

export const tokensProjection: InlineHandler = {
  name: 'tokens',
  rebuildable: true,
  async handle(tx, event) {
    if (!isTokenEvent(event)) return
    const at = new Date(event.metadata.at)
    if (event.type === 'TokenRegistered') {
      const { jti, expiresAt, scope, repos, prefixes, apps, ...rest } = event.data
      const row = {
        ...rest,
        scope: [...scope],
        repos: [...repos],
        prefixes: [...prefixes],
        apps: [...apps],
        expiresAt: new Date(expiresAt),
        issuedAt: at,
      }
      await tx.token.upsert({ where: { jti }, create: { jti, ...row }, update: row })
    } else {
      const { jti } = event.data
      await tx.token.upsert({ where: { jti }, create: { jti, revokedAt: at }, update: { revokedAt: at } })
    }
  },
}

/**
 * The OCI images read model: one row per image, tags moved to the newest image of a repository
 * and architecture (an image pushed again under another tag keeps the tags it had). Images leave
 * with their refs (a delete) and by a prune.
 */
export const ociImagesProjection: InlineHandler = {
  name: 'oci_images',
  rebuildable: true,
  async handle(tx, event) {
    if (isRepoEvent(event, 'RepoRefsDeleted')) {
      await tx.ociImage.deleteMany({ where: { repoName: event.data.name, ref: { in: [...event.data.refs] } } })
      return
    }
    if (isRepoEvent(event, 'RepoPruned')) {
      const removed = event.data.ociImages ?? []
      if (!event.data.dryRun && removed.length) await tx.ociImage.deleteMany({ where: { OR: removed.map(({ repository, digest }) => ({ repository, digest })) } })
      return
    }
    if (!isRepoEvent(event, 'RepoOciImageExported') && !isRepoEvent(event, 'RepoOciImagePushed')) return
    const { name, size, ...image } = event.data
    const others = await tx.ociImage.findMany({ where: { repository: image.repository, architecture: image.architecture, NOT: { digest: image.digest } } })
    for (const other of others) {
      const tags = other.tags.filter((tag) => !image.tags.includes(tag))
      if (tags.length !== other.tags.length) await tx.ociImage.update({ where: { id: other.id }, data: { tags } })
    }
    const same = await tx.ociImage.findUnique({ where: { repository_digest: { repository: image.repository, digest: image.digest } }, select: { tags: true } })
    const row = { ...image, tags: [...new Set([...(same?.tags ?? []), ...image.tags])], repoName: name, size: BigInt(size), createdAt: new Date(event.metadata.at) }
    await tx.ociImage.upsert({ where: { repository_digest: { repository: image.repository, digest: image.digest } }, create: row, update: row })
  },
}

/**
 * What each repo serves, as its events left it: the refs with their commits and where each came
 * from, when they last changed, and how the last summary update and delta job went. The
 * dashboard's repo page reads it; clients trust the signed summary, never this.
 */
export const repoRefsProjection: InlineHandler = {
  name: 'repo_refs',
  rebuildable: true,
  async handle(tx, event) {
    const at = new Date(event.metadata.at)
    const setRefs = async (repoName: string, refs: Record<string, string>, source: string, buildId: number | null) => {
      for (const [ref, commit] of Object.entries(refs)) {
        const row = { commit, source, buildId, updatedAt: at }
        await tx.repoRef.upsert({ where: { repoName_ref: { repoName, ref } }, create: { repoName, ref, ...row }, update: row })
      }
      await tx.repo.updateMany({ where: { name: repoName }, data: { refsChangedAt: at } })
    }
    if (event.type === 'BuildPublished') {
      const { buildId, refs } = event.data as { buildId: number; refs: Record<string, string> }
      const build = await tx.build.findUnique({ where: { id: buildId }, select: { repoName: true } })
      if (build) await setRefs(build.repoName, refs, 'publish', buildId)
    } else if (isRepoEvent(event, 'RepoAppRepublished')) {
      await setRefs(event.data.name, event.data.refs, 'republish', null)
    } else if (isRepoEvent(event, 'RepoRolledBack')) {
      await setRefs(event.data.name, { [event.data.ref]: event.data.commit }, 'rollback', null)
    } else if (isRepoEvent(event, 'RepoRefsMirrored')) {
      await setRefs(event.data.name, event.data.refs, 'mirror', null)
    } else if (isRepoEvent(event, 'RepoRefsDeleted')) {
      await tx.repoRef.deleteMany({ where: { repoName: event.data.name, ref: { in: [...event.data.refs] } } })
      await tx.repo.updateMany({ where: { name: event.data.name }, data: { refsChangedAt: at } })
    } else if (isRepoEvent(event, 'RepoSummaryUpdated')) {
      await tx.repo.updateMany({ where: { name: event.data.name }, data: { summaryUpdatedAt: at } })
    } else if (isRepoEvent(event, 'RepoDeltasGenerated')) {
      await tx.repo.updateMany({ where: { name: event.data.name }, data: { deltasGeneratedAt: at, deltasFailed: [...event.data.failed] } })
    }
  },
}
