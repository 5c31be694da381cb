import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import { parseConfig } from '../../src/config/config.ts'
import { deltaDepth, deltaName, globMatches, parseDeltaName, planDeltas, wantedDeltas, type DeltaRule } from '../../src/domain/repo/deltas.ts'
import { deltaRelativeDir, retireDelta, retiredDeltasDir } from '../../src/storage/deltas.ts'

const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((digit) => digit.repeat(64)) as [string, string, string, string]

describe('static delta policy (flat-manager planning)', () => {
  const rules: DeltaRule[] = [
    { id: ['org.example.Big'], arch: ['aarch64'], depth: 4 },
    { id: ['org.example.*'], arch: [], depth: 3 },
    { id: ['*.Platform'], arch: ['x86_*'], depth: 2 },
  ]

  for (const [ref, depth] of [
    ['ostree-metadata', 0],
    ['appstream/x86_64', 1],
    ['appstream2/x86_64', 5],
    ['app/org.example.Big/aarch64/stable', 4],
    ['app/org.example.Big/x86_64/stable', 3], // the first rule names another arch: the second matches
    ['app/org.example.Small/x86_64/stable', 3],
    ['runtime/org.other.Platform/x86_64/1.0', 2],
    ['runtime/org.other.Platform/aarch64/1.0', 0],
    ['app/org.other.App/x86_64/stable', 0],
    ['screenshots/x86_64', 0],
    ['app/org.example.Small/x86_64', 0], // not four parts
  ] as const) {
    it(`${ref} gets depth ${depth}`, () => assert.equal(deltaDepth(ref, rules, 5), depth))
  }

  it('matches `*` against one or more characters, everything else literally', () => {
    assert.ok(globMatches('org.*', 'org.x'))
    assert.ok(!globMatches('org.*', 'org.'))
    assert.ok(!globMatches('org.*', 'orgXx'), 'a dot is literal')
    assert.ok(globMatches('*', 'anything'))
    assert.ok(!globMatches('org.example.App', 'org.example.App.Locale'))
  })

  it('wants from scratch, then from each held ancestor, depth deltas in all', () => {
    assert.deepEqual(wantedDeltas([d, c, b, a], 3), [{ from: null, to: d }, { from: c, to: d }, { from: b, to: d }])
    assert.deepEqual(wantedDeltas([d], 3), [{ from: null, to: d }], 'no parent held: only from scratch')
    assert.deepEqual(wantedDeltas([d, c], 1), [{ from: null, to: d }])
    assert.deepEqual(wantedDeltas([d, c], 0), [])
  })

  it('generates what is missing and retires what is no longer wanted', () => {
    const existing = [{ from: null, to: c }, { from: b, to: c }, { from: null, to: d }]
    const wanted = [{ from: null, to: d }, { from: c, to: d }, { from: c, to: d }]
    const plan = planDeltas(wanted, existing)
    assert.deepEqual(plan.missing, [{ from: c, to: d }], 'wanted twice (two refs, one commit): generated once')
    assert.deepEqual(plan.unwanted, [{ from: null, to: c }, { from: b, to: c }])
  })

  it('reads and writes ostree delta names', () => {
    assert.deepEqual(parseDeltaName(`${a}-${b}`), { from: a, to: b })
    assert.deepEqual(parseDeltaName(b), { from: null, to: b })
    assert.equal(parseDeltaName('(No static deltas)'), null)
    assert.equal(parseDeltaName(`${a}-${b}-${c}`), null)
    assert.equal(deltaName({ from: a, to: b }), `${a}-${b}`)
  })

  it('finds a delta where ostree stores it (modified base64, `_` for `/`)', () => {
    // Names ostree itself wrote for these commits (static-delta generate in the small fixture).
    const v1 = 'a77a0009a21fc408f3bd698ef39acf49dd04d07a51ba9917354673c237f5dc37'
    const v2 = '68eb4d593770da83e758003d2c2081c6683b491d43dd6f87f760ddd5da424735'
    assert.equal(deltaRelativeDir({ from: null, to: v2 }), 'deltas/aO/tNWTdw2oPnWAA9LCCBxmg7SR1D3W+H92Dd1dpCRzU')
    assert.equal(deltaRelativeDir({ from: v1, to: v2 }), 'deltas/p3/oACaIfxAjzvWmO85rPSd0E0HpRupkXNUZzwjf13Dc-aOtNWTdw2oPnWAA9LCCBxmg7SR1D3W+H92Dd1dpCRzU')
    assert.ok(deltaRelativeDir({ from: null, to: 'ff'.repeat(32) }).includes('_'), 'a `/` in base64 becomes `_`')
  })

  it('gives apps and runtimes depth 2 when the config has no `deltas`, none with `[]`', () => {
    const base = { secret: Buffer.alloc(32, 7).toString('base64'), 'build-repo-base': 'b' }
    const absent = parseConfig({ ...base, repos: { stable: { path: 'r' } } }, '/c.json').repos.get('stable')!
    assert.equal(deltaDepth('app/org.x.App/x86_64/stable', absent.deltas, 5), 2)
    const off = parseConfig({ ...base, repos: { stable: { path: 'r', deltas: [] } } }, '/c.json').repos.get('stable')!
    assert.equal(deltaDepth('app/org.x.App/x86_64/stable', off.deltas, 5), 0)
  })

  it('retires a delta aside once; retiring it again (a re-run after a crash) keeps the copy clients may still fetch', async () => {
    const repo = mkdtempSync(path.join(tmpdir(), 'flatdepot-deltas-'))
    try {
      const delta = { from: null, to: b }
      const dir = path.join(repo, deltaRelativeDir(delta))
      mkdirSync(dir, { recursive: true })
      writeFileSync(path.join(dir, 'superblock'), 'superblock bytes')
      await retireDelta(repo, delta)
      const aside = path.join(retiredDeltasDir(repo), path.relative('deltas', deltaRelativeDir(delta)), 'superblock')
      assert.ok(!existsSync(dir))
      assert.equal(readFileSync(aside, 'utf8'), 'superblock bytes')
      await retireDelta(repo, delta)
      assert.equal(readFileSync(aside, 'utf8'), 'superblock bytes')
    } finally {
      rmSync(repo, { recursive: true, force: true })
    }
  })
})
