import { parseRef } from '../build/names.ts'
import { globMatches } from './deltas.ts'

export type MirrorRule = Readonly<{ id: readonly string[]; branch: readonly string[]; arch: readonly string[]; 'with-runtime': boolean; 'with-extensions': boolean }>

type Parsed = { refName: string; kind: 'app' | 'runtime'; id: string; arch: string; branch: string }

const parsedRefs = (refNames: readonly string[]): Parsed[] =>
  refNames.flatMap((refName) => {
    try {
      const ref = parseRef(refName)
      return ref.kind === 'app' || ref.kind === 'runtime' ? [{ refName, kind: ref.kind, id: ref.id, arch: ref.arch, branch: ref.branch }] : []
    } catch {
      return [] // appstream/…, ostree-metadata and anything else upstream lists
    }
  })

/**
 * The upstream refs a repo follows: apps and runtimes whose id matches a rule's globs (and its
 * branches and arches, when it names any), and with `with-extensions` the refs of their
 * extensions (`<id>.Locale`, `<id>.Debug` …) on the same arch and branch. Runtimes the apps name
 * are added after their metadata is read (`runtimeRef`).
 */
export function selectMirroredRefs(available: readonly string[], rules: readonly MirrorRule[]): string[] {
  const refs = parsedRefs(available)
  const selected = new Set<string>()
  for (const rule of rules) {
    const matches = refs.filter(
      (ref) =>
        rule.id.some((glob) => globMatches(glob, ref.id)) &&
        (rule.branch.length === 0 || rule.branch.includes(ref.branch)) &&
        (rule.arch.length === 0 || rule.arch.includes(ref.arch)),
    )
    for (const match of matches) {
      selected.add(match.refName)
      if (!rule['with-extensions']) continue
      for (const extension of refs) {
        if (extension.id.startsWith(`${match.id}.`) && extension.arch === match.arch && extension.branch === match.branch) selected.add(extension.refName)
      }
    }
  }
  return [...selected].sort()
}

/** `runtime=org.example.Platform/x86_64/1.0` from an app's metadata, as a ref. */
export const runtimeRef = (runtime: string) => `runtime/${runtime}`
