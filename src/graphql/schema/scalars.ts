import { GraphQLError, Kind } from 'graphql'
import { builder } from '../builder.ts'

builder.scalarType('DateTime', {
  description: 'An ISO 8601 date and time in UTC',
  serialize: (value) => value.toISOString(),
  parseValue: (value) => {
    const date = new Date(String(value))
    if (Number.isNaN(date.getTime())) throw new GraphQLError(`"${String(value)}" is not an ISO 8601 date and time`)
    return date
  },
})

builder.scalarType('JSON', {
  description: 'Any JSON value',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast) => {
    if (ast.kind === Kind.STRING || ast.kind === Kind.BOOLEAN) return ast.value
    if (ast.kind === Kind.INT || ast.kind === Kind.FLOAT) return Number(ast.value)
    if (ast.kind === Kind.NULL) return null
    throw new GraphQLError('JSON literals must be strings, numbers, booleans or null; pass objects as variables')
  },
})
