import type { ServerResponse } from 'node:http'
import { idFromPath, NotFoundError } from '../domain/shared/errors.ts'
import type { Job, PrismaClient } from '../generated/prisma/client.ts'
import { requestIdOf, type Logger } from '../log.ts'
import type { TokenService } from '../services/tokens.ts'
import { sendApiError } from './errors.ts'
import type { Route } from './server.ts'

/**
 * flat-manager's /status (the jobs waiting and running, refreshed every 5 s) and /status/<id>
 * (one job: contents, results, log). flat-manager serves them to anyone, job logs included;
 * flatdepot asks for a token with the `jobs` scope (curl -H "Authorization: Bearer …", or a
 * proxy that adds it), unless the config says `"public-status": true`.
 */
export function createStatusRoute(deps: { prisma: PrismaClient; tokens: TokenService; isPublic: boolean; version: string; log: Logger }): Route {
  return async (req, res, url) => {
    if (url.pathname !== '/status' && !url.pathname.startsWith('/status/')) return false
    try {
      await deps.tokens.requireJobsReader(req.headers.authorization, requestIdOf(req), { path: '/status', configKey: 'public-status', isPublic: deps.isPublic })
      if (url.pathname === '/status' || url.pathname === '/status/') {
        const jobs = await deps.prisma.job.findMany({ where: { status: { in: ['Queued', 'Running'] } }, orderBy: { id: 'asc' }, take: 500 })
        sendHtml(res, statusPage(deps.version, jobs))
        return true
      }
      const id = idFromPath(url.pathname.slice('/status/'.length), 'Job')
      const job = await deps.prisma.job.findUnique({ where: { id } })
      if (!job) throw new NotFoundError(`Job ${id} not found`)
      const lines = await deps.prisma.jobLogLine.findMany({ where: { jobId: id }, orderBy: { position: 'asc' }, select: { text: true }, take: 100_000 })
      sendHtml(res, jobPage(job, lines.map((line) => line.text).join('\n')))
    } catch (error) {
      sendApiError(res, error, deps.log)
    }
    return true
  }
}

function sendHtml(res: ServerResponse, html: string): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(html) })
  res.end(html)
}

const escape = (text: string) => text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char]!)
const page = (title: string, body: string, refresh = false) =>
  `<!DOCTYPE html>\n<html><head><meta charset="utf-8">${refresh ? '<meta http-equiv="refresh" content="5">' : ''}<title>${escape(title)}</title>` +
  '<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}pre{background:#f6f6f6;padding:1em;overflow:auto}</style>' +
  `</head><body>${body}</body></html>\n`

function statusPage(version: string, jobs: Job[]): string {
  const rows = jobs
    .map((job) => `<tr><td><a href="status/${job.id}">${job.id}</a></td><td>${escape(job.kind)}</td><td>${escape(job.status)}</td><td>${escape(job.repoName ?? '')}</td><td>${job.buildId ?? ''}</td><td>${job.startAfter ? escape(job.startAfter.toISOString()) : ''}</td></tr>`)
    .join('\n')
  return page(
    'flatdepot status',
    `<h1>flatdepot ${escape(version)}</h1><h2>Jobs waiting and running (${jobs.length})</h2>` +
      `<table><tr><th>job</th><th>kind</th><th>status</th><th>repo</th><th>build</th><th>start after</th></tr>\n${rows}</table>`,
    true,
  )
}

function jobPage(job: Job, log: string): string {
  return page(
    `flatdepot job ${job.id}`,
    `<h1>Job ${job.id}: ${escape(job.kind)}, ${escape(job.status.toLowerCase())}</h1>` +
      `<p>repo ${escape(job.repoName ?? '-')}, build ${job.buildId ?? '-'}, attempts ${job.attempts}</p>` +
      `<h2>Contents</h2><pre>${escape(JSON.stringify(job.contents, null, 2))}</pre>` +
      (job.results ? `<h2>Results</h2><pre>${escape(JSON.stringify(job.results, null, 2))}</pre>` : '') +
      (job.error ? `<h2>Error</h2><pre>${escape(job.error)}</pre>` : '') +
      `<h2>Log</h2><pre>${escape(log)}</pre>`,
  )
}
