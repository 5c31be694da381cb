import { rename, writeFile } from 'node:fs/promises'
import { gunzipSync } from 'node:zlib'
import { run } from './run.ts'

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

/** A .flatpakref (flat-manager's generate_flatpakref fields, in its order). */
export function flatpakref(fields: {
  id: string
  branch: string
  title: string
  isRuntime: boolean
  url: string
  deployCollectionId?: string | null
  suggestRemoteName?: string | null
  gpgKey?: Buffer | null
  runtimeRepo?: string | null
}): string {
  const lines = [
    '[Flatpak Ref]',
    `Name=${fields.id}`,
    `Branch=${fields.branch}`,
    `Title=${fields.title}`,
    `IsRuntime=${fields.isRuntime}`,
    `Url=${fields.url}`,
  ]
  if (fields.deployCollectionId) lines.push(`DeployCollectionID=${fields.deployCollectionId}`)
  if (fields.suggestRemoteName) lines.push(`SuggestRemoteName=${fields.suggestRemoteName}`)
  if (fields.gpgKey?.length) lines.push(`GPGKey=${fields.gpgKey.toString('base64')}`)
  if (fields.runtimeRepo) lines.push(`RuntimeRepo=${fields.runtimeRepo}`)
  return `${lines.join('\n')}\n`
}

/** A .flatpakrepo for `flatpak remote-add --from`. */
export function flatpakrepo(fields: {
  title: string
  url: string
  defaultBranch?: string | null
  gpgKey?: Buffer | null
  collectionId?: string | null
}): string {
  const lines = ['[Flatpak Repo]', `Title=${fields.title}`, `Url=${fields.url}`]
  if (fields.defaultBranch) lines.push(`DefaultBranch=${fields.defaultBranch}`)
  if (fields.collectionId) lines.push(`DeployCollectionID=${fields.collectionId}`)
  if (fields.gpgKey?.length) lines.push(`GPGKey=${fields.gpgKey.toString('base64')}`)
  return `${lines.join('\n')}\n`
}

/** Readers see the old file or the new one, never half of one (write aside, then rename). */
export async function writeFileAtomically(target: string, text: string): Promise<void> {
  await writeFile(`${target}.tmp`, text)
  await rename(`${target}.tmp`, target)
}
