import { createReadStream, readFile as readFileCallback } from 'node:fs'
import { promisify } from 'node:util'
import http from 'node:http'
import https from 'node:https'
import type { Client } from 'graphql-ws'
import type { TadaDocumentNode } from 'gql.tada'
import { ApiError, queryText } from './common.ts'

export { ApiError }

export type Connection = { url: string; token: string }

/** An object to upload: its name in flat-manager's API, the file holding it, and its size. */
export type UploadObject = { name: string; file: string; size: number }

// Objects up to this size are read whole (one read, in parallel); larger ones stream from disk.
// The callback API: fs/promises builds a FileHandle per file, which shows on thousands of objects.
const readFile = promisify(readFileCallback)
const readWholeBytes = 1 << 20

type GraphqlResponse<T> = { data?: T | null; errors?: { message: string; extensions?: { code?: string } }[] }

/** A typed document (src/client/documents.ts), or query text for callers without one (tests, benchmarks). */
export type Document<R, V> = TadaDocumentNode<R, V> | string

/** A result with the schema's Error members taken out of each field: the client throws those as ApiError. */
type WithoutError<T> = T extends { __typename: `${string}Error` } ? never : T
export type Answer<R> = { [K in keyof R]: WithoutError<R[K]> }

const documentText = (document: Document<unknown, unknown>) => (typeof document === 'string' ? document : queryText(document))

/** flatdepot's HTTP and graphql-ws APIs, as a build bot or a maintainer's shell uses them. */
export class FlatdepotClient {
  readonly url: string
  #ws: Promise<Client> | null = null

  constructor(readonly connection: Connection) {
    this.url = connection.url.replace(/\/+$/, '')
  }

  get #headers() {
    return { authorization: `Bearer ${this.connection.token}` }
  }

  async #fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(`${this.url}${path}`, { ...init, headers: { ...this.#headers, ...init.headers } })
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause
      throw new ApiError(`cannot reach flatdepot at ${this.url}: ${cause?.code ?? cause?.message ?? (error as Error).message}`, null, true)
    }
  }

  /**
   * Runs a query or mutation and returns its data. Top-level errors (token, validation) and a
   * field whose result is one of the schema's Error types both become an ApiError.
   */
  async graphql<R, V = Record<string, unknown>>(document: Document<R, V>, variables?: V): Promise<Answer<R>> {
    const response = await this.#fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query: documentText(document as Document<unknown, unknown>), variables: variables ?? {} }),
    })
    let body: GraphqlResponse<Answer<R>>
    try {
      body = (await response.json()) as GraphqlResponse<Answer<R>>
    } catch {
      throw new ApiError(`flatdepot at ${this.url} answered ${response.status} ${response.statusText} without GraphQL`, null, response.status >= 500)
    }
    const [first] = body.errors ?? []
    if (first) throw new ApiError(first.message, first.extensions?.code ?? null, response.status >= 500)
    if (!body.data) throw new ApiError(`flatdepot answered ${response.status} without data`)
    for (const value of Object.values(body.data as Record<string, unknown>)) throwIfError(value)
    return body.data
  }

  /** flat-manager's REST API: which of `wanted` the build still needs. */
  async missingObjects(buildId: number, wanted: readonly string[]): Promise<string[]> {
    const response = await this.#fetch(`/api/v1/build/${buildId}/missing_objects`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ wanted }),
    })
    return ((await restBody(response)) as { missing: string[] }).missing
  }

  /**
   * flat-manager's REST API: one multipart request with these objects. Node streams (form-data
   * over node:http with keep-alive) rather than fetch's FormData: thousands of small parts cost
   * a fraction of the CPU that web streams do.
   */
  async upload(buildId: number, objects: readonly UploadObject[]): Promise<void> {
    // Loaded on first use: form-data and what it requires are a third of the CLI's start-up.
    const { default: FormData } = await import('form-data')
    const form = new FormData()
    const contents = await Promise.all(objects.map((object) => (object.size <= readWholeBytes ? readFile(object.file) : Promise.resolve(null))))
    objects.forEach((object, index) => {
      const options = { filename: object.name, contentType: 'application/octet-stream', knownLength: object.size }
      // Large objects stream in 1 MiB reads: at the default 64 KiB each read queues behind the
      // thousands of small reads of the other requests in libuv's pool, and the stream crawls.
      form.append('file', contents[index] ?? createReadStream(object.file, { highWaterMark: 1 << 20 }), options)
    })
    const target = new URL(`${this.url}/api/v1/build/${buildId}/upload`)
    const { status, statusText, text } = await new Promise<{ status: number; statusText: string; text: string }>((resolve, reject) => {
      const request = (target.protocol === 'https:' ? https : http).request(target, {
        method: 'POST',
        agent: target.protocol === 'https:' ? httpsAgent : httpAgent,
        headers: { ...form.getHeaders(), ...this.#headers, 'content-length': form.getLengthSync() },
      })
      request.on('error', (error) => reject(new ApiError(`upload to ${this.url} failed: ${(error as NodeJS.ErrnoException).code ?? error.message}`, null, true)))
      request.on('response', (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('error', reject)
        response.on('end', () => resolve({ status: response.statusCode ?? 0, statusText: response.statusMessage ?? '', text: Buffer.concat(chunks).toString('utf8') }))
      })
      form.on('error', (error: Error) => request.destroy(error))
      form.pipe(request)
    })
    parseRestBody(status, statusText, text)
  }

  /** A subscription over graphql-ws (one connection per client, opened on first use). */
  subscribe<R, V = Record<string, unknown>>(document: Document<R, V>, variables: V): AsyncIterableIterator<R> {
    const query = documentText(document as Document<unknown, unknown>)
    const connect = async () => {
      // Loaded on first use: most commands never subscribe.
      const [{ createClient }, { default: WebSocket }] = await Promise.all([import('graphql-ws'), import('ws')])
      return createClient({
        url: `${this.url.replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${this.connection.token}` },
        lazy: true,
        retryAttempts: 5,
        shouldRetry: (event) => !(event && typeof event === 'object' && 'code' in event && event.code === 4401),
      })
    }
    const client = () => (this.#ws ??= connect())
    const url = this.url
    return (async function* () {
      try {
        for await (const result of (await client()).iterate<R>({ query, variables: variables as Record<string, unknown> })) {
          const [first] = result.errors ?? []
          if (first) throw new ApiError(first.message, (first.extensions?.code as string | undefined) ?? null)
          if (result.data) yield result.data as R
        }
      } catch (error) {
        if (error instanceof ApiError) throw error
        throw new ApiError(closeReason(error, url))
      }
    })()
  }

  async close(): Promise<void> {
    await (await this.#ws)?.dispose()
    this.#ws = null
  }
}

function closeReason(error: unknown, url: string): string {
  if (error && typeof error === 'object' && 'code' in error && 'reason' in error) {
    const { code, reason } = error as { code: number; reason: string }
    return reason ? `${reason} (websocket closed, ${code})` : `websocket closed (${code})`
  }
  // ws's ErrorEvent: the socket could not connect.
  if (error && typeof error === 'object' && 'error' in error) {
    const cause = (error as { error?: { code?: string; message?: string } }).error
    return `cannot reach flatdepot at ${url}: ${cause?.code ?? cause?.message ?? 'websocket error'}`
  }
  if (Array.isArray(error)) return error.map((item: { message?: string }) => item.message ?? String(item)).join('; ')
  return error instanceof Error ? error.message : String(error)
}

/** A union member of the schema's Error interface ({ __typename, message, code }) becomes an ApiError. */
export function throwIfError(value: unknown): void {
  if (value && typeof value === 'object' && '__typename' in value && 'message' in value) {
    const { __typename, message, code } = value as { __typename: string; message: string; code?: string }
    if (__typename.endsWith('Error')) throw new ApiError(message, code ?? __typename)
  }
}

/** flat-manager's JSON error shape ({ status, error-type, message }) becomes an ApiError. */
async function restBody(response: Response): Promise<unknown> {
  return parseRestBody(response.status, response.statusText, await response.text())
}

function parseRestBody(status: number, statusText: string, text: string): unknown {
  let body: unknown = null
  try {
    body = JSON.parse(text)
  } catch {
    // not JSON: a proxy's page, say
  }
  if (status >= 200 && status < 300 && body !== null) return body
  const error = body as { message?: string; 'error-type'?: string } | null
  throw new ApiError(
    error?.message ?? `${status} ${statusText}${text ? `: ${text.slice(0, 200)}` : ''}`,
    error?.['error-type'] ?? null,
    status >= 500 || status === 429,
  )
}

// Upload requests reuse their connections (one per request in flight).
const httpAgent = new http.Agent({ keepAlive: true })
const httpsAgent = new https.Agent({ keepAlive: true })
