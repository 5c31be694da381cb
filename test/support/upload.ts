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
export async function uploadMissing(url: string, token: string, buildId: number, repo: string, batch = 64): Promise<number> {
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
  for (let i = 0; i < missing.length; i += batch) {
    const form = new FormData()
    for (const name of missing.slice(i, i + batch)) form.append('file', await openAsBlob(byName.get(name)!), name)
    const upload = await fetch(`${url}/api/v1/build/${buildId}/upload`, { method: 'POST', headers, body: form })
    if (!upload.ok) throw new Error(`upload: ${upload.status} ${await upload.text()}`)
  }
  return missing.length
}
