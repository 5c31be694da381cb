import { parseRef } from '../build/names.ts'

/**
 * What the registry's push API accepts as a flatpak image, pure: an OCI image manifest whose
 * config carries the `org.flatpak.ref` label, pushed under the repository name that ref gives.
 * Every refusal names what to change; the HTTP edge turns it into the distribution spec's error.
 */
export const ociManifestType = 'application/vnd.oci.image.manifest.v1+json'
export const ociConfigType = 'application/vnd.oci.image.config.v1+json'
/** The spec asks registries to take manifests of at least 4 MiB. */
export const maxManifestBytes = 4 * 1024 * 1024

export type ManifestProblemCode = 'MANIFEST_INVALID' | 'NAME_INVALID' | 'TAG_INVALID' | 'UNSUPPORTED'

export class ManifestProblem extends Error {
  constructor(
    readonly code: ManifestProblemCode,
    message: string,
  ) {
    super(message)
  }
}

export type Descriptor = Readonly<{ mediaType: string; digest: string; size: number }>
export type ParsedManifest = Readonly<{ config: Descriptor; layers: readonly Descriptor[] }>

const digestPattern = /^sha256:[0-9a-f]{64}$/
/** The distribution spec's tag grammar. */
export const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/

function descriptor(value: unknown, where: string): Descriptor {
  const candidate = value as Partial<Descriptor> | null
  if (typeof candidate !== 'object' || candidate === null) throw new ManifestProblem('MANIFEST_INVALID', `${where} is not a descriptor object`)
  if (typeof candidate.mediaType !== 'string') throw new ManifestProblem('MANIFEST_INVALID', `${where} has no mediaType`)
  if (typeof candidate.digest !== 'string' || !digestPattern.test(candidate.digest)) {
    throw new ManifestProblem('MANIFEST_INVALID', `${where} has no sha256 digest (sha256:<64 hex>)`)
  }
  if (!Number.isSafeInteger(candidate.size) || (candidate.size as number) < 0) throw new ManifestProblem('MANIFEST_INVALID', `${where} has no size`)
  return { mediaType: candidate.mediaType, digest: candidate.digest, size: candidate.size as number }
}

/** An OCI image manifest, from the bytes and Content-Type a client PUT. */
export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  const declared = contentType?.split(';')[0]?.trim()
  if (declared && declared !== ociManifestType) {
    throw new ManifestProblem(
      'UNSUPPORTED',
      `Manifests of type ${declared} are not accepted: flatpak installs OCI image manifests (${ociManifestType}), one per architecture (no image indexes)`,
    )
  }
  let json: { schemaVersion?: unknown; mediaType?: unknown; config?: unknown; layers?: unknown }
  try {
    json = JSON.parse(body.toString('utf8')) as typeof json
  } catch (error) {
    throw new ManifestProblem('MANIFEST_INVALID', `The manifest is not JSON: ${(error as Error).message}`)
  }
  if (typeof json !== 'object' || json === null) throw new ManifestProblem('MANIFEST_INVALID', 'The manifest is not a JSON object')
  if (json.schemaVersion !== 2) throw new ManifestProblem('MANIFEST_INVALID', 'The manifest\'s schemaVersion must be 2')
  if (json.mediaType !== undefined && json.mediaType !== ociManifestType) {
    throw new ManifestProblem('UNSUPPORTED', `The manifest's mediaType is ${String(json.mediaType)}: only ${ociManifestType} is accepted`)
  }
  const config = descriptor(json.config, 'config')
  if (config.mediaType !== ociConfigType) throw new ManifestProblem('MANIFEST_INVALID', `config has mediaType ${config.mediaType}, not ${ociConfigType}`)
  if (!Array.isArray(json.layers) || json.layers.length === 0) throw new ManifestProblem('MANIFEST_INVALID', 'The manifest has no layers')
  const layers = json.layers.map((layer, index) => descriptor(layer, `layers[${index}]`))
  return { config, layers }
}

/** flatpak's architecture names as OCI (Go) names them. */
const ociArchitectures: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', i386: '386', arm: 'arm', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' }
export const ociArchitecture = (flatpakArch: string) => ociArchitectures[flatpakArch] ?? flatpakArch

export type FlatpakImage = Readonly<{
  ref: string
  kind: 'app' | 'runtime'
  id: string
  arch: string
  branch: string
  commit: string
  os: string
  architecture: string
  labels: Record<string, string>
}>

/**
 * The flatpak facts of an image config, checked against the repository it is pushed to: the
 * name must be `<prefix>/<id in lower case>` (what the exporter names it, so one app has one
 * repository whichever way its images came), and the architecture must be the ref's.
 */
export function flatpakImage(configBytes: Buffer, repository: string, prefix: string): FlatpakImage {
  let config: { os?: unknown; architecture?: unknown; config?: { Labels?: unknown } }
  try {
    config = JSON.parse(configBytes.toString('utf8')) as typeof config
  } catch {
    throw new ManifestProblem('MANIFEST_INVALID', 'The image config is not JSON')
  }
  const labels = (config.config?.Labels ?? {}) as Record<string, unknown>
  const refName = labels['org.flatpak.ref']
  if (typeof refName !== 'string') {
    throw new ManifestProblem('MANIFEST_INVALID', 'Not a flatpak image: its config has no org.flatpak.ref label (make images with `flatpak build-bundle --oci`)')
  }
  let ref
  try {
    ref = parseRef(refName)
  } catch (error) {
    throw new ManifestProblem('MANIFEST_INVALID', `The org.flatpak.ref label: ${(error as Error).message}`)
  }
  if (ref.kind === 'screenshots') throw new ManifestProblem('MANIFEST_INVALID', 'The org.flatpak.ref label names a screenshots ref: only apps and runtimes are images')
  const expected = `${prefix}/${ref.id.toLowerCase()}`
  if (repository !== expected) throw new ManifestProblem('NAME_INVALID', `An image of ${refName} is pushed as ${expected}, not ${repository}`)
  const architecture = String(config.architecture ?? '')
  if (architecture !== ociArchitecture(ref.arch)) {
    throw new ManifestProblem('MANIFEST_INVALID', `The image's architecture is "${architecture}" but its ref is for ${ref.arch} (${ociArchitecture(ref.arch)})`)
  }
  const commit = labels['org.flatpak.commit']
  return {
    ref: refName,
    kind: ref.kind,
    id: ref.id,
    arch: ref.arch,
    branch: ref.branch,
    commit: typeof commit === 'string' ? commit : '',
    os: String(config.os ?? 'linux'),
    architecture,
    labels: Object.fromEntries(Object.entries(labels).filter((entry): entry is [string, string] => typeof entry[1] === 'string')),
  }
}

/** The repo an OCI repository name belongs to: the configured prefix it starts with, and the rest. */
export function repositoryOwner<R>(repository: string, prefixes: ReadonlyMap<string, R>): { repo: R; prefix: string; name: string } | null {
  let best: { repo: R; prefix: string; name: string } | null = null
  for (const [prefix, repo] of prefixes) {
    if (repository.startsWith(`${prefix}/`) && (!best || prefix.length > best.prefix.length)) {
      best = { repo, prefix, name: repository.slice(prefix.length + 1) }
    }
  }
  return best
}
