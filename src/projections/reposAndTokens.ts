import type { RepoConfigured, RepoEvent } from '../domain/repo/repo.ts'
import type { TokenEvent } from '../domain/token/token.ts'
import { json, sql, type SqlValue } from '../db/sql.ts'
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
    const { path, title, collectionId, defaultBranch, baseUrl, gpgKey } = settings
    tx.write(sql`
      INSERT INTO repos (name, path, title, collection_id, default_branch, base_url, gpg_key, configured_at)
      VALUES (${name}, ${path}, ${title}, ${collectionId}, ${defaultBranch}, ${baseUrl}, ${gpgKey}, ${new Date(event.metadata.at)})
      ON CONFLICT (name) DO UPDATE SET path = excluded.path, title = excluded.title, collection_id = excluded.collection_id,
        default_branch = excluded.default_branch, base_url = excluded.base_url, gpg_key = excluded.gpg_key, configured_at = excluded.configured_at`)
  },
}

export const tokensProjection: InlineHandler = {
  name: 'tokens',
  rebuildable: true,
  async handle(tx, event) {
    if (!isTokenEvent(event)) return
    const at = new Date(event.metadata.at)
    if (event.type === 'TokenRegistered') {
      const { jti, name, sub, expiresAt, scope, repos, prefixes, apps } = event.data
      tx.write(sql`
        INSERT INTO tokens (jti, name, sub, scope, repos, prefixes, apps, expires_at, issued_at)
        VALUES (${jti}, ${name}, ${sub}, ${scope}, ${repos}, ${prefixes}, ${apps}, ${new Date(expiresAt)}, ${at})
        ON CONFLICT (jti) DO UPDATE SET name = excluded.name, sub = excluded.sub, scope = excluded.scope, repos = excluded.repos,
          prefixes = excluded.prefixes, apps = excluded.apps, expires_at = excluded.expires_at, issued_at = excluded.issued_at`)
    } else {
      tx.write(sql`INSERT INTO tokens (jti, revoked_at) VALUES (${event.data.jti}, ${at})
        ON CONFLICT (jti) DO UPDATE SET revoked_at = excluded.revoked_at`)
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
      tx.write(sql`DELETE FROM oci_images WHERE repo_name = ${event.data.name} AND ref = ANY(${event.data.refs})`)
      return
    }
    if (isRepoEvent(event, 'RepoPruned')) {
      const removed = event.data.ociImages ?? []
      if (!event.data.dryRun && removed.length) {
        tx.write(sql`
          DELETE FROM oci_images o USING jsonb_to_recordset(${json(removed.map(({ repository, digest }) => ({ repository, digest })))}) AS r(repository text, digest text)
          WHERE o.repository = r.repository AND o.digest = r.digest`)
      }
      return
    }
    if (!isRepoEvent(event, 'RepoOciImageExported') && !isRepoEvent(event, 'RepoOciImagePushed')) return
    const { name, size, ...image } = event.data
    const { repository, digest, architecture } = image
    const others = await tx.read<{ id: number; tags: string[] }>(sql`
      SELECT id, tags FROM oci_images WHERE repository = ${repository} AND architecture = ${architecture} AND digest <> ${digest} AND tags && ${image.tags}`)
    for (const other of others) {
      tx.write(sql`UPDATE oci_images SET tags = ${other.tags.filter((tag) => !image.tags.includes(tag))} WHERE id = ${other.id}`)
    }
    const [same] = await tx.read<{ tags: string[] }>(sql`SELECT tags FROM oci_images WHERE repository = ${repository} AND digest = ${digest}`)
    const tags = [...new Set([...(same?.tags ?? []), ...image.tags])]
    tx.write(sql`
      INSERT INTO oci_images (repo_name, repository, ref, commit, digest, media_type, os, architecture, tags, labels, annotations, size, created_at)
      VALUES (${name}, ${repository}, ${image.ref}, ${image.commit}, ${digest}, ${image.mediaType}, ${image.os}, ${architecture}, ${tags},
        ${json(image.labels)}, ${json(image.annotations)}, ${size}, ${new Date(event.metadata.at)})
      ON CONFLICT (repository, digest) DO UPDATE SET repo_name = excluded.repo_name, ref = excluded.ref, commit = excluded.commit,
        media_type = excluded.media_type, os = excluded.os, architecture = excluded.architecture, tags = excluded.tags,
        labels = excluded.labels, annotations = excluded.annotations, size = excluded.size, created_at = excluded.created_at`)
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
    /** `repo` is a name, or (for a publish) the build whose repo it is. */
    const setRefs = (repo: { name: string } | { buildId: number }, refs: Record<string, string>, source: string) => {
      const buildId: SqlValue = 'buildId' in repo ? repo.buildId : null
      const repoName = 'name' in repo ? sql`SELECT ${repo.name}::text AS repo_name` : sql`SELECT repo_name FROM builds WHERE id = ${buildId}`
      tx.write(sql`
        INSERT INTO repo_refs (repo_name, ref, commit, source, build_id, updated_at)
        SELECT r.repo_name, refs.key, refs.value, ${source}, ${buildId}::int, ${at} FROM (${repoName}) r, jsonb_each_text(${json(refs)}) refs
        ON CONFLICT (repo_name, ref) DO UPDATE SET commit = excluded.commit, source = excluded.source, build_id = excluded.build_id, updated_at = excluded.updated_at`)
      tx.write(sql`UPDATE repos SET refs_changed_at = ${at} WHERE name IN (${repoName})`)
    }
    if (event.type === 'BuildPublished') {
      const { buildId, refs } = event.data as { buildId: number; refs: Record<string, string> }
      setRefs({ buildId }, refs, 'publish')
    } else if (isRepoEvent(event, 'RepoAppRepublished')) {
      setRefs(event.data, event.data.refs, 'republish')
    } else if (isRepoEvent(event, 'RepoRolledBack')) {
      setRefs(event.data, { [event.data.ref]: event.data.commit }, 'rollback')
    } else if (isRepoEvent(event, 'RepoRefsMirrored')) {
      setRefs(event.data, event.data.refs, 'mirror')
    } else if (isRepoEvent(event, 'RepoRefsDeleted')) {
      tx.write(sql`DELETE FROM repo_refs WHERE repo_name = ${event.data.name} AND ref = ANY(${event.data.refs})`)
      tx.write(sql`UPDATE repos SET refs_changed_at = ${at} WHERE name = ${event.data.name}`)
    } else if (isRepoEvent(event, 'RepoSummaryUpdated')) {
      tx.write(sql`UPDATE repos SET summary_updated_at = ${at} WHERE name = ${event.data.name}`)
    } else if (isRepoEvent(event, 'RepoDeltasGenerated')) {
      tx.write(sql`UPDATE repos SET deltas_generated_at = ${at}, deltas_failed = ${event.data.failed} WHERE name = ${event.data.name}`)
    }
  },
}
