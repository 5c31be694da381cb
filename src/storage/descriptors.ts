import { rename, writeFile } from 'node:fs/promises'

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
  /** Only this subset's refs (the client reads the subset's summary). */
  subset?: string | null
}): string {
  const lines = ['[Flatpak Repo]', `Title=${fields.title}`, `Url=${fields.url}`]
  if (fields.subset) lines.push(`Subset=${fields.subset}`)
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
