import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { projectRoot } from '../paths.ts'

/** What both node-postgres and PGlite offer; enough to apply migrations before Prisma starts. */
export interface SqlConnection {
  exec(sql: string): Promise<unknown>
  query<Row>(sql: string, params?: unknown[]): Promise<{ rows: Row[] }>
}

export const migrationsDir = path.join(projectRoot, 'prisma', 'migrations')

// An arbitrary constant shared by every flatdepot process: the advisory lock serialises servers
// and workers that start at the same time against one PostgreSQL.
const migrationLock = 727_001

/** Applies prisma/migrations/<name>/migration.sql in name order, each once, each in a transaction. */
export async function migrate(db: SqlConnection, dir = migrationsDir): Promise<string[]> {
  const names = existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name)
        .sort()
    : []
  await db.query('SELECT pg_advisory_lock($1)', [migrationLock])
  try {
    await db.exec(
      'CREATE TABLE IF NOT EXISTS app_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    )
    const done = new Set((await db.query<{ name: string }>('SELECT name FROM app_migrations')).rows.map((r) => r.name))
    const applied: string[] = []
    for (const name of names.filter((n) => !done.has(n))) {
      const sql = readFileSync(path.join(dir, name, 'migration.sql'), 'utf8')
      await db.exec('BEGIN')
      try {
        await db.exec(sql)
        await db.query('INSERT INTO app_migrations (name) VALUES ($1)', [name])
        await db.exec('COMMIT')
      } catch (error) {
        await db.exec('ROLLBACK')
        throw new Error(`migration ${name} failed: ${(error as Error).message}`, { cause: error })
      }
      applied.push(name)
    }
    return applied
  } finally {
    await db.query('SELECT pg_advisory_unlock($1)', [migrationLock])
  }
}
