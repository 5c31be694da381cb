import SchemaBuilder from '@pothos/core'
import ErrorsPlugin from '@pothos/plugin-errors'
import PrismaPlugin from '@pothos/plugin-prisma'
import RelayPlugin from '@pothos/plugin-relay'
import ScopeAuthPlugin from '@pothos/plugin-scope-auth'
import type PrismaTypes from '../generated/pothos-prisma-types.ts'
import { getDatamodel } from '../generated/pothos-prisma-types.ts'
import { PermissionDeniedError } from '../domain/shared/errors.ts'
import type { Context } from './context.ts'

export const builder = new SchemaBuilder<{
  Context: Context
  PrismaTypes: PrismaTypes
  AuthScopes: { token: boolean }
  Scalars: {
    DateTime: { Input: Date; Output: Date }
    JSON: { Input: unknown; Output: unknown }
  }
  DefaultFieldNullability: false
  DefaultInputFieldRequiredness: true
}>({
  // Scope auth first, so the errors plugin sees its failures and returns them as union members.
  plugins: [ScopeAuthPlugin, ErrorsPlugin, PrismaPlugin, RelayPlugin],
  defaultFieldNullability: false,
  defaultInputFieldRequiredness: true,
  scopeAuth: {
    authScopes: (context) => ({ token: context.claims !== null }),
    authorizeOnSubscribe: true,
    unauthorizedError: () => new PermissionDeniedError('No token presented'),
  },
  errors: { defaultTypes: [], directResult: true },
  prisma: {
    client: (context) => context.prisma,
    dmmf: getDatamodel(),
    exposeDescriptions: false,
    filterConnectionTotalCount: true,
    onUnusedQuery: process.env.NODE_ENV === 'production' ? null : 'warn',
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
  },
})
