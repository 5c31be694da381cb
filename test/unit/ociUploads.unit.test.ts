import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { after, describe, it } from 'node:test'
import { blobPath } from '../../src/storage/ociStore.ts'
import { createOciUploads, UploadError } from '../../src/storage/ociUploads.ts'

const root = mkdtempSync(path.join(tmpdir(), 'flatdepot-oci-uploads-'))
after(() => rmSync(root, { recursive: true, force: true }))
const sha = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`
const body = (...chunks: Buffer[]) => Readable.from(chunks)
const code = (expected: string) => (error: unknown) => error instanceof UploadError && error.code === expected

describe('registry blob uploads', () => {
  const uploads = createOciUploads(root, 64)
  const repository = 'stable/org.test.app'

  it('chunks in order become the blob once the digest checks out', async () => {
    const bytes = Buffer.from('0123456789abcdefghij')
    const uuid = await uploads.start(repository)
    assert.equal(await uploads.patch(repository, uuid, body(bytes.subarray(0, 8)), { start: 0 }), 8)
    await assert.rejects(uploads.patch(repository, uuid, body(bytes.subarray(12)), { start: 12 }), code('RANGE_INVALID'))
    assert.equal(await uploads.patch(repository, uuid, body(bytes.subarray(8)), null), 20)
    await uploads.finish(repository, uuid, sha(bytes), null)
    assert.deepEqual(readFileSync(blobPath(root, sha(bytes))), bytes)
    assert.equal(await uploads.pending(), 0)
  })

  it('a process that did not see the chunks hashes the file at the end', async () => {
    const bytes = Buffer.from('written by another process')
    const uuid = await uploads.start(repository)
    await uploads.patch(repository, uuid, body(bytes.subarray(0, 10)), null)
    const other = createOciUploads(root, 64)
    await other.finish(repository, uuid, sha(bytes), body(bytes.subarray(10)))
    assert.deepEqual(readFileSync(blobPath(root, sha(bytes))), bytes)
  })

  it('a wrong digest stores nothing and ends the upload', async () => {
    const bytes = Buffer.from('some bytes')
    const wrong = sha(Buffer.from('other bytes'))
    const uuid = await uploads.start(repository)
    await assert.rejects(uploads.finish(repository, uuid, wrong, body(bytes)), (error: unknown) => code('DIGEST_INVALID')(error) && /nothing was stored/.test((error as Error).message))
    assert.equal(existsSync(blobPath(root, wrong)), false)
    assert.equal(existsSync(blobPath(root, sha(bytes))), false)
    await assert.rejects(uploads.size(repository, uuid), code('BLOB_UPLOAD_UNKNOWN'))
  })

  it('a chunk past the size limit is cut off: the upload keeps what it had', async () => {
    const uuid = await uploads.start(repository)
    await uploads.patch(repository, uuid, body(Buffer.alloc(40, 1)), null)
    await assert.rejects(uploads.patch(repository, uuid, body(Buffer.alloc(20, 2), Buffer.alloc(20, 3)), null), (error: unknown) => code('SIZE_INVALID')(error) && /64 bytes/.test((error as Error).message))
    assert.equal(await uploads.size(repository, uuid), 40)
    await uploads.finish(repository, uuid, sha(Buffer.alloc(40, 1)), null)
  })

  it('an upload belongs to its repository, and unknown ids are refused', async () => {
    const uuid = await uploads.start(repository)
    await assert.rejects(uploads.patch('stable/org.test.other', uuid, body(Buffer.from('x')), null), code('BLOB_UPLOAD_UNKNOWN'))
    await assert.rejects(uploads.size(repository, '../../etc/passwd'), code('BLOB_UPLOAD_UNKNOWN'))
    await uploads.cancel(repository, uuid)
    assert.equal(await uploads.pending(), 0)
  })
})
