import type { IncomingMessage, ServerResponse } from 'node:http'
import { z } from 'zod'
import type { Config } from '../config/config.ts'
import { DomainError, idFromPath, InvalidInputError, NotFoundError } from '../domain/shared/errors.ts'
import type { CheckStatus } from '../domain/build/events.ts'
import type { PrismaClient } from '../generated/prisma/client.ts'
import type { Route } from '../http/server.ts'
import { readBody } from '../http/body.ts'
import { sendApiError, sendJsonError } from '../http/errors.ts'
import { requestIdOf, type Logger } from '../log.ts'
import type { Actor } from '../services/actor.ts'
import type { BuildService } from '../services/builds.ts'
import type { RepoService } from '../services/repos.ts'
import type { TokenService } from '../services/tokens.ts'
import { TokenError } from '../tokens/jwt.ts'
import type { UploadService } from '../upload/uploadService.ts'
import { buildJson, buildRefJson, checkJson, jobJson, jobLogText, naiveUtc } from './shapes.ts'

/**
 * flat-manager's REST API (0.5.3 and what 0.4.6 clients call), on the same services as GraphQL.
 * Every answer is flat-manager's: 200 with its JSON (204 for a review and a revocation), an
 * absolute Location on the routes that set one, and its error JSON for every failure, including
 * the ones actix answers with plain text (bad JSON, wrong content type, bad path parameters).
 */

/** actix's default JSON limit; `missing_objects` (2,000 names a request) gets flat-manager's 10 MiB. */
const jsonLimit = 2 * 1024 * 1024
const missingObjectsLimit = 10 * 1024 * 1024

export type FlatManagerApiDeps = {
  config: Config
  prisma: PrismaClient
  tokens: TokenService
  builds: BuildService
  repos: RepoService
  uploads: UploadService
  log: Logger
}

type Context = { req: IncomingMessage; res: ServerResponse; url: URL; actor: Actor; params: number[]; strings: string[] }
type Handler = (ctx: Context) => Promise<void>
type RouteSpec = { method: 'GET' | 'POST'; pattern: RegExp; handler: Handler }

class BodyError extends InvalidInputError {}

function sendJson(res: ServerResponse, status: number, value: unknown, location?: string): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(location ? { location } : {}) })
  res.end(body)
}

/**
 * A JSON body, also on GET and gzip-encoded as flat-manager's clients send it. An empty body is
 * {} (flat-manager refuses it; its clients always send one, and nothing is lost by accepting).
 */
async function readJson<T extends z.ZodType>(req: IncomingMessage, schema: T, limit = jsonLimit): Promise<z.output<T>> {
  const type = req.headers['content-type']
  const body = await readBody(req, limit)
  if (body.length > 0 && type !== undefined && !/^application\/(.+\+)?json\b/i.test(type)) {
    throw new BodyError(`Content type error: expected application/json, got ${type}`, 'body')
  }
  let value: unknown = {}
  if (body.length > 0) {
    try {
      value = JSON.parse(body.toString('utf8'))
    } catch (error) {
      throw new BodyError(`Json deserialize error: ${(error as Error).message}`, 'body')
    }
  }
  if ((schema as z.ZodType) !== anyBody && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new BodyError('Json deserialize error: the request body must be a JSON object', 'body')
  }
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((issue) => `${issue.path.length ? `at ${z.core.toDotPath(issue.path)}: ` : ''}${issue.message}`)
    const more = parsed.error.issues.length > 3 ? ` (and ${parsed.error.issues.length - 3} more)` : ''
    throw new BodyError(`Json deserialize error: ${issues.join('; ')}${more}`, 'body')
  }
  return parsed.data
}

const anyBody = z.unknown()
const logOffset = z.object({ 'log-offset': z.number().int().nonnegative().optional() }).loose()
const nullableString = z.string().nullable().optional()
const createBody = z.object({ repo: z.string(), 'app-id': nullableString, 'public-download': z.boolean().nullable().optional(), 'build-log-url': nullableString })
const refBody = z.object({ ref: z.string(), commit: z.string(), 'build-log-url': nullableString })
const commitBody = z.object({ endoflife: nullableString, endoflife_rebase: nullableString, token_type: z.number().int().nullable().optional() })
const idsBody = z.object({ ids: z.array(z.string()) })
const tokenIdsBody = z.object({ token_ids: z.array(z.string()) })
const subsetBody = z.object({
  sub: z.string(),
  scope: z.array(z.string()),
  duration: z.number().int(),
  name: z.string(),
  prefixes: z.array(z.string()).optional(),
  apps: z.array(z.string()).optional(),
  repos: z.array(z.string()).optional(),
})
const reviewStatuses = ['Pending', 'Passed', 'PassedWithWarnings', 'Failed', 'ReviewRequired'] as const satisfies readonly CheckStatus[]
const reviewBody = z.object({
  'new-status': z.object({ status: z.enum(reviewStatuses), reason: z.string().nullable().optional() }),
  'new-results': nullableString,
})
const republishBody = z.object({ app: z.string(), endoflife: nullableString, endoflife_rebase: nullableString })
const pruneBody = z.object({ repo: z.string() })
const wantedError = { error: '"wanted" must be a list of object names' }
const missingObjectsBody = z.object({ wanted: z.array(z.string(wantedError), wantedError) })

export function createFlatManagerApi(deps: FlatManagerApiDeps): Route {
  const { builds, tokens, repos, uploads, prisma } = deps

  /** Absolute, as flat-manager's clients need: the configured base URL (path prefix included), else the proxy's forwarded host. */
  function publicUrl(req: IncomingMessage, path: string): string {
    if (deps.config.baseUrl) return `${deps.config.baseUrl.replace(/\/+$/, '')}${path}`
    const forwardedProto = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]?.trim()
    const forwardedHost = String(req.headers['x-forwarded-host'] ?? '').split(',')[0]?.trim()
    const prefix = String(req.headers['x-forwarded-prefix'] ?? '').replace(/\/+$/, '')
    return `${forwardedProto || 'http'}://${forwardedHost || req.headers.host || `${deps.config.host}:${deps.config.port}`}${prefix}${path}`
  }

  async function sendJob(ctx: Context, jobId: number, location?: string): Promise<void> {
    const { 'log-offset': offset = 0 } = ctx.req.method === 'GET' ? await readJson(ctx.req, logOffset) : {}
    const job = await builds.readableJob(ctx.actor, jobId)
    sendJson(ctx.res, 200, await jobBody(job, offset), location)
  }
  async function jobBody(job: Parameters<typeof jobJson>[0], offset: number) {
    const lines = await prisma.jobLogLine.findMany({ where: { jobId: job.id }, orderBy: { position: 'asc' }, select: { text: true } })
    return jobJson(job, jobLogText(lines), offset)
  }
  const buildUrl = (req: IncomingMessage, id: number, rest = '') => publicUrl(req, `/api/v1/build/${id}${rest}`)

  const routes: RouteSpec[] = [
    // ---------------------------------------------------------------- builds
    {
      method: 'POST',
      pattern: /^\/api\/v1\/build$/,
      handler: async ({ req, res, actor }) => {
        const body = await readJson(req, createBody)
        const id = await builds
          .createBuild(actor, { repo: body.repo, appId: body['app-id'] ?? null, publicDownload: body['public-download'] ?? null, buildLogUrl: body['build-log-url'] ?? null })
          .catch((error: unknown) => {
            // flat-manager answers an unknown repo with 400 generic-error, not 404 (its clients show the message either way).
            throw error instanceof NotFoundError ? new InvalidInputError(error.message, 'repo') : error
          })
        sendJson(res, 200, buildJson(await builds.authorizedBuild(actor, id, ['build'])), buildUrl(req, id))
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/build$/,
      handler: async ({ req, res, url, actor }) => {
        await readJson(req, anyBody)
        sendJson(res, 200, (await builds.listBuilds(actor, url.searchParams.get('app-id'))).map(buildJson))
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/build\/(\d+)$/,
      handler: async ({ req, res, actor, params: [id] }) => {
        await readJson(req, anyBody)
        sendJson(res, 200, buildJson(await builds.authorizedBuild(actor, id!, ['build', 'upload'])))
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/build\/(\d+)\/extended$/,
      handler: async ({ req, res, actor, params: [id] }) => {
        await readJson(req, anyBody)
        const { build, refs, checks } = await builds.extendedBuild(actor, id!)
        sendJson(res, 200, { build: buildJson(build), build_refs: refs.map(buildRefJson), checks: checks.map(checkJson) })
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/build\/(\d+)\/build_ref$/,
      handler: async ({ req, res, actor, params: [id] }) => {
        const body = await readJson(req, refBody)
        const ref = await builds.createBuildRef(actor, { buildId: id!, refName: body.ref, commit: body.commit, buildLogUrl: body['build-log-url'] ?? null })
        sendJson(res, 200, buildRefJson(ref), buildUrl(req, id!, `/build_ref/${ref.id}`))
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/build\/(\d+)\/build_ref\/(\d+)$/,
      handler: async ({ req, res, actor, params: [id, refId] }) => {
        await readJson(req, anyBody)
        sendJson(res, 200, buildRefJson(await builds.buildRef(actor, id!, refId!)))
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/build\/(\d+)\/missing_objects$/,
      handler: missingObjects,
    },
    {
      // flat-manager answers GET only; flatdepot's own client posts (a body on GET is unusual for proxies).
      method: 'POST',
      pattern: /^\/api\/v1\/build\/(\d+)\/missing_objects$/,
      handler: missingObjects,
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/build\/(\d+)\/upload$/,
      handler: async ({ req, res, actor, params: [id] }) => {
        sendJson(res, 200, await uploads.receiveMultipart(actor, id!, req))
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/build\/(\d+)\/add_extra_ids$/,
      handler: async ({ req, res, actor, params: [id] }) => {
        const body = await readJson(req, idsBody)
        await builds.addExtraIds(actor, id!, body.ids)
        sendJson(res, 200, buildJson(await builds.authorizedBuild(actor, id!, ['upload'])), buildUrl(req, id!))
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/build\/(\d+)\/commit$/,
      handler: async (ctx) => {
        const body = await readJson(ctx.req, commitBody)
        const jobId = await builds.requestCommit(ctx.actor, ctx.params[0]!, {
          endOfLife: body.endoflife ?? null,
          endOfLifeRebase: body.endoflife_rebase ?? null,
          tokenType: body.token_type ?? null,
        })
        sendJson(ctx.res, 200, await jobBody(await builds.readableJob(ctx.actor, jobId), 0), buildUrl(ctx.req, ctx.params[0]!, '/commit'))
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/build\/(\d+)\/commit$/,
      handler: async (ctx) => sendJob(ctx, (await builds.buildJob(ctx.actor, ctx.params[0]!, { commit: true })).id),
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/build\/(\d+)\/publish$/,
      handler: async (ctx) => {
        await readJson(ctx.req, anyBody)
        const jobId = await builds.requestPublish(ctx.actor, ctx.params[0]!)
        sendJson(ctx.res, 200, await jobBody(await builds.readableJob(ctx.actor, jobId), 0), buildUrl(ctx.req, ctx.params[0]!, '/publish'))
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/build\/(\d+)\/publish$/,
      handler: async (ctx) => sendJob(ctx, (await builds.buildJob(ctx.actor, ctx.params[0]!, { publish: true })).id),
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/build\/(\d+)\/check\/([^/]+)\/job$/,
      handler: async (ctx) => sendJob(ctx, (await builds.buildJob(ctx.actor, ctx.params[0]!, { check: ctx.strings[0]! })).id),
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/build\/(\d+)\/purge$/,
      handler: async ({ req, res, actor, params: [id] }) => {
        await readJson(req, anyBody)
        await builds.requestPurge(actor, id!)
        sendJson(res, 200, buildJson(await builds.authorizedBuild(actor, id!, ['build'])), buildUrl(req, id!))
      },
    },
    // ---------------------------------------------------------------- jobs and checks
    {
      method: 'GET',
      pattern: /^\/api\/v1\/job\/(\d+)$/,
      handler: async (ctx) => sendJob(ctx, ctx.params[0]!),
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/job\/(\d+)\/check\/review$/,
      handler: async ({ req, res, actor, params: [jobId] }) => {
        const body = await readJson(req, reviewBody)
        await builds.reviewCheck(actor, jobId!, {
          status: body['new-status'].status,
          reason: body['new-status'].reason ?? null,
          results: body['new-results'] ?? null,
        })
        res.writeHead(204).end()
      },
    },
    // ---------------------------------------------------------------- repos
    {
      method: 'POST',
      pattern: /^\/api\/v1\/repo\/(.+)\/republish$/,
      handler: async (ctx) => {
        const body = await readJson(ctx.req, republishBody)
        const jobId = await repos.requestRepublish(ctx.actor, ctx.strings[0]!, {
          app: body.app,
          endOfLife: body.endoflife ?? null,
          endOfLifeRebase: body.endoflife_rebase ?? null,
        })
        sendJson(ctx.res, 200, await jobBody(await builds.readableJob(ctx.actor, jobId), 0), publicUrl(ctx.req, `/api/v1/job/${jobId}`))
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/prune$/,
      handler: async (ctx) => {
        const body = await readJson(ctx.req, pruneBody)
        const jobId = await repos.requestPrune(ctx.actor, body.repo)
        sendJson(ctx.res, 200, await jobBody(await builds.readableJob(ctx.actor, jobId), 0))
      },
    },
    // ---------------------------------------------------------------- tokens
    {
      method: 'POST',
      pattern: /^\/api\/v1\/token_subset$/,
      handler: async ({ req, res, actor }) => {
        const body = await readJson(req, subsetBody)
        const { token } = await tokens.subset(actor, { ...body, durationSecs: body.duration })
        sendJson(res, 200, { token })
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/tokens\/get_list$/,
      handler: async ({ req, res, actor }) => {
        const body = await readJson(req, tokenIdsBody)
        const known = await tokens.list(actor, body.token_ids)
        sendJson(
          res,
          200,
          known.map((token) => ({
            token_id: token.jti,
            expires: token.expiresAt ? naiveUtc(token.expiresAt) : null,
            last_used: token.lastUsed ? naiveUtc(token.lastUsed) : null,
            revoked_at: token.revokedAt ? naiveUtc(token.revokedAt) : null,
          })),
        )
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/tokens\/revoke$/,
      handler: async ({ req, res, actor }) => {
        const body = await readJson(req, tokenIdsBody)
        await tokens.revoke(actor, body.token_ids)
        res.writeHead(204).end()
      },
    },
  ]

  async function missingObjects({ req, res, actor, params: [id] }: Context): Promise<void> {
    const body = await readJson(req, missingObjectsBody, missingObjectsLimit)
    sendJson(res, 200, { missing: await uploads.missingObjects(actor, id!, body.wanted) })
  }

  return async (req, res, url) => {
    if (!url.pathname.startsWith('/api/v1/') && url.pathname !== '/api/v1') return false
    const matching = routes.filter((candidate) => candidate.pattern.test(url.pathname))
    try {
      if (matching.length === 0) throw new RouteNotFound(`No API endpoint ${url.pathname}`)
      const route = matching.find((candidate) => candidate.method === req.method)
      if (!route) {
        req.resume()
        const allowed = [...new Set(matching.map((candidate) => candidate.method))].sort().join(', ')
        res.setHeader('allow', allowed)
        sendJsonError(res, 405, 'generic-error', `Method ${req.method} not allowed on ${url.pathname} (allowed: ${allowed})`)
        return true
      }
      const header = req.headers.authorization
      if (!header) throw new TokenError('missing', 'No Authorization header')
      const claims = await tokens.authenticate(header, requestIdOf(req))
      const captured = route.pattern.exec(url.pathname)!.slice(1)
      const strings = captured.map((value) => decodePathSegment(value))
      const params = captured.map((value) => (/^\d+$/.test(value) ? idFromPath(value, idLabel(url.pathname, value)) : 0))
      await route.handler({ req, res, url, actor: { claims, requestId: requestIdOf(req) }, params, strings })
    } catch (error) {
      // Anything unexpected (a client that went away included) is the HTTP front's to answer and log.
      if (!(error instanceof DomainError || error instanceof TokenError)) throw error
      if (!res.headersSent) {
        req.resume()
        sendApiError(res, error, deps.log)
      } else res.destroy()
    }
    return true
  }
}

/** What a number in the path names, for a "… not found" message: the segment before it. */
function idLabel(pathname: string, value: string): string {
  const segments = pathname.split('/')
  const before = segments[segments.indexOf(value) - 1]
  return before === 'build' ? 'Build' : before === 'job' ? 'Job' : before === 'build_ref' ? 'Ref' : 'Item'
}

class RouteNotFound extends DomainError {
  readonly code = 'NOT_FOUND'
}

function decodePathSegment(value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    throw new InvalidInputError(`Invalid percent-encoding in the path: ${value}`, 'path')
  }
}
