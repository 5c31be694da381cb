import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { buildSchema, Kind, parse, print, validate, type DocumentNode } from 'graphql'
import * as cli from '../../src/client/documents.ts'
import * as dashboard from '../../src/ui/documents.ts'

const schema = buildSchema(readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8'))

/** The operations a module exports (fragments are checked inside the operations that spread them). */
function operations(module: Record<string, unknown>): [string, DocumentNode][] {
  return Object.entries(module).flatMap(([name, value]) => {
    const document = value as DocumentNode | undefined
    if (document?.kind !== Kind.DOCUMENT || !document.definitions.some((definition) => definition.kind === Kind.OPERATION_DEFINITION)) return []
    return [[name, parse(print(document))]]
  })
}

describe('the GraphQL documents the clients send', () => {
  for (const [what, module] of [
    ['the dashboard (src/ui/documents.ts)', dashboard],
    ['the CLI (src/client/documents.ts)', cli],
  ] as const) {
    it(`${what}: every operation validates against schema.graphql`, () => {
      const found = operations(module as Record<string, unknown>)
      assert.ok(found.length >= 10, `found ${found.length} operations`)
      for (const [name, document] of found) {
        assert.deepEqual(validate(schema, document).map((error) => error.message), [], `${name} is valid`)
      }
    })
  }
})
