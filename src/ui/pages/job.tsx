import { useEffect, useState } from 'preact/hooks'
import { isResultError, request, subscribe, type ApiError } from '../api.ts'
import { LoadState, Problem, State, Time } from '../components.tsx'
import { jobLogSubscription, jobQuery, jobUpdatedSubscription, type JobDetail, type LogLine } from '../documents.ts'
import { href, useLoad } from '../hooks.ts'

/** One job: its state live and its log streaming, resumed after a lost connection without gaps or repeats. */
export function JobPage({ id }: { id: number }) {
  const job = useLoad(() => request(jobQuery, { id }).then((data) => data.job), String(id))
  const [liveError, setLiveError] = useState<ApiError | null>(null)
  useEffect(() => subscribe(jobUpdatedSubscription, { id }, { next: (data) => job.set(() => data.jobUpdated), error: setLiveError }), [id])
  const log = useJobLog(id)

  const j = job.data && !isResultError(job.data) ? (job.data as JobDetail) : null
  return (
    <main>
      <p class="crumbs">
        {j?.buildId ? <a href={href(`builds/${j.buildId}`)}>Build {j.buildId}</a> : <a href={href('jobs')}>Jobs</a>} /
      </p>
      <h1>
        Job {id}
        {j ? ` · ${j.kind.toLowerCase().replace(/_/g, ' ')}` : ''}
      </h1>
      <LoadState loaded={job} />
      <Problem error={liveError} />
      {j ? (
        <dl class="facts">
          <dt>Status</dt>
          <dd data-testid="job-status">
            <State value={j.status} /> {j.error ? <span class="problem-inline">{j.error}</span> : null}
          </dd>
          <dt>Repo</dt>
          <dd>{j.repo ?? '—'}</dd>
          <dt>Queued</dt>
          <dd>
            <Time at={j.createdAt} />
          </dd>
          <dt>Started</dt>
          <dd>
            <Time at={j.startedAt} />
          </dd>
          <dt>Finished</dt>
          <dd>
            <Time at={j.finishedAt} />
          </dd>
          <dt>Attempts</dt>
          <dd>{j.attempts}</dd>
        </dl>
      ) : null}
      <h2 id="log-title">Log</h2>
      <Problem error={log.error} />
      <pre class="log" role="log" aria-labelledby="log-title" tabIndex={0} data-lines={log.lines.length}>
        {log.lines.map((line) => (
          <span class={`line ${line.stream}`} data-position={line.position} key={line.position}>
            {line.text}
            {'\n'}
          </span>
        ))}
      </pre>
      <p class="muted" aria-live="polite">
        {log.done ? `End of log (${log.lines.length} lines).` : `Following… ${log.lines.length} lines so far.`}
      </p>
      {j?.results ? (
        <>
          <h2>Results</h2>
          <pre class="results">{JSON.stringify(j.results, null, 2)}</pre>
        </>
      ) : null}
    </main>
  )
}

/**
 * The log as it grows: the stored lines, then each new batch. graphql-ws subscribes again after a
 * lost connection with the same variables object; `after` moves with the last line shown, so the
 * server resumes after it. A line at or before the last one shown is dropped all the same.
 */
function useJobLog(jobId: number) {
  const [lines, setLines] = useState<LogLine[]>([])
  const [done, setDone] = useState(false)
  const [error, setError] = useState<ApiError | null>(null)
  useEffect(() => {
    setLines([])
    setDone(false)
    const variables = { jobId, after: 0 }
    return subscribe(jobLogSubscription, variables, {
      next: ({ jobLogLines }) => {
        const fresh = jobLogLines.filter((line) => line.position > variables.after)
        if (!fresh.length) return
        variables.after = fresh[fresh.length - 1]!.position
        setLines((previous) => previous.concat(fresh))
        setError(null)
      },
      error: setError,
      complete: () => setDone(true),
    })
  }, [jobId])
  return { lines, done, error }
}
