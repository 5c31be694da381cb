/**
 * Job start latency on PostgreSQL: from the moment the command that queues a job has committed
 * (its NOTIFY goes out at that commit) to the moment the job's handler runs in a worker slot that
 * was idle, and from the handler's return to the job's outcome being committed. Baseline in the
 * same run: a bare NOTIFY from one connection to a LISTENing one on the same database. The
 * worker runs in this process with a handler that does nothing, so what is measured is the
 * queue: the wake-up, the claim transaction, the start's bookkeeping.
 * Not a test: it prints figures (see BENCHMARKS.md).
 *   npm run bench:jobstart            (BENCH_N=200 jobs; BENCH_SLOTS=2 idle worker slots)
 */
import { parseConfig } from '../src/config/config.ts'
import { openDatabase } from '../src/db/database.ts'
import { sql } from '../src/db/sql.ts'
import { createEventStore } from '../src/eventStore/eventStore.ts'
import { createCommandRunner } from '../src/eventStore/unitOfWork.ts'
import { enqueue } from '../src/jobs/enqueue.ts'
import { createLogger } from '../src/log.ts'
import { inlineHandlers } from '../src/projections/index.ts'
import { syncRepoConfig } from '../src/services/repos.ts'
import { startWorkers } from '../workers/pool.ts'
import { createPostgresDatabase } from '../test/support/databases.ts'
import { notifyLatencies, percentile } from './support.ts'

const n = Number(process.env.BENCH_N ?? 200)
const config = parseConfig({ secret: Buffer.alloc(32, 1).toString('base64'), 'build-repo-base': 'b', repos: { stable: { path: 'r' } } }, '/srv/config.json')
const metadata = () => ({ now: new Date(), actor: { name: 'bench', jti: null }, requestId: null })
const summary = (values: number[]) => `p50 ${percentile(values, 50).toFixed(2)} ms, p99 ${percentile(values, 99).toFixed(2)} ms`

const { url, drop } = await createPostgresDatabase()
const db = await openDatabase({ engine: 'postgresql', url })
const run = createCommandRunner(createEventStore(db, inlineHandlers), db)
await syncRepoConfig(run, config.repos.values())

// ---------------------------------------------------------------- baseline: bare LISTEN/NOTIFY
const notify = await notifyLatencies(url, n)

// ---------------------------------------------------------------- flatdepot: queue → handler → outcome
let ran: (at: number) => void = () => {}
let returned = 0
const workers = startWorkers({
  db,
  run,
  config,
  log: createLogger({ level: 'silent' }),
  concurrency: Number(process.env.BENCH_SLOTS ?? 2),
  // Polling would find a job within this interval even without the NOTIFY: far beyond what is measured.
  pollMs: 5_000,
  handlers: {
    prune: {
      async run() {
        ran(performance.now())
        returned = performance.now()
        return { results: {} }
      },
    },
  },
})
const start: number[] = []
const outcome: number[] = []
try {
  for (let i = 0; i < n + 10; i++) {
    const handlerRan = new Promise<number>((resolve) => (ran = resolve))
    const { result } = await run(metadata(), (unit) => enqueue(unit, 'prune', { repo: 'stable' }))
    const committed = performance.now()
    const at = await handlerRan
    // The outcome: the job's row says Succeeded (polled on the driver connection, 0.1 ms apart).
    for (;;) {
      const [row] = await db.query<{ status: string }>(sql`SELECT status FROM jobs WHERE id = ${result.jobId}`)
      if (row?.status === 'Succeeded') break
      await new Promise((resolve) => setTimeout(resolve, 0.1))
    }
    if (i >= 10) {
      // The first ten warm the connections and plans.
      start.push(at - committed)
      outcome.push(performance.now() - returned)
    }
  }
} finally {
  await workers.stop()
  await db.close()
  await drop()
}
console.log(`PostgreSQL, ${n} jobs one after another, two idle worker slots:`)
console.log(`bare NOTIFY delivery (baseline)                ${summary(notify)}`)
console.log(`queued (committed) → handler running           ${summary(start)}`)
console.log(`handler returned → outcome committed (polled)  ${summary(outcome)}`)
console.log(`\njob start ÷ bare NOTIFY, medians: ${(percentile(start, 50) / percentile(notify, 50)).toFixed(1)}×  (goal: start < 5 ms)`)
