import { spawn } from 'node:child_process'
import { chmodSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import pg from 'pg'
import { createPostgresDatabase } from '../test/support/databases.ts'
import type { Fixture } from '../test/support/fixture.ts'
import { graphql, startServer, waitFor } from '../test/support/server.ts'
import { uploadMissing } from '../test/support/upload.ts'

/** What the benchmarks share: clocks, percentiles, the stamped check hook, a server run as `npm start` runs it. */
export const nowMs = () => performance.timeOrigin + performance.now()

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

/** The baseline for anything woken by NOTIFY: a bare pg_notify from one connection to a LISTENing one, `count` times (ms each). */
export async function notifyLatencies(url: string, count: number): Promise<number[]> {
  const listener = new pg.Client({ connectionString: url })
  const notifier = new pg.Client({ connectionString: url })
  await Promise.all([listener.connect(), notifier.connect()])
  await listener.query('LISTEN bench_latency')
  const latencies: number[] = []
  for (let i = 0; i < count; i++) {
    const arrived = new Promise<number>((resolve) => listener.once('notification', (message) => resolve(nowMs() - Number(message.payload))))
    await notifier.query('SELECT pg_notify($1, $2)', ['bench_latency', String(nowMs())])
    latencies.push(await arrived)
  }
  await Promise.all([listener.end(), notifier.end()])
  return latencies
}

/** A check hook printing `lines` lines, each stamped with the time it was printed (µs), `intervalSecs` apart, after `pauseSecs`. */
export function stampedHook(work: string, options: { lines: number; intervalSecs: number; pauseSecs?: number; /** Waits until this file exists before printing. */ barrier?: string }): string {
  const hook = path.join(work, 'check.sh')
  // bash, so that a line costs no process: $EPOCHREALTIME is the stamp (no `date`), and a read
  // with a timeout on a pipe nobody writes to is the pause (no `sleep`). With `date` and `sleep`
  // forked per line, 100 hooks forked 4,000 times a second, and that load, not flatdepot, set the
  // lines' lag when 100 jobs printed at once. The barrier is looked for twice a second; each line's
  // latency is measured from its own stamp, so the start's spread does not count.
  const nap = (secs: number) => `read -t ${secs} -u $nap`
  const pause = (options.barrier ? `while [ ! -e ${options.barrier} ]; do ${nap(0.5)}; done\n` : '') + (options.pauseSecs ? `${nap(options.pauseSecs)}\n` : '')
  writeFileSync(
    hook,
    `#!/bin/bash\nexec {nap}<> <(:)\n${pause}for ((i = 1; i <= ${options.lines}; i++)); do echo "line $i \${EPOCHREALTIME/./}"; ${nap(options.intervalSecs)}; done\n`,
  )
  chmodSync(hook, 0o755)
  return hook
}

/** The hook's stdout read line by line by this process: the floor (shell, fork, pipes), as each line's latency. */
export async function readHookDirectly(hook: string): Promise<number[]> {
  const child = spawn(hook, [], { stdio: ['ignore', 'pipe', 'inherit'] })
  const latencies: number[] = []
  for await (const line of createInterface({ input: child.stdout })) {
    const match = /^line \d+ (\d+)$/.exec(line)
    if (match) latencies.push(nowMs() - Number(match[1]) / 1000)
  }
  return latencies
}

/**
 * A server as `npm start` runs it (one malloc arena, a 2 MB young generation unless
 * `semiSpaceMb` says otherwise), on a scratch PostgreSQL database or the embedded one; `drop`
 * removes the database afterwards.
 */
export async function startBenchServer(options: {
  engine: string
  config: (port: number) => Record<string, unknown>
  args?: string[]
  semiSpaceMb?: number
  nodeArgs?: string[]
  keepDataDir?: boolean
  /** An existing data directory (with what the config points at already in it). */
  dataDir?: string
}) {
  let drop = async () => {}
  let databaseUrl: string | null = null
  if (options.engine === 'postgresql') ({ url: databaseUrl, drop } = await createPostgresDatabase())
  const server = await startServer({
    databaseUrl,
    collectLogs: false,
    env: { MALLOC_ARENA_MAX: '1' },
    nodeArgs: [`--max-semi-space-size=${options.semiSpaceMb ?? 2}`, ...(options.nodeArgs ?? [])],
    config: options.config,
    ...(options.args ? { args: options.args } : {}),
    ...(options.keepDataDir ? { keepDataDir: true } : {}),
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
  })
  return { server, drop }
}

/** Uploads the fixture's v1 into a new build, commits it, and returns the id of its (first) check job once queued. */
export async function startCheckJob(serverUrl: string, token: string, fixture: Fixture, timeoutMs?: number): Promise<number> {
  const { body } = await graphql(serverUrl, token, 'mutation { createBuild(input: { repo: "stable" }) { ... on Build { id } } }')
  const id = body.data.createBuild.id as number
  await uploadMissing(serverUrl, token, id, fixture.repoV1)
  for (const [ref, commit] of Object.entries({ [fixture.runtime.ref]: fixture.runtime.commit, [fixture.app.ref]: fixture.app.v1 })) {
    await graphql(serverUrl, token, `mutation { createBuildRef(buildId: ${id}, refName: "${ref}", commit: "${commit}") { __typename } }`)
  }
  await graphql(serverUrl, token, `mutation { commitBuild(buildId: ${id}) { __typename } }`)
  return waitFor(
    'the check job',
    async () => {
      const { body: build } = await graphql(serverUrl, token, `{ build(id: ${id}) { ... on Build { checks { jobId } } } }`)
      return build.data.build.checks[0]?.jobId as number | undefined
    },
    timeoutMs,
  )
}
