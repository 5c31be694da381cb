// Runs `prisma generate` without the native schema engine: every Prisma 7 CLI command first tries
// to download that binary, which cannot be fetched here. Pointing PRISMA_SCHEMA_ENGINE_BINARY at a
// stub skips the download; generate itself only needs the bundled WASM.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const stub = path.join(root, 'tools', 'no-schema-engine')
execFileSync(process.execPath, [path.join(root, 'node_modules', 'prisma', 'build', 'index.js'), 'generate'], {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...process.env,
    PATH: `${path.join(root, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH ?? ''}`,
    PRISMA_SCHEMA_ENGINE_BINARY: stub,
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
  },
})
