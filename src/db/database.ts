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
import { preparedName, type Statement } from './sql.ts'

export type Engine = 'pglite' | 'postgresql'
export type Prisma = PrismaClient
/** The client handed to code running inside an interactive transaction. */
export type PrismaTx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0]

/**
 * A transaction on the driver's own connection, for the event store's appends, the job queue and
 * the read models' projections: about ten times cheaper a statement than Prisma's interactive
 * transactions. Writes are held and go to the server as one script with the next read or with
 * the COMMIT, so an append that reads nothing is one round trip; the transaction begins (on
 * PostgreSQL) at the first read or with that script.
 */
export interface WriteTransaction {
  /** Sends the writes held so far, then reads: a read sees every write before it. */
  read<Row>(statement: Statement): Promise<Row[]>
  write(statement: Statement): void
}

/**
 * Two writers that both meant to add one row: PostgreSQL's code 23505, as the driver reports it,
 * or Prisma's P2002 for the same.
 */
export function isUniqueViolation(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: string }).code : undefined
  return code === '23505' || code === 'P2002'
}

export interface Database {
  readonly engine: Engine
  readonly prisma: PrismaClient
  /** Runs `work` in one transaction on a driver connection; a throw rolls back everything. */
  transaction<T>(work: (tx: WriteTransaction) => Promise<T>): Promise<T>
  /** One statement on a driver connection, outside any transaction. */
  query<Row>(statement: Statement): Promise<Row[]>
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
  // One pool for Prisma and the driver-level transactions.
  const pool = new pg.Pool({ connectionString: url })
  pool.on('error', (error) => log?.warn({ err: error }, 'idle PostgreSQL connection failed'))
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) })
  const listeners: pg.Client[] = []
  return {
    engine: 'postgresql',
    prisma,
    transaction: (work) => pgTransaction(pool, work),
    async query<Row>(statement: Statement) {
      return (await pgQuery(pool, statement)).rows as Row[]
    },
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
      await pool.end()
    },
  }
}

/**
 * The writes of a WriteTransaction, held until the next read or the end and sent as one script.
 * `open` and `close` frame the first and the last script: PostgreSQL's BEGIN and COMMIT, or
 * nothing inside PGlite's own transaction. `opened` says whether anything has been sent.
 */
function heldWrites(send: (script: string) => Promise<unknown>, read: (statement: Statement) => Promise<unknown[]>, frame: { open: string | null; close: string | null }) {
  let opened = frame.open === null
  let held: string[] = []
  const flush = async (end: string | null) => {
    const parts = [...(opened ? [] : [frame.open!]), ...held, ...(end ? [end] : [])]
    opened = true
    held = []
    if (parts.length) await send(parts.join(';\n'))
  }
  const tx: WriteTransaction = {
    async read<Row>(statement: Statement) {
      if (!opened || held.length) await flush(null)
      return (await read(statement)) as Row[]
    },
    write(statement) {
      held.push(statement.inline())
    },
  }
  return {
    tx,
    get opened() {
      return opened
    },
    /** The held writes and the closing statement, unless nothing at all was done. */
    finish: async () => {
      if (opened || held.length) await flush(frame.close)
    },
  }
}

/** A statement with bind parameters; a prepared one under its name (see Statement.prepare). */
function pgQuery(client: pg.Pool | pg.PoolClient, statement: Statement) {
  const text = statement.text
  return statement.prepared ? client.query({ name: preparedName(text), text, values: statement.params }) : client.query(text, statement.params)
}

async function pgTransaction<T>(pool: pg.Pool, work: (tx: WriteTransaction) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  // BEGIN rides with the first script; COMMIT with the last.
  const writes = heldWrites(
    (script) => client.query(script),
    async (statement) => (await pgQuery(client, statement)).rows,
    { open: 'BEGIN', close: 'COMMIT' },
  )
  let broken: Error | undefined
  try {
    const result = await work(writes.tx)
    await writes.finish()
    return result
  } catch (error) {
    // Outside a transaction (it failed before its first script) ROLLBACK only warns.
    if (writes.opened) await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError))
    throw error
  } finally {
    client.release(broken)
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
    transaction: (work) =>
      // Exclusive: every other query of this process waits until it ends.
      pglite.transaction(async (tx) => {
        const writes = heldWrites(
          (script) => tx.exec(script),
          async (statement) => (await tx.query(statement.text, statement.params)).rows,
          { open: null, close: null },
        )
        const result = await work(writes.tx)
        await writes.finish()
        return result
      }),
    async query<Row>(statement: Statement) {
      return (await pglite.query<Row>(statement.text, statement.params)).rows
    },
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
