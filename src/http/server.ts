import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { requestScope, type Logger } from '../log.ts'
import { sendJsonError } from './errors.ts'

export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean

const requestIdPattern = /^[A-Za-z0-9._-]{1,128}$/

/**
 * The HTTP front: a request id per request (taken from X-Request-Id when sane), an access log
 * line per response, and the first route that claims the path answers it.
 */
export function createHttpServer(routes: readonly Route[], log: Logger): Server {
  return createServer((req, res) => {
    const given = req.headers['x-request-id']
    const requestId = typeof given === 'string' && requestIdPattern.test(given) ? given : randomUUID()
    res.setHeader('x-request-id', requestId)
    const started = process.hrtime.bigint()
    res.on('finish', () => {
      log.info(
        {
          requestId,
          method: req.method,
          path: req.url,
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
        },
        'request',
      )
    })
    void requestScope.run({ requestId }, async () => {
      try {
        const url = new URL(req.url ?? '/', 'http://localhost')
        for (const route of routes) {
          if (await route(req, res, url)) return
        }
        sendJsonError(res, 404, 'not-found', `Not found: ${url.pathname}`)
      } catch (error) {
        log.error({ err: error }, 'unhandled error while serving a request')
        if (!res.headersSent) {
          sendJsonError(res, 500, 'internal-error', `Internal Server Error (request id ${requestId})`)
        } else {
          res.destroy()
        }
      }
    })
  })
}

export const healthRoute: Route = (_req, res, url) => {
  if (url.pathname !== '/healthz') return false
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end('{"status":"ok"}')
  return true
}
