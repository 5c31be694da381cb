import { useCallback, useEffect, useState } from 'preact/hooks'
import { ApiError } from './api.ts'

type Loaded<T> = { data: T | null; error: ApiError | null; reload: () => void; set: (update: (data: T) => T) => void }

/** Runs `load` when `key` changes (and on reload); the newest answer wins. */
export function useLoad<T>(load: () => Promise<T>, key: string): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: ApiError | null }>({ data: null, error: null })
  const [round, setRound] = useState(0)
  useEffect(() => {
    let current = true
    load().then(
      (data) => current && setState({ data, error: null }),
      (error: unknown) => current && setState({ data: null, error: error instanceof ApiError ? error : new ApiError(String(error), null) }),
    )
    return () => {
      current = false
    }
  }, [key, round])
  const reload = useCallback(() => setRound((n) => n + 1), [])
  const set = useCallback((update: (data: T) => T) => setState((previous) => (previous.data === null ? previous : { ...previous, data: update(previous.data) })), [])
  return { ...state, reload, set }
}

export type Route = { path: string[]; params: URLSearchParams }

const parseHash = (): Route => {
  const [path = '', query = ''] = location.hash.replace(/^#\/?/, '').split('?', 2)
  return { path: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) }
}

/** The dashboard routes by the URL's hash (#/builds/12): one page for the server to serve, links that work. */
export function useRoute(): Route {
  const [route, setRoute] = useState(parseHash)
  useEffect(() => {
    const changed = () => setRoute(parseHash())
    addEventListener('hashchange', changed)
    return () => removeEventListener('hashchange', changed)
  }, [])
  return route
}

export const href = (path: string, params?: Record<string, string | null | undefined>) => {
  const query = new URLSearchParams(Object.entries(params ?? {}).filter((entry): entry is [string, string] => !!entry[1])).toString()
  return `#/${path}${query ? `?${query}` : ''}`
}
