import { createHash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { createInflateRaw, inflateRawSync } from 'node:zlib'

/** What an upload may be called: OSTree objects and static-delta parts (flat-manager's rules). */
export type UploadName =
  | { kind: 'object'; checksum: string; type: ObjectType; path: string }
  | { kind: 'delta'; path: string }

export const objectTypes = ['commit', 'dirtree', 'dirmeta', 'filez'] as const
export type ObjectType = (typeof objectTypes)[number]

/** `<sha256>.<type>`: an object's name in flat-manager's API (its path is objects/<first 2>/<rest>). */
export const objectName = /^([0-9a-f]{64})\.(commit|dirtree|dirmeta|filez)$/
// ostree's modified base64 of a checksum: 43 characters of [A-Za-z0-9+_]; "from-to" for deltas.
const deltaName = /^([A-Za-z0-9+_]{43}(?:-[A-Za-z0-9+_]{43})?)\.(superblock|[0-9]{1,6})\.delta$/

/** null when the name is not one flatdepot accepts; paths are relative to the upload repo. */
export function parseUploadName(name: string): UploadName | null {
  const object = objectName.exec(name)
  if (object) {
    const [, checksum, type] = object as unknown as [string, string, ObjectType]
    return { kind: 'object', checksum, type, path: `objects/${checksum.slice(0, 2)}/${checksum.slice(2)}.${type}` }
  }
  const delta = deltaName.exec(name)
  if (delta) {
    const [, id, part] = delta as unknown as [string, string, string]
    return { kind: 'delta', path: `deltas/${id.slice(0, 2)}/${id.slice(2)}/${part}` }
  }
  return null
}

export class ObjectRejectedError extends Error {}

const S_IFMT = 0o170000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000

/**
 * Computes an object's OSTree checksum from the bytes as they stream past (the bytes pass through
 * unchanged, to be written to a temp file). Metadata objects are hashed as they are. A `.filez`
 * (archive-z2 file object) is [u32 size][4 pad][header (tuuuusa(ayay))][raw-deflate content],
 * while its checksum covers the canonical file header (uuuusa(ayay)) and the *uncompressed*
 * content, so the header is rewritten and the content inflated on the way.
 */
export class ObjectVerifier extends Transform {
  readonly #type: ObjectType
  readonly #hash = createHash('sha256')
  #pending: Buffer[] = []
  #pendingLength = 0
  #headerSize = -1
  #contentSize = 0n
  #inflatedSize = 0n
  #inflate: ReturnType<typeof createInflateRaw> | null = null
  #inflateDone: Promise<void> | null = null

  constructor(type: ObjectType) {
    super()
    this.#type = type
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      if (this.#type === 'filez') this.#feedFilez(chunk)
      else this.#hash.update(chunk)
      callback(null, chunk)
    } catch (error) {
      callback(error as Error)
    }
  }

  /** Resolves to the checksum once the whole object has passed through. */
  async digest(): Promise<string> {
    if (this.#type === 'filez') {
      if (this.#headerSize < 0 || !this.#inflate) throw new ObjectRejectedError('truncated file object: no complete header')
      this.#inflate.end()
      await this.#inflateDone
      if (this.#inflatedSize !== this.#contentSize) {
        throw new ObjectRejectedError(`file object content is ${this.#inflatedSize} bytes, its header says ${this.#contentSize}`)
      }
    }
    return this.#hash.digest('hex')
  }

  #feedFilez(chunk: Buffer): void {
    if (this.#inflate) {
      this.#inflate.write(chunk)
      return
    }
    this.#pending.push(chunk)
    this.#pendingLength += chunk.length
    const buffered = Buffer.concat(this.#pending, this.#pendingLength)
    if (this.#headerSize < 0) {
      if (buffered.length < 8) return
      this.#headerSize = buffered.readUInt32BE(0)
      if (this.#headerSize < 25 || this.#headerSize > 1 << 20) {
        throw new ObjectRejectedError(`file object header size ${this.#headerSize} is not plausible`)
      }
    }
    if (buffered.length < 8 + this.#headerSize) {
      this.#pending = [buffered]
      return
    }
    const header = buffered.subarray(8, 8 + this.#headerSize)
    this.#hash.update(canonicalFileHeader(header, (size) => (this.#contentSize = size)))
    this.#pending = []
    const inflate = createInflateRaw()
    inflate.on('data', (data: Buffer) => {
      this.#inflatedSize += BigInt(data.length)
      // A deflate bomb stops at the size its header declares, not at what it would inflate to.
      if (this.#inflatedSize > this.#contentSize) {
        inflate.destroy(new Error(`it inflates to more than the ${this.#contentSize} bytes its header says`))
        return
      }
      this.#hash.update(data)
    })
    this.#inflateDone = new Promise((resolve, reject) => {
      inflate.once('end', resolve)
      inflate.once('error', (error) => reject(new ObjectRejectedError(`file object content does not inflate: ${error.message}`)))
    })
    this.#inflateDone.catch(() => {})
    this.#inflate = inflate
    const rest = buffered.subarray(8 + this.#headerSize)
    if (rest.length) inflate.write(rest)
  }
}

/**
 * The most content a file object already in memory is inflated to on the event loop (a few
 * milliseconds); one that declares more is verified as a stream, off the event loop.
 */
export const syncInflateLimit = 1024 * 1024

/** The checksum of an object already in memory: at once for small ones, as a stream for the rest. */
export async function checksumOfBuffer(type: ObjectType, bytes: Buffer): Promise<string> {
  const sum = checksumOfObject(type, bytes)
  if (sum !== null) return sum
  const verifier = new ObjectVerifier(type)
  verifier.resume()
  verifier.end(bytes)
  return verifier.digest()
}

/**
 * The same checksum for an object already in memory (small objects skip the stream machinery);
 * null for a file object whose content is over syncInflateLimit (checksumOfBuffer streams those).
 */
export function checksumOfObject(type: ObjectType, bytes: Buffer): string | null {
  if (type !== 'filez') return createHash('sha256').update(bytes).digest('hex')
  if (bytes.length < 8) throw new ObjectRejectedError('truncated file object: no complete header')
  const headerSize = bytes.readUInt32BE(0)
  if (headerSize < 25 || 8 + headerSize > bytes.length) throw new ObjectRejectedError(`file object header size ${headerSize} is not plausible`)
  let contentSize = 0n
  const header = canonicalFileHeader(bytes.subarray(8, 8 + headerSize), (size) => (contentSize = size))
  if (contentSize > BigInt(syncInflateLimit)) return null
  let content: Buffer
  try {
    // Capped one byte past the declared size: a deflate bomb costs that much, never more.
    content = inflateRawSync(bytes.subarray(8 + headerSize), { maxOutputLength: Number(contentSize) + 1 })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ObjectRejectedError(`file object content inflates to more than the ${contentSize} bytes its header says`)
    }
    throw new ObjectRejectedError(`file object content does not inflate: ${(error as Error).message}`)
  }
  if (BigInt(content.length) !== contentSize) {
    throw new ObjectRejectedError(`file object content is ${content.length} bytes, its header says ${contentSize}`)
  }
  return createHash('sha256').update(header).update(content).digest('hex')
}

/** GVariant framing offsets use the smallest width that can address the whole container. */
function offsetSize(bodySize: number, offsets: number): 1 | 2 | 4 {
  if (bodySize + offsets <= 0xff) return 1
  if (bodySize + 2 * offsets <= 0xffff) return 2
  return 4
}

function readOffset(buffer: Buffer, width: number): number {
  return width === 1 ? buffer.readUInt8(0) : width === 2 ? buffer.readUInt16LE(0) : buffer.readUInt32LE(0)
}

/**
 * Turns the archive header (tuuuusa(ayay)) into the size-prefixed file header (uuuusa(ayay)) that
 * the checksum covers, checking the file is a regular file or symlink without setuid/setgid bits.
 */
function canonicalFileHeader(archive: Buffer, onSize: (size: bigint) => void): Buffer {
  const width = archive.length <= 0xff ? 1 : archive.length <= 0xffff ? 2 : 4
  const stringEnd = readOffset(archive.subarray(archive.length - width), width)
  if (stringEnd < 25 || stringEnd > archive.length - width || archive[stringEnd - 1] !== 0) {
    throw new ObjectRejectedError('file object header is malformed')
  }
  onSize(archive.readBigUInt64BE(0))
  const mode = archive.readUInt32BE(16)
  const rdev = archive.readUInt32BE(20)
  const kind = mode & S_IFMT
  if (kind !== S_IFREG && kind !== S_IFLNK) throw new ObjectRejectedError(`file object mode 0${mode.toString(8)} is not a regular file or symlink`)
  if (mode & 0o6000) throw new ObjectRejectedError(`file object mode 0${mode.toString(8)} has setuid or setgid bits`)
  if (rdev !== 0) throw new ObjectRejectedError('file object is a device')
  const fixed = archive.subarray(8, 24)
  const target = archive.subarray(24, stringEnd)
  const xattrs = archive.subarray(stringEnd, archive.length - width)
  const body = fixed.length + target.length + xattrs.length
  const newWidth = offsetSize(body, 1)
  const variant = Buffer.alloc(body + newWidth)
  fixed.copy(variant, 0)
  target.copy(variant, 16)
  xattrs.copy(variant, 16 + target.length)
  const end = 16 + target.length
  if (newWidth === 1) variant.writeUInt8(end, body)
  else if (newWidth === 2) variant.writeUInt16LE(end, body)
  else variant.writeUInt32LE(end, body)
  const prefix = Buffer.alloc(8)
  prefix.writeUInt32BE(variant.length, 0)
  return Buffer.concat([prefix, variant])
}
