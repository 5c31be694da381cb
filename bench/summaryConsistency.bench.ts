/**
 * Summary consistency under load (issue 11): two bots publish into one repo, one after another
 * and two at once, while clients fetch the summary and its signature in the four orders real
 * clients use, each pair on one keep-alive connection:
 *   summary.sig → summary          (libostree 2022.7: signature first)
 *   summary → summary.sig          (mirrors, older clients)
 *   summary.idx → summary.idx.sig
 *   summary.idx → summaries/<sha256 of summary.idx>.idx.sig   (flatpak 1.14)
 * against flatdepot and, as the baseline, against nginx serving the same repo directory. Every
 * distinct pair is verified with libostree (OSTree.Repo.verify_summary through python-gi, with
 * the repo's public key); a mismatch is a pair that does not verify. Then the real `ostree remote
 * summary` (libcurl, GPG-verified) runs in a loop against both while publishes go on.
 *
 * Not a test: it prints figures (see RELIABILITY.md). Needs nginx and gir1.2-ostree-1.0 (apt).
 *   npm run bench:summary       (BENCH_PAIRS=10000 per order and target while publishing, BENCH_PUBLISHES=24 at least)
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { signedRepoConfig } from '../test/support/config.ts'
import { buildFixture } from '../test/support/fixture.ts'
import { startServer } from '../test/support/server.ts'
import { startNginx } from './nginx.ts'

const exec = promisify(execFile)
const pairsPerOrder = Number(process.env.BENCH_PAIRS ?? 10_000)
const publishes = Number(process.env.BENCH_PUBLISHES ?? 24)
const clientsPerTarget = 4
const work = mkdtempSync(path.join(tmpdir(), 'flatdepot-summary-bench-'))
const bin = fileURLToPath(new URL('../bin/flatdepot.mjs', import.meta.url))

const fixture = await buildFixture('small')
const server = await startServer({ config: (port) => signedRepoConfig(fixture, port, { deltas: [] }), collectLogs: false })
const token = await server.cli('token', 'create', '--name', 'bench', '--repo', 'stable')
const repoDir = path.join(server.dataDir, 'repos/stable')
const push = () => exec(process.execPath, [bin, 'push', 'stable', fixture.repoV1, '--publish', '--wait-update', '-q'], { env: { ...process.env, FLATDEPOT_URL: server.url, FLATDEPOT_TOKEN: token } })
await push()
const nginx = await startNginx(work, repoDir)
const targets = { flatdepot: `${server.url}/repo/stable`, nginx: nginx.url }

type Order = 'sig→summary' | 'summary→sig' | 'idx→idx.sig' | 'idx→summaries/idx.sig'
const orders: Order[] = ['sig→summary', 'summary→sig', 'idx→idx.sig', 'idx→summaries/idx.sig']
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
/** Each order: the file fetched first, the second (it may depend on the first), and which one is the signature. */
const plans: Record<Order, { first: string; second: (first: Buffer) => string; signatureFirst: boolean }> = {
  'sig→summary': { first: 'summary.sig', second: () => 'summary', signatureFirst: true },
  'summary→sig': { first: 'summary', second: () => 'summary.sig', signatureFirst: false },
  'idx→idx.sig': { first: 'summary.idx', second: () => 'summary.idx.sig', signatureFirst: false },
  'idx→summaries/idx.sig': { first: 'summary.idx', second: (idx) => `summaries/${sha(idx)}.idx.sig`, signatureFirst: false },
}
const blobs = new Map<string, string>()
const keep = (bytes: Buffer) => {
  const digest = sha(bytes)
  if (!blobs.has(digest)) {
    const file = path.join(work, 'blobs', digest)
    mkdirSync(path.dirname(file), { recursive: true })
    writeFileSync(file, bytes)
    blobs.set(digest, file)
  }
  return digest
}

/** One client: one keep-alive connection, its requests one after another. */
function client(base: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const get = (relative: string) =>
    new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      http
        .get(`${base}/${relative}`, { agent }, (res) => {
          const chunks: Buffer[] = []
          res.on('data', (chunk: Buffer) => chunks.push(chunk))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
          res.on('error', reject)
        })
        .on('error', reject)
    })
  return {
    /** The pair as (signed data, signature), whatever order it was fetched in; what was missing otherwise. */
    async fetch(order: Order): Promise<{ data: string; signature: string } | { missing: string }> {
      const plan = plans[order]
      const first = await get(plan.first)
      const secondName = plan.second(first.body)
      const second = await get(secondName)
      const [data, signature] = plan.signatureFirst ? [second, first] : [first, second]
      if (data.status !== 200) return { missing: plan.signatureFirst ? secondName : plan.first }
      if (signature.status !== 200) return { missing: plan.signatureFirst ? plan.first : secondName.replace(/[0-9a-f]{64}/, '<sha256>') }
      return { data: keep(data.body), signature: keep(signature.body) }
    },
    close: () => agent.destroy(),
  }
}

type Tally = Map<string, number>
const tallies = new Map<string, Tally>()
const missing = new Map<string, number>()
const duringPublishes = new Map<string, number>()
const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1)

let publishing = true
const started = performance.now()
// Two bots: publishes one after another, and every third round two at once.
let fetchersDone = 0
let publishCount = 0
const targetCount = 2
const bots = (async () => {
  // At least `publishes`, and on until every client has its pairs fetched while publishes ran.
  for (let round = 0; round < publishes || fetchersDone < targetCount * clientsPerTarget; ) {
    if (round % 3 === 2 && round + 1 < publishes) {
      await Promise.all([push(), push()])
      round += 2
    } else {
      await push()
      round += 1
    }
    publishCount = round
  }
  publishing = false
})()

const fetchers = Object.entries(targets).flatMap(([target, base]) =>
  Array.from({ length: clientsPerTarget }, async (_, index) => {
    const c = client(base)
    const goal = Math.ceil(pairsPerOrder / clientsPerTarget)
    // Pairs count only while publishes run: a client goes on until it has its share of those.
    let during = 0
    for (let i = 0; during < goal; i++) {
      if (publishing) during++
      for (const order of orders) {
        const result = await c.fetch(order)
        const key = `${target} ${order}`
        if (publishing) count(duringPublishes, key)
        if ('missing' in result) count(missing, `${key}: ${result.missing}`)
        else {
          let tally = tallies.get(key)
          if (!tally) tallies.set(key, (tally = new Map()))
          count(tally, `${result.data} ${result.signature}`)
        }
      }
      if (index === 0 && i % 500 === 0) process.stderr.write(`${target}: ${during} rounds while publishing\n`)
    }
    fetchersDone++
    c.close()
  }),
)

// The real client meanwhile: `ostree remote summary`, GPG-verified, against both.
const ostreeRuns = { flatdepot: { runs: 0, failed: 0, errors: new Map<string, number>() }, nginx: { runs: 0, failed: 0, errors: new Map<string, number>() } }
const ostreeLoop = Promise.all(
  Object.entries(targets).map(async ([target, base]) => {
    const repo = path.join(work, `ostree-client-${target}`)
    await exec('ostree', [`--repo=${repo}`, 'init', '--mode=bare-user-only'])
    await exec('ostree', [`--repo=${repo}`, 'remote', 'add', '--set=gpg-verify-summary=true', `--gpg-import=${fixture.keyFile}`, 'r', base])
    const tally = ostreeRuns[target as keyof typeof ostreeRuns]
    while (publishing) {
      tally.runs++
      await exec('ostree', [`--repo=${repo}`, 'remote', 'summary', 'r']).catch((error: { stderr?: string }) => {
        tally.failed++
        count(tally.errors, (error.stderr ?? '').trim().split('\n').at(-1)?.slice(0, 120) ?? 'unknown')
      })
    }
  }),
)

await Promise.all([bots, ...fetchers, ostreeLoop])
const seconds = (performance.now() - started) / 1000

// Every distinct (data, signature) pair, verified once by libostree.
const distinct = [...new Set([...tallies.values()].flatMap((tally) => [...tally.keys()]))]
const pairsFile = path.join(work, 'pairs.json')
writeFileSync(pairsFile, JSON.stringify(distinct.map((key) => key.split(' ').map((digest) => blobs.get(digest)))))
const verifier = path.join(work, 'verify.py')
writeFileSync(
  verifier,
  `import json, sys, gi
gi.require_version('OSTree', '1.0')
from gi.repository import OSTree, Gio, GLib
repo = OSTree.Repo.new(Gio.File.new_for_path(sys.argv[1]))
repo.create(OSTree.RepoMode.ARCHIVE, None)
repo.remote_add('r', 'http://unused.invalid', GLib.Variant('a{sv}', {'gpg-verify-summary': GLib.Variant('b', True)}), None)
repo.remote_gpg_import('r', Gio.File.new_for_path(sys.argv[2]).read(None), None, None)
out = []
for data, sig in json.load(open(sys.argv[3])):
    try:
        result = repo.verify_summary('r', GLib.Bytes(open(data, 'rb').read()), GLib.Bytes(open(sig, 'rb').read()), None)
        out.append(OSTree.GpgVerifyResult.require_valid_signature(result))
    except GLib.Error as error:
        out.append(False)
print(json.dumps(out))
`,
)
const { stdout } = await exec('/usr/bin/python3', [verifier, path.join(work, 'verify-repo'), fixture.keyFile, pairsFile], { maxBuffer: 64 << 20 })
const valid = new Map(distinct.map((key, index) => [key, (JSON.parse(stdout) as boolean[])[index]!]))

console.log(`\nsummary consistency: ${publishCount} publishes (two at once every third round), ${clientsPerTarget} clients per target, ${seconds.toFixed(0)} s, ${distinct.length} distinct pairs verified by libostree\n`)
console.log('| target | order | pairs | of them while publishing | mismatched |')
console.log('|---|---|---:|---:|---:|')
for (const target of Object.keys(targets)) {
  for (const order of orders) {
    const tally = tallies.get(`${target} ${order}`) ?? new Map<string, number>()
    let total = 0
    let bad = 0
    for (const [key, n] of tally) {
      total += n
      if (!valid.get(key)) bad += n
    }
    console.log(`| ${target} | ${order} | ${total} | ${duringPublishes.get(`${target} ${order}`) ?? 0} | ${bad} |`)
  }
}
if (missing.size) console.log(`\nfiles missing when asked for: ${JSON.stringify(Object.fromEntries(missing))}`)
console.log('\n| target | `ostree remote summary` runs | failed |')
console.log('|---|---:|---:|')
for (const [target, tally] of Object.entries(ostreeRuns)) console.log(`| ${target} | ${tally.runs} | ${tally.failed}${tally.errors.size ? ` (${[...tally.errors].map(([e, n]) => `${n}× ${e}`).join('; ')})` : ''} |`)

nginx.stop()
await server.stop()
