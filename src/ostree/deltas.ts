import { parseDeltaName, type Delta } from '../domain/repo/deltas.ts'
import { run, type RunOptions } from '../process/run.ts'

/** A ref's commit and the ancestors the repo holds, newest first, at most `max`. */
export async function refHistory(repo: string, ref: string, max: number): Promise<string[]> {
  const { stdout } = await run('ostree', [`--repo=${repo}`, 'log', ref], { timeoutMs: 5 * 60_000 })
  const commits: string[] = []
  for (const match of stdout.matchAll(/^commit ([0-9a-f]{64})$/gm)) {
    commits.push(match[1]!)
    if (commits.length >= max) break
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
