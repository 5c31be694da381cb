import { execa } from 'execa'
import { buildFixture } from '/work/main/test/support/fixture.ts'
import { createPostgresDatabase } from '/work/main/test/support/databases.ts'
import { startServer } from '/work/main/test/support/server.ts'
import { signedRepoConfig } from '/work/main/test/support/config.ts'
const fixture = await buildFixture('large')
const { url, drop } = await createPostgresDatabase()
const server = await startServer({ databaseUrl: url, collectLogs: false, env: { MALLOC_ARENA_MAX: '1' }, nodeArgs: ['--max-semi-space-size=2'], config: (port) => signedRepoConfig(fixture, port, { title: 'bench' }, 9) })
try {
  const token = await server.cli('token', 'create', '--repo', 'stable')
  for (let i = 0; i < 4; i++) {
    const t = performance.now()
    const r = await execa(process.execPath, ['/work/main/bin/flatdepot.mjs', 'push', 'stable', fixture.repoV1, fixture.runtime.ref, fixture.app.ref, '--no-progress'], { env: { FLATDEPOT_URL: server.url, FLATDEPOT_TOKEN: token } })
    console.log(r.stderr.split('\n').filter((l) => l.startsWith('T ')).join(' | '), `| total ${(performance.now() - t).toFixed(0)} ms`)
  }
} finally { await server.stop(); await drop() }
