import { mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { Config } from './config/config.ts'
import { openDatabase, type Database } from './db/database.ts'
import { createEventStore } from './eventStore/eventStore.ts'
import { createCommandRunner } from './eventStore/unitOfWork.ts'
import { createGraphql, createWebSockets } from './graphql/yoga.ts'
import { createHttpServer, healthRoute } from './http/server.ts'
import type { Logger } from './log.ts'
import { createChangeFeed } from './notifications/changeFeed.ts'
import { ensureRepo } from './ostree/repo.ts'
import { inlineHandlers } from './projections/index.ts'
import { createBuildService } from './services/builds.ts'
import { syncRepoConfig } from './services/repos.ts'
import { createTokenService } from './services/tokens.ts'
import { createUploadService } from './upload/uploadService.ts'
import { createFlatManagerApi } from './rest/flatManagerApi.ts'
import { createRepoFilesRoute } from './http/repoFiles.ts'
import { startWorkers } from '../workers/pool.ts'

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
  const db = options.database ?? (await openDatabase(config.database, log))
  const store = createEventStore(db, inlineHandlers)
  const run = createCommandRunner(store, db)

  for (const repo of config.repos.values()) {
    if (await ensureRepo(repo.path, { collectionId: repo['collection-id'] ?? null })) {
      log.info({ repo: repo.name, path: repo.path }, 'created OSTree repo')
    }
  }
  mkdirSync(config.buildRepoBase, { recursive: true })
  const changed = await syncRepoConfig(run, config.repos.values())
  if (changed) log.info({ changed }, 'recorded repo configuration changes')

  const changes = createChangeFeed(db, log)
  await changes.start()
  const tokens = createTokenService({
    prisma: db.prisma,
    run,
    secret: config.secret,
    tokenPrefix: config.tokenPrefix,
    log,
  })
  const builds = createBuildService({ prisma: db.prisma, run, repoExists: (name) => config.repos.has(name) })
  const uploads = createUploadService({ run, builds, config, log })
  const yoga = createGraphql({
    prisma: db.prisma,
    builds,
    uploads,
    tokens,
    changes,
    log,
    graphiql: process.env.NODE_ENV !== 'production',
  })
  const sockets = createWebSockets(yoga, tokens, log)
  const server = createHttpServer(
    [
      healthRoute,
      createRepoFilesRoute({ config, prisma: db.prisma, tokens, log }),
      createFlatManagerApi({ tokens, uploads, log }),
      (req, res, url) => {
        if (url.pathname !== yoga.graphqlEndpoint) return false
        return Promise.resolve(yoga.handle(req, res)).then(() => true)
      },
    ],
    log,
    [sockets.upgrade],
  )
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, config.host, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`
  log.info({ url, engine: db.engine }, 'flatdepot is listening')
  const workers = (options.workers ?? 2) > 0 ? startWorkers({ db, run, config, log, concurrency: options.workers ?? 2 }) : null

  return {
    url,
    db,
    async stop() {
      await workers?.stop()
      await sockets.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await changes.stop()
      if (!options.database) await db.close()
    },
  }
}
