import { readFile } from 'node:fs/promises'
import path from 'node:path'

/**
 * A commit's parent, read from the commit object itself: no process per commit (a delta plan over
 * 5,000 refs spawned 5,000 `ostree log`s). No maintained GVariant reader exists on npm, and only
 * one field of one fixed type is needed, so it is read here.
 *
 * A commit object (`objects/xx/<rest>.commit`, stored as is in every repo mode) is the GVariant
 * `(a{sv}aya(say)sstayay)`: metadata, parent checksum (32 bytes, or none), related objects,
 * subject, body, timestamp, root dirtree, root dirmeta. In a serialized tuple every variable-size
 * member but the last has its end offset stored at the end of the data, last member's first, each
 * offset as wide as the data's size needs (1, 2, 4 or 8 bytes). The parent runs from the end of
 * the metadata to its own end.
 */
export function parentFromCommitObject(data: Buffer): string | null {
  const size = data.length
  const width = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffff ? 4 : 8
  const offset = (index: number) => {
    const at = size - width * (index + 1)
    if (at < 0) throw new Error('commit object too short')
    return width === 1 ? data.readUInt8(at) : width === 2 ? data.readUInt16LE(at) : width === 4 ? data.readUInt32LE(at) : Number(data.readBigUInt64LE(at))
  }
  const metadataEnd = offset(0)
  const parentEnd = offset(1)
  if (parentEnd === metadataEnd) return null
  if (parentEnd - metadataEnd !== 32 || parentEnd > size) throw new Error(`commit object: a parent of ${parentEnd - metadataEnd} bytes`)
  return data.subarray(metadataEnd, parentEnd).toString('hex')
}

/** The commit object's parent; undefined when the repo does not hold the commit. */
export async function commitParent(repo: string, commit: string): Promise<string | null | undefined> {
  let data: Buffer
  try {
    data = await readFile(path.join(repo, 'objects', commit.slice(0, 2), `${commit.slice(2)}.commit`))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
  return parentFromCommitObject(data)
}
