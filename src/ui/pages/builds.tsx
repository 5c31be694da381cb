import { useEffect, useState } from 'preact/hooks'
import { request, subscribe, type ApiError } from '../api.ts'
import { bytes, DataTable, LoadState, Problem, State, Time } from '../components.tsx'
import { buildsQuery, buildsUpdatedSubscription, reposQuery, type BuildRow } from '../documents.ts'
import { href, useLoad, type Route } from '../hooks.ts'

const pageSize = 20
const repoStates = ['UPLOADING', 'COMMITTING', 'VALIDATING', 'READY', 'FAILED', 'PURGING', 'PURGED'] as const
const publishedStates = ['UNPUBLISHED', 'PUBLISHING', 'PUBLISHED', 'FAILED'] as const
type RepoStateName = (typeof repoStates)[number]
type PublishedStateName = (typeof publishedStates)[number]

const pick = <T extends string>(values: readonly T[], value: string | null): T | null => (values as readonly string[]).includes(value ?? '') ? (value as T) : null

/** Builds newest first, filtered by repo, app id and state, a page at a time, live. */
export function BuildsPage({ route }: { route: Route }) {
  const { params } = route
  const filter = {
    repo: params.get('repo') || null,
    appId: params.get('app') || null,
    repoState: pick<RepoStateName>(repoStates, params.get('state')),
    publishedState: pick<PublishedStateName>(publishedStates, params.get('published')),
  }
  const after = params.get('after')
  const before = params.get('before')
  const key = params.toString()
  const page = useLoad(
    () => request(buildsQuery, { ...filter, ...(before ? { last: pageSize, before } : { first: pageSize, after }) }).then((data) => data.builds),
    key,
  )
  const repos = useLoad(() => request(reposQuery, {}).then((data) => data.repos.map((repo) => repo.name)), 'repos')
  const [liveError, setLiveError] = useState<ApiError | null>(null)
  const onFirstPage = !after && !before

  // Live: a build on this page is replaced as it changes; a new one appears on the first page.
  useEffect(
    () =>
      subscribe(buildsUpdatedSubscription, { repo: filter.repo, appId: filter.appId, repoState: filter.repoState, publishedState: filter.publishedState }, {
        next: ({ buildsUpdated: build }) =>
          page.set((current) => {
            if (current.__typename !== 'QueryBuildsConnection') return current
            const edges = current.edges
            const at = edges.findIndex((edge) => edge.node.id === build.id)
            if (at >= 0) return { ...current, edges: edges.map((edge, i) => (i === at ? { node: build } : edge)) }
            const newest = edges[0]?.node.id ?? 0
            if (!onFirstPage || build.id < newest) return current
            return { ...current, edges: [{ node: build }, ...edges].slice(0, pageSize) }
          }),
        error: setLiveError,
      }),
    [key],
  )

  const go = (changes: Record<string, string | null>) => {
    const next = Object.fromEntries([...params.entries()])
    delete next.after
    delete next.before
    location.hash = href('builds', { ...next, ...changes })
  }

  return (
    <main>
      <h1>Builds</h1>
      <form
        class="filters"
        onSubmit={(event) => {
          event.preventDefault()
          const form = new FormData(event.currentTarget)
          go({ repo: String(form.get('repo') ?? ''), app: String(form.get('app') ?? '').trim(), state: String(form.get('state') ?? ''), published: String(form.get('published') ?? '') })
        }}
      >
        <label>
          Repo
          <select name="repo" value={filter.repo ?? ''}>
            <option value="">all</option>
            {(repos.data ?? []).map((name) => (
              <option value={name}>{name}</option>
            ))}
          </select>
        </label>
        <label>
          App id
          <input name="app" value={filter.appId ?? ''} placeholder="org.example.App" autoComplete="off" />
        </label>
        <label>
          Build state
          <select name="state" value={filter.repoState ?? ''}>
            <option value="">any</option>
            {repoStates.map((state) => (
              <option value={state}>{state.toLowerCase()}</option>
            ))}
          </select>
        </label>
        <label>
          Published
          <select name="published" value={filter.publishedState ?? ''}>
            <option value="">any</option>
            {publishedStates.map((state) => (
              <option value={state}>{state.toLowerCase()}</option>
            ))}
          </select>
        </label>
        <button type="submit">Filter</button>
      </form>
      <Problem error={liveError} />
      <LoadState loaded={page} />
      {page.data?.__typename === 'QueryBuildsConnection' ? (
        <>
          <BuildTable builds={page.data.edges.map((edge) => edge.node)} />
          <nav class="pager" aria-label="Pages of builds">
            {page.data.pageInfo.hasPreviousPage || before ? (
              <a href={href('builds', { ...Object.fromEntries(params), after: null, before: page.data.pageInfo.startCursor })}>← Newer</a>
            ) : null}
            {page.data.pageInfo.hasNextPage ? <a href={href('builds', { ...Object.fromEntries(params), before: null, after: page.data.pageInfo.endCursor })}>Older →</a> : null}
          </nav>
        </>
      ) : null}
    </main>
  )
}

function BuildTable({ builds }: { builds: readonly BuildRow[] }) {
  if (!builds.length) return <p class="muted">No builds match.</p>
  return (
    <DataTable class="builds" caption="Builds, newest first" columns={['Build', 'Repo', 'App', 'State', 'Published', ['Uploaded', 'wide-only'], ['Changed', 'wide-only']]}>
          {builds.map((build) => (
            <tr data-build={build.id}>
              <td>
                <a href={href(`builds/${build.id}`)}>#{build.id}</a>
              </td>
              <td>{build.repo}</td>
              <td>{build.appId ?? <span class="muted">any</span>}</td>
              <td>
                <State value={build.repoState} />
              </td>
              <td>
                <State value={build.publishedState} />
              </td>
              <td class="wide-only">
                {build.uploadedObjects} objects, {bytes(build.uploadedBytes)}
              </td>
              <td class="wide-only">
                <Time at={build.updatedAt} />
              </td>
            </tr>
          ))}
    </DataTable>
  )
}
