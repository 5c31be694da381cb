import type { IncomingMessage } from 'node:http'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { PrismaClient } from '../generated/prisma/client.ts'
import { requestIdOf, type Logger } from '../log.ts'
import type { TokenService } from '../services/tokens.ts'
import { sendApiError } from './errors.ts'
import type { Route } from './server.ts'

/**
 * Prometheus metrics (prom-client), served as OpenMetrics text at /metrics.
 *
 * What this process counts as it happens: HTTP requests by route class and status, uploads
 * (objects, bytes, rejections by reason), event appends by stream type. What the database knows
 * (jobs may run in other processes) is read when scraped: jobs by kind and status, the queue's
 * depth, and the durations of the jobs that ended since this process started.
 */
export type Metrics = ReturnType<typeof createMetrics>

const jobBuckets = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600]

export function createMetrics(prisma: PrismaClient) {
  const registry = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>()
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  collectDefaultMetrics({ register: registry, prefix: 'flatdepot_' })

  const httpRequests = new Counter({
    name: 'flatdepot_http_requests',
    help: 'HTTP requests answered, by route class and status code',
    labelNames: ['route', 'status'] as const,
    registers: [registry],
  })
  const uploadedObjects = new Counter({ name: 'flatdepot_upload_objects', help: 'Objects accepted by uploads', registers: [registry] })
  const uploadedBytes = new Counter({ name: 'flatdepot_upload_bytes', help: 'Bytes of objects accepted by uploads', registers: [registry] })
  const uploadRejections = new Counter({
    name: 'flatdepot_upload_rejections',
    help: 'Upload requests refused, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  })
  const eventAppends = new Counter({
    name: 'flatdepot_events_appended',
    help: 'Events appended by this process, by stream type',
    labelNames: ['stream_type'] as const,
    registers: [registry],
  })

  new Gauge({
    name: 'flatdepot_jobs',
    help: 'Jobs in the read model, by kind and status',
    labelNames: ['kind', 'status'] as const,
    registers: [registry],
    async collect() {
      this.reset()
      const groups = await prisma.job.groupBy({ by: ['kind', 'status'], _count: { _all: true } })
      for (const group of groups) this.set({ kind: group.kind, status: group.status }, group._count._all)
    },
  })
  new Gauge({
    name: 'flatdepot_job_queue_depth',
    help: 'Jobs waiting in the queue (not leased), by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
    async collect() {
      this.reset()
      const rows = await prisma.$queryRaw<{ kind: string; count: bigint }[]>`
        SELECT jobs.kind, count(*) AS count FROM job_queue JOIN jobs ON jobs.id = job_queue.job_id
        WHERE job_queue.locked_until IS NULL OR job_queue.locked_until < now()
        GROUP BY jobs.kind`
      for (const row of rows) this.set({ kind: row.kind }, Number(row.count))
    },
  })
  // Jobs that ended since the last scrape (or since this process started), observed once each.
  let endedAfter = new Date()
  let seenAtBoundary = new Set<number>()
  new Histogram({
    name: 'flatdepot_job_duration_seconds',
    help: 'How long jobs ran, from their start to their end, by kind and status (jobs that ended since this process started)',
    labelNames: ['kind', 'status'] as const,
    buckets: jobBuckets,
    registers: [registry],
    async collect() {
      const ended = await prisma.job.findMany({
        where: { finishedAt: { gte: endedAfter }, startedAt: { not: null } },
        select: { id: true, kind: true, status: true, startedAt: true, finishedAt: true },
        orderBy: { finishedAt: 'asc' },
      })
      const fresh = ended.filter((job) => !seenAtBoundary.has(job.id))
      for (const job of fresh) this.observe({ kind: job.kind, status: job.status }, (job.finishedAt!.getTime() - job.startedAt!.getTime()) / 1000)
      const last = ended.at(-1)?.finishedAt
      if (last) {
        seenAtBoundary = new Set(ended.filter((job) => job.finishedAt!.getTime() === last.getTime()).map((job) => job.id))
        endedAfter = last
      }
    },
  })

  return {
    registry,
    requestAnswered(routeClass: string, status: number) {
      httpRequests.inc({ route: routeClass, status: String(status) })
    },
    uploaded(objects: number, bytes: number) {
      uploadedObjects.inc(objects)
      uploadedBytes.inc(bytes)
    },
    uploadRejected(reason: string) {
      uploadRejections.inc({ reason })
    },
    eventsAppended(streamType: string, count: number) {
      eventAppends.inc({ stream_type: streamType }, count)
    },
  }
}

/** Which class of route a request went to, for the request counter (never the raw path: its values are unbounded). */
export function routeClass(req: IncomingMessage): string {
  const url = req.url ?? ''
  if (url.startsWith('/repo/')) return 'repo'
  if (url.startsWith('/build-repo/')) return 'build-repo'
  if (url.startsWith('/api/v1/build/') && url.includes('/upload')) return 'api-upload'
  if (url.startsWith('/api/v1/')) return 'api'
  if (url.startsWith('/graphql')) return 'graphql'
  if (url.startsWith('/status')) return 'status'
  if (url === '/metrics') return 'metrics'
  if (url === '/healthz') return 'health'
  return 'other'
}

/**
 * GET /metrics. Unlike flat-manager's, not open to the world: queue depths and job counts say what
 * a publisher is doing. A token with the `jobs` scope may read it, or anyone when the config
 * says `"public-metrics": true` (a Prometheus that scrapes over a private network).
 */
export function createMetricsRoute(deps: { metrics: Metrics; tokens: TokenService; isPublic: boolean; log: Logger }): Route {
  return async (req, res, url) => {
    if (url.pathname !== '/metrics') return false
    try {
      await deps.tokens.requireJobsReader(req.headers.authorization, requestIdOf(req), { path: '/metrics', configKey: 'public-metrics', isPublic: deps.isPublic })
      const body = await deps.metrics.registry.metrics()
      res.writeHead(200, { 'content-type': deps.metrics.registry.contentType, 'cache-control': 'no-store' })
      res.end(body)
    } catch (error) {
      sendApiError(res, error, deps.log)
    }
    return true
  }
}
