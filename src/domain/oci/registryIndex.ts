/**
 * The registry index (flatpak-oci-specs registry-index.md): which images a query selects, and
 * the document flatpak reads. Pure; the HTTP edge parses the URL, the read model gives images.
 *
 * An image matches when, for every key of the query, one of that key's values matches (same-key
 * parameters OR'ed, different keys AND'ed). Keys: repository, tag, os, architecture,
 * `label:K` / `annotation:K` (a value) and `label:K:exists` / `annotation:K:exists` (`1`).
 */
export type IndexedImage = Readonly<{
  repository: string
  digest: string
  mediaType: string
  os: string
  architecture: string
  tags: readonly string[]
  labels: Readonly<Record<string, string>>
  annotations: Readonly<Record<string, string>>
}>

type Condition = (image: IndexedImage) => boolean

export class IndexQueryError extends Error {}

function condition(key: string, value: string): Condition {
  switch (key) {
    case 'repository':
      return (image) => image.repository === value
    case 'tag':
      return (image) => image.tags.includes(value)
    case 'os':
      return (image) => image.os === value
    case 'architecture':
      return (image) => image.architecture === value
  }
  const match = /^(label|annotation):(.+?)(:exists)?$/.exec(key)
  if (!match) throw new IndexQueryError(`unknown index parameter "${key}": use repository, tag, os, architecture, label:<K>, annotation:<K> (or :exists=1)`)
  const [, kind, name, exists] = match as unknown as [string, 'label' | 'annotation', string, string | undefined]
  const values = (image: IndexedImage) => (kind === 'label' ? image.labels : image.annotations)
  if (exists) {
    if (value !== '1') throw new IndexQueryError(`${key} takes the value 1`)
    return (image) => Object.hasOwn(values(image), name)
  }
  return (image) => values(image)[name] === value
}

/** The query's conditions, grouped by key (OR within a key, AND across keys). */
export function parseIndexQuery(params: Iterable<[string, string]>): Condition[][] {
  const byKey = new Map<string, Condition[]>()
  for (const [key, value] of params) {
    const group = byKey.get(key) ?? []
    group.push(condition(key, value))
    byKey.set(key, group)
  }
  return [...byKey.values()]
}

export function matches(image: IndexedImage, query: Condition[][]): boolean {
  return query.every((group) => group.some((test) => test(image)))
}

/** The index document: images grouped by repository, each with its tags, labels and digest. */
export function indexDocument(registry: string, images: readonly IndexedImage[], query: Condition[][]) {
  const byRepository = new Map<string, IndexedImage[]>()
  for (const image of images) {
    if (!matches(image, query)) continue
    const list = byRepository.get(image.repository) ?? []
    list.push(image)
    byRepository.set(image.repository, list)
  }
  return {
    Registry: registry,
    Results: [...byRepository.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, list]) => ({
        Name: name,
        Images: list.map((image) => ({
          Tags: [...image.tags],
          Digest: image.digest,
          MediaType: image.mediaType,
          OS: image.os,
          Architecture: image.architecture,
          Labels: { ...image.labels },
          Annotations: { ...image.annotations },
        })),
        Lists: [],
      })),
  }
}
