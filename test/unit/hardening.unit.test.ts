import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync, existsSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import path from 'node:path'
import { deflateRawSync } from 'node:zlib'
import { describe, it } from 'node:test'
import { idFromPath, NotFoundError } from '../../src/domain/shared/errors.ts'
import { jtiProblem, maxJtiLength } from '../../src/domain/token/claims.ts'
import { maxNotificationBytes, notificationPayloads, wakeEveryone } from '../../src/eventStore/eventStore.ts'
import { DataDirLockedError, lockDataDir } from '../../src/db/dataDirLock.ts'
import { orphanAgeMs, sweepBuildArea, uploadTempName } from '../../src/storage/buildArea.ts'
import { closePairs, pinGapMs, pinMaxAgeMs, summaryFilePath } from '../../src/storage/summary.ts'
import { checksumOfBuffer, checksumOfObject, ObjectRejectedError } from '../../src/upload/objects.ts'
import { fileObject } from '../support/corpus.ts'

describe('notification payloads', () => {
  it('split many stream ids into payloads that each fit a NOTIFY, losing none', () => {
    const ids = Array.from({ length: 500 }, (_, i) => `token-${i}-${'x'.repeat(100)}`)
    const payloads = notificationPayloads(ids)
    assert.ok(payloads.length > 1)
    for (const payload of payloads) assert.ok(Buffer.byteLength(payload) <= maxNotificationBytes)
    assert.deepEqual(payloads.flatMap((payload) => JSON.parse(payload) as string[]), ids)
  })
  it('name a stream id too long for any payload as "wake everyone"', () => {
    assert.deepEqual(notificationPayloads(['build-1', 'y'.repeat(9000)]).map((payload) => JSON.parse(payload)), [['build-1', wakeEveryone]])
  })
  it('send one payload for an ordinary unit of work', () => {
    assert.deepEqual(notificationPayloads(['build-1', 'job-2']), ['["build-1","job-2"]'])
  })
})

describe('bounded identifiers', () => {
  it('accepts UUIDs and refuses empty, long or spaced jtis', () => {
    assert.equal(jtiProblem('3f1c2b9e-5a4d-4c1e-9f00-0123456789ab'), null)
    assert.match(jtiProblem('') ?? '', /must not be empty/)
    assert.match(jtiProblem('j'.repeat(maxJtiLength + 1)) ?? '', /at most 128 characters \(got 129\)/)
    assert.match(jtiProblem('a b') ?? '', /printable ASCII/)
  })
  it('reads ids from paths only within PostgreSQL integers', () => {
    assert.equal(idFromPath('2147483647', 'Build'), 2147483647)
    assert.equal(idFromPath('0', 'Build'), 0)
    for (const bad of ['2147483648', '99999999999999999999', 'abc', '', '1e3', '-1']) {
      assert.throws(() => idFromPath(bad, 'Build'), (error: unknown) => error instanceof NotFoundError && /^Build .* not found$/.test(error.message))
    }
  })
})

describe('the embedded database lock', () => {
  it('refuses a second holder, naming the first; a lock of a dead process is taken over', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flatdepot-lock-'))
    const dataDir = path.join(dir, 'db')
    const release = lockDataDir(dataDir)
    // This process holds it: a second take (as a second process would) is refused.
    assert.throws(() => lockDataDir(dataDir), (error: unknown) => error instanceof DataDirLockedError && new RegExp(`in use by process ${process.pid}`).test(error.message))
    release()
    assert.equal(existsSync(`${dataDir}.lock`), false)
    // A lock left by a process that is gone (a pid that cannot exist).
    writeFileSync(`${dataDir}.lock`, JSON.stringify({ pid: 2 ** 22 + 7, startTime: '1', host: hostname(), command: 'x', since: 'then' }))
    const again = lockDataDir(dataDir)
    assert.equal(JSON.parse(readFileSync(`${dataDir}.lock`, 'utf8')).pid, process.pid)
    again()
    rmSync(dir, { recursive: true, force: true })
  })
})


describe('the build area sweep', () => {
  it('removes temps of dead processes and old ones, and keeps live and recent ones', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'flatdepot-sweep-'))
    const tmp = path.join(base, '7', 'upload', 'tmp')
    mkdirSync(tmp, { recursive: true })
    const mine = path.join(tmp, uploadTempName(1))
    const dead = path.join(tmp, 'flatdepot-upload.tmp-' + uploadTempName(1).split('.tmp-')[1]!.replace(/\.\d+\.(\d+)-/, `.${2 ** 22 + 9}.$1-`))
    const foreign = path.join(tmp, 'flatdepot-upload.tmp-00000000.12.34-abcd-1')
    const oldForeign = path.join(tmp, 'flatdepot-upload.tmp-00000000.12.34-abcd-2')
    const halfMadeRepo = path.join(base, `8.tmp-${uploadTempName(1).split('.tmp-')[1]!.replace(/\.\d+\.(\d+)-/, `.${2 ** 22 + 9}.$1-`)}`)
    const ostreeOwn = path.join(tmp, 'staging-abc')
    for (const file of [mine, dead, foreign, oldForeign, ostreeOwn]) writeFileSync(file, 'x')
    mkdirSync(halfMadeRepo)
    const old = (Date.now() - orphanAgeMs - 60_000) / 1000
    utimesSync(oldForeign, old, old)
    const removed = await sweepBuildArea(base)
    assert.equal(removed, 3)
    assert.deepEqual([mine, dead, foreign, oldForeign, halfMadeRepo, ostreeOwn].map((file) => existsSync(file)), [true, false, true, false, false, true])
    rmSync(base, { recursive: true, force: true })
  })
})

describe('summary pinning', () => {
  it('keeps a connection on one snapshot while it asks in quick succession, then moves it on', async () => {
    const repo = mkdtempSync(path.join(tmpdir(), 'flatdepot-pin-'))
    const snapshots = path.join(repo, '.flatdepot', 'summary')
    mkdirSync(path.join(snapshots, '1-a'), { recursive: true })
    mkdirSync(path.join(snapshots, '2-b'), { recursive: true })
    symlinkSync('1-a', path.join(snapshots, 'current'))
    const connection = {}
    const other = {}
    const t0 = 1_000_000
    assert.equal(await summaryFilePath(repo, 'summary.sig', connection, t0), path.join(snapshots, '1-a', 'summary.sig'))
    // An update completes between the two requests of a pair.
    rmSync(path.join(snapshots, 'current'))
    symlinkSync('2-b', path.join(snapshots, 'current'))
    assert.equal(await summaryFilePath(repo, 'summary', connection, t0 + 5), path.join(snapshots, '1-a', 'summary'))
    assert.equal(await summaryFilePath(repo, 'summary', other, t0 + 5), path.join(snapshots, '2-b', 'summary'))
    // After a pause, the connection gets the current one.
    assert.equal(await summaryFilePath(repo, 'summary', connection, t0 + 5 + pinGapMs), path.join(snapshots, '2-b', 'summary'))
    // A connection that never pauses moves on once its pin is pinMaxAgeMs old, at the start of a
    // pair, never between a file and its signature.
    let now = t0 + 20_000
    assert.equal(await summaryFilePath(repo, 'summary.sig', other, now), path.join(snapshots, '2-b', 'summary.sig'))
    assert.equal(await summaryFilePath(repo, 'summary', other, (now += 1)), path.join(snapshots, '2-b', 'summary'))
    rmSync(path.join(snapshots, 'current'))
    symlinkSync('1-a', path.join(snapshots, 'current'))
    const generations: string[] = []
    for (let pair = 0; pair < 2 * (pinMaxAgeMs / 500); pair++) {
      // A file and its partner, 0.5 s after the previous pair, with the age boundary landing anywhere.
      const data = await summaryFilePath(repo, 'summary.sig', other, (now += 250))
      const signature = await summaryFilePath(repo, 'summary', other, (now += 250))
      assert.equal(path.dirname(data), path.dirname(signature), `pair ${pair} from one snapshot`)
      generations.push(path.basename(path.dirname(data)))
    }
    assert.equal(generations[0], '2-b')
    assert.equal(generations.at(-1), '1-a', 'moved on to the current snapshot')
    // A file whose partner has not come yet keeps the pin past pinMaxAgeMs; a request for any
    // other file (flatpak's content-addressed summaries/…idx.sig) ends the pair.
    const lone = {}
    let at = now
    assert.equal(await summaryFilePath(repo, 'summary.idx', lone, at), path.join(snapshots, '1-a', 'summary.idx'))
    rmSync(path.join(snapshots, 'current'))
    symlinkSync('2-b', path.join(snapshots, 'current'))
    while (at < now + pinMaxAgeMs + 1000) assert.equal(await summaryFilePath(repo, 'summary.idx', lone, (at += 500)), path.join(snapshots, '1-a', 'summary.idx'))
    closePairs(lone)
    assert.equal(await summaryFilePath(repo, 'summary.idx', lone, (at += 500)), path.join(snapshots, '2-b', 'summary.idx'))
    // A server slow to answer (3 s between a file and its partner) does not split the pair.
    const slow = {}
    const before = path.basename(path.dirname(await summaryFilePath(repo, 'summary.sig', slow, at + 100_000)))
    rmSync(path.join(snapshots, 'current'))
    symlinkSync(before === '1-a' ? '2-b' : '1-a', path.join(snapshots, 'current'))
    assert.equal(path.basename(path.dirname(await summaryFilePath(repo, 'summary', slow, at + 103_000))), before)
    // A repo without snapshots: its own files.
    const plain = mkdtempSync(path.join(tmpdir(), 'flatdepot-pin-'))
    assert.equal(await summaryFilePath(plain, 'summary', connection, t0), path.join(plain, 'summary'))
    rmSync(repo, { recursive: true, force: true })
    rmSync(plain, { recursive: true, force: true })
  })
})

describe('file objects that inflate to more than they declare', () => {
  it('are refused after inflating one byte past the declared size, whatever they would become', async () => {
    const bomb = fileObject(10n, 0o100644, deflateRawSync(Buffer.alloc(50_000_000)))
    const started = performance.now()
    assert.throws(() => checksumOfObject('filez', bomb), (error: unknown) => error instanceof ObjectRejectedError && /inflates to more than the 10 bytes its header says/.test(error.message))
    assert.ok(performance.now() - started < 200, 'refused without inflating it all')
  })
  it('that declare a large size are verified as a stream, off the event loop', async () => {
    const large = fileObject(5_000_000n, 0o100644, deflateRawSync(Buffer.alloc(6_000_000)))
    assert.equal(checksumOfObject('filez', large), null)
    await assert.rejects(checksumOfBuffer('filez', large), /inflates to more than the 5000000 bytes its header says/)
    const honest = fileObject(5_000_000n, 0o100644, deflateRawSync(Buffer.alloc(5_000_000)))
    assert.match(await checksumOfBuffer('filez', honest), /^[0-9a-f]{64}$/)
  })
})
