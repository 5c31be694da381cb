/**
 * What starting a command costs a server process, from the process itself and from the spawn
 * helper (src/process/spawner.ts): the time per command, and how long the event loop stood still
 * meanwhile (every request and log subscriber of the process waits that long). The process first
 * holds as much memory as a busy server does (BENCH_RSS_MB, default 200), since a fork copies the
 * page tables of all of it. Not a test: it prints figures (see BENCHMARKS.md).
 *   npm run bench:spawn
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { run, useSpawner } from '../src/process/run.ts'

const targetMb = Number(process.env.BENCH_RSS_MB ?? 200)
const commands = Number(process.env.BENCH_N ?? 200)
const ballast: unknown[] = []
while (process.memoryUsage().rss / 1e6 < targetMb) for (let i = 0; i < 100_000; i++) ballast.push({ n: i, text: `item ${i}` })

type Figures = { perCommandMs: number; p50: number; p99: number; max: number }
async function measure(): Promise<Figures> {
  for (let i = 0; i < 10; i++) await run('true', [])
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  const started = performance.now()
  // Four at a time: a job's commands, another job's, a clean-up.
  for (let i = 0; i < commands / 4; i++) await Promise.all(Array.from({ length: 4 }, () => run('true', [])))
  const perCommandMs = (performance.now() - started) / commands
  delay.disable()
  return { perCommandMs, p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 }
}

console.log(`${commands} commands (\`true\`), 4 at a time, from a process of ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB RSS`)
const rows: [string, Figures][] = []
// Alternating, so both see the same machine.
for (let round = 0; round < 2; round++) {
  rows.push(['from the process (fork)', await measure()])
  const stop = useSpawner()
  rows.push(['from the spawn helper', await measure()])
  stop()
}
for (const [label, f] of rows) {
  console.log(`${label.padEnd(26)} ${f.perCommandMs.toFixed(2)} ms per command; event loop delay p50 ${f.p50.toFixed(2)}, p99 ${f.p99.toFixed(2)}, max ${f.max.toFixed(2)} ms`)
}
const mean = (label: string, key: keyof Figures) => rows.filter(([l]) => l === label).reduce((sum, [, f]) => sum + f[key], 0) / 2
console.log(`\nhelper ÷ fork: time per command ${(mean('from the spawn helper', 'perCommandMs') / mean('from the process (fork)', 'perCommandMs')).toFixed(2)}, event loop delay p99 ${(mean('from the spawn helper', 'p99') / mean('from the process (fork)', 'p99')).toFixed(2)}`)
void ballast.length
