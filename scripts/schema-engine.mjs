// Authors SQL migrations with Prisma's WebAssembly schema engine. The Prisma CLI's migrate
// commands need a native engine binary that cannot be downloaded here; the WASM engine ships in
// @prisma/schema-engine-wasm and works through a driver adapter. Migrations are diffed against a
// throw-away in-memory PGlite (shadow database) and applied at start-up by src/db/migrate.ts.
//
//   node scripts/schema-engine.mjs create <schema.prisma> <name>   new prisma/migrations/<ts>_<name>/
//   node scripts/schema-engine.mjs diff-empty <schema.prisma>       the whole schema as SQL
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { PrismaPGlite } from 'pglite-prisma-adapter'
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils'

async function loadEngine() {
  // Node 20 cannot import the package's .wasm entry, so the module is instantiated by hand.
  const glue = await import('@prisma/schema-engine-wasm/schema_engine_bg')
  const wasmUrl = new URL('./schema_engine_bg.wasm', import.meta.resolve('@prisma/schema-engine-wasm/schema_engine_bg'))
  const { instance } = await WebAssembly.instantiate(readFileSync(wasmUrl), { './schema_engine_bg.js': glue })
  glue.__wbg_set_wasm(instance.exports)
  instance.exports.__wbindgen_start()
  return glue
}

function migrationsList(baseDir) {
  const dirs = existsSync(baseDir)
    ? readdirSync(baseDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort()
    : []
  const lockPath = path.join(baseDir, 'migration_lock.toml')
  return {
    baseDir,
    lockfile: { path: 'migration_lock.toml', content: existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : null },
    shadowDbInitScript: '',
    migrationDirectories: dirs.map((dir) => ({
      path: dir,
      migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: readFileSync(path.join(baseDir, dir, 'migration.sql'), 'utf8') } },
    })),
  }
}

const [command, schemaPath = 'prisma/schema.prisma', name = 'migration'] = process.argv.slice(2)
const schemaFile = { path: schemaPath, content: readFileSync(schemaPath, 'utf8') }
const migrationsDir = path.resolve('prisma/migrations')
const glue = await loadEngine()
const factory = bindMigrationAwareSqlAdapterFactory(new PrismaPGlite(new PGlite()))
const engine = await glue.SchemaEngine.new({ datamodels: [[schemaFile.path, schemaFile.content]] }, () => {}, factory)
const filters = { externalTables: [], externalEnums: [] }
try {
  const list = migrationsList(migrationsDir)
  const from = command === 'create' && list.migrationDirectories.length ? { tag: 'migrations', ...list } : { tag: 'empty' }
  const result = await engine.diff({ from, to: { tag: 'schemaDatamodel', files: [schemaFile] }, script: true, exitCode: null, filters })
  const sql = result.stdout ?? ''
  if (command === 'diff-empty') {
    process.stdout.write(sql)
  } else if (command === 'create') {
    if (!sql.trim() || sql.trim().startsWith('-- This is an empty migration')) {
      console.error('no changes')
    } else {
      const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)
      const dir = path.join(migrationsDir, `${stamp}_${name}`)
      mkdirSync(dir, { recursive: true })
      writeFileSync(path.join(dir, 'migration.sql'), sql)
      console.log('created', path.relative(process.cwd(), dir))
    }
  } else {
    console.error(`unknown command ${command}: use create or diff-empty`)
    process.exitCode = 2
  }
} catch (error) {
  console.error('schema engine failed:', error?.message ?? error)
  process.exitCode = 1
} finally {
  engine.free()
  process.exit()
}
