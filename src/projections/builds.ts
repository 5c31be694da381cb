import type { WriteTransaction } from '../db/database.ts'
import { sql, type Statement } from '../db/sql.ts'
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

async function applyBuildEvent(tx: WriteTransaction, event: BuildEvent, at: Date): Promise<void> {
  const id = event.data.buildId
  switch (event.type) {
    case 'BuildCreated': {
      const { buildId, repo, appId, publicDownload, buildLogUrl, tokenName, tokenType, mirrorUpstream = null } = event.data
      const state = stateValues(evolve({ status: 'Nonexistent' }, event) as ExistingBuild)
      tx.write(sql`
        INSERT INTO builds (id, repo_name, app_id, public_download, build_log_url, token_name, token_type, mirror_upstream,
          repo_state, repo_state_reason, published_state, published_state_reason, extra_ids, commit_job_id, publish_job_id, created_at, updated_at)
        VALUES (${buildId}, ${repo}, ${appId}, ${publicDownload}, ${buildLogUrl}, ${tokenName}, ${tokenType}, ${mirrorUpstream},
          ${state.repoState}, ${state.repoStateReason}, ${state.publishedState}, ${state.publishedStateReason}, ${state.extraIds},
          ${state.commitJobId}, ${state.publishJobId}, ${at}, ${at})`)
      return
    }
    case 'BuildObjectsUploaded':
      tx.write(sql`
        UPDATE builds SET uploaded_objects = uploaded_objects + ${event.data.objects}, uploaded_bytes = uploaded_bytes + ${event.data.bytes}, updated_at = ${at}
        WHERE id = ${id}`)
      return
    case 'BuildRefCreated': {
      const { refId, refName, commit, buildLogUrl } = event.data
      tx.write(sql`
        INSERT INTO build_refs (id, build_id, ref_name, commit, build_log_url, created_at)
        VALUES (${refId}, ${id}, ${refName}, ${commit}, ${buildLogUrl}, ${at})
        ON CONFLICT (build_id, ref_name) DO UPDATE SET commit = excluded.commit, build_log_url = excluded.build_log_url`)
      tx.write(sql`UPDATE builds SET updated_at = ${at} WHERE id = ${id}`)
      return
    }
    default: {
      const before = await stateFromRows((statement) => tx.read(statement), id)
      const after = evolve(before, event)
      if (after.status !== 'Existing') return
      const state = stateValues(after)
      tx.write(sql`
        UPDATE builds SET repo_state = ${state.repoState}, repo_state_reason = ${state.repoStateReason},
          published_state = ${state.publishedState}, published_state_reason = ${state.publishedStateReason},
          extra_ids = ${state.extraIds}, commit_job_id = ${state.commitJobId}, publish_job_id = ${state.publishJobId}, updated_at = ${at}
        WHERE id = ${id}`)
      if (event.type === 'BuildPublished') {
        for (const [refName, publishedCommit] of Object.entries(event.data.refs)) {
          tx.write(sql`UPDATE build_refs SET published_commit = ${publishedCommit} WHERE build_id = ${id} AND ref_name = ${refName}`)
        }
      }
      for (const [name, check] of Object.entries(after.checks)) {
        const previous = before.status === 'Existing' ? before.checks[name] : undefined
        const reported = event.type === 'BuildCheckStatusChanged' && event.data.name === name ? event.data : null
        if (!previous) {
          tx.write(sql`
            INSERT INTO checks (build_id, name, job_id, status, updated_at) VALUES (${id}, ${name}, ${check.jobId}, ${check.status}, ${at})`)
        } else if (reported) {
          tx.write(sql`
            UPDATE checks SET status = ${check.status}, status_reason = ${reported.reason},
              results = COALESCE(${reported.results}, results), updated_at = ${at}
            WHERE build_id = ${id} AND name = ${name}`)
        } else if (previous.status !== check.status) {
          tx.write(sql`UPDATE checks SET status = ${check.status}, updated_at = ${at} WHERE build_id = ${id} AND name = ${name}`)
        }
      }
    }
  }
}

/** The build decider's state columns, as the rows store them. */
function stateValues(state: ExistingBuild) {
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

type BuildRow = {
  id: number
  repo_name: string
  app_id: string | null
  repo_state: string
  repo_state_reason: string | null
  published_state: string
  published_state_reason: string | null
  mirror_upstream: string | null
  extra_ids: string[]
  commit_job_id: number | null
  publish_job_id: number | null
  checks: { name: string; job_id: number; status: string }[] | null
}

/**
 * The decider's state as the rows hold it, but for `refs`: left empty, since the rows never take
 * them from `evolve` (they keep the refs as uploaded; the committed commits matter only to the
 * decider's own idempotency check), so the append does not read them for every event.
 */
export async function stateFromRows(read: (statement: Statement) => Promise<unknown[]>, id: number): Promise<BuildState> {
  const [row] = (await read(sql`
    SELECT b.id, b.repo_name, b.app_id, b.repo_state, b.repo_state_reason, b.published_state, b.published_state_reason,
      b.mirror_upstream, b.extra_ids, b.commit_job_id, b.publish_job_id,
      (SELECT jsonb_agg(jsonb_build_object('name', c.name, 'job_id', c.job_id, 'status', c.status)) FROM checks c WHERE c.build_id = b.id) AS checks
    FROM builds b WHERE b.id = ${id}`)) as BuildRow[]
  if (!row) return { status: 'Nonexistent' }
  return {
    status: 'Existing',
    id: row.id,
    repo: row.repo_name,
    appId: row.app_id,
    repoState: row.repo_state as RepoState,
    repoStateReason: row.repo_state_reason,
    publishedState: row.published_state as PublishedState,
    publishedStateReason: row.published_state_reason,
    mirrorUpstream: row.mirror_upstream,
    refs: {},
    extraIds: row.extra_ids,
    checks: Object.fromEntries((row.checks ?? []).map((check) => [check.name, { jobId: check.job_id, status: check.status as CheckStatus }])),
    commitJobId: row.commit_job_id,
    publishJobId: row.publish_job_id,
  }
}
