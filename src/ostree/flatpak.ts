import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { run, type RunOptions } from '../process/run.ts'

export type Signing = { keys: readonly string[]; homedir: string | null }

/** flat-manager's add_gpg_args: the homedir, then one --gpg-sign per key. */
export function gpgArgs(signing: Signing | null): string[] {
  if (!signing || signing.keys.length === 0) return []
  return [...(signing.homedir ? [`--gpg-homedir=${signing.homedir}`] : []), ...signing.keys.map((key) => `--gpg-sign=${key}`)]
}

type Output = Pick<RunOptions, 'onLine' | 'signal'>

/** Copies commits between repos (commit: upload repo → build repo; publish: build repo → main repo). */
export async function buildCommitFrom(options: {
  srcRepo: string
  destRepo: string
  srcRef?: string
  destRefs?: string[]
  signing: Signing | null
  untrusted?: boolean
  force?: boolean
  timestampNow?: boolean
  endOfLife?: string | null
  endOfLifeRebase?: string | null
  tokenType?: number | null
  extraCollectionIds?: string[]
  /** Named subsets the commits join (`xa.subsets`): per-subset summaries list them. */
  subsets?: readonly string[]
} & Output): Promise<void> {
  const args = ['build-commit-from', '--no-update-summary']
  if (options.timestampNow) args.push('--timestamp=NOW')
  if (options.untrusted) args.push('--untrusted', '--disable-fsync')
  if (options.force) args.push('--force')
  args.push(...gpgArgs(options.signing))
  if (options.endOfLife) args.push(`--end-of-life=${options.endOfLife}`)
  if (options.endOfLifeRebase) args.push(`--end-of-life-rebase=${options.endOfLifeRebase}`)
  if (options.tokenType !== null && options.tokenType !== undefined) args.push(`--token-type=${options.tokenType}`)
  for (const id of options.extraCollectionIds ?? []) args.push(`--extra-collection-id=${id}`)
  for (const subset of options.subsets ?? []) args.push(`--subset=${subset}`)
  args.push(`--src-repo=${options.srcRepo}`)
  if (options.srcRef) args.push(`--src-ref=${options.srcRef}`)
  args.push(options.destRepo, ...(options.destRefs ?? []))
  await run('flatpak', args, { timeoutMs: 60 * 60_000, onLine: options.onLine, signal: options.signal })
}

/** Appstream branches and the summary (signed whenever keys are configured, or clients stop trusting it). */
export async function buildUpdateRepo(options: {
  repo: string
  signing: Signing | null
  title?: string | null
  defaultBranch?: string | null
} & Output): Promise<void> {
  const args = ['build-update-repo']
  if (options.title) args.push(`--title=${options.title}`)
  if (options.defaultBranch) args.push(`--default-branch=${options.defaultBranch}`)
  args.push(...gpgArgs(options.signing), options.repo)
  await run('flatpak', args, { timeoutMs: 60 * 60_000, onLine: options.onLine, signal: options.signal })
}

/**
 * The commit a ref points at. A local ref is a file holding the checksum (refs/heads/<ref>), read
 * directly: a process spawn costs tens of milliseconds from a large server process. Anything
 * else goes to `ostree rev-parse`.
 */
export async function revParse(repo: string, ref: string): Promise<string> {
  try {
    const checksum = (await readFile(path.join(repo, 'refs', 'heads', ref), 'utf8')).trim()
    if (/^[0-9a-f]{64}$/.test(checksum)) return checksum
  } catch {
    // not a plain local ref: ask ostree
  }
  return (await run('ostree', [`--repo=${repo}`, 'rev-parse', ref], { timeoutMs: 60_000 })).stdout.trim()
}

export async function listRefs(repo: string): Promise<string[]> {
  const { stdout } = await run('ostree', [`--repo=${repo}`, 'refs'], { timeoutMs: 60_000 })
  return stdout.split('\n').filter(Boolean)
}

const exportedKeys = new Map<string, Promise<Buffer>>()

/** The public keys as gpg exports them (binary), for GPGKey= lines; once per key set and process. */
export function exportPublicKeys(signing: Signing): Promise<Buffer> {
  const cacheKey = JSON.stringify([signing.homedir, signing.keys])
  let exported = exportedKeys.get(cacheKey)
  if (!exported) {
    const args = [...(signing.homedir ? ['--homedir', signing.homedir] : []), '--batch', '--export', ...signing.keys]
    exported = run('gpg', args, { timeoutMs: 60_000, encoding: 'buffer' }).then(({ stdout }) => stdout as unknown as Buffer)
    exported.catch(() => exportedKeys.delete(cacheKey))
    exportedKeys.set(cacheKey, exported)
  }
  return exported
}

/** Stops the gpg-agent signing commands started (one per homedir, reused by every job), at shutdown. */
export async function stopGpgAgent(homedir: string | null): Promise<void> {
  if (!homedir) return
  await run('gpgconf', ['--homedir', homedir, '--kill', 'gpg-agent'], { timeoutMs: 30_000 }).catch(() => {})
}

/**
 * flat-manager's prune: what would go (dry run), then the prune itself, keeping three commits of
 * history per ref; the summary and appstream are left as they are.
 */
export async function pruneRepo(repo: string, options: Output): Promise<void> {
  const base = ['build-update-repo', '-v', '--no-update-summary', '--no-update-appstream', '--prune-depth=3']
  await run('flatpak', [...base, '--prune-dry-run', repo], { timeoutMs: 60 * 60_000, onLine: options.onLine, signal: options.signal })
  await run('flatpak', [...base, '--prune', repo], { timeoutMs: 60 * 60_000, onLine: options.onLine, signal: options.signal })
}

/** A ref as an OCI image layout (`flatpak build-bundle --oci`): manifest, config with flatpak's labels, one layer. */
export async function buildOciBundle(options: { repo: string; dir: string; id: string; arch: string; branch: string; runtime: boolean } & Output): Promise<void> {
  const args = ['build-bundle', '--oci', `--arch=${options.arch}`, ...(options.runtime ? ['--runtime'] : []), options.repo, options.dir, options.id, options.branch]
  await run('flatpak', args, { timeoutMs: 60 * 60_000, onLine: options.onLine, signal: options.signal })
}
