import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { commitOfFile, flatpakInt32 } from '../../src/storage/commitAccess.ts'
import { deltaRelativeDir } from '../../src/storage/deltas.ts'

const from = 'f'.repeat(63) + '0'
const to = '3f'.repeat(32)

describe('which files a download token gates', () => {
  it('gates a commit object, its detached metadata, and every file of a delta to it (from scratch or from another commit)', () => {
    assert.equal(commitOfFile(`objects/${to.slice(0, 2)}/${to.slice(2)}.commit`), to)
    assert.equal(commitOfFile(`objects/${to.slice(0, 2)}/${to.slice(2)}.commitmeta`), to)
    assert.equal(commitOfFile(`${deltaRelativeDir({ from: null, to })}/superblock`), to)
    assert.equal(commitOfFile(`${deltaRelativeDir({ from, to })}/superblock`), to)
    assert.equal(commitOfFile(`${deltaRelativeDir({ from, to })}/0`), to)
  })
  it('leaves content-addressed objects and the repo\'s own files alone', () => {
    for (const file of [`objects/${to.slice(0, 2)}/${to.slice(2)}.dirtree`, `objects/${to.slice(0, 2)}/${to.slice(2)}.filez`, 'summary', 'summary.sig', 'config', 'refs/heads/app/x', `delta-indexes/${to.slice(0, 2)}/x.index`]) {
      assert.equal(commitOfFile(file), null, file)
    }
  })
  it('reads xa.token-type as flatpak does: `ostree show` prints type 2 as 33554432', () => {
    assert.equal(flatpakInt32(33554432), 2)
    assert.equal(flatpakInt32(0), 0)
    assert.equal(flatpakInt32(16777216), 1)
  })
})
