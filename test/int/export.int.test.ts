import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, describe, it } from 'node:test'
import { exportRepo } from '../../src/storage/export.ts'

const exec = promisify(execFile)
const ostree = async (repo: string, ...args: string[]) => (await exec('ostree', [`--repo=${repo}`, ...args])).stdout.trim()
const objectFile = (root: string, checksum: string, suffix: string) => path.join(root, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.${suffix}`)

describe('the export for downstream mirrors, on a real repo', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flatdepot-export-'))
  const repo = path.join(dir, 'repo')
  const target = path.join(dir, 'export')
  after(() => rmSync(dir, { recursive: true, force: true }))

  const commit = async (name: string) => {
    const tree = path.join(dir, name)
    mkdirSync(tree)
    writeFileSync(path.join(tree, name), randomBytes(5000))
    const made = await ostree(repo, 'commit', '--branch=app/org.example.App/x86_64/stable', `--tree=dir=${tree}`)
    await ostree(repo, 'summary', '-u')
    return made
  }

  it('links content first, then switches one set whose summary matches the repo\'s; what left the repo and old sets go only after the grace period', async () => {
    await ostree(repo, 'init', '--mode=archive-z2')
    const first = await commit('one')
    const t0 = Date.now()
    const one = await exportRepo(repo, target, 1000, t0)
    assert.ok(one.linked > 0)
    assert.equal(readlinkSync(path.join(target, 'summary')), 'current/summary')
    assert.equal(readlinkSync(path.join(target, 'current')), `~sets/${one.generation}`)
    assert.deepEqual(readFileSync(path.join(target, 'summary')), readFileSync(path.join(repo, 'summary')))
    assert.equal(statSync(objectFile(target, first, 'commit')).ino, statSync(objectFile(repo, first, 'commit')).ino, 'a hard link, not a copy')
    assert.ok(existsSync(path.join(target, 'refs', 'heads', 'app', 'org.example.App', 'x86_64', 'stable')))

    // A new commit, the old one pruned from the repo: the export keeps it through the grace period.
    await commit('two')
    await ostree(repo, 'prune', '--refs-only', '--depth=0')
    await ostree(repo, 'summary', '-u')
    const two = await exportRepo(repo, target, 1000, t0 + 10)
    assert.equal(readlinkSync(path.join(target, 'current')), `~sets/${two.generation}`)
    assert.ok(existsSync(objectFile(target, first, 'commit')), 'still there for clients holding the old summary')
    assert.ok(existsSync(path.join(target, '~sets', one.generation)), 'the previous set stays')
    assert.equal(two.removed, 0)

    const three = await exportRepo(repo, target, 1000, t0 + 5000)
    assert.ok(three.removed > 0)
    assert.ok(!existsSync(objectFile(target, first, 'commit')), 'gone after the grace period')
    assert.deepEqual(readdirSync(path.join(target, '~sets')).sort(), [two.generation, three.generation].sort(), 'sets older than the grace period, other than the previous, are gone')
    await ostree(repo, 'fsck')
  })
})
