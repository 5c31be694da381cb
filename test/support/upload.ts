import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import pMap from 'p-map'
import { FlatdepotClient } from '../../src/client/api.ts'
import { uploadBatches } from '../../src/client/push.ts'

/** Every object file of a local archive repo, as upload names (commitmeta excluded: the server signs). */
export function repoObjects(repo: string): { name: string; file: string }[] {
  const root = path.join(repo, 'objects')
  return readdirSync(root).flatMap((prefix) =>
    readdirSync(path.join(root, prefix))
      .filter((file) => /\.(commit|dirtree|dirmeta|filez)$/.test(file))
      .map((file) => ({ name: `${prefix}${file}`, file: path.join(root, prefix, file) })),
  )
}

/**
 * Every object file of a local repo that the build lacks, uploaded through flat-manager's REST
 * API with the client the CLI uses (missing_objects, then multipart batches in parallel). Unlike
 * `flatdepot push` it sends every object in the directory, reachable or not, and creates no refs.
 */
export async function uploadMissing(
  url: string,
  token: string,
  buildId: number,
  repo: string,
  { batchObjects = 256, batchBytes = 4 << 20, concurrency = 8 } = {},
): Promise<number> {
  const client = new FlatdepotClient({ url, token })
  const objects = repoObjects(repo)
  const missing = new Set(await client.missingObjects(buildId, objects.map((object) => object.name)))
  const sized = objects.filter((object) => missing.has(object.name)).map((object) => ({ ...object, size: statSync(object.file).size }))
  const batches = uploadBatches(sized, batchObjects, batchBytes)
  await pMap(batches, (batch) => client.upload(buildId, batch), { concurrency })
  return missing.size
}
