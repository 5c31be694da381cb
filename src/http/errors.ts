import type { ServerResponse } from 'node:http'
import { DomainError, type WrongStateError } from '../domain/shared/errors.ts'
import { requestIdOf, type Logger } from '../log.ts'
import { TokenError } from '../tokens/jwt.ts'
import { BodyTooLargeError } from './body.ts'

/** flat-manager's JSON error shape (kebab-case keys), used for every non-GraphQL error. */
export function sendJsonError(res: ServerResponse, status: number, errorType: string, message: string): void {
  const body = JSON.stringify({ status, 'error-type': errorType, message })
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

/** flat-manager's error JSON for every failure (its clients parse `error-type` and the states). */
export function sendApiError(res: ServerResponse, error: unknown, log: Logger): void {
  if (error instanceof TokenError) return sendJsonError(res, 401, 'invalid-token', error.message)
  if (error instanceof BodyTooLargeError) return sendJsonError(res, 413, 'generic-error', error.message)
  if (error instanceof DomainError) {
    switch (error.code) {
      case 'NOT_FOUND':
        return sendJsonError(res, 404, 'not-found', error.message)
      case 'PERMISSION_DENIED':
        return sendJsonError(res, 403, 'token-insufficient', error.message)
      case 'WRONG_STATE': {
        const wrong = error as WrongStateError
        const body = JSON.stringify({
          status: 400,
          'error-type': wrong.stateKind === 'published' ? 'wrong-published-state' : 'wrong-repo-state',
          message: wrong.message,
          'current-state': wrong.currentState,
          'expected-state': wrong.expectedState,
        })
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end(body)
        return
      }
      default:
        return sendJsonError(res, 400, 'generic-error', error.message)
    }
  }
  const requestId = requestIdOf(res.req)
  log.error({ requestId, err: error }, 'unexpected error in the REST API')
  sendJsonError(res, 500, 'internal-error', `Internal Server Error (request id ${requestId ?? 'unknown'})`)
}

