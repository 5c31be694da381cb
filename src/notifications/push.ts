/**
 * Event sources that can push their events to a receiver instead of being pulled one `next()` at
 * a time. A job's log followed by a thousand browsers is a thousand iterators, and pulling each
 * line through them was several promises per line per browser (the hub's loop, `eachLine`, the
 * delivery loop): pushed, a line is a function call per browser. The pull iterator stays for
 * every other consumer.
 */
export const pushEvents = Symbol('pushEvents')

/** Takes one event; returns a promise when it must be waited for before the next (a full socket). */
export type EventSink<T> = (event: T) => void | Promise<void>

/** Hands every event to `sink`, in order, each after the previous one's wait; settles when the source ends or is left. */
export type Pushable<T> = { [pushEvents](sink: EventSink<T>): Promise<void> }

export const isPushable = <T>(source: object): source is Pushable<T> => typeof (source as Partial<Pushable<T>>)[pushEvents] === 'function'

/** Each item of a batch to `sink`, in order, waiting where it asks to. */
export function eachOf<T>(batch: readonly T[], sink: EventSink<T>, from = 0): void | Promise<void> {
  for (let index = from; index < batch.length; index++) {
    const waiting = sink(batch[index]!)
    if (waiting) return waiting.then(() => eachOf(batch, sink, index + 1))
  }
}
