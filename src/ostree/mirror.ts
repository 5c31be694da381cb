import { existsSync } from 'node:fs'
import path from 'node:path'
import { run, type RunOptions } from '../process/run.ts'
import type { Signing } from './flatpak.ts'
import { pullLocal } from './prune.ts'
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
async function signCommit(repo: string, commit: string, signing: Signing): Promise<void> {
  const homedir = signing.homedir ? [`--gpg-homedir=${signing.homedir}`] : []
  await run('ostree', [`--repo=${repo}`, 'gpg-sign', ...homedir, commit, ...signing.keys], { timeoutMs: 5 * 60_000 })
}

/**
 * Copies commits from another repo on this machine unchanged (their ids, detached signatures and
 * metadata), signs each with `signing` too when given, and points the refs at them.
 */
export async function importCommits(dest: string, src: string, refs: Readonly<Record<string, string>>, signing: Signing | null, output: Output = {}): Promise<void> {
  for (const [refName, commit] of Object.entries(refs)) {
    await pullLocal(dest, src, [commit], output)
    if (signing && signing.keys.length) await signCommit(dest, commit, signing)
    await run('ostree', [`--repo=${dest}`, 'refs', '--force', `--create=${refName}`, commit], { timeoutMs: 60_000 })
    output.onLine?.(`${refName} → ${commit}`, 'stdout')
  }
}

export const mirrorDir = (buildRepoBase: string, repo: string, upstream: string) => path.join(buildRepoBase, 'mirrors', `${repo.replaceAll('/', '-')}--${upstream}`)
