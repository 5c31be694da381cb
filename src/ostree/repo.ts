import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { run } from './run.ts'

/** Creates an archive-mode OSTree repo at `repoPath` unless one is there already. */
export async function ensureRepo(repoPath: string, options: { collectionId?: string | null } = {}): Promise<boolean> {
  if (existsSync(path.join(repoPath, 'config'))) return false
  mkdirSync(repoPath, { recursive: true })
  const args = [`--repo=${repoPath}`, 'init', '--mode=archive-z2']
  if (options.collectionId) args.push(`--collection-id=${options.collectionId}`)
  await run('ostree', args, { timeoutMs: 60_000 })
  return true
}
