import { InvalidInputError } from '../shared/errors.ts'

const commitChecksum = /^[0-9a-f]{64}$/
// An element of a flatpak id: letters, digits, '_' and '-' (the last element only), not starting
// with a digit. flatpak's own rule; it keeps ids safe as file names too.
const idElement = /^[A-Za-z_][A-Za-z0-9_-]*$/
const branchName = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/
const archName = /^[A-Za-z0-9_]+$/

export function isValidAppId(id: string): boolean {
  const parts = id.split('.')
  return id.length <= 255 && parts.length >= 3 && parts.every((p) => idElement.test(p))
}

export function validateAppId(id: string): void {
  if (!isValidAppId(id)) {
    throw new InvalidInputError(
      `Invalid app id "${id}": expected at least three dot-separated elements of letters, digits, '_' or '-' (like org.example.App)`,
      'appId',
    )
  }
}

export function validateCommitChecksum(commit: string): void {
  if (!commitChecksum.test(commit)) {
    throw new InvalidInputError(`Invalid commit "${commit}": expected 64 lowercase hex characters`, 'commit')
  }
}

export type ParsedRef =
  | { kind: 'app' | 'runtime'; id: string; arch: string; branch: string }
  | { kind: 'screenshots'; arch: string }

/** flat-manager's validate_ref, with flatpak's element rules added: anything else is refused. */
export function parseRef(refName: string): ParsedRef {
  const parts = refName.split('/')
  const [kind, first, arch, branch] = parts
  if ((kind === 'app' || kind === 'runtime') && parts.length === 4 && first && arch && branch) {
    if (isValidAppId(first) && archName.test(arch) && branchName.test(branch)) {
      return { kind, id: first, arch, branch }
    }
  } else if (kind === 'screenshots' && parts.length === 2 && first && archName.test(first)) {
    return { kind, arch: first }
  }
  throw new InvalidInputError(
    `Invalid ref_name ${refName}: expected app/<id>/<arch>/<branch>, runtime/<id>/<arch>/<branch> or screenshots/<arch>`,
    'refName',
  )
}

/** Extra ids (flat-manager add_extra_ids): dot-separated, every element non-empty alphanumeric. */
export function validateExtraId(id: string): void {
  const ok = id.split('.').every((element) => /^[A-Za-z0-9]+$/.test(element))
  if (!ok) throw new InvalidInputError(`Invalid extra id ${id}`, 'ids')
}
