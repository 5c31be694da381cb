import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import send from 'send'
import type { PrismaClient } from '../generated/prisma/client.ts'
import { indexDocument, IndexQueryError, parseIndexQuery, type IndexedImage } from '../domain/oci/registryIndex.ts'
import type { Logger } from '../log.ts'
import { blobPath, blobsDir, isDigest } from '../storage/ociStore.ts'
import type { Route } from './server.ts'

const immutable = 'public, max-age=31536000, immutable'

/** The distribution spec's error JSON. */
function registryError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ errors: [{ code, message }] })
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' })
  res.end(body)
}

const toIndexed = (row: { repository: string; digest: string; mediaType: string; os: string; architecture: string; tags: string[]; labels: unknown; annotations: unknown }): IndexedImage => ({
  repository: row.repository,
  digest: row.digest,
  mediaType: row.mediaType,
  os: row.os,
  architecture: row.architecture,
  tags: row.tags,
  labels: row.labels as Record<string, string>,
  annotations: row.annotations as Record<string, string>,
})

/**
 * The read side of an OCI registry for `oci+http(s)` remotes: `/v2/` (distribution spec:
 * manifests by tag or digest, blobs with Range and ETag) and the flatpak registry index
 * (`/index/static`, cacheable; `/index/dynamic`, not), both from the oci_images read model.
 */
export function createRegistryRoute(deps: { prisma: PrismaClient; root: string; log: Logger }): Route {
  return async (req, res, url) => {
    const isIndex = url.pathname === '/index/static' || url.pathname === '/index/dynamic'
    if (!isIndex && url.pathname !== '/v2' && !url.pathname.startsWith('/v2/')) return false
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0')
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      registryError(res, 405, 'UNSUPPORTED', `${req.method} is not supported here: the registry is read-only`)
      return true
    }
    if (isIndex) {
      let query
      try {
        query = parseIndexQuery(url.searchParams)
      } catch (error) {
        if (!(error instanceof IndexQueryError)) throw error
        registryError(res, 400, 'INVALID_QUERY', error.message)
        return true
      }
      const rows = await deps.prisma.ociImage.findMany({ orderBy: [{ repository: 'asc' }, { createdAt: 'desc' }] })
      const body = JSON.stringify(indexDocument('/', rows.map(toIndexed), query))
      const isStatic = url.pathname === '/index/static'
      // static: the same query from every client: caches keep it and revalidate (a 304 while
      // nothing was published), so a publish shows at once; dynamic: asked once, not kept.
      const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`
      if (isStatic && req.headers['if-none-match'] === etag) {
        res.writeHead(304, { ETag: etag, 'Cache-Control': 'public, no-cache' })
        res.end()
        return true
      }
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
        ...(isStatic ? { ETag: etag, 'Cache-Control': 'public, no-cache' } : { 'Cache-Control': 'no-store' }),
      })
      res.end(req.method === 'HEAD' ? undefined : body)
      return true
    }
    if (url.pathname === '/v2' || url.pathname === '/v2/') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 2 })
      res.end(req.method === 'HEAD' ? undefined : '{}')
      return true
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname)
    if (manifest) {
      const [, repository, reference] = manifest as unknown as [string, string, string]
      const image = await deps.prisma.ociImage.findFirst({
        where: isDigest(reference) ? { repository, digest: reference } : { repository, tags: { has: reference } },
        orderBy: { createdAt: 'desc' },
      })
      if (!image) {
        registryError(res, 404, 'MANIFEST_UNKNOWN', `No manifest ${reference} in repository ${repository}`)
        return true
      }
      const file = blobPath(deps.root, image.digest)
      const { size } = await stat(file)
      res.writeHead(200, {
        'Content-Type': image.mediaType,
        'Content-Length': size,
        'Docker-Content-Digest': image.digest,
        ETag: `"${image.digest}"`,
        // By digest: never changes. By tag: moves with the next publish.
        'Cache-Control': isDigest(reference) ? immutable : 'no-cache',
      })
      if (req.method === 'HEAD') res.end()
      else createReadStream(file).pipe(res)
      return true
    }
    const blob = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(url.pathname)
    if (blob) {
      const [, repository, digest] = blob as unknown as [string, string, string]
      const known = isDigest(digest) && (await deps.prisma.ociImage.findFirst({ where: { repository }, select: { id: true } }))
      const present = known ? await stat(blobPath(deps.root, digest)).then((info) => info.isFile(), () => false) : false
      if (!present) {
        registryError(res, 404, 'BLOB_UNKNOWN', `No blob ${digest} in repository ${repository}`)
        return true
      }
      res.setHeader('Docker-Content-Digest', digest)
      res.setHeader('Cache-Control', immutable)
      res.setHeader('Content-Type', 'application/octet-stream')
      await new Promise<void>((resolve) => {
        const stream = send(req, `/${digest.slice(7)}`, { root: blobsDir(deps.root), etag: false, lastModified: false, cacheControl: false, index: false })
        res.setHeader('ETag', `"${digest}"`)
        stream.on('error', (error: { status?: number }) => {
          registryError(res, error.status ?? 500, error.status === 416 ? 'RANGE_INVALID' : 'BLOB_UNKNOWN', `Cannot serve blob ${digest}`)
          resolve()
        })
        stream.on('end', resolve)
        res.on('close', resolve)
        stream.pipe(res)
      })
      return true
    }
    registryError(res, 404, 'NAME_UNKNOWN', `Not a registry path: ${url.pathname}`)
    return true
  }
}
