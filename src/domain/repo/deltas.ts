/**
 * Which static deltas a repo should hold: flat-manager's planning (update_repo_job.rs), so a
 * config carried over from flat-manager keeps its meaning.
 */

export type DeltaRule = Readonly<{ id: readonly string[]; arch: readonly string[]; depth: number }>

/** A delta from `from` (null: from scratch) to `to`; ostree names it `to` or `from-to`. */
export type Delta = Readonly<{ from: string | null; to: string }>

export const deltaName = (delta: Delta) => (delta.from ? `${delta.from}-${delta.to}` : delta.to)

const checksum = /^[0-9a-f]{64}$/

export function parseDeltaName(name: string): Delta | null {
  const [first, second, ...rest] = name.split('-')
  if (rest.length || !first || !checksum.test(first)) return null
  if (second === undefined) return { from: null, to: first }
  return checksum.test(second) ? { from: first, to: second } : null
}

/** flat-manager's glob: `*` stands for one or more characters, everything else is literal. */
export function globMatches(glob: string, text: string): boolean {
  const pattern = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.+')
  return new RegExp(`^${pattern}$`).test(text)
}

/**
 * How many deltas a ref gets (1: from scratch; 2: also from its parent; …). `ostree-metadata`
 * none, `appstream/*` 1, `appstream2/*` the repo's appstream depth, an app or runtime the first
 * matching rule (by id, and by arch when the rule names any), anything else none.
 */
export function deltaDepth(ref: string, rules: readonly DeltaRule[], appstreamDepth: number): number {
  if (ref === 'ostree-metadata') return 0
  if (ref.startsWith('appstream/')) return 1
  if (ref.startsWith('appstream2/')) return appstreamDepth
  const parts = ref.split('/')
  if (parts.length !== 4 || (parts[0] !== 'app' && parts[0] !== 'runtime')) return 0
  const [, id = '', arch = ''] = parts
  const rule = rules.find((candidate) => candidate.id.some((glob) => globMatches(glob, id)) && (candidate.arch.length === 0 || candidate.arch.some((glob) => globMatches(glob, arch))))
  return rule?.depth ?? 0
}

/**
 * The deltas a ref at depth `depth` wants, given its history newest first (the ref's commit, then
 * each parent the repo holds): from scratch, then from the parent, the grandparent… `depth` in all.
 */
export function wantedDeltas(history: readonly string[], depth: number): Delta[] {
  const [to, ...ancestors] = history
  if (!to || depth <= 0) return []
  return [{ from: null, to }, ...ancestors.slice(0, depth - 1).map((from) => ({ from, to }))]
}

/** What to generate and what to retire, by name. */
export function planDeltas(wanted: readonly Delta[], existing: readonly Delta[]): { missing: Delta[]; unwanted: Delta[] } {
  const wantedNames = new Set(wanted.map(deltaName))
  const existingNames = new Set(existing.map(deltaName))
  const missing = [...new Map(wanted.filter((delta) => !existingNames.has(deltaName(delta))).map((delta) => [deltaName(delta), delta])).values()]
  const unwanted = existing.filter((delta) => !wantedNames.has(deltaName(delta)))
  return { missing, unwanted }
}
