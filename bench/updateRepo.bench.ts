/**
 * The repo update on a large repo: flatdepot's update-repo job against `flatpak build-update-repo`
 * run by hand with the same flags, on a repo of BENCH_REFS small apps (5,000 by default; built
 * once by bench/make-many-apps.sh and kept in the temp directory).
 *
 * Each round publishes one new small app through the real pipeline (CLI push, commit, publish)
 * and takes the update-repo job that follows from the jobs table: its run (start → finish) and
 * its wait in the queue (queued → start). The baseline, in the same round: a hard-linked copy of
 * the served repo gets another new app by `flatpak build-export`, and `flatpak build-update-repo`
 * (same title, default branch, GPG key) is timed on it. Both therefore regenerate appstream and a
 * signed summary over the same refs plus one new app. Paired ratios per round; the median is the
 * figure (goal ≤ 1.05). Static deltas are off in the bench repo, so nothing runs beside either.
 *
 * Run: `npm run bench:update-repo` (BENCH_REFS=5000, BENCH_ROUNDS=5, BENCH_ENGINE=postgresql|pglite).
 */
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import pMap from 'p-map'
import { refHistory } from '../src/ostree/deltas.ts'
import { signedRepoConfig } from '../test/support/config.ts'
import { buildFixture } from '../test/support/fixture.ts'
import { graphql } from '../test/support/server.ts'
import { nowMs, startBenchServer } from './support.ts'

const exec = promisify(execFile)
const refs = Number(process.env.BENCH_REFS ?? 5000)
const rounds = Number(process.env.BENCH_ROUNDS ?? 5)
const engine = process.env.BENCH_ENGINE ?? 'postgresql'
const root = fileURLToPath(new URL('..', import.meta.url))
const bin = path.join(root, 'bin', 'flatdepot.mjs')

const fixture = await buildFixture('small')
const cached = path.join(tmpdir(), `flatdepot-bench-${refs}-apps`)
if (!existsSync(path.join(cached, 'config'))) {
  console.log(`making a repo of ${refs} apps in ${cached} (once; a few minutes)…`)
  const building = `${cached}.tmp-${process.pid}`
  const started = nowMs()
  await exec('bash', [path.join(root, 'bench', 'make-many-apps.sh'), building, String(refs)], { maxBuffer: 1 << 24 })
  renameSync(building, cached)
  console.log(`  made in ${((nowMs() - started) / 1000).toFixed(0)} s`)
}

// The delta job's planning reads every ref's recent history: from the commit objects now, against
// what it did before (an `ostree log` per ref, four at a time), on the same repo.
{
  const refList = (await exec('ostree', [`--repo=${cached}`, 'refs'], { maxBuffer: 1 << 26 })).stdout.split('\n').filter(Boolean)
  let started = nowMs()
  await pMap(refList, (ref) => exec('ostree', [`--repo=${cached}`, 'log', ref]), { concurrency: 4 })
  const spawned = (nowMs() - started) / 1000
  started = nowMs()
  await pMap(refList, (ref) => refHistory(cached, ref, 2), { concurrency: 4 })
  const read = (nowMs() - started) / 1000
  console.log(`delta planning, history of ${refList.length} refs: ostree log per ref ${spawned.toFixed(2)} s, commit objects ${read.toFixed(3)} s (${(spawned / read).toFixed(0)}× faster)`)
}

const work = mkdtempSync(path.join(tmpdir(), 'flatdepot-update-bench-'))
const dataDir = path.join(work, 'data')
mkdirSync(path.join(dataDir, 'repos'), { recursive: true })
// The served repo starts as a hard-linked copy of the cached one (objects are never changed in place).
await exec('cp', ['-al', cached, path.join(dataDir, 'repos', 'stable')])

/** A finalized build directory of one small app, exported into `repo` (an archive repo, made if missing). */
async function exportApp(repo: string, id: string): Promise<void> {
  const dir = mkdtempSync(path.join(work, 'app-'))
  mkdirSync(path.join(dir, 'files', 'bin'), { recursive: true })
  mkdirSync(path.join(dir, 'export'))
  writeFileSync(path.join(dir, 'files', 'bin', 'hello'), '#!/bin/sh\necho hello\n')
  chmodSync(path.join(dir, 'files', 'bin', 'hello'), 0o755)
  writeFileSync(path.join(dir, 'metadata'), `[Application]\nname=${id}\nruntime=org.test.Platform/${fixture.arch}/1.0\nsdk=org.test.Platform/${fixture.arch}/1.0\ncommand=hello\n`)
  if (!existsSync(path.join(repo, 'config'))) await exec('ostree', [`--repo=${repo}`, 'init', '--mode=archive-z2'])
  await exec('flatpak', ['build-export', '--disable-sandbox', '--disable-fsync', '--no-update-summary', repo, dir, 'stable'])
  rmSync(dir, { recursive: true, force: true })
}

const { server, drop } = await startBenchServer({
  engine,
  dataDir,
  // Static deltas off (apps' and appstream's): the delta job that follows each update would
  // otherwise run beside the baseline, and its planning reads every ref's history (see BENCHMARKS.md).
  config: (port) => signedRepoConfig(fixture, port, { title: 'Bench apps', 'default-branch': 'stable', deltas: [], 'appstream-delta-depth': 0 }),
})
const served = path.join(dataDir, 'repos', 'stable')

type Job = { id: number; kind: string; createdAt: string; startedAt: string; finishedAt: string }
const rows: { ours: number; wait: number; raw: number }[] = []
try {
  const token = await server.cli('token', 'create', '--name', 'bench', ...['build', 'upload', 'publish', 'jobs'].flatMap((scope) => ['--scope', scope]))
  const env = { ...process.env, FLATDEPOT_URL: server.url, FLATDEPOT_TOKEN: token }
  for (let round = 1; round <= rounds + 1; round++) {
    // Ours: a new app through the pipeline; the update-repo job after its publish.
    const tiny = path.join(work, `tiny-${round}`)
    await exportApp(tiny, `org.bench.New${round}`)
    const pushed = await exec(process.execPath, [bin, 'push', 'stable', tiny, '--publish', '--wait-deltas', '--json', '--no-progress'], { env, maxBuffer: 1 << 24 })
    const { buildId } = JSON.parse(pushed.stdout) as { buildId: number }
    const { body } = await graphql(server.url, token, '{ jobs(first: 20) { ... on QueryJobsConnection { edges { node { id kind buildId createdAt startedAt finishedAt } } } } }')
    const jobs = (body.data.jobs.edges as { node: Job & { buildId: number | null } }[]).map((edge) => edge.node)
    const publish = jobs.find((job) => job.kind === 'PUBLISH' && job.buildId === buildId)!
    const update = jobs.filter((job) => job.kind === 'UPDATE_REPO' && job.id > publish.id).sort((a, b) => a.id - b.id)[0]!
    const ours = (Date.parse(update.finishedAt) - Date.parse(update.startedAt)) / 1000
    const wait = (Date.parse(update.startedAt) - Date.parse(update.createdAt)) / 1000

    // Raw: the same repo (hard-linked), one more new app, build-update-repo by hand with the same flags.
    const copy = path.join(work, 'raw')
    rmSync(copy, { recursive: true, force: true })
    await exec('cp', ['-al', served, copy])
    // Files ostree rewrites in place must not be shared with the served repo.
    for (const file of ['config', 'summary', 'summary.sig']) {
      const target = path.join(copy, file)
      if (existsSync(target)) {
        cpSync(target, `${target}.own`)
        renameSync(`${target}.own`, target)
      }
    }
    await exportApp(copy, `org.bench.Raw${round}`)
    // The copy's directory entries are new: read them once, as the served repo's are (warm).
    await exec('find', [copy, '-printf', '%s\n'], { maxBuffer: 1 << 28 })
    const started = nowMs()
    await exec('flatpak', ['build-update-repo', '--title=Bench apps', '--default-branch=stable', `--gpg-sign=${fixture.keyId}`, `--gpg-homedir=${fixture.gnupghome}`, copy], { maxBuffer: 1 << 24 })
    const raw = (nowMs() - started) / 1000
    if (round === 1) {
      console.log(`warm-up round: ours ${ours.toFixed(2)} s (waited ${wait.toFixed(3)} s), raw ${raw.toFixed(2)} s`)
      continue
    }
    rows.push({ ours, wait, raw })
    console.log(`round ${round - 1}: ours ${ours.toFixed(2)} s (waited ${wait.toFixed(3)} s), raw ${raw.toFixed(2)} s, ratio ${(ours / raw).toFixed(3)}`)
  }
} finally {
  await server.stop()
  await drop()
  rmSync(work, { recursive: true, force: true })
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const ratios = rows.map((row) => row.ours / row.raw)
console.log(`\n${engine}, a repo of ${refs} apps (+1 new per round), ${rows.length} paired rounds after a warm-up:`)
console.log(`update-repo job run     median ${median(rows.map((row) => row.ours)).toFixed(2)} s   (queue wait median ${median(rows.map((row) => row.wait)).toFixed(3)} s)`)
console.log(`flatpak build-update-repo median ${median(rows.map((row) => row.raw)).toFixed(2)} s`)
console.log(`ours ÷ raw: median ${median(ratios).toFixed(3)}, range ${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}`)
