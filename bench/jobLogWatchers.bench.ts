/**
 * Live job logs for many watchers: a build page open in many browsers. PostgreSQL, the API and
 * the worker in their own processes, a check hook printing a stamped line every 50 ms for 10 s
 * (after a 3 s pause while the watchers connect). For each number of watchers (BENCH_WATCHERS,
 * default 1,10,100,1000), each watcher has its own graphql-ws connection and follows the check
 * job's `jobLog` from the start. Reported per run: the latency from a line printed to a watcher
 * receiving it (live lines only), lines lost or repeated (each watcher must see 1..N once, in
 * order), the API process's peak RSS, and the latency of an unrelated GraphQL query sent every
 * 100 ms meanwhile; each over the whole run, and again from the moment the last watcher was
 * connected (the connection storm of the first seconds left out), and the API's CPU (and GC) time
 * per line delivered. Baselines in the same run: the same hook's lines read directly by this
 * process; and the ceiling, the same watchers with the same client code following one bare
 * graphql-ws broadcaster (no GraphQL, no database: what this machine allows any Node server;
 * BENCH_CEILING=0 leaves it out). Not a test: it prints figures (see BENCHMARKS.md).
 *   npm run bench:watchers     (BENCH_WATCHERS=1,10,100,1000; BENCH_SUBSCRIPTION=jobLogLines for
 *   the batched subscription; BENCH_JOBS=100 spreads the watchers over 100 jobs printing at once; BENCH_SEMI: the API's
 *   --max-semi-space-size in MB, 2 as `npm start` has it; BENCH_NODE_ARGS: more of the API's node
 *   flags (V8 heap settings to try); BENCH_PROFILE=<dir>: a CPU profile of
 *   the API process; BENCH_KEEP=1 keeps its data directory and log)
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createClient, type Client } from 'graphql-ws'
import WebSocket from 'ws'
import { buildFixture } from '../test/support/fixture.ts'
import { freePort, graphql, startWorkerProcess, waitFor } from '../test/support/server.ts'
import { signedRepoConfig } from '../test/support/config.ts'
import { nowMs, percentile, readHookDirectly, stampedHook, startBenchServer, startCheckJob } from './support.ts'

const counts = (process.env.BENCH_WATCHERS ?? '1,10,100,1000').split(',').map(Number)
/** BENCH_SUBSCRIPTION=jobLogLines: the batched subscription (a list of lines per message) instead of `jobLog`. */
const batched = process.env.BENCH_SUBSCRIPTION === 'jobLogLines'
type Line = { position: number; text: string }
const hookLines = 200
const work = mkdtempSync(path.join(tmpdir(), 'flatdepot-bench-watchers-'))
/** A process's CPU time so far (user + system, s), from /proc. */
const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 }
}
/**
 * The API's garbage collection so far, from its own metrics: the time (s), and per kind (major,
 * minor, incremental, weakcb) how many collections and how many of them took over 100 ms.
 */
async function gcSeconds(url: string): Promise<{ seconds: number; byKind: Map<string, { count: number; over100ms: number }> }> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const seconds = [...text.matchAll(/^flatdepot_nodejs_gc_duration_seconds_sum\{[^}]*\} ([\d.e+-]+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0)
  const byKind = new Map<string, { count: number; over100ms: number }>()
  const kind = (name: string) => byKind.get(name) ?? byKind.set(name, { count: 0, over100ms: 0 }).get(name)!
  for (const match of text.matchAll(/^flatdepot_nodejs_gc_duration_seconds_count\{kind="(\w+)"\} (\d+)$/gm)) kind(match[1]!).count = Number(match[2])
  // Those over 100 ms: all of a kind less the ones within the 0.1 s bucket.
  for (const match of text.matchAll(/^flatdepot_nodejs_gc_duration_seconds_bucket\{le="0\.1",kind="(\w+)"\} (\d+)$/gm)) kind(match[1]!).over100ms = -Number(match[2])
  for (const counts of byKind.values()) counts.over100ms += counts.count
  return { seconds, byKind }
}
/** The collections between two readings of `gcSeconds`, per kind. */
function gcBetween(before: Awaited<ReturnType<typeof gcSeconds>>, after: Awaited<ReturnType<typeof gcSeconds>>): string {
  return [...after.byKind]
    .map(([kind, counts]) => {
      const earlier = before.byKind.get(kind) ?? { count: 0, over100ms: 0 }
      return `${kind} ${counts.count - earlier.count} (${counts.over100ms - earlier.over100ms} over 100 ms)`
    })
    .join(', ')
}
/** The API's memory by kind (MB), from its own metrics: V8's heap (used of total) and memory outside it. */
async function memoryMb(url: string): Promise<{ heapUsed: number; heapTotal: number; external: number }> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const value = (name: string) => Number(new RegExp(`^flatdepot_${name} ([\\d.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20
  return { heapUsed: value('nodejs_heap_size_used_bytes'), heapTotal: value('nodejs_heap_size_total_bytes'), external: value('nodejs_external_memory_bytes') }
}
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

/**
 * `{ repos { name title } }` every 100 ms from a child process until `stop`, which gives each
 * query's start (epoch ms) and duration, or why it failed. Resolves once the child has made one
 * query untimed (Node's fetch loads on first use, and the connection opens).
 */
async function startQueryLoop(url: string, token: string) {
  const script = `
const [url, token] = process.argv.slice(-2)
const now = () => performance.timeOrigin + performance.now()
let running = true
process.stdin.on('end', () => (running = false)).resume()
const query = async () => {
  const response = await fetch(url + '/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token },
    body: JSON.stringify({ query: '{ repos { name title } }' }),
  })
  const body = await response.json()
  if (!response.ok || body.errors) throw new Error('HTTP ' + response.status + ': ' + JSON.stringify(body.errors ?? body).slice(0, 200))
}
// Warm, as a user's browser is: fetch loaded and its connection open before the first timed query.
await query()
process.stdout.write('ready\\n')
const results = []
while (running) {
  const started = now()
  try {
    await query()
    results.push({ started, took: now() - started })
  } catch (error) {
    results.push({ started, took: now() - started, failure: (error.cause ?? error).message })
  }
  await new Promise((resolve) => setTimeout(resolve, 100))
}
process.stdout.write(JSON.stringify(results))`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, url, token], { stdio: ['pipe', 'pipe', 'inherit'] })
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const exited = new Promise<void>((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the query loop exited (${code})`)))))
  await Promise.race([exited, waitFor('the query loop to start', async () => (output.startsWith('ready\n') ? true : undefined), 30_000)])
  return {
    async stop(): Promise<{ started: number; took: number; failure?: string }[]> {
      child.stdin!.end()
      await exited
      return JSON.parse(output.slice('ready\n'.length))
    },
  }
}

/** BENCH_JOBS=100: the watchers spread round-robin over that many check jobs, all printing at once (they wait on a barrier file). */
const jobCount = Number(process.env.BENCH_JOBS ?? 1)
const barrier = path.join(work, 'go')
const hook = jobCount > 1 ? stampedHook(work, { lines: hookLines, intervalSecs: 0.05, barrier }) : stampedHook(work, { lines: hookLines, intervalSecs: 0.05, pauseSecs: 3 })

/**
 * The ceiling: one bare Node process speaking just enough graphql-ws (ack, subscribe, next,
 * complete) to the same clients, each job printing the same stamped lines every 50 ms and
 * sending each to its subscribers as the API does, one JSON message per socket (a late joiner
 * gets what was printed before it first). One job starts 3 s after its first subscriber, as the
 * hook pauses; with several jobs all start once every watcher has subscribed.
 */
async function startBareBroadcaster(watchers: number): Promise<{ url: string; pid: number; stop: () => void }> {
  const port = await freePort()
  const script = `
import { WebSocketServer } from 'ws'
const lines = ${hookLines}, jobs = ${jobCount}, watchers = ${watchers}, field = ${JSON.stringify(batched ? 'jobLogLines' : 'jobLog')}
const byJob = new Map()
let subscribed = 0
const message = (id, line) => JSON.stringify({ id, type: 'next', payload: { data: { [field]: field === 'jobLog' ? line : [line] } } })
function job(id) {
  let entry = byJob.get(id)
  if (!entry) byJob.set(id, (entry = { printed: [], subscribers: new Set(), done: false }))
  return entry
}
function print(entry) {
  const position = entry.printed.length + 1
  const line = { position, text: 'line ' + position + ' ' + Math.round((performance.timeOrigin + performance.now()) * 1000) }
  entry.printed.push(line)
  for (const { socket, id } of entry.subscribers) socket.send(message(id, line))
  if (position < lines) return setTimeout(() => print(entry), 50)
  entry.done = true
  for (const { socket, id } of entry.subscribers) socket.send(JSON.stringify({ id, type: 'complete' }))
  entry.subscribers.clear()
}
new WebSocketServer({ host: '127.0.0.1', port: ${port}, path: '/graphql', handleProtocols: () => 'graphql-transport-ws' }).on('connection', (socket) => {
  socket.on('message', (data) => {
    const m = JSON.parse(data)
    if (m.type === 'connection_init') socket.send('{"type":"connection_ack"}')
    else if (m.type === 'ping') socket.send('{"type":"pong"}')
    else if (m.type === 'subscribe') {
      const entry = job(m.payload.variables.id)
      for (const line of entry.printed) socket.send(message(m.id, line))
      if (entry.done) return socket.send(JSON.stringify({ id: m.id, type: 'complete' }))
      entry.subscribers.add({ socket, id: m.id })
      subscribed++
      if (jobs === 1 && subscribed === 1) setTimeout(() => print(entry), 3000)
      if (jobs > 1 && subscribed === watchers) setTimeout(() => { for (let j = 1; j <= jobs; j++) print(job(j)) }, 1000)
    }
  })
})
process.on('SIGTERM', () => process.exit(0)) // a CPU profile (BENCH_PROFILE) is written at exit
process.stdout.write('ready\\n')`
  // In the project's directory, where ws resolves.
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.join(process.env.BENCH_PROFILE, 'bare')}`] : []
  const child = spawn(process.execPath, ['--max-semi-space-size=2', ...profile, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], cwd: process.cwd() })
  await new Promise((resolve, reject) => {
    child.stdout!.once('data', resolve)
    child.once('exit', (code) => reject(new Error(`the bare broadcaster exited (${code})`)))
  })
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => child.kill('SIGTERM') }
}

const fixture = await buildFixture('small')
const { server, drop: dropDatabase } = await startBenchServer({
  engine: 'postgresql',
  config: (port) => ({ ...signedRepoConfig(fixture, port, { hooks: { checks: { stamped: { command: [hook] } } } }, 13), 'public-metrics': true }),
  args: ['--workers', '0'],
  semiSpaceMb: Number(process.env.BENCH_SEMI ?? 2),
  nodeArgs: [...(process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : []), ...(process.env.BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [])],
  keepDataDir: !!process.env.BENCH_KEEP,
})
const worker = startWorkerProcess(server, {}, jobCount > 1 ? ['--concurrency', String(jobCount + 2)] : [])
try {
  if (jobCount > 1) writeFileSync(barrier, '')
  const direct = await readHookDirectly(hook)
  rmSync(barrier, { force: true })
  const token = await server.cli('token', 'create', '--repo', 'stable')

  /**
   * `watchers` graphql-ws clients following the job log: flatdepot's (a check job, or jobCount of
   * them), or with `ceiling` the bare broadcaster's, which has no job, no database and no
   * unrelated query to answer.
   */
  async function run(watchers: number, ceiling?: { url: string; pid: number }) {
    const target = ceiling ?? { url: server.url, pid: server.pid }
    const jobIds: number[] = []
    if (ceiling) jobIds.push(1)
    else for (let i = 0; i < jobCount; i++) jobIds.push(await startCheckJob(server.url, token, fixture, 300_000))
    if (jobCount > 1 && !ceiling) {
      await waitFor(
        'every check job running',
        async () => {
          const { body } = await graphql(server.url, token, `{ jobs(first: 100, kind: CHECK, status: RUNNING) { ... on QueryJobsConnection { edges { node { id } } } } }`)
          return body.data.jobs.edges.length >= jobCount ? true : undefined
        },
        600_000,
      )
    }
    const clients: Client[] = []
    let connected = 0
    let barrierAt: number | null = null
    /** When the last watcher's connection was acknowledged: the connection storm is over. */
    let allConnectedAt: number | null = null
    const settledLatencies: number[] = []
    const latencies: number[] = []
    let lost = 0
    let repeated = 0
    let lastArrival = 0
    let backlog = 0
    // The unrelated query is sent from a process of its own, as another user's browser would send
    // it (in this process its answer would wait for the 1,000 watchers' own messages), from before
    // the watchers connect to after the last line.
    const querying = ceiling ? null : await startQueryLoop(server.url, token)
    const runStarted = nowMs()
    const cpuBefore = cpuSeconds(target.pid)
    const gcBefore = ceiling ? null : await gcSeconds(server.url)
    // The bare broadcaster's jobs print once every watcher has subscribed: all their lines are live.
    if (ceiling && jobCount > 1) barrierAt = runStarted
    const followed = Array.from({ length: watchers }, async (_, index) => {
      const jobId = jobIds[index % jobIds.length]!
      const client = createClient({
        url: `${target.url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${token}` },
        lazy: false,
        on: {
          connected: () => {
            if (++connected === watchers) allConnectedAt = nowMs()
          },
        },
      })
      clients.push(client)
      const hookPositions: number[] = []
      let expected = 1
      // Lines printed before this watcher's first line arrived came with its first read (the
      // backlog of a late joiner): live latency counts the lines printed after that.
      let liveSince: number | null = null
      for await (const result of client.iterate<{ jobLog?: Line; jobLogLines?: Line[] }>({
        query: batched ? 'subscription($id: Int!) { jobLogLines(jobId: $id) { position text } }' : 'subscription($id: Int!) { jobLog(jobId: $id) { position text } }',
        variables: { id: jobId },
      })) {
        for (const line of result.data!.jobLogLines ?? [result.data!.jobLog!]) {
          if (line.position < expected) repeated++
          else if (line.position > expected) lost += line.position - expected
          expected = line.position + 1
          const match = /^line (\d+) (\d+)$/.exec(line.text)
          if (!match) continue
          const arrived = nowMs()
          lastArrival = Math.max(lastArrival, arrived)
          hookPositions.push(Number(match[1]))
          // Spread over jobs, every watcher subscribed before the hooks started: all lines are live.
          liveSince ??= barrierAt ?? arrived
          const printed = Number(match[2]) / 1000
          if (printed < liveSince) backlog++
          else {
            const latency = arrived - printed
            latencies.push(latency)
            if (allConnectedAt !== null && printed >= allConnectedAt) settledLatencies.push(latency)
          }
        }
      }
      if (hookPositions.length !== hookLines) lost += hookLines - hookPositions.length
    })
    if (jobCount > 1 && !ceiling) {
      // Every watcher connected and subscribed (its connection open), then every hook starts printing.
      await waitFor('the watchers to connect', async () => (connected >= watchers ? true : undefined), 120_000)
      await new Promise((resolve) => setTimeout(resolve, 1000))
      barrierAt = nowMs()
      writeFileSync(barrier, '')
    }
    // Meanwhile: an unrelated query every 100 ms, and the API's memory every 50 ms.
    const queryLatencies: number[] = []
    /** The unrelated queries that took 100 ms or more, with when they were sent (from the hooks' start, or the run's). */
    const slowQueries: string[] = []
    const settledQueryLatencies: number[] = []
    const queryFailures: string[] = []
    const rssBefore = rssMb(target.pid)
    let peakRss = rssBefore
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(target.pid))), 50)
    // Once a second, what the RSS is made of; the sample with the largest heap is reported.
    let peakMemory: Awaited<ReturnType<typeof memoryMb>> | null = null
    const memorySampler = ceiling
      ? null
      : setInterval(() => {
          memoryMb(server.url).then(
            (memory) => {
              if (!peakMemory || memory.heapTotal > peakMemory.heapTotal) peakMemory = memory
            },
            () => {},
          )
        }, 1000)
    await Promise.all(followed)
    const cpuAfter = cpuSeconds(target.pid)
    const cpu = { user: cpuAfter.user - cpuBefore.user, system: cpuAfter.system - cpuBefore.system }
    const gcAfter = gcBefore ? await gcSeconds(server.url) : null
    const gc = gcBefore && gcAfter ? gcAfter.seconds - gcBefore.seconds : NaN
    const collections = gcBefore && gcAfter ? gcBetween(gcBefore, gcAfter) : null
    clearInterval(sampler)
    if (memorySampler) clearInterval(memorySampler)
    for (const { started, took, failure } of querying ? await querying.stop() : []) {
      if (failure) {
        // A query that gets no answer is a result to report, not the end of the benchmark.
        queryFailures.push(`${((started - runStarted) / 1000).toFixed(1)} s in, after ${(took / 1000).toFixed(1)} s: ${failure}`)
        continue
      }
      queryLatencies.push(took)
      if (took >= 100) slowQueries.push(`${((started - (barrierAt ?? runStarted)) / 1000).toFixed(1)} s: ${took.toFixed(0)} ms`)
      if (allConnectedAt !== null && started >= allConnectedAt) settledQueryLatencies.push(took)
    }
    rmSync(barrier, { force: true })
    const jobFinished = ceiling ? lastArrival : await waitFor('the check job to finish', async () => {
      const { body } = await graphql(server.url, token, `{ job(id: ${jobIds.at(-1)}) { ... on Job { status finishedAt } } }`)
      return body.data.job.finishedAt ? new Date(body.data.job.finishedAt as string).getTime() : undefined
    })
    for (const client of clients) void client.dispose()
    return { watchers, latencies, backlog, lost, repeated, rssBefore, peakRss, peakMemory: peakMemory as Awaited<ReturnType<typeof memoryMb>> | null, queryLatencies, slowQueries, queryFailures, lastAfterFinish: lastArrival - jobFinished, cpu, gc, collections,
      settled: { after: (allConnectedAt ?? NaN) - runStarted, latencies: settledLatencies, queryLatencies: settledQueryLatencies } }
  }

  const fmt = (values: number[]) => `p50 ${percentile(values, 50).toFixed(0)} / p99 ${percentile(values, 99).toFixed(0)} / max ${values.reduce((a, b) => Math.max(a, b), -Infinity).toFixed(0)} ms`
  console.log(`PostgreSQL; API and worker in their own processes; a line every 50 ms for ${hookLines / 20} s; subscription ${batched ? 'jobLogLines' : 'jobLog'}; ${jobCount} job${jobCount > 1 ? 's printing at once, watchers spread over them' : ''}`)
  console.log(`baseline, the hook read directly: ${fmt(direct)}\n`)
  console.log(`${'watchers'.padStart(8)}  ${'line → watcher'.padEnd(30)} ${'lost'.padStart(5)} ${'again'.padStart(5)}  ${'API RSS'.padStart(8)}  ${'other query'.padEnd(30)} last line after finish`)
  const report = (label: string, result: Awaited<ReturnType<typeof run>>, withQuery = true) => {
    console.log(
      `${label.padStart(8)}  ${fmt(result.latencies).padEnd(30)} ${String(result.lost).padStart(5)} ${String(result.repeated).padStart(5)}  ${`${result.peakRss.toFixed(0)} MB`.padStart(8)}  ${(withQuery ? fmt(result.queryLatencies) : '-').padEnd(30)} ${result.lastAfterFinish.toFixed(0)} ms`,
    )
    const frames = result.latencies.length + result.backlog
    const perLine = (secs: number) => ((secs * 1e6) / Math.max(frames, 1)).toFixed(0)
    const { user, system } = result.cpu
    console.log(
      `${''.padStart(8)}  CPU ${(user + system).toFixed(2)} s for ${frames} lines delivered, ${perLine(user + system)} µs each: user ${perLine(user)}${Number.isNaN(result.gc) ? '' : ` (GC ${perLine(result.gc)})`}, system ${perLine(system)}`,
    )
    const memory = result.peakMemory
    console.log(
      `${''.padStart(8)}  RSS ${result.rssBefore.toFixed(0)} MB before the watchers${memory ? `; at the largest heap: heap ${memory.heapUsed.toFixed(0)} used of ${memory.heapTotal.toFixed(0)} MB, outside the heap ${memory.external.toFixed(0)} MB` : ''}`,
    )
    if (result.collections) console.log(`${''.padStart(8)}  garbage collections: ${result.collections}`)
    if (result.slowQueries.length) console.log(`${''.padStart(8)}  other queries of 100 ms or more, sent at: ${result.slowQueries.join(', ')}`)
    for (const failure of result.queryFailures) console.log(`${''.padStart(8)}  other query failed ${failure}`)
    if (result.backlog) console.log(`${''.padStart(8)}  (${result.backlog} lines came as a late joiner's backlog, not counted as live)`)
    // The same run without its first seconds, while the watchers' connections were still coming in.
    const { settled } = result
    if (settled.latencies.length) {
      console.log(`${''.padStart(8)}  once all were connected (${(settled.after / 1000).toFixed(1)} s in): lines ${fmt(settled.latencies)}${withQuery ? `, other query ${fmt(settled.queryLatencies)}` : ''}`)
    }
  }
  for (const watchers of counts) {
    report(String(watchers), await run(watchers))
    if (process.env.BENCH_CEILING !== '0') {
      // The ceiling on this machine: the same watchers, the same client code, against one bare
      // graphql-ws broadcaster (no GraphQL, no database, no worker).
      const bare = await startBareBroadcaster(watchers)
      try {
        report('  bare', await run(watchers, bare), false)
      } finally {
        bare.stop()
      }
    }
  }
  console.log('\ngoals at 1,000 watchers: line p99 < 100 ms, 0 lost or repeated, RSS < 250 MB, other query p99 < 100 ms')
} finally {
  await worker.stop()
  await server.stop()
  await dropDatabase()
  rmSync(work, { recursive: true, force: true })
}
