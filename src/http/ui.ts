import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import type { Logger } from '../log.ts'
import { projectRoot } from '../paths.ts'
import { uiTokenKey } from '../ui/session.ts'
import { immutable } from './immutableFiles.ts'
import type { Route } from './server.ts'


type Asset = { body: Buffer; gzipped: Buffer; etag: string; type: string }

function asset(body: Buffer | string, type: string): Asset {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body)
  return { body: bytes, gzipped: gzipSync(bytes), etag: `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}"`, type }
}

/** Answers with the asset, gzipped when the client takes it; 304 when it has this version. */
function sendAsset(req: IncomingMessage, res: ServerResponse, item: Asset, cacheControl: string, headers: Record<string, string> = {}): void {
  const common = { ETag: item.etag, 'Cache-Control': cacheControl, Vary: 'Accept-Encoding', ...headers }
  if (req.headers['if-none-match'] === item.etag) {
    res.writeHead(304, common)
    res.end()
    return
  }
  const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '')
  const body = gzip ? item.gzipped : item.body
  res.writeHead(200, { ...common, 'Content-Type': item.type, 'Content-Length': String(body.length), ...(gzip ? { 'Content-Encoding': 'gzip' } : {}) })
  res.end(req.method === 'HEAD' ? undefined : body)
}

type Bundle = { js: Asset; css: Asset; index: Asset }

/**
 * The dashboard (src/ui/), bundled by esbuild when first asked for and kept in memory: like the
 * server itself, no build step between a clone and a running page, and nothing fetched from
 * elsewhere at run time. The page's assets are named by their hash, so browsers keep them.
 */
async function bundleDashboard(): Promise<Bundle> {
  const { build } = await import('esbuild')
  const result = await build({
    entryPoints: [path.join(projectRoot, 'src', 'ui', 'main.tsx')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome109', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    legalComments: 'none',
    write: false,
    outdir: 'out',
    logLevel: 'silent',
  })
  const js = result.outputFiles.find((file) => file.path.endsWith('.js'))
  const css = result.outputFiles.find((file) => file.path.endsWith('.css'))
  if (!js || !css) throw new Error('the dashboard bundle lacks its script or style sheet')
  const jsAsset = asset(Buffer.from(js.contents), 'text/javascript; charset=utf-8')
  const cssAsset = asset(Buffer.from(css.contents), 'text/css; charset=utf-8')
  const version = (item: Asset) => encodeURIComponent(item.etag.slice(1, -1))
  const index = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flatdepot</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/app.css?v=${version(cssAsset)}">
<script type="module" src="/ui/app.js?v=${version(jsAsset)}"></script>
</head>
<body><div id="app"><noscript>The flatdepot dashboard needs JavaScript. The API is at /graphql.</noscript></div></body>
</html>
`
  return { js: jsAsset, css: cssAsset, index: asset(index, 'text/html; charset=utf-8') }
}

/** Scripts and connections from this origin only (graphql-ws included: 'self' covers ws: of the same host). */
const dashboardPolicy =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/**
 * GraphiQL with every asset in the page (editor workers included), so it works on a closed
 * network: yoga's default page loads them from a CDN. The header editor starts with the token the
 * dashboard signed in with, when there is one (the page reads it from session storage).
 */
async function renderOfflineGraphiql(): Promise<Asset> {
  const { renderGraphiQL } = await import('@graphql-yoga/render-graphiql')
  const options = {
    title: 'flatdepot GraphiQL',
    defaultQuery: [
      '# Your token goes in the headers below: { "authorization": "Bearer <token>" }',
      '# (opened from the dashboard at /ui, GraphiQL starts with the token you signed in with).',
      '{',
      '  repos { name title summaryUpdatedAt }',
      '  builds(first: 5) {',
      '    __typename',
      '    ... on QueryBuildsConnection { edges { node { id repo appId repoState publishedState } } }',
      '    ... on Error { message }',
      '  }',
      '}',
      '',
    ].join('\n'),
    headers: '{}',
    defaultEditorToolsVisibility: 'headers' as const,
  }
  const literal = JSON.stringify(options)
  const html = renderGraphiQL(options)
  if (!html.includes(literal)) throw new Error('GraphiQL page: options not found where expected')
  const withToken = `(function (options) {
      try {
        var token = sessionStorage.getItem(${JSON.stringify(uiTokenKey)});
        if (token) options.headers = JSON.stringify({ authorization: 'Bearer ' + token }, null, 2);
      } catch (e) {}
      return options;
    })(${literal})`
  return asset(html.replace(literal, withToken), 'text/html; charset=utf-8')
}

const wantsHtml = (req: IncomingMessage) => (req.method === 'GET' || req.method === 'HEAD') && /\btext\/html\b/.test(req.headers.accept ?? '')

/**
 * The dashboard at /ui (with / sending browsers there) and, when enabled, GraphiQL at /graphql
 * for browsers; the API itself stays with the GraphQL route after this one.
 */
export function createUiRoute(deps: { graphiql: boolean; log: Logger }): Route {
  let dashboard: Promise<Bundle> | null = null
  let graphiql: Promise<Asset> | null = null
  const once = <T>(make: () => Promise<T>, what: string, reset: () => void): Promise<T> =>
    make().catch((error: unknown) => {
      reset() // a failed bundle is tried again on the next request
      deps.log.error({ err: error }, `cannot prepare ${what}`)
      throw error
    })
  return async (req, res, url) => {
    const { pathname } = url
    if (pathname === '/' && wantsHtml(req)) {
      res.writeHead(302, { Location: '/ui/' })
      res.end()
      return true
    }
    if (pathname === '/graphql' && deps.graphiql && wantsHtml(req)) {
      graphiql ??= once(renderOfflineGraphiql, 'GraphiQL', () => (graphiql = null))
      sendAsset(req, res, await graphiql, 'no-cache')
      return true
    }
    if (pathname !== '/ui' && !pathname.startsWith('/ui/')) return false
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' })
      res.end('The dashboard is read with GET; it changes things through /graphql.\n')
      return true
    }
    dashboard ??= once(bundleDashboard, 'the dashboard', () => (dashboard = null))
    const bundle = await dashboard
    const versioned = url.searchParams.has('v') ? immutable : 'no-cache'
    if (pathname === '/ui/app.js') sendAsset(req, res, bundle.js, versioned)
    else if (pathname === '/ui/app.css') sendAsset(req, res, bundle.css, versioned)
    // Every other path under /ui is a page of the dashboard (it routes by the URL's hash).
    else sendAsset(req, res, bundle.index, 'no-cache', { 'Content-Security-Policy': dashboardPolicy, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' })
    return true
  }
}
