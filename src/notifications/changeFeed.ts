import { Repeater, SlidingBuffer } from '@repeaterjs/repeater'
import type { Database } from '../db/database.ts'
import { eventsChannel, wakeEveryone } from '../eventStore/eventStore.ts'
import type { Logger } from '../log.ts'

/**
 * Workers NOTIFY this channel after storing new log lines: a JSON list of the jobs whose logs grew
 * (from notificationPayloads), or one job id as a number (workers before the lists).
 */
export const jobLogChannel = 'flatdepot_job_log'

/** The key a job's log lines are announced under (the worker's notification names the job). */
export const jobLogKey = (jobId: number) => `job-log-${jobId}`

/** The key woken when any build's stream changes (the dashboard's build list). */
export const anyBuildKey = 'builds'

/**
 * Wakes subscribers when a stream gets new events or a job gets new log lines, in this process or
 * any other (PostgreSQL LISTEN/NOTIFY; PGlite's own listen in the embedded default). A wake-up
 * carries no data: subscribers re-read the database, which is the truth, so a lost or merged
 * notification cannot make them wrong.
 */
export function createChangeFeed(db: Database, log: Logger) {
  const watchers = new Map<string, Set<() => void>>()
  const unlisten: (() => Promise<void>)[] = []
  const wake = (key: string) => watchers.get(key)?.forEach((fn) => fn())

  /** The JSON list of a notification, or undefined (logged) for a malformed one. */
  function listOf(payload: string): unknown[] | undefined {
    try {
      const list: unknown = JSON.parse(payload)
      if (Array.isArray(list)) return list
    } catch {}
    log.warn({ payload }, 'ignored a malformed change notification')
    return undefined
  }

  function onEvents(payload: string): void {
    for (const streamId of listOf(payload) ?? []) {
      if (streamId === wakeEveryone) for (const key of watchers.keys()) wake(key)
      else if (typeof streamId === 'string') {
        wake(streamId)
        if (streamId.startsWith('build-')) wake(anyBuildKey)
      }
    }
  }

  function onJobLog(payload: string): void {
    // Job ids are short: a list never needs wakeEveryone. An id that is not one wakes no key.
    const jobIds = /^\d+$/.test(payload) ? [payload] : (listOf(payload) ?? [])
    for (const jobId of jobIds) if (typeof jobId === 'string') wake(jobLogKey(Number(jobId)))
  }

  /** Calls `fn` after every change to any of `keys` (no first call); returns how to stop. */
  function onChange(keys: readonly string[], fn: () => void): () => void {
    for (const key of keys) {
      let set = watchers.get(key)
      if (!set) watchers.set(key, (set = new Set()))
      set.add(fn)
    }
    return () => {
      for (const key of keys) {
        const set = watchers.get(key)
        set?.delete(fn)
        if (set?.size === 0) watchers.delete(key)
      }
    }
  }

  return {
    onChange,
    async start(): Promise<void> {
      unlisten.push(await db.listen(eventsChannel, onEvents), await db.listen(jobLogChannel, onJobLog))
    },
    async stop(): Promise<void> {
      await Promise.all(unlisten.splice(0).map((stop) => stop()))
    },
    /**
     * Yields once now and once after every change to any of `keys` (stream ids, jobLogKey(…)).
     * A slow reader sees changes merged, never lost: at most one wake-up waits while it reads.
     */
    watch(...keys: string[]): AsyncIterableIterator<void> {
      return new Repeater<void>(async (push, stop) => {
        const off = onChange(keys, () => void push())
        await push()
        await stop
        off()
      }, new SlidingBuffer(1))
    },
  }
}

export type ChangeFeed = ReturnType<typeof createChangeFeed>
