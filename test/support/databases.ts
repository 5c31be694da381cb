import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { openDatabase, type Database, type Engine } from '../../src/db/database.ts'

/** Which engines the database-level suites run on: both unless FLATDEPOT_TEST_ENGINES narrows it. */
export const testEngines: Engine[] = (process.env.FLATDEPOT_TEST_ENGINES ?? 'pglite,postgresql')
  .split(',')
  .map((name) => name.trim())
  .filter((name): name is Engine => name === 'pglite' || name === 'postgresql')

export const postgresAdminUrl = process.env.FLATDEPOT_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres'

export type TestDatabase = { db: Database; url: string | null; drop: () => Promise<void> }

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresAdminUrl })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

/** A fresh, migrated PostgreSQL database URL (dropped by the returned function). */
export async function createPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `flatdepot_test_${randomBytes(6).toString('hex')}`
  await admin(`CREATE DATABASE ${name}`)
  const url = new URL(postgresAdminUrl)
  url.pathname = `/${name}`
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) }
}

/** A fresh database of the engine, migrated: in-memory PGlite, or a new PostgreSQL database. */
export async function openTestDatabase(engine: Engine): Promise<TestDatabase> {
  if (engine === 'pglite') {
    const db = await openDatabase({ engine: 'pglite', dataDir: null })
    return { db, url: null, drop: () => db.close() }
  }
  const { url, drop } = await createPostgresDatabase()
  const db = await openDatabase({ engine: 'postgresql', url })
  return {
    db,
    url,
    drop: async () => {
      await db.close()
      await drop()
    },
  }
}
