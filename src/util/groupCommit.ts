/**
 * Group commit: callers hand in items and wait until a flush that took their item has finished.
 * One flush runs at a time per key; items that arrive meanwhile are flushed together by the
 * next one. N concurrent callers cost two flushes at most instead of N (syncfs, or one event for
 * N upload requests instead of N events racing for the same stream).
 */
export class GroupCommit<K, T> {
  readonly #groups = new Map<K, { running: boolean; waiting: { item: T; resolve: () => void; reject: (error: unknown) => void }[] }>()

  constructor(private readonly flush: (key: K, items: T[]) => Promise<void>) {}

  add(key: K, item: T): Promise<void> {
    let group = this.#groups.get(key)
    if (!group) this.#groups.set(key, (group = { running: false, waiting: [] }))
    const done = new Promise<void>((resolve, reject) => group.waiting.push({ item, resolve, reject }))
    if (!group.running) void this.#drain(key, group)
    return done
  }

  async #drain(key: K, group: { running: boolean; waiting: { item: T; resolve: () => void; reject: (error: unknown) => void }[] }): Promise<void> {
    group.running = true
    while (group.waiting.length) {
      const batch = group.waiting.splice(0)
      try {
        await this.flush(
          key,
          batch.map((entry) => entry.item),
        )
        for (const entry of batch) entry.resolve()
      } catch (error) {
        for (const entry of batch) entry.reject(error)
      }
    }
    group.running = false
    this.#groups.delete(key)
  }
}
