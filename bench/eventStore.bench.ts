/**
 * Event-store appends per second on PostgreSQL, next to raw INSERTs into the same database in
 * the same run. Not a test: it prints figures (see BENCHMARKS.md).
 *   npm run bench:eventstore            (N=2000; BENCH_N to change)
 */
import pg from 'pg'
import { openDatabase } from '../src/db/database.ts'
import { tokenDecider, tokenStreamId } from '../src/domain/token/token.ts'
import { createEventStore } from '../src/eventStore/eventStore.ts'
import { createCommandRunner } from '../src/eventStore/unitOfWork.ts'
import { inlineHandlers } from '../src/projections/index.ts'
import { createPostgresDatabase } from '../test/support/databases.ts'

const n = Number(process.env.BENCH_N ?? 2000)
const metadata = { actor: { name: 'bench', jti: null }, requestId: null, at: new Date().toISOString() }

async function time(label: string, count: number, body: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now()
  for (let i = 0; i < count; i++) await body(i)
  const perSecond = count / ((performance.now() - started) / 1000)
  console.log(`${label.padEnd(58)} ${perSecond.toFixed(0).padStart(7)} /s`)
  return perSecond
}

const { url, drop } = await createPostgresDatabase()
const db = await openDatabase({ engine: 'postgresql', url })
const raw = new pg.Client({ connectionString: url })
await raw.connect()
try {
  await raw.query('CREATE TABLE bench_raw (id bigserial PRIMARY KEY, stream_id text, data jsonb)')
  const store = createEventStore(db, inlineHandlers)
  const run = createCommandRunner(store, db)
  // Warm up connections and plans.
  await time('warm-up', 50, (i) => raw.query('INSERT INTO bench_raw (stream_id, data) VALUES ($1, $2)', [`w${i}`, '{}']))
  await time('warm-up', 50, (i) => store.append([{ streamId: `warm-${i}`, streamType: 'token', expectedVersion: 0, events: [{ type: 'TokenRevoked', data: { jti: `warm-${i}` } }] }], metadata))

  console.log(`\nPostgreSQL, ${n} sequential single-event operations each:`)
  const baseline = await time('raw INSERT (autocommit, pg driver)', n, (i) =>
    raw.query('INSERT INTO bench_raw (stream_id, data) VALUES ($1, $2)', [`s${i}`, JSON.stringify({ jti: `s${i}` })]),
  )
  const rawTx = await time('raw BEGIN; INSERT stream; INSERT event; COMMIT (pg driver)', n, async (i) => {
    await raw.query('BEGIN')
    await raw.query('INSERT INTO bench_raw (stream_id, data) VALUES ($1, $2)', [`t${i}`, '{}'])
    await raw.query('INSERT INTO bench_raw (stream_id, data) VALUES ($1, $2)', [`t${i}`, JSON.stringify({ jti: `t${i}` })])
    await raw.query('COMMIT')
  })
  const append = await time('eventStore.append (version check + event + projection)', n, (i) =>
    store.append([{ streamId: `token-a${i}`, streamType: 'token', expectedVersion: 0, events: [{ type: 'TokenRevoked', data: { jti: `a${i}` } }] }], metadata),
  )
  const command = await time('command (read stream + decide + append)', n, (i) =>
    run({ now: new Date(), actor: { name: 'bench', jti: null }, requestId: null }, (unit) =>
      unit.decide(tokenDecider, tokenStreamId(`c${i}`), 'token', { type: 'RevokeToken', data: { jti: `c${i}` } }),
    ),
  )
  console.log(`\nappend ÷ raw INSERT:  ${(append / baseline).toFixed(2)}`)
  console.log(`command ÷ raw INSERT: ${(command / baseline).toFixed(2)}`)
  console.log(`append ÷ raw two-row transaction: ${(append / rawTx).toFixed(2)}`)
} finally {
  await raw.end()
  await db.close()
  await drop()
}
