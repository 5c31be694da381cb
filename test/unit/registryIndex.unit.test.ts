import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { indexDocument, IndexQueryError, parseIndexQuery, type IndexedImage } from '../../src/domain/oci/registryIndex.ts'

const image = (repository: string, architecture: string, tags: string[], labels: Record<string, string>, annotations: Record<string, string> = {}): IndexedImage => ({
  repository,
  digest: `sha256:${repository.length}${architecture}${tags.join('')}`,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  os: 'linux',
  architecture,
  tags,
  labels,
  annotations,
})
const images = [
  image('stable/org.test.hello', 'amd64', ['latest', 'stable'], { 'org.flatpak.ref': 'app/org.test.Hello/x86_64/stable', 'org.flatpak.download-size': '2715' }),
  image('stable/org.test.hello', 'arm64', ['latest', 'stable'], { 'org.flatpak.ref': 'app/org.test.Hello/aarch64/stable' }),
  image('stable/org.test.platform', 'amd64', ['latest', '1.0'], { 'org.flatpak.ref': 'runtime/org.test.Platform/x86_64/1.0' }, { 'org.example.vendor': 'test' }),
  image('stable/org.test.beta', 'amd64', ['beta'], { 'org.flatpak.ref': 'app/org.test.Beta/x86_64/beta' }),
  image('stable/plain', 'amd64', ['latest'], { maintainer: 'someone' }),
]
const select = (query: string) =>
  indexDocument('/', images, parseIndexQuery(new URLSearchParams(query)))
    .Results.flatMap((result) => result.Images.map((found) => `${result.Name}@${found.Architecture}`))
    .sort()

describe('registry index queries (flatpak-oci-specs registry-index.md)', () => {
  const table: [string, string[]][] = [
    ['', ['stable/org.test.beta@amd64', 'stable/org.test.hello@amd64', 'stable/org.test.hello@arm64', 'stable/org.test.platform@amd64', 'stable/plain@amd64']],
    // flatpak's own query
    ['architecture=amd64&label%3Aorg.flatpak.ref%3Aexists=1&os=linux&tag=latest', ['stable/org.test.hello@amd64', 'stable/org.test.platform@amd64']],
    ['label:org.flatpak.ref:exists=1', ['stable/org.test.beta@amd64', 'stable/org.test.hello@amd64', 'stable/org.test.hello@arm64', 'stable/org.test.platform@amd64']],
    ['architecture=arm64', ['stable/org.test.hello@arm64']],
    ['architecture=amd64&architecture=arm64&repository=stable/org.test.hello', ['stable/org.test.hello@amd64', 'stable/org.test.hello@arm64']],
    ['repository=stable/org.test.hello&repository=stable/plain', ['stable/org.test.hello@amd64', 'stable/org.test.hello@arm64', 'stable/plain@amd64']],
    ['tag=beta', ['stable/org.test.beta@amd64']],
    ['tag=beta&tag=1.0', ['stable/org.test.beta@amd64', 'stable/org.test.platform@amd64']],
    ['tag=latest&architecture=arm64', ['stable/org.test.hello@arm64']],
    ['os=windows', []],
    ['label:org.flatpak.ref=runtime/org.test.Platform/x86_64/1.0', ['stable/org.test.platform@amd64']],
    ['label:org.flatpak.ref=runtime/org.test.Platform/x86_64/1.0&label:org.flatpak.ref=app/org.test.Beta/x86_64/beta', ['stable/org.test.beta@amd64', 'stable/org.test.platform@amd64']],
    ['label:org.flatpak.download-size:exists=1', ['stable/org.test.hello@amd64']],
    ['label:maintainer=someone&tag=latest', ['stable/plain@amd64']],
    ['label:maintainer=someone&tag=beta', []],
    ['annotation:org.example.vendor=test', ['stable/org.test.platform@amd64']],
    ['annotation:org.example.vendor:exists=1&architecture=arm64', []],
    // Different labels are different keys: AND'ed.
    ['label:org.flatpak.ref:exists=1&label:maintainer:exists=1', []],
  ]
  for (const [query, expected] of table) {
    it(`?${query || '(no parameters)'}`, () => assert.deepEqual(select(query), expected))
  }
  it('refuses unknown parameters and :exists values other than 1, saying what is allowed', () => {
    assert.throws(() => parseIndexQuery(new URLSearchParams('colour=blue')), (error: unknown) => error instanceof IndexQueryError && /unknown index parameter "colour"/.test(error.message))
    assert.throws(() => parseIndexQuery(new URLSearchParams('label:x:exists=yes')), /takes the value 1/)
  })
  it('shapes the document as flatpak reads it', () => {
    const document = indexDocument('http://registry.example/', images, parseIndexQuery(new URLSearchParams('repository=stable/org.test.platform')))
    assert.deepEqual(document, {
      Registry: 'http://registry.example/',
      Results: [{ Name: 'stable/org.test.platform', Images: [{ Tags: ['latest', '1.0'], Digest: images[2]!.digest, MediaType: images[2]!.mediaType, OS: 'linux', Architecture: 'amd64', Labels: images[2]!.labels, Annotations: images[2]!.annotations }], Lists: [] }],
    })
  })
})
