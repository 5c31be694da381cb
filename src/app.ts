import { mkdirSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Config } from './config/config.ts'
import { openDatabase, type Database } from './db/database.ts'
import { createGraphql, createWebSockets, graphqlHttpRoute } from './graphql/yoga.ts'
import { createHttpServer, healthRoute, type HttpFront } from './http/server.ts'
import type { Logger } from './log.ts'
import { createChangeFeed } from './notifications/changeFeed.ts'
import { ensureRepo } from './ostree/ostree.ts'
import { buildReposReady, ensureBuildRepos, sweepBuildArea } from './storage/buildArea.ts'
import { createAppRunner } from './pipeline/runner.ts'
import { startRepoSchedules } from './pipeline/schedule.ts'
import { KeyError, KeySet } from './tokens/keys.ts'
import { createAuditService } from './services/audit.ts'
import { createBuildService } from './services/builds.ts'
import { createRepoService, syncRepoConfig } from './services/repos.ts'
import { createTokenService } from './services/tokens.ts'
import { createUploadService } from './upload/uploadService.ts'
import { createFlatManagerApi } from './rest/flatManagerApi.ts'
import { createRepoFilesRoute } from './http/repoFiles.ts'
import { createImageCatalog, createRegistryRoute } from './http/registry.ts'
import { createRegistryService } from './services/registry.ts'
import { createOciUploads } from './storage/ociUploads.ts'
import { ociRoot } from './storage/ociStore.ts'
import { createMetrics, createMetricsRoute, routeClass } from './http/metrics.ts'
import { createStatusRoute } from './http/status.ts'
import { createUiRoute } from './http/ui.ts'
import { flatdepotVersion } from './paths.ts'
import { startWorkers } from '../workers/pool.ts'

/** Orphans of dead processes go at start-up and then every ten minutes (see sweepBuildArea). */
function startSweepingBuildArea(base: string, log: Logger): NodeJS.Timeout {
  const sweep = () =>
    sweepBuildArea(base).then(
      (removed) => removed && log.info({ removed }, 'removed temporary files left by processes that died'),
      (error: unknown) => log.warn({ err: error }, 'could not sweep the build area'),
    )
  void sweep()
  return setInterval(() => void sweep(), 10 * 60_000).unref()
}

/** A start-up failure a person can act on: printed as it is, without a stack. */
export class StartupError extends Error {}

export type App = Readonly<{
  url: string
  db: Database
  stop: () => Promise<void>
}>

/** The composition root: database, event store, services, GraphQL over HTTP and WebSocket. */
export type AppOptions = {
  database?: Database
  /** Job worker slots in this process (0: API only, for deployments with separate workers). */
  workers?: number
}

export async function startApp(config: Config, log: Logger, options: AppOptions = {}): Promise<App> {
  // The port first: a second server on the same config fails here, before it touches the
  // database or the repos. Requests that come before the app is ready get a 503.
  const front = createHttpServer(log)
  const { server } = front
  await listen(server, config.host, config.port)
  const { port } = server.address() as AddressInfo
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`
  const closeServer = async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  let db: Database | undefined
  try {
    db = options.database ?? (await openDatabase(config.database, log))
    return await startOn(db, front, url, closeServer, config, log, options)
  } catch (error) {
    await closeServer()
    if (db && !options.database) await db.close().catch(() => {})
    throw error
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(new StartupError(`port ${port} on ${host} is already in use (another flatdepot?): stop it, or set "port" in the config or FLATDEPOT_PORT`))
      } else if (error.code === 'EACCES') {
        reject(new StartupError(`not allowed to listen on ${host}:${port}: ports below 1024 need privileges; choose another "port"`))
      } else reject(error)
    })
    server.listen({ port, host, backlog: listenBacklog }, () => resolve())
  })
}

/**
 * How many connections may wait to be accepted: as many as the kernel allows (Linux cuts this
 * to `net.core.somaxconn`, 4096 on current kernels), as Go's servers ask. Node's default is 511:
 * a build page opened by a thousand browsers at once overflowed it, and each connection dropped
 * there was retried by its client a second later (`npm run bench:watchers`, BENCHMARKS.md).
 */
const listenBacklog = 65_535

async function startOn(
  db: Database,
  front: HttpFront,
  url: string,
  closeServer: () => Promise<void>,
  config: Config,
  log: Logger,
  options: AppOptions,
): Promise<App> {
  const metrics = createMetrics(db.prisma)
  const run = createAppRunner(db, config, { onAppended: metrics.eventsAppended })

  for (const repo of config.repos.values()) {
    try {
      if (await ensureRepo(repo.path, { collectionId: repo['collection-id'] ?? null })) {
        log.info({ repo: repo.name, path: repo.path }, 'created OSTree repo')
      }
    } catch (error) {
      throw new StartupError(`repo "${repo.name}": cannot create or open the OSTree repo at ${repo.path}: ${(error as Error).message.split('\n')[0]}`, { cause: error })
    }
  }
  try {
    mkdirSync(config.buildRepoBase, { recursive: true })
  } catch (error) {
    throw new StartupError(`build-repo-base: cannot create ${config.buildRepoBase}: ${(error as Error).message}`, { cause: error })
  }
  const changed = await syncRepoConfig(run, config.repos.values())
  if (changed) log.info({ changed }, 'recorded repo configuration changes')

  const changes = createChangeFeed(db, log)
  await changes.start()
  let keys: KeySet
  try {
    keys = await KeySet.load(config, log)
  } catch (error) {
    if (error instanceof KeyError) throw new StartupError(error.message, { cause: error })
    throw error
  }
  if (keys.size) log.info({ keys: keys.size }, 'token keys loaded')
  const tokens = createTokenService({
    prisma: db.prisma,
    query: db.query,
    run,
    secret: config.secret,
    repoSecret: config.repoSecret,
    acceptSecretTokens: config.acceptSecretTokens,
    keys,
    tokenPrefix: config.tokenPrefix,
    log,
  })
  const prepareBuildRepos = async (buildId: number, repoName: string) => {
    const repo = config.repos.get(repoName)
    if (repo) await ensureBuildRepos(config.buildRepoBase, buildId, repo)
  }
  // Builds still uploading whose repos a process that died did not finish making.
  for (const build of await db.prisma.build.findMany({ where: { repoState: 'Uploading' }, select: { id: true, repoName: true } })) {
    if (!buildReposReady(config.buildRepoBase, build.id)) {
      await prepareBuildRepos(build.id, build.repoName)
      log.info({ buildId: build.id }, 'made the build repos a stopped process had not finished')
    }
  }
  const builds = createBuildService({ prisma: db.prisma, query: (statement) => db.query(statement), run, repoExists: (name) => config.repos.has(name), prepareBuildRepos })
  const uploads = createUploadService({ run, builds, config, log, metrics })
  const repos = createRepoService({ run, repos: config.repos })
  const yoga = createGraphql({
    prisma: db.prisma,
    query: db.query,
    builds,
    audit: createAuditService({ prisma: db.prisma }),
    repos,
    uploads,
    tokens,
    changes,
    log,
    // GraphiQL is served by the UI route, with its assets (yoga's own page loads them from a CDN).
    graphiql: false,
  })
  const sockets = createWebSockets(yoga, tokens, log)
  const ociStoreRoot = ociRoot(config.dataDir)
  const catalog = createImageCatalog(db.prisma, changes, [...config.repos.values()].filter((repo) => repo.oci).map((repo) => repo.name))
  front.mount(
    [
      healthRoute,
      createRepoFilesRoute({ config, builds, tokens, log }),
      createRegistryRoute({
        prisma: db.prisma,
        root: ociStoreRoot,
        log,
        registry: createRegistryService({ run, repos: config.repos, tokens, root: ociStoreRoot, onRecorded: catalog.invalidate }),
        uploads: createOciUploads(ociStoreRoot, config.maxObjectSize),
        catalog,
      }),
      createStatusRoute({ prisma: db.prisma, tokens, isPublic: config.publicStatus, version: flatdepotVersion, log }),
      createMetricsRoute({ metrics, tokens, isPublic: config.publicMetrics, log }),
      createFlatManagerApi({ config, prisma: db.prisma, tokens, builds, repos, uploads, log }),
      createUiRoute({ graphiql: process.env.NODE_ENV !== 'production', log }),
      graphqlHttpRoute(yoga),
    ],
    [sockets.upgrade],
    (req, status) => metrics.requestAnswered(routeClass(req), status),
  )
  const sweeper = startSweepingBuildArea(config.buildRepoBase, log)
  log.info({ url, engine: db.engine }, 'flatdepot is listening')
  const workers = (options.workers ?? 2) > 0 ? startWorkers({ db, run, config, log, concurrency: options.workers ?? 2 }) : null
  const schedules = startRepoSchedules(config.repos.values(), repos, log)

  return {
    url,
    db,
    async stop() {
      clearInterval(sweeper)
      catalog.stop()
      schedules.stop()
      keys.stop()
      await workers?.stop()
      await sockets.close()
      await closeServer()
      await changes.stop()
      if (!options.database) await db.close()
    },
  }
}
