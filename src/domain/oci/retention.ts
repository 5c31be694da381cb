/**
 * Which OCI images a prune removes, pure. The repo's prune policy, read for images as ostree
 * reads it for commits: an image a tag points at is a ref's commit and stays; behind it, `depth`
 * older images of the same ref stay (its parents), and so does every image younger than
 * `keepYoungerThanDays`. Pushed and exported images are treated alike.
 */
export type RetainedImage = Readonly<{ repository: string; digest: string; ref: string; architecture: string; tags: readonly string[]; createdAt: Date }>

export function imagesToPrune<T extends RetainedImage>(images: readonly T[], policy: { depth: number; keepYoungerThanDays: number | null }, now: Date): T[] {
  const youngSince = policy.keepYoungerThanDays === null ? null : now.getTime() - policy.keepYoungerThanDays * 86_400_000
  const byRef = new Map<string, T[]>()
  for (const image of images) {
    const key = `${image.repository}\0${image.architecture}\0${image.ref}`
    const list = byRef.get(key) ?? []
    list.push(image)
    byRef.set(key, list)
  }
  const removed: T[] = []
  for (const list of byRef.values()) {
    let behind = 0
    for (const image of [...list].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())) {
      if (image.tags.length > 0) continue
      if (youngSince !== null && image.createdAt.getTime() >= youngSince) continue
      behind += 1
      if (behind > policy.depth) removed.push(image)
    }
  }
  return removed
}
