import type { ServerResponse } from 'node:http'

/** flat-manager's JSON error shape (kebab-case keys), used for every non-GraphQL error. */
export function sendJsonError(res: ServerResponse, status: number, errorType: string, message: string): void {
  const body = JSON.stringify({ status, 'error-type': errorType, message })
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
