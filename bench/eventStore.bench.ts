/**
 * Event-store appends per second on PostgreSQL, next to raw INSERTs into the same database in
 * the same run. Not a test: it prints figures (see BENCHMARKS.md).
 *   npm run bench:eventstore            (BENCH_N=2000 operations per variant, in BENCH_ROUNDS=10 rounds)
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

/** Operations per second of `body`, `count` times one after another. */
async function rate(count: number, body: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now()
  for (let i = 0; i < count; i++) await body(i)
  return count / ((performance.now() - started) / 1000)
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const rounds = Number(process.env.BENCH_ROUNDS ?? 10)

const { url, drop } = await createPostgresDatabase()
const db = await openDatabase({ engine: 'postgresql', url })
const raw = new pg.Client({ connectionString: url })
await raw.connect()
try {
  await raw.query('CREATE TABLE bench_raw (id bigserial PRIMARY KEY, stream_id text, data jsonb)')
  const store = createEventStore(db, inlineHandlers)
  const run = createCommandRunner(store, db)
  // Warm up connections and plans.
  await rate(50, (i) => raw.query('INSERT INTO bench_raw (stream_id, data) VALUES ($1, $2)', [`w${i}`, '{}']))
  await rate(50, (i) => store.append([{ streamId: `warm-${i}`, streamType: 'token', expectedVersion: 0, events: [{ type: 'TokenRevoked', data: { jti: `warm-${i}` } }] }], metadata))

  const variants: { label: string; body: (i: number) => Promise<unknown> }[] = [
    { label: 'raw INSERT (autocommit, pg driver)', body: (i) => raw.query('INSERT INTO bench_raw (stream_id, data) VALUES ($1, $2)', [`s${i}`, JSON.stringify({ jti: `s${i}` })]) },
    {
      label: 'raw BEGIN; INSERT stream; INSERT event; COMMIT (pg driver)',
      body: async (i) => {
        await raw.query('BEGIN')
        await raw.query('INSERT INTO bench_raw (stream_id, data) VALUES ($1, $2)', [`t${i}`, '{}'])
        await raw.query('INSERT INTO bench_raw (stream_id, data) VALUES ($1, $2)', [`t${i}`, JSON.stringify({ jti: `t${i}` })])
        await raw.query('COMMIT')
      },
    },
    {
      label: 'eventStore.append (version check + event + projection)',
      body: (i) => store.append([{ streamId: `token-a${i}`, streamType: 'token', expectedVersion: 0, events: [{ type: 'TokenRevoked', data: { jti: `a${i}` } }] }], metadata),
    },
    {
      label: 'command (read stream + decide + append)',
      body: (i) =>
        run({ now: new Date(), actor: { name: 'bench', jti: null }, requestId: null }, (unit) =>
          unit.decide(tokenDecider, tokenStreamId(`c${i}`), 'token', { type: 'RevokeToken', data: { jti: `c${i}` } }),
        ),
    },
  ]
  // In rounds, each variant in turn and the order rotating, so that the machine's drift over the
  // run (other processes, PostgreSQL's checkpoints) falls on all four alike; the ratios are taken
  // within each round, and their median is the figure.
  const perRound = Math.ceil(n / rounds)
  const rates: number[][] = variants.map(() => [])
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < variants.length; k++) {
      const v = (round + k) % variants.length
      rates[v]!.push(await rate(perRound, (i) => variants[v]!.body(round * perRound + i)))
    }
  }
  console.log(`\nPostgreSQL, ${rounds} rounds of ${perRound} sequential single-event operations per variant (median rate; range over rounds):`)
  variants.forEach((variant, v) => {
    const values = rates[v]!
    console.log(`${variant.label.padEnd(58)} ${median(values).toFixed(0).padStart(7)} /s   ${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)}`)
  })
  const ratio = (label: string, a: number, b: number, goal: string) => {
    const values = rates[a]!.map((value, round) => value / rates[b]![round]!)
    console.log(`${label.padEnd(36)} ${median(values).toFixed(2)}   (rounds ${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)})   ${goal}`)
  }
  console.log('\nmedian of the per-round ratios:')
  ratio('append ÷ raw INSERT', 2, 0, 'goal ≥ 0.5')
  ratio('command ÷ raw INSERT', 3, 0, 'goal ≥ 0.4')
  ratio('append ÷ raw two-row transaction', 2, 1, '')
} finally {
  await raw.end()
  await db.close()
  await drop()
}
