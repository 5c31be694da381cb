#!/usr/bin/env node
// flatdepot runs its TypeScript sources: no build step between a clone and a running server.
// For speed and memory, the sources are bundled once (esbuild, ~0.1 s) into .build/<key>/, where
// the key is derived from every source file's path, size and mtime: an edited file means a new
// bundle on the next start, and a running process keeps its own. When bundling is not possible
// (read-only checkout, no esbuild), tsx runs the sources directly.
// More threads for file system work (uploads stage thousands of small files); must be set before
// libuv's pool first runs, which is why it is here.
process.env.UV_THREADPOOL_SIZE ??= '16'

import { createHash } from 'node:crypto'
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const entry = path.join(root, 'src', 'cli', 'main.ts')

function sourceKey() {
  const hash = createHash('sha256')
  const walk = (dir) => {
    for (const item of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, item.name)
      if (item.isDirectory()) walk(full)
      else if (/\.(ts|mjs|js|json)$/.test(item.name)) {
        const info = statSync(full)
        hash.update(`${full}\0${info.size}\0${info.mtimeMs}\n`)
      }
    }
  }
  for (const dir of ['src', 'workers']) walk(path.join(root, dir))
  hash.update(statSync(path.join(root, 'package-lock.json')).mtimeMs.toString())
  return hash.digest('hex').slice(0, 16)
}

async function bundled() {
  if (process.env.FLATDEPOT_NO_BUNDLE) return null
  try {
    const base = path.join(root, '.build')
    const dir = path.join(base, sourceKey())
    const main = path.join(dir, 'main.js')
    if (!existsSync(main)) {
      const { build } = await import('esbuild')
      const temp = `${dir}.tmp-${process.pid}`
      // Splitting keeps lazy imports lazy: a CLI command never loads the server's modules.
      await build({
        entryPoints: [entry],
        bundle: true,
        splitting: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        packages: 'external',
        sourcemap: true,
        outdir: temp,
        logLevel: 'error',
      })
      try {
        renameSync(temp, dir)
      } catch {
        rmSync(temp, { recursive: true, force: true }) // another process got there first
      }
      // Bundles of older sources, once no process could still be starting from them.
      for (const old of readdirSync(base)) {
        const full = path.join(base, old)
        if (full !== dir && Date.now() - statSync(full).mtimeMs > 3600_000) rmSync(full, { recursive: true, force: true })
      }
    }
    return main
  } catch {
    return null
  }
}

const main = await bundled()
if (main) {
  process.setSourceMapsEnabled(true)
  await import(pathToFileURL(main).href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import(pathToFileURL(entry).href)
}
