import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, it } from 'node:test'
import busboy from 'busboy'
import { acceptAttachmentParts } from '../../src/upload/attachmentParts.ts'

const boundary = 'f1a7b0undary'

/** A multipart body as flat-manager-client (Python, aiohttp) writes it, or as a form does. */
function body(parts: { name: string; bytes: Buffer; disposition: 'attachment' | 'form-data' }[]): Buffer {
  return Buffer.concat([
    ...parts.flatMap(({ name, bytes, disposition }) => [
      Buffer.from(
        `--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: ${disposition === 'attachment' ? `attachment; filename=${name}` : `form-data; name="file"; filename="${name}"`}\r\nContent-Length: ${bytes.length}\r\n\r\n`,
      ),
      bytes,
      Buffer.from('\r\n'),
    ]),
    Buffer.from(`--${boundary}--\r\n`),
  ])
}

/** What busboy hands out for the body when it arrives in chunks of the given sizes. */
async function parse(bytes: Buffer, chunkSizes: () => number) {
  const chunks: Buffer[] = []
  for (let at = 0; at < bytes.length; ) {
    const size = Math.max(1, chunkSizes())
    chunks.push(bytes.subarray(at, at + size))
    at += size
  }
  const files: { name: string; bytes: Buffer }[] = []
  const parser = busboy({ headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, preservePath: true })
  parser.on('file', (_field, stream, info) => {
    const parts: Buffer[] = []
    stream.on('data', (chunk: Buffer) => parts.push(chunk))
    stream.on('end', () => files.push({ name: info.filename ?? '', bytes: Buffer.concat(parts) }))
  })
  await pipeline(Readable.from(chunks), acceptAttachmentParts(boundary), parser)
  return files
}

describe('multipart parts as flat-manager-client sends them', () => {
  const objects = [
    { name: `${'a'.repeat(64)}.filez`, bytes: randomBytes(70_000) },
    // Content that looks like a header block must stay content.
    { name: `${'b'.repeat(64)}.dirtree`, bytes: Buffer.from('\r\nContent-Disposition: attachment; filename=evil\r\n\r\n') },
    { name: `${'c'.repeat(64)}.commit`, bytes: randomBytes(10) },
  ]

  it('accepts nameless, unquoted `attachment; filename=` parts, byte for byte, however the body is chunked', async () => {
    const python = body(objects.map((object) => ({ ...object, disposition: 'attachment' as const })))
    for (const chunkSizes of [() => python.length, () => 1, () => 7, () => 1 + Math.floor(Math.random() * 5000)]) {
      const files = await parse(python, chunkSizes)
      assert.deepEqual(files.map((file) => file.name), objects.map((object) => object.name))
      files.forEach((file, index) => assert.ok(file.bytes.equals(objects[index]!.bytes), file.name))
    }
  })

  it('leaves form-data parts, and mixes of both, as they are', async () => {
    const mixed = body(objects.map((object, index) => ({ ...object, disposition: index % 2 ? ('attachment' as const) : ('form-data' as const) })))
    const files = await parse(mixed, () => 13)
    assert.deepEqual(files.map((file) => file.name), objects.map((object) => object.name))
    files.forEach((file, index) => assert.ok(file.bytes.equals(objects[index]!.bytes), file.name))
  })
})
