import { readFile, realpath, stat } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import path from 'node:path'
import send from 'send'
import type { Config } from '../config/config.ts'
import { DomainError, idFromPath, NotFoundError } from '../domain/shared/errors.ts'
import { TokenError } from '../tokens/jwt.ts'
import { requestIdOf, type Logger } from '../log.ts'
import { buildDir } from '../storage/buildArea.ts'
import { createCommitGate } from '../storage/commitAccess.ts'
import { retiredDeltasDir } from '../storage/deltas.ts'
import { closePairs, isSummaryFile, summaryFilePath } from '../storage/summary.ts'
import type { BuildService } from '../services/builds.ts'
import type { TokenService } from '../services/tokens.ts'
import { sendApiError, sendJsonError } from './errors.ts'
import { immutable, ImmutableFileCache, sendCached, streamImmutable } from './immutableFiles.ts'
import type { Route } from './server.ts'

/** A content-addressed file's ETag: its path is its identity (strong, the same for whole and ranged answers). */
const immutableEtag = (relative: string) => `"${relative.replaceAll('/', '')}"`

// Content-addressed files never change; everything else says what is current and must be revalidated.
const isImmutable = (relative: string) => /^(objects|deltas|summaries)\//.test(relative) && !relative.endsWith('.lock')

/** Path segments a client may ask for: no dot files (.lock, .tmp…), no ".." and no ostree working dirs. */
function safeRelative(tail: string): string | null {
  let decoded: string
  try {
    // decodeURIComponent leaves '+' alone: delta names contain a literal '+'.
    decoded = decodeURIComponent(tail)
  } catch {
    return null
  }
  const segments = decoded.split('/')
  if (segments.some((segment) => segment === '' || segment.startsWith('.') || segment.includes('\0'))) return null
  const first = segments[0] ?? ''
  if (['tmp', 'state', 'parent', 'upload'].includes(first) || first.startsWith('upload.')) return null
  return segments.join('/')
}

const realRoots = new Map<string, Promise<string>>()

/** A repo root's real path, resolved once per root (roots do not move while the server runs). */
function realRootOf(root: string): Promise<string> {
  let real = realRoots.get(root)
  if (!real) {
    real = realpath(root)
    real.catch(() => realRoots.delete(root))
    realRoots.set(root, real)
  }
  return real
}

async function serveFile(
  req: Parameters<Route>[0],
  res: ServerResponse,
  root: string,
  relative: string,
  cache: ImmutableFileCache,
  /** The canonical URL of this file when any client may have it (main repos): the fast path's key. */
  publicUrl: string | null,
  /** A file behind a download token: never kept in memory, never cached on the way (`no-store`). */
  privateFile = false,
): Promise<void> {
  const summary = isSummaryFile(relative)
  if (!summary) closePairs(req.socket)
  const file = summary ? await summaryFilePath(root, relative, req.socket) : path.join(root, relative)
  // Only names that are checksums of their content (delta parts can be regenerated in place).
  const cacheable = !privateFile && /^(objects|summaries)\//.test(relative) && !req.headers.range
  const key = publicUrl ?? file
  const cached = cacheable ? cache.get(key) : undefined
  if (cached) return sendCached(req, res, immutableEtag(relative), cached)
  // No escapes through symlinks: the real path must stay inside the repo's real root.
  let real: string
  let realRoot: string
  try {
    real = await realpath(file).catch((error: unknown) => {
      // A delta retired by the last update stays reachable for clients holding the summary before it.
      if (!relative.startsWith('deltas/')) throw error
      return realpath(path.join(retiredDeltasDir(root), relative.slice('deltas/'.length)))
    })
    realRoot = await realRootOf(root)
    if (!real.startsWith(`${realRoot}${path.sep}`)) throw new NotFoundError('outside')
    const info = await stat(real)
    if (!info.isFile()) throw new NotFoundError('not a file')
    if (cacheable && info.size <= cache.maxFileBytes) {
      const body = await readFile(real)
      cache.set(key, body)
      return sendCached(req, res, immutableEtag(relative), body)
    }
    if (!privateFile && isImmutable(relative) && !req.headers.range) return await streamImmutable(req, res, real, immutableEtag(relative), info.size)
  } catch {
    sendJsonError(res, 404, 'not-found', `Not found: ${relative}`)
    return
  }
  if (relative === 'config') return sendRepoConfig(req, res, real)
  const immutableFile = !privateFile && isImmutable(relative)
  res.setHeader('Cache-Control', privateFile ? 'no-store' : immutableFile ? immutable : 'no-cache')
  // Ranged reads of a content-addressed file carry the same strong ETag as whole ones, so an
  // If-Range resume matches it and gets the rest, not the whole file again.
  if (immutableFile) res.setHeader('ETag', immutableEtag(relative))
  await new Promise<void>((resolve) => {
    // The path send() sees is the part under the repo's real root, URL-encoded: its dot-file rule
    // then looks at what the client asked for (already checked by safeRelative; the summary
    // snapshot lives under .flatdepot), never at where the data directory happens to be.
    const under = path.relative(realRoot, real).split(path.sep).map(encodeURIComponent).join('/')
    const stream = send(req, `/${under}`, { root: realRoot, dotfiles: 'allow', index: false, etag: !immutableFile, lastModified: !immutableFile, cacheControl: false })
    stream.on('error', (error: { status?: number; headers?: Record<string, string> }) => {
      // An error answer is not the file: none of its caching headers.
      for (const name of res.getHeaderNames()) if (name !== 'x-request-id') res.removeHeader(name)
      for (const [name, value] of Object.entries(error.headers ?? {})) res.setHeader(name, value)
      res.setHeader('Cache-Control', 'no-store')
      const status = error.status ?? 500
      const message = status === 416 ? `Range not satisfiable for ${relative} (${error.headers?.['Content-Range'] ?? 'unknown size'})` : status === 404 ? `Not found: ${relative}` : `Cannot serve ${relative}`
      sendJsonError(res, status, status === 404 ? 'not-found' : 'generic-error', message)
      resolve()
    })
    stream.on('end', resolve)
    res.on('close', resolve)
    stream.pipe(res)
  })
}

/**
 * A repo's `config`, without `parent=`: a build repo's names the main repo's absolute path on
 * this server, which clients do not need and should not learn.
 */
async function sendRepoConfig(req: Parameters<Route>[0], res: ServerResponse, real: string): Promise<void> {
  const text = (await readFile(real, 'utf8'))
    .split('\n')
    .filter((line) => !/^\s*parent\s*=/.test(line))
    .join('\n')
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache' })
  res.end(req.method === 'HEAD' ? undefined : text)
}

/**
 * GET/HEAD of the main repos (/repo/<name>/…) and build repos (/build-repo/<id>/…) from disk,
 * with Range and ETag. A build repo of a private build needs a token with `download` for it.
 */
export function createRepoFilesRoute(deps: { config: Config; builds: BuildService; tokens: TokenService; log: Logger }): Route {
  const repoNames = [...deps.config.repos.keys()].sort((a, b) => b.length - a.length)
  const gates = new Map(
    [...deps.config.repos.values()].map((repo) => [
      repo.name,
      createCommitGate({ name: repo.name, path: repo.path, defaultTokenType: repo['default-token-type'], protectedTypes: repo['require-auth-for-token-types'] }),
    ]),
  )
  const cache = new ImmutableFileCache(64 * 1024 * 1024, 256 * 1024)
  const route: Route = async (req, res, url) => {
    const isRepo = url.pathname.startsWith('/repo/')
    const isBuild = url.pathname.startsWith('/build-repo/')
    if (url.pathname === '/_flatdepot/authorize') {
      // nginx's auth_request for a private build repo it serves from disk (flatdepot nginx-config),
      // the client's URI in X-Original-URI: 204 lets the request through, 401/403 are passed on.
      req.resume()
      const original = String(req.headers['x-original-uri'] ?? '')
      const authorize = /^\/build-repo\/(\d+)\//.exec(original)
      const authorization = req.headers.authorization
      let status = 204
      try {
        if (!authorize) status = 403
        else {
          // A build made with publicDownload needs no token, as on flatdepot's own /build-repo.
          const claims = authorization ? await deps.tokens.authenticate(authorization, requestIdOf(req), 'api') : null
          await deps.builds.downloadableBuild({ claims, requestId: requestIdOf(req) }, idFromPath(authorize[1]!, 'Build'))
        }
      } catch (error) {
        if (error instanceof TokenError) status = 401
        else if (error instanceof DomainError) status = authorization ? 403 : 401
        else throw error
      }
      res.writeHead(status, { 'Cache-Control': 'no-store', 'Content-Length': 0 })
      res.end()
      return true
    }
    if (!isRepo && !isBuild) return false
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      sendJsonError(res, 405, 'generic-error', `Method ${req.method} not allowed on repository files`)
      return true
    }
    try {
      // A present but bad token is refused even for public files (flat-manager). On /repo it is a
      // download token (repo-secret, or a configured key); on /build-repo an API token.
      const authorization = req.headers.authorization
      const claims = authorization ? await deps.tokens.authenticate(authorization, requestIdOf(req), isRepo ? 'download' : 'api') : null
      if (isRepo) {
        const rest = url.pathname.slice('/repo/'.length)
        const name = repoNames.find((candidate) => rest.startsWith(`${candidate}/`))
        const relative = name ? safeRelative(rest.slice(name.length + 1)) : null
        if (!name || !relative) throw new NotFoundError(`Not found: ${url.pathname}`)
        const gated = await gates.get(name)!.check(relative, claims)
        await serveFile(req, res, deps.config.repos.get(name)!.path, relative, cache, gated ? null : `/repo/${name}/${relative}`, gated)
        return true
      }
      const match = /^\/build-repo\/(\d+)\/(.+)$/.exec(url.pathname)
      const relative = match ? safeRelative(match[2]!) : null
      if (!match || !relative) throw new NotFoundError(`Not found: ${url.pathname}`)
      const buildId = idFromPath(match[1]!, 'Build')
      await deps.builds.downloadableBuild({ claims, requestId: requestIdOf(req) }, buildId)
      await serveFile(req, res, buildDir(deps.config.buildRepoBase, buildId), relative, cache, null)
    } catch (error) {
      if (!res.headersSent) sendApiError(res, error, deps.log)
    }
    return true
  }
  // A main repo file the slow path already checked (name, symlinks) and cached is keyed by its
  // canonical URL: a request for exactly that URL, without a token or a range, is answered from
  // memory at once. Anything else — encoded, with a query, a token to check — takes the route.
  route.fast = (req, res, headers) => {
    const url = req.url
    if (!url?.startsWith('/repo/') || req.headers.authorization || req.headers.range) return false
    if (req.method !== 'GET' && req.method !== 'HEAD') return false
    const body = cache.get(url)
    if (!body) return false
    closePairs(req.socket)
    sendCached(req, res, immutableEtag(url.slice(url.indexOf('/', '/repo/'.length) + 1)), body, headers)
    return true
  }
  return route
}
