import type { ComponentChildren } from 'preact'
import { useState } from 'preact/hooks'
import { ApiError, isResultError, type ResultError } from './api.ts'

/** A state as a badge: the word, coloured by how it went (never colour alone). */
export function State({ value }: { value: string }) {
  const tone = /FAIL|CANCEL/.test(value) ? 'bad' : /PUBLISHED$|READY|SUCCEEDED|^PASSED|UP_TO_DATE/.test(value) ? 'good' : /REVIEW|WARN/.test(value) ? 'warn' : 'busy'
  return <span class={`state state-${tone}`}>{value.toLowerCase().replace(/_/g, ' ')}</span>
}

export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span class="muted">—</span>
  const date = new Date(at)
  return (
    <time dateTime={at} title={date.toISOString()}>
      {date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' })}
    </time>
  )
}

export const bytes = (count: number) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = count
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`
}

export const shortCommit = (commit: string | null | undefined) => (commit ? commit.slice(0, 12) : '—')

/** What the API said went wrong, as it said it, announced to screen readers. */
export function Problem({ error }: { error: ApiError | ResultError | null | undefined }) {
  if (!error) return null
  return (
    <p class="problem" role="alert">
      {error.message}
      {error.code ? <span class="code"> ({error.code})</span> : null}
    </p>
  )
}

export function Loading() {
  return (
    <p class="muted" aria-live="polite">
      Loading…
    </p>
  )
}

/**
 * A button that runs a mutation: disabled while it runs; the result's Error member, or the
 * request's error, shown beside it in the API's words.
 */
export function Action(props: { label: string; run: () => Promise<{ __typename?: string } | null | undefined>; done?: (result: unknown) => void; kind?: 'danger' | 'primary'; confirm?: string }) {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<ApiError | ResultError | null>(null)
  const [message, setMessage] = useState<string | null>(null)
  const click = async () => {
    if (props.confirm && !window.confirm(props.confirm)) return
    setBusy(true)
    setError(null)
    setMessage(null)
    try {
      const result = await props.run()
      if (isResultError(result)) setError(result)
      else {
        setMessage(`${props.label}: done`)
        props.done?.(result)
      }
    } catch (caught) {
      setError(caught instanceof ApiError ? caught : new ApiError(String(caught), null))
    } finally {
      setBusy(false)
    }
  }
  return (
    <span class="action">
      <button type="button" class={props.kind ?? ''} disabled={busy} onClick={() => void click()}>
        {busy ? `${props.label}…` : props.label}
      </button>
      <span aria-live="polite" class="muted">
        {message}
      </span>
      <Problem error={error} />
    </span>
  )
}

export function Section(props: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section aria-labelledby={props.id}>
      <h2 id={props.id}>{props.title}</h2>
      {props.children}
    </section>
  )
}

/** What a load came to, when it is not data to show: loading, the request's error, or the result's Error member. */
export function LoadState({ loaded }: { loaded: { data: unknown; error: ApiError | null } }) {
  if (loaded.error) return <Problem error={loaded.error} />
  if (loaded.data === null) return <Loading />
  const data = loaded.data as { __typename?: string } | null
  return isResultError(data) ? <Problem error={data} /> : null
}

/** A table that scrolls sideways in its own box on a narrow screen; columns marked wide-only hide there. */
export function DataTable(props: { columns: readonly (string | [string, 'wide-only'])[]; caption?: string; class?: string; children: ComponentChildren }) {
  return (
    <div class="table-wrap">
      <table class={props.class}>
        {props.caption ? <caption class="visually-hidden">{props.caption}</caption> : null}
        <thead>
          <tr>
            {props.columns.map((column) =>
              typeof column === 'string' ? (
                <th scope="col">{column}</th>
              ) : (
                <th scope="col" class={column[1]}>
                  {column[0]}
                </th>
              ),
            )}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  )
}
