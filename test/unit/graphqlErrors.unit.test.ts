import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { createSchema, createYoga } from 'graphql-yoga'
import { NotFoundError } from '../../src/domain/shared/errors.ts'
import { createLogger } from '../../src/log.ts'
import { maskedErrors, useMaskedWithRequestId } from '../../src/graphql/yoga.ts'

/**
 * What a person sees when something breaks inside a GraphQL operation: never the library's or the
 * database's own text, always the request id to quote, and the log line with the real error
 * carries that same id (no AsyncLocalStorage carries it there: the operation's context does).
 */
describe('GraphQL error masking', () => {
  const lines: Record<string, unknown>[] = []
  const log = createLogger({
    destination: new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line))
        done()
      },
    }),
  })
  const yoga = createYoga<Record<string, unknown>, { requestId: string }>({
    schema: createSchema({
      typeDefs: 'type Query { boom: String, refused: String, fine: String }',
      resolvers: {
        Query: {
          boom: () => {
            throw new Error('connection to 10.0.0.7:5432 refused')
          },
          refused: () => {
            throw new NotFoundError('No build 7')
          },
          fine: () => 'yes',
        },
      },
    }),
    plugins: [useMaskedWithRequestId(log)],
    maskedErrors: maskedErrors(log),
    context: () => ({ requestId: 'req-mask-7' }),
    logging: false,
  })
  const ask = async (query: string) => {
    const response = await yoga.fetch('http://localhost/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) })
    return (await response.json()) as { data?: Record<string, unknown>; errors?: { message: string; extensions?: Record<string, unknown> }[] }
  }

  it('masks an unexpected error with the request id, and logs the real one with it', async () => {
    const body = await ask('{ boom fine }')
    assert.equal(body.data?.fine, 'yes', 'the rest of the operation still answers')
    const [error] = body.errors ?? []
    assert.ok(error, `an error comes back: ${JSON.stringify(body)}`)
    assert.match(error.message, /Unexpected error\. Quote request id req-mask-7/, 'the message names the request id to quote')
    assert.doesNotMatch(error.message, /10\.0\.0\.7/, "the original text is not shown")
    assert.equal(error.extensions?.code, 'INTERNAL_SERVER_ERROR')
    assert.equal(error.extensions?.requestId, 'req-mask-7')
    const logged = lines.find((line) => line.msg === 'unexpected error in GraphQL execution')
    assert.ok(logged, `the error is logged: ${JSON.stringify(lines)}`)
    assert.equal(logged.requestId, 'req-mask-7', 'the log line carries the request id')
    assert.match(String((logged.err as { message?: string }).message), /10\.0\.0\.7:5432 refused/, 'the log keeps the real error')
  })

  it('passes domain errors through with their code and message, unlogged', async () => {
    lines.length = 0
    const body = await ask('{ refused }')
    assert.equal(body.errors?.[0]?.message, 'No build 7')
    assert.equal(body.errors?.[0]?.extensions?.code, 'NOT_FOUND')
    assert.equal(lines.filter((line) => line.level === 50).length, 0, 'nothing logged as an error')
  })
})
