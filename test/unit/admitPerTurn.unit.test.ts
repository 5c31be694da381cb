import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { admitPerTurn } from '../../src/util/admitPerTurn.ts'

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('admitPerTurn (WebSocket handshakes in a connection storm)', () => {
  it('starts at most the given number per pass of the event loop, in the order they came, and every one of them', async () => {
    const admit = admitPerTurn(16)
    const started: number[] = []
    for (let i = 0; i < 40; i++) admit(() => started.push(i))
    assert.equal(started.length, 0, 'none in the pass they arrived in')
    const perTurn: number[] = []
    while (started.length < 40 && perTurn.length < 10) {
      const before = started.length
      await nextTurn()
      perTurn.push(started.length - before)
    }
    assert.deepEqual(perTurn, [16, 16, 8], 'sixteen a pass')
    assert.deepEqual(started, Array.from({ length: 40 }, (_, i) => i), 'in order')
  })

  it('lets other work run between the passes, and takes new arrivals after the waiting ones', async () => {
    const admit = admitPerTurn(2)
    const order: string[] = []
    for (let i = 0; i < 4; i++) admit(() => order.push(`storm ${i}`))
    setImmediate(() => order.push('a query'))
    await nextTurn()
    admit(() => order.push('late'))
    for (let i = 0; i < 4; i++) await nextTurn()
    assert.deepEqual(order, ['storm 0', 'storm 1', 'a query', 'storm 2', 'storm 3', 'late'])
  })
})
