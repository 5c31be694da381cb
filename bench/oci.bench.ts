/**
 * OCI registry serving, each figure next to nginx serving the same bytes as plain files in the
 * same run (one nginx worker, sendfile; once with an access log as flatdepot writes one, once
 * without):
 *   /index/static with flatpak's own query  ÷ nginx serving the same document as a file
 *   blob GETs (manifests, configs, layers of every image) ÷ nginx serving the same blob files
 * wrk: 1 thread, 32 connections, 8 s after a 3 s warm-up, cycling through the paths.
 * Not a test: it prints figures (see BENCHMARKS.md). Needs nginx and wrk (apt).
 *   npm run bench:oci        (BENCH_ENGINE=postgresql|pglite, default postgresql; BENCH_FIXTURE=small|large)
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { buildFixture } from '../test/support/fixture.ts'
import { graphql, waitFor } from '../test/support/server.ts'
import { signedRepoConfig } from '../test/support/config.ts'
import { startNginx, wrk as runWrk } from './nginx.ts'
import { startBenchServer } from './support.ts'

const exec = promisify(execFile)
const engine = process.env.BENCH_ENGINE ?? 'postgresql'
const work = mkdtempSync(path.join(tmpdir(), 'flatdepot-bench-oci-'))
const flatpakQuery = 'architecture=amd64&label%3Aorg.flatpak.ref%3Aexists=1&os=linux&tag=latest'

const wrk = (url: string, paths: string[]) => runWrk(work, url, paths, { args: ['-t', '1', '-c', '32'] })

const fixture = await buildFixture((process.env.BENCH_FIXTURE as 'small' | 'large' | undefined) ?? 'small')
const { server, drop: dropDatabase } = await startBenchServer({ engine, config: (port) => signedRepoConfig(fixture, port, { oci: {} }, 9) })
try {
  const token = await server.cli('token', 'create', '--repo', 'stable')
  const cli = fileURLToPath(new URL('../bin/flatdepot.mjs', import.meta.url))
  await exec(process.execPath, [cli, 'push', 'stable', fixture.repoV1, '--publish', '--wait-update', '--no-progress', '-q', '--url', server.url, '--token', token])
  const images = await waitFor('the OCI export', async () => {
    const { body } = await graphql(server.url, null, '{ repo(name: "stable") { ociImages { repository digest } } }')
    const found = body.data.repo.ociImages as { repository: string; digest: string }[]
    return found.length >= 2 ? found : undefined
  }, 180_000)

  // The same bytes for nginx: the index document as a file, the blobs linked under their registry paths.
  const root = path.join(work, 'nginx-root')
  mkdirSync(path.join(root, 'index'), { recursive: true })
  writeFileSync(path.join(root, 'probe'), 'ok')
  writeFileSync(path.join(root, 'index', 'static'), Buffer.from(await (await fetch(`${server.url}/index/static?${flatpakQuery}`)).arrayBuffer()))
  const blobPaths: string[] = []
  let blobBytes = 0
  for (const image of images) {
    const manifest = (await (await fetch(`${server.url}/v2/${image.repository}/manifests/${image.digest}`)).json()) as { config: { digest: string }; layers: { digest: string }[] }
    for (const digest of [image.digest, manifest.config.digest, ...manifest.layers.map((layer) => layer.digest)]) {
      const file = path.join(server.dataDir, 'oci', 'blobs', 'sha256', digest.slice(7))
      const link = path.join(root, 'v2', image.repository, 'blobs', digest)
      mkdirSync(path.dirname(link), { recursive: true })
      symlinkSync(file, link)
      blobPaths.push(`/v2/${image.repository}/blobs/${digest}`)
      blobBytes += statSync(file).size
    }
  }
  const indexPaths = [`/index/static?${flatpakQuery}`]
  const measure = async (accessLog: boolean) => {
    const nginx = await startNginx(work, root, { accessLog, probe: '/probe' })
    try {
      return { index: await wrk(nginx.url, indexPaths), blobs: await wrk(nginx.url, blobPaths) }
    } finally {
      nginx.stop()
    }
  }
  const nginxLogging = await measure(true)
  const nginxQuiet = await measure(false)
  const ours = { index: await wrk(server.url, indexPaths), blobs: await wrk(server.url, blobPaths) }

  console.log(`engine ${engine}; ${images.length} images, ${blobPaths.length} blobs, ${(blobBytes / 1024).toFixed(0)} KiB in all; index document ${statSync(path.join(root, 'index', 'static')).size} bytes\n`)
  const row = (label: string, mine: string, baseline: string, ratio: number | string) =>
    console.log(`${label.padEnd(42)} ${mine.padStart(14)} ${baseline.padStart(14)} ${(typeof ratio === 'number' ? ratio.toFixed(2) : ratio).padStart(7)}`)
  row('measure', 'flatdepot', 'nginx', 'ratio')
  row('/index/static GETs/s ÷ nginx, both logging', `${ours.index.rate.toFixed(0)}/s`, `${nginxLogging.index.rate.toFixed(0)}/s`, ours.index.rate / nginxLogging.index.rate)
  row('/index/static GETs/s ÷ nginx, log off', `${ours.index.rate.toFixed(0)}/s`, `${nginxQuiet.index.rate.toFixed(0)}/s`, ours.index.rate / nginxQuiet.index.rate)
  row('blob GETs/s ÷ nginx, both logging', `${ours.blobs.rate.toFixed(0)}/s`, `${nginxLogging.blobs.rate.toFixed(0)}/s`, ours.blobs.rate / nginxLogging.blobs.rate)
  row('blob GETs/s ÷ nginx, log off', `${ours.blobs.rate.toFixed(0)}/s`, `${nginxQuiet.blobs.rate.toFixed(0)}/s`, ours.blobs.rate / nginxQuiet.blobs.rate)
  row('blob MB/s ÷ nginx, both logging', `${ours.blobs.mbps.toFixed(1)} MB/s`, `${nginxLogging.blobs.mbps.toFixed(1)} MB/s`, ours.blobs.mbps / nginxLogging.blobs.mbps)
} finally {
  await server.stop()
  await dropDatabase()
  rmSync(work, { recursive: true, force: true })
}
