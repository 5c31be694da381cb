import { checkAppId, checkRepo, checkScope, type Claims } from '../domain/token/claims.ts'
import { parseRef } from '../domain/build/names.ts'
import { PermissionDeniedError } from '../domain/shared/errors.ts'
import { TokenError } from '../tokens/jwt.ts'
import { run } from '../process/run.ts'

/**
 * Which files of a repo belong to one commit in a way that lets a client install it: the commit
 * object (and its detached metadata) and the static deltas to it. dirtree, dirmeta and file
 * objects are named by their content: without the commit, nobody knows which to ask for
 * (flat-manager gates the same files). Returns the commit, or null for an ungated file.
 */
export function commitOfFile(relative: string): string | null {
  const object = /^objects\/([0-9a-f]{2})\/([0-9a-f]{62})\.(commit|commitmeta)$/.exec(relative)
  if (object) return object[1]! + object[2]!
  const delta = /^deltas\/([A-Za-z0-9+_]{2})\/([A-Za-z0-9+_-]+)\/[^/]+$/.exec(relative)
  if (delta) {
    const name = delta[1]! + delta[2]!
    // FROM-TO, or TO for a delta from scratch, each the modified base64 of 32 bytes (43 characters).
    const to = name.includes('-') ? name.slice(name.indexOf('-') + 1) : name
    if (to.length !== 43) return null
    const bytes = Buffer.from(to.replaceAll('_', '/'), 'base64')
    return bytes.length === 32 ? bytes.toString('hex') : null
  }
  return null
}

/**
 * flatpak stores xa.token-type as a little-endian int32 inside ostree's big-endian commit
 * variant; `ostree show` prints the raw int32 (type 2 as 33554432). flatpak's own summary reads it
 * back as 2 (`tokt` in xa.sparse-cache): the bytes swapped.
 */
export function flatpakInt32(printed: number): number {
  const buffer = Buffer.alloc(4)
  buffer.writeInt32BE(printed | 0)
  return buffer.readInt32LE()
}

export type CommitAccess = Readonly<{ tokenType: number; refs: readonly string[] }>

/** A commit's token type (`xa.token-type`, else the repo's default) and the refs it is bound to. */
export async function readCommitAccess(repo: string, commit: string, defaultTokenType: number): Promise<CommitAccess | null> {
  const key = async (name: string) => {
    try {
      return (await run('ostree', [`--repo=${repo}`, 'show', commit, `--print-metadata-key=${name}`], { timeoutMs: 30_000 })).stdout.trim()
    } catch {
      return null
    }
  }
  const [tokenType, binding] = await Promise.all([key('xa.token-type'), key('ostree.ref-binding')])
  if (tokenType === null && binding === null) {
    // Neither key: either the commit has no metadata of that kind, or it is not in this repo.
    const exists = await run('ostree', [`--repo=${repo}`, 'show', commit], { timeoutMs: 30_000 }).then(() => true, () => false)
    if (!exists) return null
  }
  const parsed = tokenType === null ? null : /-?\d+/.exec(tokenType)
  const refs = binding === null ? [] : [...binding.matchAll(/'([^']+)'/g)].map((match) => match[1]!)
  return { tokenType: parsed ? flatpakInt32(Number(parsed[0])) : defaultTokenType, refs }
}

/**
 * The download gate of one repo (flat-manager's `require-auth-for-token-types`): commits whose
 * token type is listed need a token with the `download` scope, the repo, and one of the
 * commit's app or runtime ids (by prefix or app). Commits are immutable, so what each one needs
 * is read once (`ostree show`) and remembered.
 */
export function createCommitGate(repo: { name: string; path: string; defaultTokenType: number; protectedTypes: readonly number[] }) {
  const known = new Map<string, Promise<CommitAccess | null>>()
  const maxKnown = 10_000
  const access = (commit: string) => {
    let found = known.get(commit)
    if (!found) {
      found = readCommitAccess(repo.path, commit, repo.defaultTokenType)
      found.catch(() => known.delete(commit))
      if (known.size >= maxKnown) known.delete(known.keys().next().value!)
      known.set(commit, found)
    }
    return found
  }
  const enabled = repo.protectedTypes.length > 0

  return {
    enabled,
    /**
     * Whether the file needs a download token (true: serve it uncached, `no-store`); throws the
     * 401/403 when the token does not cover it.
     */
    async check(relative: string, claims: Claims | null): Promise<boolean> {
      if (!enabled) return false
      const commit = commitOfFile(relative)
      if (!commit) return false
      const needs = await access(commit)
      if (!needs || !repo.protectedTypes.includes(needs.tokenType)) return false
      const ids = needs.refs.flatMap((refName) => {
        try {
          const ref = parseRef(refName)
          return ref.kind === 'app' || ref.kind === 'runtime' ? [ref.id] : []
        } catch {
          return []
        }
      })
      const what = ids.length ? ids.join(', ') : `commit ${commit}`
      if (!claims) throw new TokenError('missing', `No token specified: ${what} in repo ${repo.name} needs a download token`)
      const reason =
        checkScope(claims, 'download') ??
        checkRepo(claims, repo.name) ??
        (ids.length === 0 ? checkAppId(claims, '') : ids.some((id) => checkAppId(claims, id) === null) ? null : `The token does not cover ${what}`)
      if (reason) throw new PermissionDeniedError(`${reason}: downloading ${what} needs a token with the download scope, repo ${repo.name} and the app`)
      return true
    },
  }
}

export type CommitGate = ReturnType<typeof createCommitGate>
