import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import send from 'send'
import type { PrismaClient } from '../generated/prisma/client.ts'
import { indexDocument, IndexQueryError, parseIndexQuery, type IndexedImage } from '../domain/oci/registryIndex.ts'
import { DomainError } from '../domain/shared/errors.ts'
import { requestIdOf, type Logger } from '../log.ts'
import { RegistryError, type RegistryService } from '../services/registry.ts'
import { blobPath, blobsDir, isDigest, touchBlob } from '../storage/ociStore.ts'
import { repoStreamId } from '../domain/repo/repo.ts'
import type { ChangeFeed } from '../notifications/changeFeed.ts'
import { UploadError, type OciUploads } from '../storage/ociUploads.ts'
import { maxManifestBytes } from '../domain/oci/manifest.ts'
import { BodyTooLargeError, readBody } from './body.ts'
import { immutable, ImmutableFileCache, sendCached, streamImmutable } from './immutableFiles.ts'
import type { Route } from './server.ts'


/** The distribution spec's error JSON. */
function registryError(res: ServerResponse, status: number, code: string, message: string, detail?: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ errors: [{ code, message, ...(detail === undefined ? {} : { detail }) }] })
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers })
  res.end(body)
}

/** Where clients ask for a bearer token (RFC 6750 challenge; the token endpoint hands a flatdepot token back). */
function challenge(req: IncomingMessage): Record<string, string> {
  const proto = req.headers['x-forwarded-proto'] === 'https' ? 'https' : 'http'
  return { 'WWW-Authenticate': `Bearer realm="${proto}://${req.headers.host ?? 'localhost'}/v2/token",service="flatdepot"` }
}

/** `Content-Range: <start>-<end>` (the spec's form; `bytes ` tolerated) of a PATCH. */
function contentRange(header: string | undefined): { start: number } | null {
  if (!header) return null
  const match = /^(?:bytes )?(\d+)-(\d+)$/.exec(header.trim())
  if (!match) throw new UploadError(416, 'RANGE_INVALID', `Content-Range "${header}" is not <start>-<end>`)
  return { start: Number(match[1]) }
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

type CatalogImage = IndexedImage & { createdAt: Date }
type IndexAnswer = { body: Buffer; etag: string }

/** How long the catalog trusts itself without a change notification (one lost would otherwise keep it stale). */
const catalogMaxAgeMs = 30_000
const documentsKept = 256

/**
 * The oci_images read model, held in memory between changes: the index documents (with their
 * ETags) and the manifest lookups are answered without a query. Every change to a repo stream
 * (an export, a push, a delete, a prune) drops it, in this process and the others (the change
 * feed), and it is never older than catalogMaxAgeMs.
 */
export function createImageCatalog(prisma: PrismaClient, changes: Pick<ChangeFeed, 'onChange'>, repoNames: readonly string[]) {
  let current: Promise<ReturnType<typeof snapshot>> | null = null
  /** The same snapshot once loaded, for the synchronous fast path. */
  let ready: ReturnType<typeof snapshot> | null = null
  let loadedAt = 0
  const invalidate = () => {
    current = null
    ready = null
  }
  const stop = changes.onChange(repoNames.map(repoStreamId), invalidate)

  function snapshot(images: readonly CatalogImage[]) {
    const documents = new Map<string, IndexAnswer>()
    /** The same documents by the exact request URL they were asked with (the fast path's key). */
    const byUrl = new Map<string, IndexAnswer>()
    const keep = <K>(map: Map<K, IndexAnswer>, key: K, answer: IndexAnswer) => {
      if (map.size >= documentsKept) map.delete(map.keys().next().value!)
      map.set(key, answer)
    }
    return {
      document(requestUrl: string, params: URLSearchParams, query: ReturnType<typeof parseIndexQuery>): IndexAnswer {
        const key = [...params].map(([name, value]) => `${name}=${value}`).sort().join('&')
        let found = documents.get(key)
        if (!found) {
          const body = Buffer.from(JSON.stringify(indexDocument('/', images, query)))
          found = { body, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"` }
          keep(documents, key, found)
        }
        keep(byUrl, requestUrl, found)
        return found
      },
      known: (requestUrl: string) => byUrl.get(requestUrl),
      /** The newest image of the repository with that digest or tag. */
      manifest(repository: string, reference: string): CatalogImage | undefined {
        const byDigest = isDigest(reference)
        return images.find((image) => image.repository === repository && (byDigest ? image.digest === reference : image.tags.includes(reference)))
      },
    }
  }

  return {
    get() {
      if (!current || Date.now() - loadedAt > catalogMaxAgeMs) {
        loadedAt = Date.now()
        const loading = prisma.ociImage
          .findMany({ orderBy: [{ repository: 'asc' }, { createdAt: 'desc' }, { id: 'desc' }] })
          .then((rows) => snapshot(rows.map((row) => ({ ...toIndexed(row), createdAt: row.createdAt }))))
        current = loading
        ready = null
        void loading.then(
          (loaded) => {
            if (current === loading) ready = loaded
          },
          () => {},
        )
        loading.catch(() => {
          if (current === loading) current = null
        })
      }
      return current
    },
    /** An index document already made for exactly this request URL, when the catalog is current. */
    known(requestUrl: string): IndexAnswer | undefined {
      if (!ready || Date.now() - loadedAt > catalogMaxAgeMs) return undefined
      return ready.known(requestUrl)
    },
    invalidate,
    stop,
  }
}

export type ImageCatalog = ReturnType<typeof createImageCatalog>

/**
 * The read side of an OCI registry for `oci+http(s)` remotes: `/v2/` (distribution spec:
 * manifests by tag or digest, blobs with Range and ETag) and the flatpak registry index
 * (`/index/static`, cacheable; `/index/dynamic`, not), both from the oci_images read model.
 */
export function createRegistryRoute(deps: { prisma: PrismaClient; root: string; log: Logger; registry: RegistryService; uploads: OciUploads; catalog: ImageCatalog }): Route {
  const push = createPushHandler(deps)
  const { catalog } = deps
  // Manifests, configs and small layers; a runtime's large layers stream from disk.
  const blobs = new ImmutableFileCache(64 * 1024 * 1024, 4 * 1024 * 1024)
  const route: Route = async (req, res, url) => {
    const isIndex = url.pathname === '/index/static' || url.pathname === '/index/dynamic'
    if (!isIndex && url.pathname !== '/v2' && !url.pathname.startsWith('/v2/')) return false
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0')
    if (!isIndex && (await push(req, res, url))) return true
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      req.resume()
      res.setHeader('Allow', 'GET, HEAD')
      registryError(res, 405, 'UNSUPPORTED', `${req.method} is not supported on ${url.pathname}: images are pushed with blob uploads and manifest PUTs, and leave by delete or prune`)
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
      sendIndex(req, res, url.pathname === '/index/static', (await catalog.get()).document(req.url!, url.searchParams, query))
      return true
    }
    if (url.pathname === '/v2' || url.pathname === '/v2/') {
      // The version check: a client without a token learns where to get one (reads need none;
      // skopeo and podman only send their credentials after such a challenge).
      if (!req.headers.authorization) {
        registryError(res, 401, 'UNAUTHORIZED', 'Reads need no token; pushes need a flatdepot token, asked for at /v2/token', undefined, challenge(req))
        return true
      }
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 2 })
      res.end(req.method === 'HEAD' ? undefined : '{}')
      return true
    }
    if (url.pathname === '/v2/token') {
      try {
        const { token, expiresIn } = await deps.registry.issue(req.headers.authorization, requestIdOf(req))
        const body = JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() })
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' })
        res.end(body)
      } catch (error) {
        if (!(error instanceof RegistryError)) throw error
        registryError(res, error.status, error.code, error.message)
      }
      return true
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname)
    if (manifest) {
      const [, repository, reference] = manifest as unknown as [string, string, string]
      const image = (await catalog.get()).manifest(repository, reference)
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
      const known = isDigest(digest) && deps.registry.readable(repository)
      // A HEAD is how a pushing client asks whether to send a blob: a yes must survive a concurrent
      // garbage collection until its manifest comes (the grace time counts from now).
      const info = known && (req.method !== 'HEAD' || (await touchBlob(deps.root, digest))) ? await stat(blobPath(deps.root, digest)).catch(() => null) : null
      if (!info?.isFile()) {
        registryError(res, 404, 'BLOB_UNKNOWN', `No blob ${digest} in repository ${repository}`)
        return true
      }
      const headers = blobHeaders(digest)
      if (!req.headers.range) {
        if (info.size <= blobs.maxFileBytes && req.method === 'GET') {
          const body = await readFile(blobPath(deps.root, digest))
          // Kept by its exact URL for the fast path, which takes the digest from the URL's end.
          if (!url.search) blobs.set(req.url!, body)
          sendCached(req, res, headers.ETag, body, headers)
        } else await streamImmutable(req, res, blobPath(deps.root, digest), headers.ETag, info.size, headers)
        return true
      }
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
      res.setHeader('Content-Type', 'application/octet-stream')
      await new Promise<void>((resolve) => {
        const stream = send(req, `/${digest.slice(7)}`, { root: blobsDir(deps.root), etag: false, lastModified: false, cacheControl: false, index: false })
        stream.on('error', (error: { status?: number }) => {
          for (const name of Object.keys(headers)) res.removeHeader(name)
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
  // A small blob the slow path read (its repository and digest checked) is answered from memory
  // for exactly that URL: a blob's bytes never change, whichever image still names it.
  route.fast = (req, res, requestHeaders) => {
    if (req.url?.startsWith('/index/') && (req.method === 'GET' || req.method === 'HEAD')) {
      const known = catalog.known(req.url)
      if (!known) return false
      sendIndex(req, res, req.url.startsWith('/index/static?') || req.url === '/index/static', known, { 'Docker-Distribution-API-Version': 'registry/2.0', ...requestHeaders })
      return true
    }
    // Not HEAD: a pushing client's HEAD marks the blob as in use (see the slow path).
    if (req.method !== 'GET' || req.headers.range || !req.url?.startsWith('/v2/')) return false
    const body = blobs.get(req.url)
    if (!body) return false
    const headers = { ...blobHeaders(req.url.slice(req.url.lastIndexOf('/') + 1)), 'Docker-Distribution-API-Version': 'registry/2.0', ...requestHeaders }
    sendCached(req, res, headers.ETag, body, headers)
    return true
  }
  return route
}

/**
 * An index document. static: the same query from every client: caches keep it and revalidate (a
 * 304 while nothing was published), so a publish shows at once; dynamic: asked once, not kept.
 */
/** `headers` go into the writeHead call (the fast path's request id; see Route.fast). */
function sendIndex(req: IncomingMessage, res: ServerResponse, isStatic: boolean, { body, etag }: IndexAnswer, headers: Record<string, string> = {}): void {
  if (isStatic && req.headers['if-none-match'] === etag) {
    res.writeHead(304, { ETag: etag, 'Cache-Control': 'public, no-cache', ...headers })
    res.end()
    return
  }
  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Content-Length': body.length,
    ...(isStatic ? { ETag: etag, 'Cache-Control': 'public, no-cache' } : { 'Cache-Control': 'no-store' }),
    ...headers,
  })
  res.end(req.method === 'HEAD' ? undefined : body)
}

const blobHeaders = (digest: string) => ({ ETag: `"${digest}"`, 'Docker-Content-Digest': digest })

/**
 * The push side (distribution spec): blob uploads (POST, PATCH chunks, the closing PUT with the
 * digest; monolithic POST with `?digest=`; `?mount=` from another repository), upload status and
 * cancel, and manifest PUTs. Returns false for what is not a push (reads go on as before).
 */
function createPushHandler(deps: { log: Logger; registry: RegistryService; uploads: OciUploads }) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const uploadStart = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(url.pathname)
    const uploadAt = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(url.pathname)
    const manifest = req.method === 'PUT' ? /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname) : null
    if (!uploadStart && !uploadAt && !manifest) return false
    const repository = (uploadStart ?? uploadAt ?? manifest)![1]!
    try {
      const actor = await deps.registry.authorizeUpload(req.headers.authorization, repository, requestIdOf(req))
      if (manifest) {
        const body = await readBody(req, maxManifestBytes, { gunzip: false })
        const { digest, image } = await deps.registry.putManifest(actor, repository, manifest[2]!, req.headers['content-type'], body)
        deps.log.info({ requestId: requestIdOf(req), repository, reference: manifest[2], digest, ref: image.ref }, 'OCI image pushed')
        res.writeHead(201, { Location: `/v2/${repository}/manifests/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': 0 })
        res.end()
        return true
      }
      const location = (uuid: string) => `/v2/${repository}/blobs/uploads/${uuid}`
      const created = (digest: string) => {
        res.writeHead(201, { Location: `/v2/${repository}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': 0 })
        res.end()
      }
      const progress = (status: number, uuid: string, size: number) => {
        res.writeHead(status, { Location: location(uuid), Range: `0-${Math.max(size - 1, 0)}`, 'Docker-Upload-UUID': uuid, 'Content-Length': 0 })
        res.end()
      }
      const declared = Number(req.headers['content-length'] ?? 0)
      if (uploadStart) {
        if (req.method !== 'POST') return false
        const mount = url.searchParams.get('mount')
        if (mount && isDigest(mount) && (await touchBlob(deps.uploads.root, mount))) {
          req.resume()
          created(mount)
          return true
        }
        const digest = url.searchParams.get('digest')
        const uuid = await deps.uploads.start(repository)
        if (digest !== null) {
          if (!isDigest(digest)) throw new UploadError(400, 'DIGEST_INVALID', `"${digest}" is not a sha256 digest (sha256:<64 hex>)`)
          await deps.uploads.finish(repository, uuid, digest, req)
          created(digest)
        } else {
          req.resume()
          progress(202, uuid, 0)
        }
        return true
      }
      const uuid = uploadAt![2]!
      switch (req.method) {
        case 'PATCH':
          progress(202, uuid, await deps.uploads.patch(repository, uuid, req, contentRange(req.headers['content-range'])))
          return true
        case 'PUT': {
          const digest = url.searchParams.get('digest') ?? ''
          if (!isDigest(digest)) throw new UploadError(400, 'DIGEST_INVALID', `The closing PUT needs ?digest=sha256:<64 hex> (got "${digest}")`)
          await deps.uploads.finish(repository, uuid, digest, declared > 0 || req.headers['transfer-encoding'] ? req : null)
          created(digest)
          return true
        }
        case 'GET':
          progress(204, uuid, await deps.uploads.size(repository, uuid))
          return true
        case 'DELETE':
          await deps.uploads.cancel(repository, uuid)
          res.writeHead(204, { 'Content-Length': 0 })
          res.end()
          return true
        default:
          return false
      }
    } catch (error) {
      req.resume()
      if (res.headersSent) {
        res.destroy()
        return true
      }
      if (error instanceof RegistryError || error instanceof UploadError) {
        registryError(res, error.status, error.code, error.message, error instanceof RegistryError ? error.detail : undefined, error.status === 401 ? challenge(req) : {})
      } else if (error instanceof BodyTooLargeError) {
        registryError(res, 413, 'MANIFEST_INVALID', `The manifest is larger than ${maxManifestBytes} bytes`)
      } else if (error instanceof DomainError) {
        registryError(res, error.code === 'CONFLICT' ? 409 : error.code === 'PERMISSION_DENIED' ? 403 : 400, error.code === 'PERMISSION_DENIED' ? 'DENIED' : 'UNSUPPORTED', error.message)
      } else throw error
      return true
    }
  }
}
