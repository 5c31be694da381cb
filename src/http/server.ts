import { randomUUID } from 'node:crypto'
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { requestScope, type Logger } from '../log.ts'
import { sendJsonError } from './errors.ts'

export type Route = ((req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean) & {
  /**
   * Answers, synchronously and before any URL parsing or request scope, the requests that need
   * neither (a content-addressed file already in memory); false leaves the request to the route.
   */
  fast?: (req: IncomingMessage, res: ServerResponse) => boolean
}

const requestIdPattern = /^[A-Za-z0-9._-]{1,128}$/

/**
 * The HTTP front: a request id per request (taken from X-Request-Id when sane), an access log
 * line per response, and the first route that claims the path answers it.
 */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean

export function createHttpServer(routes: readonly Route[], log: Logger, upgrades: UpgradeHandler[] = []): Server {
  const fastRoutes = routes.flatMap((route) => (route.fast ? [route.fast] : []))
  const server = createServer(handle)
  // With an 'upgrade' listener, Node hands every request that offers an upgrade to it; flatpak's
  // libcurl offers `Upgrade: h2c` on every GET. Those are answered as ordinary HTTP/1.1 requests
  // (ignoring the offer is what RFC 9110 allows), and only WebSocket upgrades go to their handler.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (upgrades.some((upgrade) => upgrade(req, socket, head))) return
    if (head.length) socket.unshift(head)
    const res = new ServerResponse(req)
    res.shouldKeepAlive = false
    res.assignSocket(socket as Socket)
    // Node wires a socket's 'drain' to its response only for sockets it parses itself: without
    // this, a body larger than the socket buffer would stall after 64 KiB.
    const drain = () => res.emit('drain')
    socket.on('drain', drain)
    res.on('finish', () => {
      socket.off('drain', drain)
      res.detachSocket(socket as Socket)
      socket.end()
    })
    handle(req, res)
  })
  return server

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const given = req.headers['x-request-id']
    const requestId = typeof given === 'string' && requestIdPattern.test(given) ? given : randomUUID()
    res.setHeader('x-request-id', requestId)
    const started = process.hrtime.bigint()
    const logRequest = () =>
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
    for (const fast of fastRoutes) {
      if (fast(req, res)) {
        // Written in one call already: log it now rather than wait for 'finish'.
        logRequest()
        return
      }
    }
    res.on('finish', logRequest)
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
  }
}

export const healthRoute: Route = (_req, res, url) => {
  if (url.pathname !== '/healthz') return false
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end('{"status":"ok"}')
  return true
}
