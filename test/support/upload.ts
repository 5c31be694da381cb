import { openAsBlob, readdirSync } from 'node:fs'
import path from 'node:path'

/** Every object file of a local archive repo, as upload names (commitmeta excluded: the server signs). */
export function repoObjects(repo: string): { name: string; file: string }[] {
  const root = path.join(repo, 'objects')
  return readdirSync(root).flatMap((prefix) =>
    readdirSync(path.join(root, prefix))
      .filter((file) => /\.(commit|dirtree|dirmeta|filez)$/.test(file))
      .map((file) => ({ name: `${prefix}${file}`, file: path.join(root, prefix, file) })),
  )
}

/** Asks which objects the build lacks, then uploads those in multipart batches (flat-manager's protocol). */
export async function uploadMissing(
  url: string,
  token: string,
  buildId: number,
  repo: string,
  { batchObjects = 256, batchBytes = 8 << 20, concurrency = 4 } = {},
): Promise<number> {
  const objects = repoObjects(repo)
  const headers = { authorization: `Bearer ${token}` }
  const response = await fetch(`${url}/api/v1/build/${buildId}/missing_objects`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ wanted: objects.map((object) => object.name) }),
  })
  if (!response.ok) throw new Error(`missing_objects: ${response.status} ${await response.text()}`)
  const { missing } = (await response.json()) as { missing: string[] }
  const byName = new Map(objects.map((object) => [object.name, object.file]))
  // Batches bounded by count and bytes, sent `concurrency` at a time; files stream from disk.
  const batches: { name: string; blob: Blob }[][] = [[]]
  let bytes = 0
  for (const name of missing) {
    const blob = await openAsBlob(byName.get(name)!)
    const current = batches.at(-1)!
    if (current.length >= batchObjects || (current.length > 0 && bytes + blob.size > batchBytes)) {
      batches.push([])
      bytes = 0
    }
    batches.at(-1)!.push({ name, blob })
    bytes += blob.size
  }
  let next = 0
  const sender = async () => {
    while (next < batches.length) {
      const batch = batches[next++]!
      if (batch.length === 0) continue
      const form = new FormData()
      for (const { name, blob } of batch) form.append('file', blob, name)
      const upload = await fetch(`${url}/api/v1/build/${buildId}/upload`, { method: 'POST', headers, body: form })
      if (!upload.ok) throw new Error(`upload: ${upload.status} ${await upload.text()}`)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, sender))
  return missing.length
}
