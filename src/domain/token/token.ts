import { assertNever, type Command, type Decider, type Event } from '../shared/messages.ts'

export type TokenDescription = Readonly<{
  jti: string
  name: string | null
  sub: string
  scope: readonly string[]
  repos: readonly string[]
  prefixes: readonly string[]
  apps: readonly string[]
  expiresAt: string
}>

/** Recorded when flatdepot mints a token, or the first time it sees one minted elsewhere. */
export type TokenRegistered = Event<'TokenRegistered', TokenDescription>
export type TokenRevoked = Event<'TokenRevoked', { jti: string }>
export type TokenEvent = TokenRegistered | TokenRevoked

export type RegisterToken = Command<'RegisterToken', TokenDescription>
export type RevokeToken = Command<'RevokeToken', { jti: string }>
export type TokenCommand = RegisterToken | RevokeToken

export type TokenState = Readonly<{ registered: boolean; revoked: boolean }>

export const initialState = (): TokenState => ({ registered: false, revoked: false })

export function decide(command: TokenCommand, state: TokenState): TokenEvent[] {
  switch (command.type) {
    case 'RegisterToken':
      return state.registered ? [] : [{ type: 'TokenRegistered', data: command.data }]
    case 'RevokeToken':
      // Revoking twice keeps the first revocation time (flat-manager's coalesce); an unknown jti
      // can be revoked ahead of its first use.
      return state.revoked ? [] : [{ type: 'TokenRevoked', data: { jti: command.data.jti } }]
    default:
      return assertNever(command)
  }
}

export function evolve(state: TokenState, event: TokenEvent): TokenState {
  switch (event.type) {
    case 'TokenRegistered':
      return { ...state, registered: true }
    case 'TokenRevoked':
      return { ...state, revoked: true }
    default:
      return assertNever(event)
  }
}

export const tokenDecider: Decider<TokenState, TokenCommand, TokenEvent> = { decide, evolve, initialState }
export const tokenStreamId = (jti: string) => `token-${jti}`
