import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import type { PGlite } from '@electric-sql/pglite'
import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import { PrismaClient } from '../generated/prisma/client.ts'
import type { Logger } from '../log.ts'
import { run } from '../process/run.ts'
import { lockDataDir } from './dataDirLock.ts'
import { migrate } from './migrate.ts'

export type Engine = 'pglite' | 'postgresql'
export type Prisma = PrismaClient
/** The client handed to code running inside an interactive transaction. */
export type PrismaTx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0]

export interface Database {
  readonly engine: Engine
  readonly prisma: PrismaClient
  /** LISTEN on a channel; NOTIFY payloads are wake-up hints, the database is the truth. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>
  close(): Promise<void>
}

export type DatabaseTarget = { engine: 'postgresql'; url: string } | { engine: 'pglite'; dataDir: string | null; pglite?: PGlite }

export async function openDatabase(target: DatabaseTarget, log?: Logger): Promise<Database> {
  return target.engine === 'postgresql' ? openPostgres(target.url, log) : openPglite(target.dataDir, target.pglite, log)
}

async function openPostgres(url: string, log?: Logger): Promise<Database> {
  const client = new pg.Client({ connectionString: url })
  try {
    await client.connect()
  } catch (error) {
    throw new Error(`cannot connect to PostgreSQL at ${redact(url)}: ${(error as Error).message}`, { cause: error })
  }
  try {
    const applied = await migrate({
      exec: (sql) => client.query(sql),
      query: async <Row>(sql: string, params?: unknown[]) => client.query(sql, params) as unknown as { rows: Row[] },
    })
    if (applied.length) log?.info({ applied }, 'database migrated')
  } finally {
    await client.end()
  }
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) })
  const listeners: pg.Client[] = []
  return {
    engine: 'postgresql',
    prisma,
    async listen(channel, onPayload) {
      const listener = new pg.Client({ connectionString: url })
      await listener.connect()
      listener.on('notification', (message) => {
        if (message.channel === channel) onPayload(message.payload ?? '')
      })
      listener.on('error', (error) => log?.error({ err: error, channel }, 'LISTEN connection failed'))
      await listener.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
      listeners.push(listener)
      return async () => {
        listeners.splice(listeners.indexOf(listener), 1)
        await listener.end()
      }
    },
    async close() {
      await Promise.all(listeners.splice(0).map((listener) => listener.end()))
      await prisma.$disconnect()
    },
  }
}

async function openPglite(dataDir: string | null, given: PGlite | undefined, log?: Logger): Promise<Database> {
  if (dataDir) mkdirSync(dataDir, { recursive: true })
  // Before anything reads a file of it: a second process on the same directory is refused.
  const release = dataDir && !given ? lockDataDir(dataDir) : () => {}
  try {
    return await openLockedPglite(dataDir, given, release, log)
  } catch (error) {
    release()
    throw error
  }
}

async function openLockedPglite(dataDir: string | null, given: PGlite | undefined, release: () => void, log?: Logger): Promise<Database> {
  // Loaded only for the embedded engine: the module alone weighs ~40 MB of a PostgreSQL server's RSS.
  const [{ PGlite: PGliteClass }, { PrismaPGlite }] = await Promise.all([import('@electric-sql/pglite'), import('pglite-prisma-adapter')])
  // The embedded database lives in this process's memory: a small buffer pool (PostgreSQL's
  // default is 128 MB; the files are in the OS page cache anyway) keeps the server ~130 MB lighter.
  const options = { postgresqlconf: ['shared_buffers=16MB'] }
  const open = async () => {
    try {
      const instance = dataDir ? new PGliteClass(dataDir, options) : new PGliteClass(options)
      await instance.waitReady
      return instance
    } catch (error) {
      throw new Error(
        [
          `the embedded database in ${dataDir} could not be opened: ${(error as Error).message}`,
          'Its files are damaged (flatdepot never lets two processes open it; a disk that lost writes, or files changed by hand, can do this).',
          `Restore ${dataDir} from a copy taken while flatdepot was stopped, or move it aside to start with an empty database`,
          '(builds, jobs and tokens are then forgotten; the repos on disk are untouched).',
        ].join('\n'),
        { cause: error },
      )
    }
  }
  // initdb grows WebAssembly memory that never shrinks: a new data directory is initialised by a
  // short-lived child process, so this one starts as it will on every later start.
  if (!given && dataDir && !existsSync(path.join(dataDir, 'PG_VERSION'))) await initPgliteInChild(dataDir, options)
  const pglite = given ?? (await open())
  const applied = await migrate(pglite)
  if (applied.length) log?.info({ applied, dataDir }, 'database migrated')
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) })
  return {
    engine: 'pglite',
    prisma,
    async listen(channel, onPayload) {
      return pglite.listen(channel, onPayload)
    },
    async close() {
      await prisma.$disconnect()
      if (!given) await pglite.close()
      release()
    },
  }
}

async function initPgliteInChild(dataDir: string, options: object): Promise<void> {
  const module = import.meta.resolve('@electric-sql/pglite')
  const script = `const { PGlite } = await import(${JSON.stringify(module)})
const db = new PGlite(${JSON.stringify(dataDir)}, ${JSON.stringify(options)})
await db.waitReady
await db.close()`
  try {
    await run(process.execPath, ['--input-type=module', '-e', script], { timeoutMs: 120_000 })
  } catch (error) {
    throw new Error(`could not create the embedded database in ${dataDir}: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}`, { cause: error })
  }
}

export function redact(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return '<unparseable database URL>'
  }
}
