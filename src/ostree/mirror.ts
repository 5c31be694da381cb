import { existsSync } from 'node:fs'
import path from 'node:path'
import { run, type RunOptions } from '../process/run.ts'
import { gpgArgs, type Signing } from './flatpak.ts'
import { ensureRepo } from './ostree.ts'

type Output = Pick<RunOptions, 'onLine' | 'signal'>
const remote = 'upstream'

/**
 * A repo of its own per mirrored upstream, where pulls land and are verified before anything
 * reaches the served repo: its remote `upstream` checks every commit's signature and the
 * summary's against the upstream's key(s). Set up again on each sync (the config may change).
 */
export async function prepareMirrorRepo(dir: string, upstream: { url: string; gpgKeyFile: string }): Promise<void> {
  await ensureRepo(dir)
  if (!existsSync(upstream.gpgKeyFile)) throw new Error(`the upstream's gpg-key file ${upstream.gpgKeyFile} does not exist`)
  await run('ostree', [`--repo=${dir}`, 'remote', 'delete', '--if-exists', remote], { timeoutMs: 60_000 })
  await run('ostree', [`--repo=${dir}`, 'remote', 'add', '--set=gpg-verify=true', '--set=gpg-verify-summary=true', `--gpg-import=${upstream.gpgKeyFile}`, remote, upstream.url], { timeoutMs: 60_000 })
}

/** The refs the upstream's (verified) summary lists. */
export async function upstreamRefs(dir: string, options: Output = {}): Promise<string[]> {
  const { stdout } = await run('ostree', [`--repo=${dir}`, 'remote', 'refs', remote], { timeoutMs: 5 * 60_000, ...options })
  return stdout.split('\n').map((line) => line.trim()).filter((line) => line.startsWith(`${remote}:`)).map((line) => line.slice(remote.length + 1))
}

/** Pulls refs from the upstream; a commit without a good signature by the upstream's key fails the pull. */
export async function pullFromUpstream(dir: string, refs: readonly string[], options: Output = {}): Promise<void> {
  if (refs.length === 0) return
  await run('ostree', [`--repo=${dir}`, 'pull', remote, ...refs], { timeoutMs: 60 * 60_000, ...options })
}

export async function upstreamCommit(dir: string, ref: string): Promise<string> {
  return (await run('ostree', [`--repo=${dir}`, 'rev-parse', `${remote}:${ref}`], { timeoutMs: 60_000 })).stdout.trim()
}

/** Adds the repo's own signature beside upstream's (clients of this repo trust its key; upstream's stays verifiable). */
export async function signCommit(repo: string, commit: string, signing: Signing | null): Promise<void> {
  const args = gpgArgs(signing)
  if (args.length === 0) return
  const homedir = args.filter((arg) => arg.startsWith('--gpg-homedir='))
  const keys = args.filter((arg) => arg.startsWith('--gpg-sign=')).map((arg) => arg.slice('--gpg-sign='.length))
  await run('ostree', [`--repo=${repo}`, 'gpg-sign', ...homedir, commit, ...keys], { timeoutMs: 5 * 60_000 })
}

/** Points a ref of the served repo at an imported commit. */
export async function setRef(repo: string, ref: string, commit: string): Promise<void> {
  await run('ostree', [`--repo=${repo}`, 'refs', '--force', `--create=${ref}`, commit], { timeoutMs: 60_000 })
}

export const mirrorDir = (buildRepoBase: string, repo: string, upstream: string) => path.join(buildRepoBase, 'mirrors', `${repo.replaceAll('/', '-')}--${upstream}`)
