import type { IncomingMessage } from 'node:http'
import { pino, type Logger } from 'pino'

/**
 * The request id of an HTTP request (taken from X-Request-Id when sane, else made up), set by the
 * HTTP front before any route sees the request; code serving it passes it on explicitly and puts
 * it in the lines it logs. Not an AsyncLocalStorage: on Node 20 one in use makes every promise of
 * the process pay a hook (twice the cost of an await through async generators, measured; 23% of
 * the API's CPU delivering job logs to 300 watchers, and 60% of its garbage collection).
 */
const requestIdKey = Symbol('flatdepot.requestId')

export function setRequestId(req: IncomingMessage, requestId: string): void {
  ;(req as IncomingMessage & { [requestIdKey]?: string })[requestIdKey] = requestId
}

export const requestIdOf = (req: IncomingMessage | undefined | null): string | null => (req as (IncomingMessage & { [requestIdKey]?: string }) | undefined)?.[requestIdKey] ?? null

/**
 * Log lines are written to stderr as they come, or gathered up to this many bytes per write
 * (`FLATDEPOT_LOG_BUFFER_BYTES`; at most a quarter of a second late, and flushed at exit): under
 * load the access log then costs one write per few dozen requests.
 */
// sonic-boom writes at most 16 KiB at once and wants its buffer below that.
const logBufferBytes = () => Math.min(Number(process.env.FLATDEPOT_LOG_BUFFER_BYTES ?? 0) || 0, 12 * 1024)

function stderrDestination() {
  const minLength = logBufferBytes()
  const destination = pino.destination({ dest: 2, sync: false, minLength })
  if (minLength > 0) {
    const timer = setInterval(() => {
      try {
        destination.flush()
      } catch {
        clearInterval(timer) // closed: the process is ending
      }
    }, 250)
    timer.unref()
  }
  return destination
}

export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.FLATDEPOT_LOG_LEVEL ?? 'info',
      base: { service: 'flatdepot' },
    },
    options.destination ?? stderrDestination(),
  )
}

export type { Logger }
