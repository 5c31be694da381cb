import type { IncomingMessage } from 'node:http'
import { createGunzip } from 'node:zlib'
import { InvalidInputError } from '../domain/shared/errors.ts'

/** A body over its route's limit: 413, with the limit in the message. */
export class BodyTooLargeError extends InvalidInputError {
  constructor(readonly limit: number) {
    super(`Request body is larger than ${limit} bytes`, 'body')
  }
}

/**
 * Reads a request body whole, refusing it as soon as it passes `limit` bytes (after gunzip when
 * the client sent `Content-Encoding: gzip`, so a small gzip bomb is refused as early as a large
 * body). A declared Content-Length over the limit is refused before a byte is read.
 */
export async function readBody(req: IncomingMessage, limit: number, options: { gunzip: boolean } = { gunzip: true }): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? 0) > limit) throw new BodyTooLargeError(limit)
  const gzip = options.gunzip && req.headers['content-encoding'] === 'gzip'
  const source = gzip ? req.pipe(createGunzip()) : req
  const chunks: Buffer[] = []
  let length = 0
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      length += chunk.length
      if (length > limit) throw new BodyTooLargeError(limit)
      chunks.push(chunk)
    }
  } catch (error) {
    if (gzip) req.unpipe()
    if (error instanceof BodyTooLargeError) throw error
    const code = (error as NodeJS.ErrnoException).code
    if (gzip && typeof code === 'string' && code.startsWith('Z_')) {
      throw new InvalidInputError(`Request body is not valid gzip (Content-Encoding: gzip): ${(error as Error).message}`, 'body')
    }
    throw error
  }
  return Buffer.concat(chunks, length)
}

/** Whether a request ended because its client went away (not worth an error-level log line). */
export function clientWentAway(req: IncomingMessage, error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code
  return req.destroyed || code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (error as Error | null)?.message === 'aborted'
}
