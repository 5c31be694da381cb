/**
 * Payloads that read the same for every subscriber (a job's log line: its fields come from the
 * line, not from who asks). The GraphQL edge executes such an event once per operation and shares
 * the result among the subscribers (src/graphql/sharedEvents.ts).
 */
const shareable = new WeakSet<object>()

export function markShareable<T extends object>(payload: T): T {
  shareable.add(payload)
  return payload
}

export const isShareable = (payload: unknown): payload is object => typeof payload === 'object' && payload !== null && shareable.has(payload)
