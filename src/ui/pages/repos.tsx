import { useState } from 'preact/hooks'
import { request } from '../api.ts'
import { Action, DataTable, LoadState, shortCommit, State, Time } from '../components.tsx'
import { deleteMutation, reposQuery, republishMutation, rollbackMutation, type Repo } from '../documents.ts'
import { href, useLoad } from '../hooks.ts'

/** The repos: what each serves (from the read models), when it last changed, and how its summary and deltas stand. */
export function ReposPage() {
  const repos = useLoad(() => request(reposQuery, {}).then((data) => data.repos), 'repos')
  return (
    <main>
      <h1>Repos</h1>
      <LoadState loaded={repos} />
      {(repos.data ?? []).map((repo) => (
        <RepoCard repo={repo} reload={repos.reload} />
      ))}
    </main>
  )
}

const kindOf = (ref: string) => ref.split('/')[0] ?? ''

function summaryState(repo: Repo): string {
  if (!repo.refsChangedAt) return 'EMPTY'
  if (!repo.summaryUpdatedAt || repo.summaryUpdatedAt < repo.refsChangedAt) return 'UPDATE_PENDING'
  return 'UP_TO_DATE'
}

function RepoCard({ repo, reload }: { repo: Repo; reload: () => void }) {
  const apps = repo.refs.filter((ref) => kindOf(ref.ref) === 'app')
  const others = repo.refs.filter((ref) => kindOf(ref.ref) !== 'app')
  return (
    <section class="repo" aria-labelledby={`repo-${repo.name}`} data-repo={repo.name}>
      <h2 id={`repo-${repo.name}`}>
        {repo.title ?? repo.name} <span class="muted">({repo.name})</span>
      </h2>
      <dl class="facts">
        <dt>Summary</dt>
        <dd>
          <State value={summaryState(repo)} /> <span class="muted">updated</span> <Time at={repo.summaryUpdatedAt} />
        </dd>
        <dt>Refs changed</dt>
        <dd>
          <Time at={repo.refsChangedAt} />
        </dd>
        <dt>Deltas</dt>
        <dd>
          {repo.deltasGeneratedAt ? (
            <>
              <span class="muted">made</span> <Time at={repo.deltasGeneratedAt} />
              {repo.deltasFailed.length ? <span class="problem-inline"> {repo.deltasFailed.length} failed: {repo.deltasFailed.join(', ')}</span> : <span class="muted"> none failed</span>}
            </>
          ) : (
            <span class="muted">none yet</span>
          )}
        </dd>
        {repo.collectionId ? (
          <>
            <dt>Collection</dt>
            <dd>
              <code>{repo.collectionId}</code>
            </dd>
          </>
        ) : null}
        <dt>Install</dt>
        <dd>
          <a href={`/repo/${encodeURIComponent(repo.name)}/${encodeURIComponent(repo.name)}.flatpakrepo`}>{repo.name}.flatpakrepo</a>
        </dd>
      </dl>
      <h3>Apps ({apps.length})</h3>
      <RefTable repo={repo} refs={apps} reload={reload} manage />
      {others.length ? (
        <>
          <h3>Runtimes and extensions ({others.length})</h3>
          <RefTable repo={repo} refs={others} reload={reload} manage={false} />
        </>
      ) : null}
    </section>
  )
}

function RefTable({ repo, refs, reload, manage }: { repo: Repo; refs: Repo['refs']; reload: () => void; manage: boolean }) {
  if (!refs.length) return <p class="muted">None published.</p>
  return (
    <DataTable columns={['Ref', 'Commit', 'From', 'Updated', 'Manage']}>
          {refs.map((ref) => (
            <tr data-ref={ref.ref}>
              <td>
                <code>{ref.ref}</code>
              </td>
              <td>
                <code title={ref.commit}>{shortCommit(ref.commit)}</code>
              </td>
              <td>{ref.buildId ? <a href={href(`builds/${ref.buildId}`)}>build #{ref.buildId}</a> : ref.source}</td>
              <td>
                <Time at={ref.updatedAt} />
              </td>
              <td>
                <Manage repo={repo.name} refName={ref.ref} app={manage ? (ref.ref.split('/')[1] ?? null) : null} reload={reload} />
              </td>
            </tr>
          ))}
    </DataTable>
  )
}

/** Republish, delete (apps) and roll back (any ref): what the governance scopes allow, refused in the API's words otherwise. */
function Manage({ repo, refName, app, reload }: { repo: string; refName: string; app: string | null; reload: () => void }) {
  const [reason, setReason] = useState('')
  const [to, setTo] = useState('')
  const id = `${repo}-${refName}`.replace(/[^A-Za-z0-9_-]/g, '_')
  return (
    <details>
      <summary>Manage</summary>
      <div class="manage">
        <label for={`to-${id}`}>Roll back to commit</label>
        <input id={`to-${id}`} value={to} onInput={(event) => setTo(event.currentTarget.value.trim())} placeholder="a commit in the ref's history" />
        <Action label="Roll back" run={() => request(rollbackMutation, { repo, ref: refName, to }).then((data) => data.rollbackRef)} done={reload} />
        {app ? (
          <>
            <Action label="Republish" run={() => request(republishMutation, { repo, app }).then((data) => data.republishApp)} done={reload} />
            <label for={`reason-${id}`}>Reason to delete</label>
            <input id={`reason-${id}`} value={reason} onInput={(event) => setReason(event.currentTarget.value)} placeholder="kept in the audit log" />
            <Action
              label="Delete app"
              kind="danger"
              confirm={`Delete ${app} (every arch and branch) from ${repo}?`}
              run={() => request(deleteMutation, { repo, app, reason }).then((data) => data.deleteFromRepo)}
              done={reload}
            />
          </>
        ) : null}
      </div>
    </details>
  )
}
