import { createHash } from 'node:crypto'
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { RepoConfig } from '../config/config.ts'
import { flatpakImage, ManifestProblem, parseManifest, repositoryOwner, tagPattern, type FlatpakImage } from '../domain/oci/manifest.ts'
import { repoDecider, repoStreamId } from '../domain/repo/repo.ts'
import { checkAppId, checkClaims, checkRepo, type Claims } from '../domain/token/claims.ts'
import type { CommandRunner } from '../eventStore/unitOfWork.ts'
import { blobPath, isDigest, storeBlobFile, touchBlob } from '../storage/ociStore.ts'
import { TokenError } from '../tokens/jwt.ts'
import { commandMetadata, type Actor } from './actor.ts'
import type { TokenService } from './tokens.ts'

/** A refusal in the distribution spec's terms: its error code and HTTP status. */
export class RegistryError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message)
  }
}

/** The prefix each repo with `oci` in the config serves its images under. */
export const ociPrefix = (repo: RepoConfig) => repo.oci?.prefix ?? repo.name.toLowerCase()

/** The spec's repository name grammar. */
const namePattern = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/

/** A token from `Authorization: Bearer <jwt>` or Basic with the token as the password (`skopeo --dest-creds any:<token>`). */
function tokenOf(header: string): string {
  const [scheme, value = ''] = header.split(' ', 2)
  if (scheme?.toLowerCase() === 'bearer') return value
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    return colon < 0 ? '' : decoded.slice(colon + 1)
  }
  return ''
}

/** The anonymous token the token endpoint hands out without credentials: good for reads, which need none. */
export const anonymousToken = 'anonymous'

/**
 * The registry's push side (skopeo, an OCI build system): who may push where, and manifests.
 * Blob uploads need the `upload` scope for the repo and an app id matching the repository's name;
 * a manifest makes an image visible to every client, so it needs `publish` as well, for the app
 * its `org.flatpak.ref` label names (and its branch, when the token lists branches).
 */
export function createRegistryService(deps: { run: CommandRunner; repos: ReadonlyMap<string, RepoConfig>; tokens: TokenService; root: string; /** After an image is recorded (the catalog in this process drops its copy at once). */ onRecorded?: () => void }) {
  const prefixes = new Map([...deps.repos.values()].filter((repo) => repo.oci).map((repo) => [ociPrefix(repo), repo]))

  /** The repo a repository name belongs to, or NAME_UNKNOWN / NAME_INVALID. */
  function owner(repository: string) {
    if (!namePattern.test(repository)) {
      throw new RegistryError(400, 'NAME_INVALID', `"${repository}" is not a repository name: lower-case letters, digits, ".", "_", "-", separated by "/"`)
    }
    const found = repositoryOwner(repository, prefixes)
    if (!found || found.name.includes('/')) {
      throw new RegistryError(404, 'NAME_UNKNOWN', `No repository ${repository}: images live at <prefix>/<app id in lower case>, prefixes: ${[...prefixes.keys()].join(', ') || 'none (no repo has "oci" in the config)'}`)
    }
    return found
  }

  async function claimsOf(header: string | undefined, requestId: string | null): Promise<Claims> {
    const token = header ? tokenOf(header) : ''
    if (!token || token === anonymousToken) {
      throw new RegistryError(401, 'UNAUTHORIZED', 'Pushing needs a flatdepot token: skopeo --dest-registry-token <token> (or --dest-creds token:<token>)')
    }
    try {
      const claims = await deps.tokens.authenticate(`Bearer ${token}`, requestId)
      if (!claims) throw new TokenError('missing', 'No token presented')
      return claims
    } catch (error) {
      if (error instanceof TokenError) throw new RegistryError(401, 'UNAUTHORIZED', `Invalid token: ${error.message}`)
      throw error
    }
  }

  const deny = (reason: string | null) => {
    if (reason !== null) throw new RegistryError(403, 'DENIED', `Not enough permissions: ${reason}`)
  }

  return {
    /** The token endpoint's answer: the token itself once it verifies (flatdepot tokens are bearer tokens already). */
    async issue(header: string | undefined, requestId: string | null): Promise<{ token: string; expiresIn: number }> {
      if (!header) return { token: anonymousToken, expiresIn: 3600 }
      const claims = await claimsOf(header, requestId)
      return { token: tokenOf(header), expiresIn: Math.max(claims.exp - Math.floor(Date.now() / 1000), 0) }
    },

    /** May this token send blobs to this repository (scope `upload`, the repo, an app id of that name)? */
    async authorizeUpload(header: string | undefined, repository: string, requestId: string | null): Promise<Actor> {
      const { repo, name } = owner(repository)
      const claims = await claimsOf(header, requestId)
      deny(checkClaims(claims, 'build', 'upload') ?? checkRepo(claims, repo.name))
      // The name is the id in lower case: one of the token's ids must give it (the manifest then checks the exact id).
      const lower = (id: string) => id.toLowerCase()
      const coversName =
        claims.prefixes.length === 0 ||
        claims.prefixes.some((prefix) => prefix === '' || name === lower(prefix) || name.startsWith(`${lower(prefix)}.`)) ||
        claims.apps.some((app) => lower(app) === name)
      deny(coversName ? null : `Id ${name} not matching prefix in token`)
      return { claims, requestId }
    },

    /** A blob's repository exists (reads are public: a digest is only known to who has the content). */
    readable(repository: string): boolean {
      try {
        owner(repository)
        return true
      } catch {
        return false
      }
    },

    /**
     * A manifest PUT: checked (an OCI image manifest, every blob it names stored, a flatpak image
     * of an app the token may publish, pushed under its own name), stored by digest, and recorded
     * as the repository's image: the index lists it and the tag moves to it.
     */
    async putManifest(actor: Actor, repository: string, reference: string, contentType: string | undefined, body: Buffer): Promise<{ digest: string; image: FlatpakImage }> {
      const { repo, prefix } = owner(repository)
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`
      if (isDigest(reference)) {
        if (reference !== digest) throw new RegistryError(400, 'DIGEST_INVALID', `The manifest's digest is ${digest}, not ${reference}`)
      } else if (!tagPattern.test(reference)) {
        throw new RegistryError(400, 'TAG_INVALID', `"${reference}" is not a tag: letters, digits, "_", "." and "-", at most 128, not starting with "." or "-"`)
      }
      let image: FlatpakImage
      let size = body.length
      try {
        const manifest = parseManifest(body, contentType)
        for (const blob of [manifest.config, ...manifest.layers]) {
          const info = (await touchBlob(deps.root, blob.digest)) ? await stat(blobPath(deps.root, blob.digest)).catch(() => null) : null
          if (!info) throw new RegistryError(400, 'MANIFEST_BLOB_UNKNOWN', `The manifest names blob ${blob.digest}, which was not uploaded`, { digest: blob.digest })
          if (info.size !== blob.size) throw new RegistryError(400, 'MANIFEST_INVALID', `The manifest gives blob ${blob.digest} ${blob.size} bytes; it has ${info.size}`)
          size += blob.size
        }
        if (manifest.config.size > 8 * 1024 * 1024) throw new ManifestProblem('MANIFEST_INVALID', 'The image config is larger than 8 MiB')
        image = flatpakImage(await readFile(blobPath(deps.root, manifest.config.digest)), repository, prefix)
      } catch (error) {
        if (error instanceof ManifestProblem) throw new RegistryError(error.code === 'UNSUPPORTED' ? 415 : 400, error.code, error.message)
        throw error
      }
      const claims = actor.claims!
      deny(checkClaims(claims, 'build', 'publish') ?? checkRepo(claims, repo.name) ?? checkAppId(claims, image.id))
      if (claims.branches.length > 0 && !claims.branches.includes(image.branch)) deny(`Branch ${image.branch} not matching branches in token`)
      await storeBlob(deps.root, digest, body)
      await deps.run(commandMetadata(actor), (unit) =>
        unit.decide(repoDecider, repoStreamId(repo.name), 'repo', {
          type: 'RecordOciPush',
          data: {
            repository,
            ref: image.ref,
            commit: image.commit,
            digest,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            os: image.os,
            architecture: image.architecture,
            tags: isDigest(reference) ? [] : [reference],
            labels: image.labels,
            annotations: {},
            size,
          },
        }),
      )
      deps.onRecorded?.()
      return { digest, image }
    },
  }
}

/** Writes a small blob (a manifest) durably under its digest; one already there is kept. */
async function storeBlob(root: string, digest: string, bytes: Buffer): Promise<void> {
  if (await stat(blobPath(root, digest)).then(() => true, () => false)) return
  const temp = path.join(root, 'tmp', `${digest.slice(7)}.${process.pid}.${Date.now()}`)
  await mkdir(path.dirname(temp), { recursive: true })
  await writeFile(temp, bytes)
  await storeBlobFile(root, temp, digest)
  await rm(temp, { force: true })
}

export type RegistryService = ReturnType<typeof createRegistryService>
