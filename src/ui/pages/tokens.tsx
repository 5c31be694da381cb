import { useState } from 'preact/hooks'
import { request } from '../api.ts'
import { Action, DataTable, LoadState, Time } from '../components.tsx'
import { revokeMutation, tokensQuery } from '../documents.ts'
import { useLoad } from '../hooks.ts'

/** Known tokens, for admin tokens (sub "" with `tokenmanagement`): list, search, revoke. */
export function TokensPage() {
  const [nameContains, setNameContains] = useState('')
  const [showRevoked, setShowRevoked] = useState(false)
  const tokens = useLoad(
    () => request(tokensQuery, { nameContains: nameContains || null, revoked: showRevoked ? null : false }).then((data) => data.tokens),
    `${nameContains}|${showRevoked}`,
  )
  return (
    <main>
      <h1>Tokens</h1>
      <form class="filters" onSubmit={(event) => event.preventDefault()}>
        <label>
          Name contains
          <input value={nameContains} onInput={(event) => setNameContains(event.currentTarget.value)} autoComplete="off" />
        </label>
        <label class="inline">
          <input type="checkbox" checked={showRevoked} onChange={(event) => setShowRevoked(event.currentTarget.checked)} /> show revoked
        </label>
      </form>
      <LoadState loaded={tokens} />
      {tokens.data?.__typename === 'QueryTokensSuccess' ? (
        <DataTable columns={['Name', 'Sub', 'Scopes', 'Repos', 'Last used', 'Expires', 'Revoke']}>
              {tokens.data.data.map((token) => (
                <tr data-jti={token.jti}>
                  <td>
                    {token.name ?? <span class="muted">unnamed</span>}
                    <br />
                    <code class="muted">{token.jti}</code>
                  </td>
                  <td>{token.sub === '' ? <em>admin</em> : token.sub ?? '—'}</td>
                  <td>{token.scope.join(', ')}</td>
                  <td>{token.repos.length ? token.repos.join(', ') : <span class="muted">all</span>}</td>
                  <td>
                    <Time at={token.lastUsedAt} />
                  </td>
                  <td>
                    <Time at={token.expiresAt} />
                  </td>
                  <td>
                    {token.revokedAt ? (
                      <span>
                        revoked <Time at={token.revokedAt} />
                      </span>
                    ) : (
                      <Action
                        label="Revoke"
                        kind="danger"
                        confirm={`Revoke ${token.name ?? token.jti}? Every token sharing its jti stops working at once.`}
                        run={() => request(revokeMutation, { jtis: [token.jti] }).then((data) => data.revokeTokens)}
                        done={tokens.reload}
                      />
                    )}
                  </td>
                </tr>
              ))}
        </DataTable>
      ) : null}
    </main>
  )
}
