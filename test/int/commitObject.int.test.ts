import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { refHistory } from '../../src/ostree/deltas.ts'
import { buildFixture, type Fixture } from '../support/fixture.ts'

const exec = promisify(execFile)

/** What `ostree log` says: the commits of a ref's history the repo holds, newest first. */
async function ostreeLog(repo: string, ref: string): Promise<string[]> {
  const { stdout } = await exec('ostree', [`--repo=${repo}`, 'log', ref])
  return [...stdout.matchAll(/^commit ([0-9a-f]{64})$/gm)].map((match) => match[1]!)
}

describe('a ref history read from commit objects agrees with `ostree log`', () => {
  let fixture: Fixture
  let work: string
  before(async () => {
    fixture = await buildFixture('small')
    work = mkdtempSync(path.join(tmpdir(), 'flatdepot-commits-'))
  })
  after(() => rmSync(work, { recursive: true, force: true }))

  it('on flatpak-built app and runtime commits (v2 on top of v1)', async () => {
    for (const ref of [fixture.app.ref, fixture.runtime.ref]) {
      assert.deepEqual(await refHistory(fixture.repoV2, ref, 10), await ostreeLog(fixture.repoV2, ref), ref)
    }
    assert.deepEqual(await refHistory(fixture.repoV2, fixture.app.ref, 1), [fixture.app.v2])
    assert.deepEqual(await refHistory(fixture.repoV2, fixture.app.ref, 2), [fixture.app.v2, fixture.app.v1])
  })

  it('on a long chain, commits of every offset width, and a history cut short by a missing parent', async () => {
    const repo = path.join(work, 'repo')
    const tree = path.join(work, 'tree')
    mkdirSync(tree)
    writeFileSync(path.join(tree, 'file'), 'content')
    await exec('ostree', [`--repo=${repo}`, 'init', '--mode=archive-z2'])
    // Subjects of every size: objects under 256 bytes (1-byte offsets), under 64 KiB (2) and over (4).
    const subjects = ['a', 'b'.repeat(300), 'c'.repeat(70_000), 'd', 'e'.repeat(1000)]
    for (const subject of subjects) {
      await exec('ostree', [`--repo=${repo}`, 'commit', '--branch=chain', `--tree=dir=${tree}`, `--subject=${subject}`, '--no-xattrs'], { maxBuffer: 1 << 24 })
    }
    const full = await ostreeLog(repo, 'chain')
    assert.equal(full.length, subjects.length)
    assert.deepEqual(await refHistory(repo, 'chain', 100), full)
    assert.deepEqual(await refHistory(repo, 'chain', 3), full.slice(0, 3))
    // A pruned ancestor: the history stops where the repo's objects stop, as ostree log's does.
    const gone = full[2]!
    rmSync(path.join(repo, 'objects', gone.slice(0, 2), `${gone.slice(2)}.commit`))
    assert.deepEqual(await refHistory(repo, 'chain', 100), full.slice(0, 2))
    assert.deepEqual(await ostreeLog(repo, 'chain'), full.slice(0, 2))
  })
})
