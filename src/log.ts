import { AsyncLocalStorage } from 'node:async_hooks'
import { pino, type Logger } from 'pino'

/** The request (or job) a line of log belongs to; every log line carries it. */
export const requestScope = new AsyncLocalStorage<{ requestId: string }>()

export const currentRequestId = () => requestScope.getStore()?.requestId ?? null

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
      mixin: () => {
        const requestId = currentRequestId()
        return requestId ? { requestId } : {}
      },
    },
    options.destination ?? stderrDestination(),
  )
}

export type { Logger }
