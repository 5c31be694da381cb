import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { gunzipSync } from 'node:zlib'
import { run } from '../process/run.ts'

/** Creates an archive-mode OSTree repo at `repoPath` unless one is there already. */
export async function ensureRepo(repoPath: string, options: { collectionId?: string | null } = {}): Promise<boolean> {
  if (existsSync(path.join(repoPath, 'config'))) return false
  mkdirSync(repoPath, { recursive: true })
  const args = [`--repo=${repoPath}`, 'init', '--mode=archive-z2']
  if (options.collectionId) args.push(`--collection-id=${options.collectionId}`)
  await run('ostree', args, { timeoutMs: 60_000 })
  return true
}

/** The app's name from the appstream data in its commit (what GNOME Software shows), if any. */
export async function appstreamName(repo: string, commit: string, appId: string): Promise<string | null> {
  const candidates = [
    { path: `/files/share/app-info/xmls/${appId}.xml.gz`, gzip: true },
    { path: `/files/share/metainfo/${appId}.metainfo.xml`, gzip: false },
    { path: `/files/share/appdata/${appId}.appdata.xml`, gzip: false },
  ]
  for (const candidate of candidates) {
    try {
      const { stdout } = await run('ostree', [`--repo=${repo}`, 'cat', commit, candidate.path], { timeoutMs: 60_000, encoding: 'buffer' })
      const bytes = stdout as unknown as Buffer
      const xml = (candidate.gzip ? gunzipSync(bytes) : bytes).toString('utf8')
      // The untranslated <name> (no xml:lang attribute) of the component.
      const match = /<name>([^<]+)<\/name>/.exec(xml)
      if (match?.[1]) return decodeXml(match[1].trim())
    } catch {
      // not in this commit: try the next place
    }
  }
  return null
}

const decodeXml = (text: string) =>
  text.replace(/&(lt|gt|amp|quot|apos);/g, (_, entity: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" })[entity] ?? '')

/** Removes a ref (its objects stay until a prune). */
export async function deleteRef(repo: string, ref: string): Promise<void> {
  await run('ostree', [`--repo=${repo}`, 'refs', '--delete', ref], { timeoutMs: 60_000 })
}

/** The runtime an app's commit names in its metadata (`runtime=<id>/<arch>/<branch>`), if any. */
export async function appRuntime(repo: string, ref: string): Promise<string | null> {
  const { stdout } = await run('ostree', [`--repo=${repo}`, 'cat', ref, '/metadata'], { timeoutMs: 60_000 })
  return /^runtime=(.+)$/m.exec(stdout)?.[1]?.trim() ?? null
}
