import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { flatpakImage, ManifestProblem, ociConfigType, ociManifestType, parseManifest, repositoryOwner } from '../../src/domain/oci/manifest.ts'
import { imagesToPrune } from '../../src/domain/oci/retention.ts'

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`
const manifest = (overrides: Record<string, unknown> = {}) =>
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifestType,
      config: { mediaType: ociConfigType, digest: digest(1), size: 10 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digest(2), size: 20 }],
      ...overrides,
    }),
  )
const config = (labels: Record<string, unknown>, architecture = 'amd64') => Buffer.from(JSON.stringify({ os: 'linux', architecture, config: { Labels: labels } }))
const refused = (work: () => unknown, code: string, message: RegExp) =>
  assert.throws(work, (error: unknown) => error instanceof ManifestProblem && error.code === code && message.test(error.message))

describe('pushed manifests: what the registry takes', () => {
  it('an OCI image manifest with a config and layers is read', () => {
    const parsed = parseManifest(manifest(), ociManifestType)
    assert.equal(parsed.config.digest, digest(1))
    assert.deepEqual(parsed.layers.map((layer) => layer.size), [20])
  })
  it('refuses image indexes and Docker manifests, naming what flatpak installs', () => {
    refused(() => parseManifest(manifest(), 'application/vnd.oci.image.index.v1+json'), 'UNSUPPORTED', /flatpak installs OCI image manifests/)
    refused(() => parseManifest(manifest({ mediaType: 'application/vnd.docker.distribution.manifest.v2+json' }), undefined), 'UNSUPPORTED', /only application\/vnd\.oci/)
  })
  it('refuses broken manifests with the field at fault', () => {
    refused(() => parseManifest(Buffer.from('{nope'), ociManifestType), 'MANIFEST_INVALID', /not JSON/)
    refused(() => parseManifest(manifest({ schemaVersion: 1 }), ociManifestType), 'MANIFEST_INVALID', /schemaVersion must be 2/)
    refused(() => parseManifest(manifest({ layers: [] }), ociManifestType), 'MANIFEST_INVALID', /no layers/)
    refused(() => parseManifest(manifest({ layers: [{ mediaType: 'x', digest: 'md5:abc', size: 1 }] }), ociManifestType), 'MANIFEST_INVALID', /layers\[0\] has no sha256 digest/)
    refused(() => parseManifest(manifest({ config: { mediaType: 'application/json', digest: digest(1), size: 1 } }), ociManifestType), 'MANIFEST_INVALID', /config has mediaType/)
  })
  it('takes the flatpak facts from the config, checked against the name and the architecture', () => {
    const labels = { 'org.flatpak.ref': 'app/org.test.Paid/x86_64/stable', 'org.flatpak.commit': 'c'.repeat(64), 'org.flatpak.download-size': '10' }
    const image = flatpakImage(config(labels), 'stable/org.test.paid', 'stable')
    assert.equal(image.id, 'org.test.Paid')
    assert.equal(image.branch, 'stable')
    assert.equal(image.commit, 'c'.repeat(64))
    refused(() => flatpakImage(config(labels), 'stable/org.test.other', 'stable'), 'NAME_INVALID', /pushed as stable\/org\.test\.paid/)
    refused(() => flatpakImage(config(labels, 'arm64'), 'stable/org.test.paid', 'stable'), 'MANIFEST_INVALID', /architecture is "arm64" but its ref is for x86_64 \(amd64\)/)
    refused(() => flatpakImage(config({}), 'stable/org.test.paid', 'stable'), 'MANIFEST_INVALID', /Not a flatpak image/)
    refused(() => flatpakImage(config({ 'org.flatpak.ref': 'screenshots/x86_64' }), 'stable/x', 'stable'), 'MANIFEST_INVALID', /screenshots/)
    refused(() => flatpakImage(config({ 'org.flatpak.ref': 'app/bad/x86_64/stable' }), 'stable/bad', 'stable'), 'MANIFEST_INVALID', /org\.flatpak\.ref label: Invalid ref_name/)
  })
  it('finds the repo of a repository name by the longest prefix', () => {
    const prefixes = new Map([
      ['stable', 'stable-repo'],
      ['flathub/beta', 'beta-repo'],
    ])
    assert.deepEqual(repositoryOwner('flathub/beta/org.test.app', prefixes), { repo: 'beta-repo', prefix: 'flathub/beta', name: 'org.test.app' })
    assert.deepEqual(repositoryOwner('stable/org.test.app', prefixes), { repo: 'stable-repo', prefix: 'stable', name: 'org.test.app' })
    assert.equal(repositoryOwner('stablex/org.test.app', prefixes), null)
  })
})

describe('OCI image retention follows the prune policy', () => {
  const day = 86_400_000
  const now = new Date('2026-12-04T00:00:00Z')
  const image = (n: number, ageDays: number, tags: string[] = [], ref = 'app/org.test.A/x86_64/stable') => ({
    repository: 'stable/org.test.a',
    digest: digest(n),
    ref,
    architecture: 'amd64',
    tags,
    createdAt: new Date(now.getTime() - ageDays * day),
  })
  const images = [image(1, 0, ['stable', 'latest']), image(2, 1), image(3, 2), image(4, 3), image(5, 4, ['beta'], 'app/org.test.A/x86_64/beta'), image(6, 5, [], 'app/org.test.A/x86_64/beta')]
  const removed = (depth: number, keepYoungerThanDays: number | null = null) => imagesToPrune(images, { depth, keepYoungerThanDays }, now).map((found) => found.digest).sort()
  it('keeps tagged images and `depth` older images of each ref', () => {
    assert.deepEqual(removed(0), [digest(2), digest(3), digest(4), digest(6)])
    assert.deepEqual(removed(1), [digest(3), digest(4)])
    assert.deepEqual(removed(3), [])
  })
  it('keeps images younger than the age kept besides', () => {
    assert.deepEqual(removed(0, 2), [digest(4), digest(6)])
    assert.deepEqual(removed(0, 10), [])
  })
})
