/**
 * Broken invariants are thrown as DomainErrors with a code; the API edges map each code to their
 * own error shape (GraphQL union members, flat-manager's JSON). Expected outcomes such as a failed
 * check are events, not errors.
 */
export type DomainErrorCode =
  | 'NOT_FOUND'
  | 'WRONG_STATE'
  | 'INVALID_INPUT'
  | 'PERMISSION_DENIED'
  | 'CONFLICT'

export abstract class DomainError extends Error {
  abstract readonly code: DomainErrorCode
}

export class NotFoundError extends DomainError {
  readonly code = 'NOT_FOUND'
}

export class InvalidInputError extends DomainError {
  readonly code = 'INVALID_INPUT'
  constructor(
    message: string,
    readonly field: string | null = null,
  ) {
    super(message)
  }
}

export class PermissionDeniedError extends DomainError {
  readonly code = 'PERMISSION_DENIED'
  constructor(reason: string) {
    super(`Not enough permissions: ${reason}`)
  }
}

export class ConflictError extends DomainError {
  readonly code = 'CONFLICT'
}

/** flat-manager's wrong-repo-state / wrong-published-state errors, with the same wording. */
export class WrongStateError extends DomainError {
  readonly code = 'WRONG_STATE'
  constructor(
    message: string,
    readonly stateKind: 'repo' | 'published' | 'job',
    readonly expectedState: string,
    readonly currentState: string,
  ) {
    super(message)
  }
}

/** Ids are PostgreSQL integers: anything past 2³¹−1 (or not a plain number) names nothing. */
export const maxId = 2 ** 31 - 1

/** An id from a URL path: a number in range, or a NotFoundError naming what was asked for. */
export function idFromPath(text: string, what: string): number {
  const id = /^\d{1,10}$/.test(text) ? Number(text) : NaN
  if (!(id >= 0 && id <= maxId)) throw new NotFoundError(`${what} ${text.slice(0, 40)} not found`)
  return id
}
