import { parseDeltaName, type Delta } from '../domain/repo/deltas.ts'
import { run, type RunOptions } from '../process/run.ts'
import { commitParent } from './commitObject.ts'
import { revParse } from './flatpak.ts'

/**
 * A ref's commit and the ancestors the repo holds, newest first, at most `max` (what `ostree log`
 * lists): read from the ref file and the commit objects, without a process per ref.
 */
export async function refHistory(repo: string, ref: string, max: number): Promise<string[]> {
  const commits: string[] = []
  let commit: string | null | undefined = await revParse(repo, ref)
  while (commit && commits.length < max) {
    const parent = await commitParent(repo, commit)
    if (parent === undefined) break // history beyond what the repo holds
    commits.push(commit)
    commit = parent
  }
  return commits
}

/** The static deltas `deltas/` holds, as ostree lists them. */
export async function listDeltas(repo: string): Promise<Delta[]> {
  const { stdout } = await run('ostree', [`--repo=${repo}`, 'static-delta', 'list'], { timeoutMs: 5 * 60_000 })
  return stdout.split('\n').flatMap((line) => {
    const delta = parseDeltaName(line.trim())
    return delta ? [delta] : []
  })
}

/** One delta, as flat-manager's generator makes it (`build-update-repo` leaves the summary alone here). */
export async function generateDelta(repo: string, delta: Delta, options: Pick<RunOptions, 'onLine' | 'signal'>): Promise<void> {
  const args = ['build-update-repo', `--generate-static-delta-to=${delta.to}`]
  if (delta.from) args.push(`--generate-static-delta-from=${delta.from}`)
  args.push(repo)
  await run('flatpak', args, { timeoutMs: 60 * 60_000, ...options })
}
