import type { IncomingMessage, ServerResponse } from 'node:http'
import { DomainError, idFromPath } from '../domain/shared/errors.ts'
import type { Claims } from '../domain/token/claims.ts'
import type { Route } from '../http/server.ts'
import { readBody } from '../http/body.ts'
import { sendApiError, sendJsonError } from '../http/errors.ts'
import { currentRequestId, type Logger } from '../log.ts'
import type { Actor } from '../services/actor.ts'
import type { TokenService } from '../services/tokens.ts'
import { TokenError } from '../tokens/jwt.ts'
import type { UploadService } from '../upload/uploadService.ts'

const jsonLimit = 10 * 1024 * 1024

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

/** Reads a JSON body (also on GET, also gzip-encoded, as flat-manager's clients send it); empty means {}. */
async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBody(req, jsonLimit)
  if (body.length === 0) return {}
  try {
    const value: unknown = JSON.parse(body.toString('utf8'))
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidBody('Request body must be a JSON object')
    return value as Record<string, unknown>
  } catch (error) {
    if (error instanceof InvalidBody) throw error
    throw new InvalidBody(`Json deserialize error: ${(error as Error).message}`)
  }
}

class InvalidBody extends DomainError {
  readonly code = 'INVALID_INPUT'
}

type Handler = (ctx: { req: IncomingMessage; res: ServerResponse; actor: Actor; params: string[] }) => Promise<void>

export function createFlatManagerApi(deps: { tokens: TokenService; uploads: UploadService; log: Logger }): Route {
  const routes: { method: string[]; pattern: RegExp; handler: Handler }[] = [
    {
      method: ['POST'],
      pattern: /^\/api\/v1\/build\/(\d+)\/upload$/,
      handler: async ({ req, res, actor, params }) => {
        sendJson(res, 200, await deps.uploads.receiveMultipart(actor, idFromPath(params[0]!, 'Build'), req))
      },
    },
    {
      method: ['GET', 'POST'],
      pattern: /^\/api\/v1\/build\/(\d+)\/missing_objects$/,
      handler: async ({ req, res, actor, params }) => {
        const body = await readJson(req)
        const wanted = body.wanted
        if (!Array.isArray(wanted) || !wanted.every((name) => typeof name === 'string')) {
          throw new InvalidBody('Json deserialize error: "wanted" must be a list of object names')
        }
        sendJson(res, 200, { missing: await deps.uploads.missingObjects(actor, idFromPath(params[0]!, 'Build'), wanted) })
      },
    },
  ]

  return async (req, res, url) => {
    if (!url.pathname.startsWith('/api/v1/')) return false
    const route = routes.find((candidate) => candidate.pattern.test(url.pathname))
    if (!route) {
      sendJsonError(res, 404, 'not-found', `No API endpoint ${url.pathname}`)
      return true
    }
    if (!route.method.includes(req.method ?? '')) {
      sendJsonError(res, 405, 'generic-error', `Method ${req.method} not allowed on ${url.pathname}`)
      return true
    }
    try {
      const header = req.headers.authorization
      if (!header) throw new TokenError('missing', 'No Authorization header')
      const claims: Claims | null = await deps.tokens.authenticate(header, currentRequestId())
      const params = route.pattern.exec(url.pathname)!.slice(1)
      await route.handler({ req, res, actor: { claims, requestId: currentRequestId() }, params })
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
