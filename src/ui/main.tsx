import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import './app.css'
import { ApiError, onConnection, request, session, type Connection } from './api.ts'
import { Problem } from './components.tsx'
import { signInQuery } from './documents.ts'
import { href, useRoute, type Route } from './hooks.ts'
import { BuildPage } from './pages/build.tsx'
import { BuildsPage } from './pages/builds.tsx'
import { JobPage } from './pages/job.tsx'
import { JobsPage } from './pages/jobs.tsx'
import { ReposPage } from './pages/repos.tsx'
import { TokensPage } from './pages/tokens.tsx'

/**
 * flatdepot's dashboard: a GraphQL client like any other, and the example for people writing
 * their own (src/ui/documents.ts has every document it sends). What the token may see is what
 * the page shows: the API decides, the page only asks.
 */
function App() {
  const [token, setToken] = useState(session.token)
  const route = useRoute()
  if (!token) return <SignIn onSignedIn={setToken} />
  const signOut = () => {
    session.signOut()
    setToken(null)
  }
  return (
    <>
      <Header route={route} onSignOut={signOut} />
      <Page route={route} />
    </>
  )
}

function Page({ route }: { route: Route }) {
  const [section, id] = route.path
  const number = Number(id)
  if (section === 'builds' && id) return Number.isInteger(number) ? <BuildPage id={number} key={number} /> : <NotFound />
  if (section === 'jobs' && id) return Number.isInteger(number) ? <JobPage id={number} key={number} /> : <NotFound />
  if (section === 'jobs') return <JobsPage route={route} />
  if (section === 'repos') return <ReposPage />
  if (section === 'tokens') return <TokensPage />
  if (!section || section === 'builds') return <BuildsPage route={route} />
  return <NotFound />
}

function NotFound() {
  return (
    <main>
      <h1>Not found</h1>
      <p>
        There is no such page. <a href={href('builds')}>Builds</a>
      </p>
    </main>
  )
}

const sections = [
  ['builds', 'Builds'],
  ['repos', 'Repos'],
  ['jobs', 'Jobs'],
  ['tokens', 'Tokens'],
] as const

function Header({ route, onSignOut }: { route: Route; onSignOut: () => void }) {
  const [connection, setConnection] = useState<Connection>('idle')
  useEffect(() => onConnection(setConnection), [])
  const current = route.path[0] ?? 'builds'
  return (
    <header>
      <a class="brand" href={href('builds')}>
        flatdepot
      </a>
      <nav aria-label="Sections">
        {sections.map(([path, label]) => (
          <a href={href(path)} aria-current={current === path ? 'page' : undefined}>
            {label}
          </a>
        ))}
        <a href="/graphql">GraphiQL</a>
      </nav>
      <span class={`connection connection-${connection}`} role="status" title="The live connection (graphql-ws)">
        {connection === 'live' ? 'live' : connection === 'connecting' ? 'connecting…' : connection === 'reconnecting' ? 'reconnecting…' : ''}
      </span>
      <button type="button" onClick={onSignOut}>
        Sign out
      </button>
    </header>
  )
}

/** Paste a token; it is checked against the API before it is kept (in session storage, never in a URL). */
function SignIn({ onSignedIn }: { onSignedIn: (token: string) => void }) {
  const [error, setError] = useState<ApiError | null>(null)
  const [busy, setBusy] = useState(false)
  const submit = async (token: string) => {
    setBusy(true)
    setError(null)
    try {
      await request(signInQuery, {}, token)
      session.signIn(token)
      onSignedIn(token)
    } catch (caught) {
      setError(caught instanceof ApiError ? caught : new ApiError(String(caught), null))
    } finally {
      setBusy(false)
    }
  }
  return (
    <main class="sign-in">
      <h1>flatdepot</h1>
      <form
        onSubmit={(event) => {
          event.preventDefault()
          const token = String(new FormData(event.currentTarget).get('token') ?? '').trim()
          if (token) void submit(token)
        }}
      >
        <label for="token">Token</label>
        <textarea id="token" name="token" rows={4} required autoComplete="off" spellcheck={false} placeholder="eyJhbGciOi…" />
        <p class="muted">
          A flatdepot token (<code>flatdepot token create</code>). It stays in this tab's session storage and goes only to this server.
        </p>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <Problem error={error} />
      </form>
    </main>
  )
}

render(<App />, document.getElementById('app')!)
