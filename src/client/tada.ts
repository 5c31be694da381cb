import { initGraphQLTada } from 'gql.tada'
import type { introspection } from './graphql-env.d.ts'

/**
 * gql.tada's `graphql` for this schema: documents written with it are typed from schema.graphql,
 * so a schema change that breaks one (a renamed field, a new required argument) fails
 * `npm run typecheck`. The CLI (documents.ts) and the dashboard (src/ui/documents.ts) both use it;
 * `npm run schema` regenerates `graphql-env.d.ts` with the schema.
 */
export const graphql = initGraphQLTada<{
  introspection: introspection
  scalars: { DateTime: string; JSON: unknown }
  disableMasking: true
}>()
