/** Who asked, for which request, when. Arrives with every command; copied onto every event. */
export type CommandMetadata = Readonly<{
  now: Date
  actor: Readonly<{ name: string | null; jti: string | null }>
  requestId: string | null
}>

export type Command<Type extends string, Data> = Readonly<{
  type: Type
  data: Readonly<Data>
  metadata: CommandMetadata
}>

export type Event<Type extends string, Data> = Readonly<{ type: Type; data: Readonly<Data> }>

export type Decider<State, Cmd, Evt> = Readonly<{
  decide: (command: Cmd, state: State) => Evt[]
  evolve: (state: State, event: Evt) => State
  initialState: () => State
}>

export function assertNever(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`)
}
