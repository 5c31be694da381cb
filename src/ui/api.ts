import type { TadaDocumentNode } from 'gql.tada'
import { createClient, type Client } from 'graphql-ws'
import { ApiError, queryText } from '../client/common.ts'
import { uiTokenKey } from './session.ts'

/**
 * The dashboard's GraphQL client, as any frontend would write one: queries and mutations POSTed
 * to /graphql with the token in the Authorization header, subscriptions over graphql-ws with the
 * token in the connection parameters. Errors come back as the API says them.
 */

export { ApiError }

/** One of the schema's Error types, as a field of a result gives it. */
export type ResultError = { __typename: `${string}Error`; message: string; code: string }
export const isResultError = (value: { __typename?: string } | null | undefined): value is ResultError =>
  typeof value?.__typename === 'string' && value.__typename.endsWith('Error')

export const session = {
  get token(): string | null {
    return sessionStorage.getItem(uiTokenKey)
  },
  signIn(token: string) {
    sessionStorage.setItem(uiTokenKey, token)
    resetSocket()
  },
  signOut() {
    sessionStorage.removeItem(uiTokenKey)
    resetSocket()
  },
}

type Response<R> = { data?: R | null; errors?: { message: string; extensions?: { code?: string } }[] }

const failure = (errors: NonNullable<Response<unknown>['errors']>) =>
  new ApiError(errors.map((error) => error.message).join('; '), errors[0]?.extensions?.code ?? null)

export async function request<R, V>(document: TadaDocumentNode<R, V>, variables: V, token = session.token): Promise<R> {
  let response: globalThis.Response
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query: queryText(document), variables }),
    })
  } catch (error) {
    throw new ApiError(`Cannot reach flatdepot: ${(error as Error).message}`, 'NETWORK')
  }
  let body: Response<R>
  try {
    body = (await response.json()) as Response<R>
  } catch {
    throw new ApiError(`flatdepot answered ${response.status} ${response.statusText} without a GraphQL result`, null)
  }
  if (body.errors?.length) throw failure(body.errors)
  if (!body.data) throw new ApiError('flatdepot answered without data', null)
  return body.data
}

// ---------------------------------------------------------------- subscriptions

/** idle: nothing live on this page (no socket open). */
export type Connection = 'idle' | 'connecting' | 'live' | 'reconnecting'
const connectionListeners = new Set<(state: Connection) => void>()
let connection: Connection = 'idle'
const setConnection = (state: Connection) => {
  connection = state
  connectionListeners.forEach((listener) => listener(state))
}
export function onConnection(listener: (state: Connection) => void): () => void {
  connectionListeners.add(listener)
  listener(connection)
  return () => connectionListeners.delete(listener)
}

let socket: Client | null = null
let active = 0
function resetSocket() {
  void socket?.dispose()
  socket = null
  setConnection('idle')
}

function client(): Client {
  if (!socket) setConnection('connecting')
  socket ??= createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
    connectionParams: () => (session.token ? { authorization: `Bearer ${session.token}` } : {}),
    // Keep trying while the page is open (a restarted server, a laptop waking up), backing off.
    retryAttempts: Number.MAX_SAFE_INTEGER,
    shouldRetry: () => true,
    on: {
      connected: () => setConnection('live'),
      // graphql-ws closes an idle socket by itself (lazy): only a close under a subscription is a loss.
      closed: () => setConnection(active > 0 ? 'reconnecting' : 'idle'),
    },
  })
  return socket
}

export type Sink<R> = { next: (data: R) => void; error: (error: ApiError) => void; complete?: () => void }

/**
 * Subscribes until the returned function is called. After a lost connection graphql-ws subscribes
 * again with the same variables object, sent afresh: a caller that moves a resume point in it (the
 * job log's `after`) resumes from there.
 */
export function subscribe<R, V extends Record<string, unknown>>(document: TadaDocumentNode<R, V>, variables: V, sink: Sink<R>): () => void {
  let open = true
  active++
  const close = () => {
    if (open) active--
    open = false
  }
  const unsubscribe = client().subscribe<R>(
    { query: queryText(document), variables },
    {
      next: (result) => {
        if (result.errors?.length) sink.error(failure(result.errors as NonNullable<Response<R>['errors']>))
        else if (result.data) sink.next(result.data as R)
      },
      error: (error) => {
        close()
        if (Array.isArray(error)) sink.error(failure(error))
        else sink.error(new ApiError(error instanceof Error ? error.message : 'the live connection closed', null))
      },
      complete: () => {
        close()
        sink.complete?.()
      },
    },
  )
  return () => {
    close()
    unsubscribe()
  }
}
