import {
  ConflictError,
  DomainError,
  InvalidInputError,
  NotFoundError,
  PermissionDeniedError,
  WrongStateError,
} from '../../domain/shared/errors.ts'
import { builder } from '../builder.ts'

/** Expected failures are data: every mutation and lookup returns them as members of its result union. */
export const ErrorInterface = builder.interfaceRef<DomainError>('Error').implement({
  description: 'A failure the caller can act on',
  fields: (t) => ({
    message: t.exposeString('message'),
    code: t.exposeString('code'),
  }),
})

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof NotFoundError,
})

builder.objectType(PermissionDeniedError, {
  name: 'PermissionDeniedError',
  description: "The token's claims do not allow this",
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof PermissionDeniedError,
})

builder.objectType(InvalidInputError, {
  name: 'InvalidInputError',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof InvalidInputError,
  fields: (t) => ({ field: t.exposeString('field', { nullable: true }) }),
})

builder.objectType(WrongStateError, {
  name: 'WrongStateError',
  description: 'The build or job is not in a state that allows this',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof WrongStateError,
  fields: (t) => ({
    stateKind: t.exposeString('stateKind'),
    expectedState: t.exposeString('expectedState'),
    currentState: t.exposeString('currentState'),
  }),
})

builder.objectType(ConflictError, {
  name: 'ConflictError',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ConflictError,
})

export const lookupErrors = [NotFoundError, PermissionDeniedError]
export const mutationErrors = [NotFoundError, PermissionDeniedError, InvalidInputError, WrongStateError, ConflictError]
