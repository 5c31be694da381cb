import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { projectRoot } from '../paths.ts'
import { lexicographicSortSchema, printSchema } from 'graphql'
import { schema } from './schema/index.ts'

const target = path.join(projectRoot, 'schema.graphql')
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
