import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

export type Fixture = {
  dir: string
  arch: string
  gnupghome: string
  keyId: string
  keyFile: string
  repoV1: string
  repoV2: string
  runtime: { id: string; ref: string; commit: string }
  app: { id: string; ref: string; v1: string; v2: string; v1Output: string; v2Output: string }
  /** A second app on the same runtime, alone in its repo. */
  paid: { id: string; ref: string; repo: string }
}

const script = fileURLToPath(new URL('../fixtures/make-fixture.sh', import.meta.url))

/** Builds (once per machine, then reused) the real signed runtime + app with test/fixtures/make-fixture.sh. */
export async function buildFixture(size: 'small' | 'large' = 'small'): Promise<Fixture> {
  const dir = process.env.FLATDEPOT_FIXTURE_DIR ?? path.join(tmpdir(), `flatdepot-fixture-${size}`)
  await promisify(execFile)('bash', [script, dir], { env: { ...process.env, SIZE: size, REUSE: '1' }, maxBuffer: 16 << 20 })
  return JSON.parse(readFileSync(path.join(dir, 'fixture.json'), 'utf8')) as Fixture
}
