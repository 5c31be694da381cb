import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { deflateRawSync } from 'node:zlib'
import { before, describe, it } from 'node:test'
import { ObjectRejectedError, ObjectVerifier, parseUploadName, type ObjectType } from '../../src/upload/objects.ts'
import { buildFixture, type Fixture } from '../support/fixture.ts'

async function checksumOf(bytes: Buffer, type: ObjectType, chunkSize = 7): Promise<string> {
  const verifier = new ObjectVerifier(type)
  const chunks = Array.from({ length: Math.ceil(bytes.length / chunkSize) }, (_, i) => bytes.subarray(i * chunkSize, (i + 1) * chunkSize))
  await pipeline(Readable.from(chunks), verifier, new Writable({ write: (_c, _e, cb) => cb() }))
  return verifier.digest()
}

describe('OSTree object checksums computed while streaming', () => {
  let fixture: Fixture
  before(async () => {
    fixture = await buildFixture()
  })

  it('match the names ostree gave every object of a real repo, whatever the chunking', async () => {
    const objectsDir = path.join(fixture.repoV2, 'objects')
    let checked = 0
    for (const prefix of readdirSync(objectsDir)) {
      for (const file of readdirSync(path.join(objectsDir, prefix))) {
        const parsed = parseUploadName(`${prefix}${file}`)
        if (!parsed || parsed.kind !== 'object') continue
        const bytes = readFileSync(path.join(objectsDir, prefix, file))
        assert.equal(await checksumOf(bytes, parsed.type, checked % 2 ? 7 : 65536), parsed.checksum, `${prefix}${file}`)
        checked++
      }
    }
    assert.ok(checked > 40, `checked ${checked} objects`)
  })

  it('rejects a file object whose content was changed', async () => {
    const objectsDir = path.join(fixture.repoV2, 'objects')
    const [prefix, file] = readdirSync(objectsDir).flatMap((p) => readdirSync(path.join(objectsDir, p)).filter((f) => f.endsWith('.filez')).map((f) => [p, f]))[0]!
    const bytes = readFileSync(path.join(objectsDir, prefix!, file!))
    const headerEnd = 8 + bytes.readUInt32BE(0)
    const tampered = Buffer.concat([bytes.subarray(0, headerEnd), deflateRawSync(Buffer.from('evil'))])
    await assert.rejects(checksumOf(tampered, 'filez'), ObjectRejectedError)
  })

  it('rejects setuid files and devices', async () => {
    const header = (mode: number) => {
      const variant = Buffer.alloc(24 + 1 + 1)
      variant.writeBigUInt64BE(0n, 0)
      variant.writeUInt32BE(mode, 16)
      variant.writeUInt8(25, 25) // end of the empty symlink-target string
      const prefix = Buffer.alloc(8)
      prefix.writeUInt32BE(variant.length, 0)
      return Buffer.concat([prefix, variant, deflateRawSync(Buffer.alloc(0))])
    }
    await assert.rejects(checksumOf(header(0o104755), 'filez'), /setuid or setgid/)
    await assert.rejects(checksumOf(header(0o020644), 'filez'), /not a regular file or symlink/)
    assert.match(await checksumOf(header(0o100644), 'filez'), /^[0-9a-f]{64}$/)
  })
})

describe('upload names', () => {
  const ok = 'a'.repeat(64)
  const table: [string, string | null][] = [
    [`${ok}.filez`, `objects/aa/${'a'.repeat(62)}.filez`],
    [`${ok}.commit`, `objects/aa/${'a'.repeat(62)}.commit`],
    [`${ok}.commitmeta`, null],
    [`${ok}.file`, null],
    [`../${ok}.filez`, null],
    [`${ok.toUpperCase()}.dirtree`, null],
    [`${'A'.repeat(43)}.superblock.delta`, `deltas/AA/${'A'.repeat(41)}/superblock`],
    [`${'A+_'.repeat(14)}A-${'B'.repeat(43)}.3.delta`, `deltas/A+/${'_A+'.repeat(13)}_A-${'B'.repeat(43)}/3`],
    [`${'A'.repeat(43)}.x.delta`, null],
    [`${'A/'.repeat(21)}A.superblock.delta`, null],
  ]
  for (const [name, expected] of table) {
    it(`${name.slice(0, 24)}… → ${expected ?? 'refused'}`, () => assert.equal(parseUploadName(name)?.path ?? null, expected))
  }
})
