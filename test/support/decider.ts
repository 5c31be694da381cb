import assert from 'node:assert/strict'
import type { Command, CommandMetadata, Decider } from '../../src/domain/shared/messages.ts'

export const testMetadata: CommandMetadata = {
  now: new Date('2026-01-01T00:00:00Z'),
  actor: { name: 'test', jti: 'test-jti' },
  requestId: 'req-1',
}

type Intent<C> = C extends Command<string, unknown> ? Omit<C, 'metadata'> : never

/** given(events).when(command).then(events) | .thenThrows(errorClass, message) — emmett's shape. */
export function deciderSpec<S, C extends Command<string, unknown>, E>(decider: Decider<S, C, E>) {
  return (given: E[]) => ({
    when: (intent: Intent<C>) => {
      const decide = () => {
        const state = given.reduce(decider.evolve, decider.initialState())
        return decider.decide({ ...intent, metadata: testMetadata } as unknown as C, state)
      }
      return {
        then: (expected: E[]) => assert.deepEqual(decide(), expected),
        thenThrows: (errorClass: new (...args: never[]) => Error, message?: string | RegExp, fields?: Record<string, unknown>) =>
          assert.throws(decide, (error: unknown) => {
            assert.ok(error instanceof errorClass, `expected ${errorClass.name}, got ${String(error)}`)
            if (typeof message === 'string') assert.equal(error.message, message)
            else if (message) assert.match(error.message, message)
            for (const [key, value] of Object.entries(fields ?? {})) {
              assert.equal((error as unknown as Record<string, unknown>)[key], value, key)
            }
            return true
          }),
      }
    },
  })
}
