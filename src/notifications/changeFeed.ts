import { Repeater, SlidingBuffer } from '@repeaterjs/repeater'
import type { Database } from '../db/database.ts'
import { eventsChannel } from '../eventStore/eventStore.ts'
import type { Logger } from '../log.ts'

/**
 * Wakes subscribers when a stream gets new events, in this process or any other (PostgreSQL
 * LISTEN/NOTIFY; PGlite's own listen in the embedded default). A wake-up carries no data:
 * subscribers re-read the database, which is the truth, so a lost or merged notification
 * cannot make them wrong.
 */
export function createChangeFeed(db: Database, log: Logger) {
  const watchers = new Map<string, Set<() => void>>()
  let unlisten: (() => Promise<void>) | null = null

  function onPayload(payload: string): void {
    let streamIds: unknown
    try {
      streamIds = JSON.parse(payload)
    } catch {
      log.warn({ payload }, 'ignored a malformed change notification')
      return
    }
    if (!Array.isArray(streamIds)) return
    for (const streamId of streamIds) {
      if (typeof streamId === 'string') watchers.get(streamId)?.forEach((wake) => wake())
    }
  }

  return {
    async start(): Promise<void> {
      unlisten = await db.listen(eventsChannel, onPayload)
    },
    async stop(): Promise<void> {
      await unlisten?.()
      unlisten = null
    },
    /** Yields once now and once after every change; a slow reader sees changes merged, never lost. */
    watch(streamId: string): AsyncIterableIterator<void> {
      return new Repeater<void>(async (push, stop) => {
        const wake = () => void push()
        let set = watchers.get(streamId)
        if (!set) watchers.set(streamId, (set = new Set()))
        set.add(wake)
        await push()
        await stop
        set.delete(wake)
        if (set.size === 0) watchers.delete(streamId)
      }, new SlidingBuffer(1))
    },
  }
}

export type ChangeFeed = ReturnType<typeof createChangeFeed>
