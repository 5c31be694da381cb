import { useEffect, useState } from 'preact/hooks'
import { isResultError, request, subscribe, type ApiError } from '../api.ts'
import { Action, bytes, LoadState, Problem, Section, shortCommit, State, Time } from '../components.tsx'
import { buildQuery, buildUpdatedSubscription, commitMutation, publishMutation, purgeMutation, reviewMutation, type BuildDetail } from '../documents.ts'
import { href, useLoad } from '../hooks.ts'

/** One build: its state live, refs, checks (with their review), jobs, and what the token may do to it. */
export function BuildPage({ id }: { id: number }) {
  const build = useLoad(() => request(buildQuery, { id }).then((data) => data.build), String(id))
  const [liveError, setLiveError] = useState<ApiError | null>(null)
  useEffect(() => subscribe(buildUpdatedSubscription, { id }, { next: (data) => build.set(() => data.buildUpdated), error: setLiveError }), [id])

  if (!build.data || isResultError(build.data)) {
    return (
      <Main title={`Build ${id}`}>
        <LoadState loaded={build} />
      </Main>
    )
  }
  const b = build.data as BuildDetail
  return (
    <Main title={`Build ${b.id}`}>
      <Problem error={liveError} />
      <dl class="facts">
        <dt>State</dt>
        <dd data-testid="repo-state">
          <State value={b.repoState} /> {b.repoStateReason ? <span class="muted">{b.repoStateReason}</span> : null}
        </dd>
        <dt>Published</dt>
        <dd data-testid="published-state">
          <State value={b.publishedState} /> {b.publishedStateReason ? <span class="muted">{b.publishedStateReason}</span> : null}
        </dd>
        <dt>Repo</dt>
        <dd>{b.repo}</dd>
        <dt>App</dt>
        <dd>{b.appId ?? 'any'}</dd>
        <dt>Uploaded</dt>
        <dd>
          {b.uploadedObjects} objects, {bytes(b.uploadedBytes)}
        </dd>
        <dt>Token</dt>
        <dd>{b.tokenName ?? '—'}</dd>
        <dt>Created</dt>
        <dd>
          <Time at={b.createdAt} />
        </dd>
        <dt>Changed</dt>
        <dd>
          <Time at={b.updatedAt} />
        </dd>
        {b.buildLogUrl ? (
          <>
            <dt>Build log</dt>
            <dd>
              <a href={b.buildLogUrl} rel="noreferrer noopener">
                {b.buildLogUrl}
              </a>
            </dd>
          </>
        ) : null}
      </dl>
      <div class="actions" aria-label="Actions">
        {b.repoState === 'UPLOADING' ? <Action label="Commit" kind="primary" run={() => request(commitMutation, { id }).then((data) => data.commitBuild)} /> : null}
        {b.repoState === 'READY' && (b.publishedState === 'UNPUBLISHED' || b.publishedState === 'FAILED') ? (
          <Action label="Publish" kind="primary" run={() => request(publishMutation, { id }).then((data) => data.publishBuild)} />
        ) : null}
        {b.repoState !== 'PURGED' && b.repoState !== 'PURGING' && b.publishedState !== 'PUBLISHING' ? (
          <Action label="Purge" kind="danger" confirm={`Remove build ${id}'s files? This cannot be undone.`} run={() => request(purgeMutation, { id }).then((data) => data.purgeBuild)} />
        ) : null}
      </div>
      <Section title="Refs" id="refs">
        {b.refs.length ? (
          <ul class="refs">
            {b.refs.map((ref) => (
              <li>
                <code>{ref.refName}</code> <span class="muted">at</span> <code title={ref.commit}>{shortCommit(ref.commit)}</code>
                {ref.publishedCommit ? (
                  <>
                    {' '}
                    <span class="muted">published as</span> <code title={ref.publishedCommit}>{shortCommit(ref.publishedCommit)}</code>
                  </>
                ) : null}
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted">No refs yet.</p>
        )}
      </Section>
      <Section title="Checks" id="checks">
        {b.checks.length ? b.checks.map((check) => <CheckRow check={check} />) : <p class="muted">No checks (none configured, or not committed yet).</p>}
      </Section>
      <Section title="Jobs" id="jobs">
        <ul class="jobs">
          {b.jobs.map((job) => (
            <li>
              <a href={href(`jobs/${job.id}`)}>
                {job.kind.toLowerCase().replace(/_/g, ' ')} #{job.id}
              </a>{' '}
              <State value={job.status} /> {job.error ? <span class="problem-inline">{job.error}</span> : null}
            </li>
          ))}
        </ul>
      </Section>
    </Main>
  )
}

function Main(props: { title: string; children: preact.ComponentChildren }) {
  return (
    <main>
      <p class="crumbs">
        <a href={href('builds')}>Builds</a> /
      </p>
      <h1>{props.title}</h1>
      {props.children}
    </main>
  )
}

/** A check with its review: pass or fail it, with the reason kept in the audit log. */
function CheckRow({ check }: { check: BuildDetail['checks'][number] }) {
  const [reason, setReason] = useState('')
  const reviewable = check.status !== 'PENDING'
  const field = `reason-${check.jobId}`
  return (
    <div class="check" data-check={check.name}>
      <p>
        <strong>{check.name}</strong> <State value={check.status} /> {check.statusReason ? <span class="muted">{check.statusReason}</span> : null}{' '}
        <a href={href(`jobs/${check.jobId}`)}>log</a>
      </p>
      {check.results ? <pre class="results">{check.results}</pre> : null}
      {reviewable ? (
        <form class="review" onSubmit={(event) => event.preventDefault()}>
          <label for={field}>Review reason</label>
          <input id={field} value={reason} onInput={(event) => setReason(event.currentTarget.value)} placeholder="why (kept in the audit log)" />
          <Action label="Pass" run={() => request(reviewMutation, { jobId: check.jobId, status: 'PASSED', reason: reason || null }).then((data) => data.reviewCheck)} />
          <Action label="Fail" kind="danger" run={() => request(reviewMutation, { jobId: check.jobId, status: 'FAILED', reason: reason || null }).then((data) => data.reviewCheck)} />
        </form>
      ) : null}
    </div>
  )
}
