import { randomUUID } from 'node:crypto'
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { setRequestId, type Logger } from '../log.ts'
import { clientWentAway } from './body.ts'
import { sendJsonError } from './errors.ts'

export type Route = ((req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean) & {
  /**
   * Answers, synchronously and before any URL parsing or request scope, the requests that need
   * neither (a content-addressed file already in memory); false leaves the request to the route.
   * `headers` (the request id) go into the answer's writeHead call with its own: a setHeader
   * before writeHead takes Node's slower way of assembling headers (a fifth of the throughput of
   * small answers, measured with bench:serving's bare server).
   */
  fast?: (req: IncomingMessage, res: ServerResponse, headers: { 'x-request-id': string }) => boolean
}

const requestIdPattern = /^[A-Za-z0-9._-]{1,128}$/

/** Sees every answered request (the metrics' request counter). */
export type ResponseObserver = (req: IncomingMessage, status: number) => void

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean

/** How long a client may take to send its request headers, and to keep a socket silent. */
export const headersTimeoutMs = 15_000
export const idleSocketTimeoutMs = 120_000

export type HttpFront = Readonly<{
  server: Server
  /** The routes and upgrade handlers, once the app behind them is ready; until then: 503. */
  mount: (routes: readonly Route[], upgrades?: readonly UpgradeHandler[], observe?: ResponseObserver) => void
}>

/**
 * The HTTP front: a request id per request (taken from X-Request-Id when sane), an access log
 * line per response, and the first route that claims the path answers it. It can listen before
 * the app is ready (the port is taken before the database is touched), answering 503 meanwhile.
 *
 * Slow clients: headers must arrive within headersTimeoutMs (checked every second), and a socket
 * silent for idleSocketTimeoutMs is closed. There is no limit on a whole request's time: a large
 * upload on a slow link may take hours, as long as bytes keep coming.
 */
export function createHttpServer(log: Logger): HttpFront {
  let routes: readonly Route[] = [startingRoute]
  let upgrades: readonly UpgradeHandler[] = []
  let fastRoutes: NonNullable<Route['fast']>[] = []
  let observe: ResponseObserver | null = null
  const server = createServer({ headersTimeout: headersTimeoutMs, requestTimeout: 0, connectionsCheckingInterval: 1000 }, handle)
  server.setTimeout(idleSocketTimeoutMs, (socket) => socket.destroy())
  // With an 'upgrade' listener, Node hands every request that offers an upgrade to it; flatpak's
  // libcurl offers `Upgrade: h2c` on every GET. Those are answered as ordinary HTTP/1.1 requests
  // (ignoring the offer is what RFC 9110 allows), and only WebSocket upgrades go to their handler.
  // The connection then stays open for the client's next request, as for any HTTP/1.1 request:
  // it is handed back to the HTTP server, which parses it afresh. (Closing it instead would make
  // libcurl open a connection per request, and defeat the summary pinning of src/ostree/summary.ts.)
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (upgrades.some((upgrade) => upgrade(req, socket, head))) return
    const keepAlive = req.httpVersion === '1.1' && !/\bclose\b/i.test(req.headers.connection ?? '') && (req.headers['content-length'] ?? '0') === '0' && !req.headers['transfer-encoding']
    if (head.length) socket.unshift(head)
    const res = new ServerResponse(req)
    res.shouldKeepAlive = keepAlive
    res.assignSocket(socket as Socket)
    // Node wires a socket's 'drain' to its response only for sockets it parses itself: without
    // this, a body larger than the socket buffer would stall after 64 KiB.
    const drain = () => res.emit('drain')
    socket.on('drain', drain)
    res.on('finish', () => {
      socket.off('drain', drain)
      res.detachSocket(socket as Socket)
      if (keepAlive && !socket.destroyed) server.emit('connection', socket)
      else socket.end()
    })
    handle(req, res)
  })
  return {
    server,
    mount(mounted, mountedUpgrades = [], mountedObserver) {
      observe = mountedObserver ?? null
      routes = mounted
      upgrades = mountedUpgrades
      fastRoutes = mounted.flatMap((route) => (route.fast ? [route.fast] : []))
    },
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const given = req.headers['x-request-id']
    const requestId = typeof given === 'string' && requestIdPattern.test(given) ? given : randomUUID()
    const started = process.hrtime.bigint()
    const logRequest = () => {
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
      observe?.(req, res.statusCode)
    }
    if (fastRoutes.length) {
      const headers = { 'x-request-id': requestId }
      for (const fast of fastRoutes) {
        if (fast(req, res, headers)) {
          // Written in one call already: log it now rather than wait for 'finish'.
          logRequest()
          return
        }
      }
    }
    res.setHeader('x-request-id', requestId)
    setRequestId(req, requestId)
    res.on('finish', logRequest)
    void (async () => {
      try {
        const url = new URL(req.url ?? '/', 'http://localhost')
        for (const route of routes) {
          if (await route(req, res, url)) return
        }
        sendJsonError(res, 404, 'not-found', `Not found: ${url.pathname}`)
      } catch (error) {
        if (clientWentAway(req, error)) {
          log.info({ requestId, reason: (error as Error).message }, 'client went away before the answer')
          res.destroy()
          return
        }
        log.error({ requestId, err: error }, 'unhandled error while serving a request')
        if (!res.headersSent) {
          sendJsonError(res, 500, 'internal-error', `Internal Server Error (request id ${requestId})`)
        } else {
          res.destroy()
        }
      }
    })()
  }
}

/** Until the app is mounted: everything is a 503 that says to come back (the health check too). */
const startingRoute: Route = (_req, res, url) => {
  const body = url.pathname === '/healthz' ? '{"status":"starting"}' : JSON.stringify({ status: 503, 'error-type': 'generic-error', message: 'flatdepot is starting; try again in a moment' })
  res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' })
  res.end(body)
  return true
}

export const healthRoute: Route = (_req, res, url) => {
  if (url.pathname !== '/healthz') return false
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end('{"status":"ok"}')
  return true
}
