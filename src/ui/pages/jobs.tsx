import { isResultError, request } from '../api.ts'
import { Loading, Problem, State, Time } from '../components.tsx'
import { jobsQuery } from '../documents.ts'
import { href, useLoad, type Route } from '../hooks.ts'

const statuses = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const
type Status = (typeof statuses)[number]

/** The newest jobs (the `jobs` scope), by status. */
export function JobsPage({ route }: { route: Route }) {
  const wanted = route.params.get('status')
  const status = (statuses as readonly string[]).includes(wanted ?? '') ? (wanted as Status) : null
  const jobs = useLoad(() => request(jobsQuery, { first: 50, status }).then((data) => data.jobs), status ?? '')
  return (
    <main>
      <h1>Jobs</h1>
      <nav class="tabs" aria-label="Job status">
        <a href={href('jobs')} aria-current={status ? undefined : 'page'}>
          all
        </a>
        {statuses.map((name) => (
          <a href={href('jobs', { status: name })} aria-current={status === name ? 'page' : undefined}>
            {name.toLowerCase()}
          </a>
        ))}
      </nav>
      <Problem error={jobs.error} />
      {!jobs.data && !jobs.error ? <Loading /> : null}
      {jobs.data && isResultError(jobs.data) ? <Problem error={jobs.data} /> : null}
      {jobs.data?.__typename === 'QueryJobsConnection' ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
                <th scope="col">Repo</th>
                <th scope="col">Build</th>
                <th scope="col">Queued</th>
                <th scope="col">Finished</th>
              </tr>
            </thead>
            <tbody>
              {jobs.data.edges.map(({ node: job }) => (
                <tr>
                  <td>
                    <a href={href(`jobs/${job.id}`)}>#{job.id}</a>
                  </td>
                  <td>{job.kind.toLowerCase().replace(/_/g, ' ')}</td>
                  <td>
                    <State value={job.status} />
                  </td>
                  <td>{job.repo ?? '—'}</td>
                  <td>{job.buildId ? <a href={href(`builds/${job.buildId}`)}>#{job.buildId}</a> : '—'}</td>
                  <td>
                    <Time at={job.createdAt} />
                  </td>
                  <td>
                    <Time at={job.finishedAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </main>
  )
}
