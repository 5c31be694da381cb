import { createReadStream } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'

/** Content-addressed files never change: caches may keep them for a year without asking again. */
export const immutable = 'public, max-age=31536000, immutable'

/**
 * Content-addressed files (ostree objects and summaries, OCI blobs): a path's bytes never change
 * once written. Small ones are kept in memory (least recently used out, bounded by bytes), so a
 * hot file costs one write instead of realpath, stat, open and read. Everything else streams.
 */
export class ImmutableFileCache {
  readonly #entries = new Map<string, Buffer>()
  #bytes = 0
  constructor(
    readonly maxBytes: number,
    readonly maxFileBytes: number,
  ) {}

  get(key: string): Buffer | undefined {
    const body = this.#entries.get(key)
    if (body) {
      this.#entries.delete(key)
      this.#entries.set(key, body)
    }
    return body
  }

  set(key: string, body: Buffer): void {
    if (body.length > this.maxFileBytes || this.#entries.has(key)) return
    this.#entries.set(key, body)
    this.#bytes += body.length
    for (const [oldest, old] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break
      this.#entries.delete(oldest)
      this.#bytes -= old.length
    }
  }
}

/**
 * Headers for a content-addressed file, whose identity gives its strong ETag: no stat needed.
 * Answers 304 itself and returns false when the client already has it (or it was a HEAD).
 */
function writeImmutableHead(req: IncomingMessage, res: ServerResponse, etag: string, size: number, headers: Record<string, string>): boolean {
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, { ETag: etag, 'Cache-Control': immutable, ...headers })
    res.end()
    return false
  }
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': size,
    'Cache-Control': immutable,
    ETag: etag,
    'Accept-Ranges': 'bytes',
    ...headers,
  })
  if (req.method !== 'HEAD') return true
  res.end()
  return false
}

export function sendCached(req: IncomingMessage, res: ServerResponse, etag: string, body: Buffer, headers: Record<string, string> = {}): void {
  if (writeImmutableHead(req, res, etag, body.length, headers)) res.end(body)
}

/** A large content-addressed file: streamed in 1 MiB reads (the default 64 KiB costs 16× the syscalls). */
export async function streamImmutable(req: IncomingMessage, res: ServerResponse, file: string, etag: string, size: number, headers: Record<string, string> = {}): Promise<void> {
  if (!writeImmutableHead(req, res, etag, size, headers)) return
  await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), res).catch(() => res.destroy())
}
