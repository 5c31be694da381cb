import { AsyncLocalStorage } from 'node:async_hooks'
import { pino, type Logger } from 'pino'

/** The request (or job) a line of log belongs to; every log line carries it. */
export const requestScope = new AsyncLocalStorage<{ requestId: string }>()

export const currentRequestId = () => requestScope.getStore()?.requestId ?? null

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
    options.destination ?? pino.destination({ dest: 2, sync: false }),
  )
}

export type { Logger }
