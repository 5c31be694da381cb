import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Route, UpgradeHandler } from '../http/server.ts'
import { BodyTooLargeError, readBody } from '../http/body.ts'
import { randomUUID } from 'node:crypto'
import { GraphQLError, type ExecutionResult } from 'graphql'
import { createGraphQLError, createYoga, handleStreamOrSingleExecutionResult, type Plugin, type YogaServerInstance } from 'graphql-yoga'
import { useServer } from 'graphql-ws/use/ws'
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit'
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases'
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth'
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives'
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens'
import { WebSocketServer } from 'ws'
import { admitPerTurn } from '../util/admitPerTurn.ts'
import { DomainError } from '../domain/shared/errors.ts'
import type { Database } from '../db/database.ts'
import type { PrismaClient } from '../generated/prisma/client.ts'
import { requestIdOf, type Logger } from '../log.ts'
import { createJobLogHub } from '../notifications/jobLogHub.ts'
import { isSharedSubscription, subscribeShared, type Delivery } from './sharedEvents.ts'
import type { ChangeFeed } from '../notifications/changeFeed.ts'
import type { AuditService } from '../services/audit.ts'
import type { BuildService } from '../services/builds.ts'
import type { RepoService } from '../services/repos.ts'
import type { TokenService } from '../services/tokens.ts'
import type { UploadService } from '../upload/uploadService.ts'
import { TokenError } from '../tokens/jwt.ts'
import type { Context } from './context.ts'
import { schema } from './schema/index.ts'

export type GraphqlDeps = {
  prisma: PrismaClient
  /** Reads on the driver's connection (the job-log hub's). */
  query: Database['query']
  builds: BuildService
  audit: AuditService
  repos: RepoService
  tokens: TokenService
  uploads: UploadService
  changes: ChangeFeed
  log: Logger
  graphiql: boolean
}

/** `requestId`: a WebSocket connection's (an HTTP request's is on `req`). */
type ServerContext = { req?: IncomingMessage; res?: ServerResponse; connectionParams?: Record<string, unknown>; requestId?: string }

const tokenErrorCodes = {
  missing: 'TOKEN_MISSING',
  malformed: 'TOKEN_MALFORMED',
  invalid: 'TOKEN_INVALID',
  expired: 'TOKEN_EXPIRED',
  revoked: 'TOKEN_REVOKED',
} as const

/**
 * What one operation may ask for, checked before it runs (graphql-armor's envelop plugins): the
 * parser stops at `tokens` (so a 5,000-deep or 10 MB document costs a bounded parse), validation
 * refuses deeper, more aliased, more costly or more directive-laden operations. Introspection
 * (GraphiQL) is exempt from depth and cost. Generous for any real frontend: the deepest query of
 * the CLI is 5 levels, the largest ~150 tokens; a page of 100 jobs with their logs costs ~1,600.
 */
export const graphqlLimits = { tokens: 3000, depth: 12, aliases: 30, cost: 20_000, directives: 20 } as const

/** Each limit's refusal carries a code a client can branch on (the plugins set none). */
const withCode = (code: string) => ({
  onReject: [
    (_context: unknown, error: GraphQLError) => {
      ;(error.extensions as Record<string, unknown>).code = code
    },
  ],
})

export const limitPlugins = () => [
  maxTokensPlugin({ n: graphqlLimits.tokens, ...withCode('QUERY_TOO_LARGE') }),
  maxDepthPlugin({ n: graphqlLimits.depth, ...withCode('QUERY_TOO_DEEP') }),
  maxAliasesPlugin({ n: graphqlLimits.aliases, ...withCode('TOO_MANY_ALIASES') }),
  // Cost: 2 per object and 1 per scalar, times a list's `first`/`last` (connections give at most
  // 100); no extra factor per level (the default 1.5ⁿ refuses an ordinary 6-level build page).
  costLimitPlugin({ maxCost: graphqlLimits.cost, depthCostFactor: 1, ...withCode('QUERY_TOO_COSTLY') }),
  maxDirectivesPlugin({ n: graphqlLimits.directives, ...withCode('TOO_MANY_DIRECTIVES') }),
]

/**
 * An error nobody made on purpose, masked: "Unexpected error" with the request id to quote, the
 * original kept for the log. Errors made on purpose (token errors, validation, domain errors)
 * come back as they are, a request-level one without a code (variables that do not fit their
 * types) with BAD_USER_INPUT; null when the error needs nothing.
 */
function maskUnexpected(error: unknown, requestId: string | null): { error: GraphQLError; original?: unknown } | null {
  let original: unknown = error
  while (original instanceof GraphQLError && original.originalError) original = original.originalError
  if (original instanceof GraphQLError) {
    if (original.extensions.code || original.path) return original === error ? null : { error: original }
    return { error: createGraphQLError(original.message, { nodes: original.nodes, extensions: { ...original.extensions, code: 'BAD_USER_INPUT' } }) }
  }
  if (original instanceof DomainError) return { error: createGraphQLError(original.message, { extensions: { code: original.code } }) }
  return {
    error: createGraphQLError(`Unexpected error. Quote request id ${requestId ?? 'unknown'} when reporting it.`, {
      extensions: { code: 'INTERNAL_SERVER_ERROR', requestId },
    }),
    original,
  }
}

/** maskUnexpected, with an unexpected error's original logged (with the request id when known); null when the error needs nothing. */
function maskLogged(error: unknown, requestId: string | null, log: Logger, what: string): GraphQLError | null {
  const masked = maskUnexpected(error, requestId)
  if (masked && 'original' in masked) log.error({ requestId, err: masked.original }, what)
  return masked?.error ?? null
}

/** A result's errors as a person may see them (see maskUnexpected); null when none needed it. */
function maskedResult(result: ExecutionResult, requestId: string, log: Logger): ExecutionResult | null {
  if (!result.errors?.length) return null
  let changed = false
  const errors = result.errors.map((error) => {
    const masked = maskLogged(error, requestId, log, 'unexpected error in GraphQL execution')
    if (masked) changed = true
    return masked ?? error
  })
  return changed ? { ...result, errors } : null
}

/**
 * Masks an operation's unexpected errors where its context, and so its request id, is known
 * (yoga's own masking, after this, sees them already masked), and logs each with that id.
 */
export function useMaskedWithRequestId(log: Logger): Plugin<Pick<Context, 'requestId'>> {
  const masking = (context: Pick<Context, 'requestId'>) => ({ result, setResult }: { result: ExecutionResult; setResult: (result: ExecutionResult) => void }) => {
    const masked = maskedResult(result, context.requestId, log)
    if (masked) setResult(masked)
  }
  return {
    onExecute: ({ args }) => ({ onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, masking(args.contextValue)) }),
    onSubscribe: ({ args }) => ({ onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, masking(args.contextValue)) }),
  }
}

/** yoga's own masking: what the plugin above left, errors outside an operation's execution (no request id known). */
export const maskedErrors = (log: Logger) => ({
  maskError: (error: unknown) => maskLogged(error, null, log, 'unexpected error in GraphQL') ?? (error as Error),
})

export function createGraphql(deps: GraphqlDeps): YogaServerInstance<ServerContext, Context> {
  const { log } = deps
  const jobLogs = createJobLogHub({ query: deps.query, changes: deps.changes, log })
  return createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    graphiql: deps.graphiql,
    landingPage: false,
    plugins: [...limitPlugins(), useMaskedWithRequestId(log)],
    logging: {
      debug: (...args) => log.debug(args.map(String).join(' ')),
      info: (...args) => log.info(args.map(String).join(' ')),
      warn: (...args) => log.warn(args.map(String).join(' ')),
      error: (...args) => log.error(args.map(String).join(' ')),
    },
    maskedErrors: maskedErrors(log),
    context: async ({ request, req, connectionParams, requestId: connectionRequestId }): Promise<Context> => {
      const requestId = connectionRequestId ?? requestIdOf(req) ?? randomUUID()
      const header =
        typeof connectionParams?.authorization === 'string'
          ? connectionParams.authorization
          : request.headers.get('authorization')
      try {
        const claims = await deps.tokens.authenticate(header, requestId)
        return {
          prisma: deps.prisma,
          claims,
          actor: { claims, requestId },
          requestId,
          builds: deps.builds,
          audit: deps.audit,
          repos: deps.repos,
          tokens: deps.tokens,
          uploads: deps.uploads,
          changes: deps.changes,
          jobLogs,
        }
      } catch (error) {
        if (!(error instanceof TokenError)) {
          throw maskLogged(error, requestId, log, 'unexpected error while authenticating a GraphQL request') ?? error
        }
        log.info({ requestId, reason: error.message }, 'rejected token')
        throw createGraphQLError(error.message, {
          extensions: { code: tokenErrorCodes[error.kind], http: { status: 401 } },
        })
      }
    },
  })
}

/** The socket and subscription id a subscription's execution arguments carry to `subscribe`. */
const delivery = Symbol('delivery')

/**
 * WebSocket handshakes started per pass of the event loop. A thousand browsers opening a build page
 * at once arrive in a few passes; each connection then costs a handshake, its authentication and
 * its subscription, about a millisecond. Started all in the pass they arrived in, they held every
 * other request (a query, a download) for 100–300 ms; a few per pass, the others get their turn
 * between them, and the watchers connect as fast.
 */
const upgradesPerTurn = 16

/** graphql-ws on the same HTTP server and the same yoga pipeline (context, auth, masking). */
export function createWebSockets(yoga: YogaServerInstance<ServerContext, Context>, tokens: TokenService, log: Logger) {
  const wss = new WebSocketServer({ noServer: true })
  type Extra = { socket: import('ws').WebSocket; request: IncomingMessage; requestId: string }
  const disposable = useServer<Record<string, unknown>, Extra>(
    {
      execute: (args) => (args.rootValue as { execute: typeof import('graphql').execute }).execute(args),
      subscribe: async (args) => {
        const root = args.rootValue as { subscribe: typeof import('graphql').subscribe }
        if (!isSharedSubscription(args)) return root.subscribe(args)
        // A job log followed by many watchers: each line executed once, not once per watcher.
        // That path goes around envelop's subscribe, and so around its masking: a refusal at the
        // start (no such job, not yours) is masked here the same way, with its code.
        const result = await subscribeShared(args, (args as { [delivery]?: Delivery })[delivery]!)
        return Symbol.asyncIterator in result ? result : (maskedResult(result, (args.contextValue as Context).requestId, log) ?? result)
      },
      onConnect: async (ctx) => {
        ctx.extra.requestId = randomUUID()
        const header = ctx.connectionParams?.authorization
        try {
          await tokens.authenticate(typeof header === 'string' ? header : null, ctx.extra.requestId)
          return true
        } catch (error) {
          if (error instanceof TokenError) {
            ctx.extra.socket.close(4401, error.message)
            return false
          }
          // The close reason is shown to people: never a database's or a library's own text.
          log.error({ err: error, requestId: ctx.extra.requestId }, 'could not authenticate a WebSocket connection')
          ctx.extra.socket.close(4500, `Internal server error (request id ${ctx.extra.requestId})`)
          return false
        }
      },
      onSubscribe: async (ctx, id, params) => {
        const enveloped = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          request: new Request('http://localhost/graphql'),
          connectionParams: ctx.connectionParams ?? {},
          // Every log line of the operation carries the connection's request id.
          requestId: ctx.extra.requestId ?? randomUUID(),
        })
        const args = {
          // Where a shared subscription's lines go (see subscribeShared).
          [delivery]: { socket: ctx.extra.socket, id } satisfies Delivery,
          schema: enveloped.schema,
          operationName: params.operationName,
          document: enveloped.parse(params.query),
          variableValues: params.variables,
          contextValue: await enveloped.contextFactory(),
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
        }
        const errors = enveloped.validate(args.schema, args.document)
        return errors.length ? errors : args
      },
      onError: (_ctx, _id, _payload, errors) => log.warn({ errors: errors.map((e) => e.message) }, 'subscription error'),
    },
    wss,
  )
  const admit = admitPerTurn(upgradesPerTurn)
  const upgrade: UpgradeHandler = (req, socket, head) => {
    const isWebSocket = req.headers.upgrade?.toLowerCase() === 'websocket'
    if (!isWebSocket || new URL(req.url ?? '/', 'http://localhost').pathname !== yoga.graphqlEndpoint) return false
    // Node's server no longer listens to the socket: a client gone while it waits must not be an
    // 'error' without a listener.
    const onWaitingError = () => socket.destroy()
    socket.on('error', onWaitingError)
    admit(() => {
      socket.off('error', onWaitingError)
      if (!socket.destroyed) wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
    })
    return true
  }
  return {
    upgrade,
    async close() {
      await disposable.dispose()
      await new Promise<void>((resolve) => wss.close(() => resolve()))
    },
  }
}

/** The largest GraphQL request body: far above any real operation, far below what hurts to parse. */
export const maxGraphqlBodyBytes = 1024 * 1024

/**
 * GraphQL over HTTP at yoga's endpoint. The body is read here, bounded, before yoga sees it (yoga
 * itself reads any size): a larger one is a 413 in GraphQL's error shape.
 */
export function graphqlHttpRoute(yoga: YogaServerInstance<ServerContext, Context>): Route {
  return async (req, res, url) => {
    if (url.pathname !== yoga.graphqlEndpoint) return false
    if (req.method === 'POST') {
      try {
        const body = await readBody(req, maxGraphqlBodyBytes, { gunzip: false })
        // @whatwg-node/server takes a body already read from `req.body`.
        if (body.length) Object.assign(req, { body })
      } catch (error) {
        if (!(error instanceof BodyTooLargeError)) throw error
        // The rest is read and dropped, so a client still sending gets to read the answer.
        req.resume()
        const answer = JSON.stringify({ errors: [{ message: error.message, extensions: { code: 'BODY_TOO_LARGE', limit: error.limit } }] })
        res.writeHead(413, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) })
        res.end(answer)
        return true
      }
    }
    await yoga.handle(req, res)
    return true
  }
}
