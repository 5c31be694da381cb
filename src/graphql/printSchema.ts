import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { lexicographicSortSchema, printSchema } from 'graphql'
import { schema } from './schema/index.ts'

const target = fileURLToPath(new URL('../../schema.graphql', import.meta.url))
const printed = `${printSchema(lexicographicSortSchema(schema))}\n`

if (process.argv.includes('--check')) {
  const committed = (() => {
    try {
      return readFileSync(target, 'utf8')
    } catch {
      return ''
    }
  })()
  if (committed !== printed) {
    console.error('schema.graphql differs from the schema in src/graphql: run `npm run schema` and commit the result')
    process.exit(1)
  }
  console.log('schema.graphql matches the code')
} else {
  writeFileSync(target, printed)
  console.log(`wrote ${target}`)
}
