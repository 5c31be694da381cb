import { parseRef } from '../domain/build/names.ts'
import { listRefs } from './flatpak.ts'
import { appRuntime } from './ostree.ts'

export type DeleteSelection = Readonly<{ app: string | null; refs: readonly string[] }>

/**
 * What a delete removes from a repo as it is now: an app's refs with its extensions
 * (`<app>.Locale`, `.Debug` …) on every arch and branch, or the named refs that are there. Apps
 * and runtimes only (appstream, appstream2 and ostree-metadata are the repo's own).
 */
export async function refsToDelete(repo: string, selection: DeleteSelection): Promise<{ present: string[]; selected: string[] }> {
  const present = (await listRefs(repo)).filter((refName) => refName.startsWith('app/') || refName.startsWith('runtime/'))
  const selected = selection.app
    ? present.filter((refName) => {
        const ref = parseRef(refName)
        return ref.kind !== 'screenshots' && (ref.id === selection.app || ref.id.startsWith(`${selection.app}.`))
      })
    : selection.refs.filter((refName) => present.includes(refName))
  return { present, selected }
}

/** Why deleting `selected` would break an app left in the repo (it uses one of the runtimes), or null. */
export async function runtimeStillUsed(repo: string, present: readonly string[], selected: readonly string[]): Promise<string | null> {
  const runtimes = selected.filter((refName) => refName.startsWith('runtime/')).map((refName) => refName.slice('runtime/'.length))
  if (runtimes.length === 0) return null
  for (const app of present.filter((refName) => refName.startsWith('app/') && !selected.includes(refName))) {
    const runtime = await appRuntime(repo, app)
    if (runtime && runtimes.includes(runtime)) return `Runtime ${runtime} is still used by ${app}: delete that first, or force`
  }
  return null
}
