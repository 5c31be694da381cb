import { request } from '../api.ts'
import { DataTable, LoadState, State, Time } from '../components.tsx'
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
      <LoadState loaded={jobs} />
      {jobs.data?.__typename === 'QueryJobsConnection' ? (
        <DataTable columns={['Job', 'Kind', 'Status', 'Repo', 'Build', 'Queued', 'Finished']}>
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
        </DataTable>
      ) : null}
    </main>
  )
}
