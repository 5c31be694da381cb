import { isPushable, pushEvents } from '../notifications/push.ts'
import { isShareable } from '../notifications/shareable.ts'
import { createSourceEventStream, execute, type DocumentNode, type ExecutionArgs, type ExecutionResult, Kind, type OperationDefinitionNode } from 'graphql'

/**
 * Subscription events many subscribers receive alike (a job's log line, followed by every
 * browser open on the build page): the per-event execution is done once per operation and shared,
 * instead of once per subscriber. Only payloads marked shareable take part; they must be
 * resolved the same for every subscriber (their fields read the payload, not the context), which
 * is what `markShareable` promises. Everything else executes per subscriber, as graphql does.
 */
const results = new WeakMap<object, Map<string, Promise<ExecutionResult> | ExecutionResult>>()

/** The root fields whose events may be shared (their payloads are marked by src/notifications/jobLogHub.ts). */
const sharedFields = new Set(['jobLog', 'jobLogLines'])

function operation(document: DocumentNode, operationName: string | null | undefined): OperationDefinitionNode | undefined {
  return document.definitions.find(
    (definition): definition is OperationDefinitionNode => definition.kind === Kind.OPERATION_DEFINITION && (!operationName || definition.name?.value === operationName),
  )
}

/** Whether an operation subscribes to shareable fields only. */
export function isSharedSubscription(args: Pick<ExecutionArgs, 'document' | 'operationName'>): boolean {
  const selected = operation(args.document, args.operationName)
  if (!selected || selected.operation !== 'subscription') return false
  return selected.selectionSet.selections.every((selection) => selection.kind === Kind.FIELD && sharedFields.has(selection.name.value))
}

/** Where a subscription's messages go: its WebSocket and the id the client gave it. */
export type Delivery = { socket: import('ws').WebSocket; id: string }

/** The JSON of each shared result, made once however many sockets it goes to. */
const payloads = new WeakMap<ExecutionResult, string>()
function payloadJson(result: ExecutionResult): string {
  let json = payloads.get(result)
  if (json === undefined) payloads.set(result, (json = JSON.stringify(result)))
  return json
}

/** Above this many bytes waiting on a socket, the next message waits for the socket to take them. */
const socketHighWater = 64 * 1024

/**
 * graphql's subscribe (the source stream made through the schema as usual), with each event
 * executed once per payload and operation: the same document (yoga's parser cache gives one
 * object per query text), operation name and variables. Events are executed with graphql's own
 * `execute`, as graphql's `subscribe` does (yoga's executor would treat the subscription
 * document as a new subscription); the shared fields only read their payload.
 *
 * The results go straight to the subscriber's socket as graphql-ws's `next` messages, each
 * result's JSON made once for all its subscribers. graphql-ws's own loop would validate and
 * stringify every message for every socket, and wait for each write, with several promises per
 * line between the log and the socket: with a thousand watchers that was most of the API's time.
 * graphql-ws keeps the rest of the protocol: it holds the returned iterator as the subscription,
 * sends `complete` when it ends (after the last line, on the same socket, so in order) and
 * `error` when it throws, and ends it on the client's `complete` or when the socket closes.
 */
export async function subscribeShared(args: ExecutionArgs, delivery: Delivery): Promise<AsyncIterableIterator<never> | ExecutionResult> {
  const source = await createSourceEventStream(args)
  if (!(Symbol.asyncIterator in source)) return source as ExecutionResult
  const events = (source as AsyncIterable<unknown>)[Symbol.asyncIterator]()
  // The document object is part of the key: a different query text is a different operation.
  const key = `${documentId(args.document)}\0${args.operationName ?? ''}\0${JSON.stringify(args.variableValues ?? {})}`
  const run = (payload: unknown) => {
    if (!isShareable(payload)) return execute({ ...args, rootValue: payload })
    let byOperation = results.get(payload)
    if (!byOperation) results.set(payload, (byOperation = new Map()))
    let result = byOperation.get(key)
    if (!result) byOperation.set(key, (result = execute({ ...args, rootValue: payload })))
    return result
  }
  const { socket, id } = delivery
  const prefix = `{"id":${JSON.stringify(id)},"type":"next","payload":`
  let stopped = false
  let delivering: Promise<IteratorResult<never>> | null = null
  /** One result to the socket; a promise when the socket has too much waiting and the next must wait. */
  const send = (result: ExecutionResult): void | Promise<void> => {
    const message = prefix + payloadJson(result) + '}'
    if (socket.bufferedAmount < socketHighWater) return void socket.send(message)
    return new Promise<void>((resolve, reject) => socket.send(message, (error) => (error ? reject(error) : resolve())))
  }
  const gone = () => stopped || socket.readyState !== socket.OPEN
  // The source pushes its events (a job log's lines: a call per line, no promise between the
  // reader and the socket; src/notifications/push.ts), or they are pulled one by one.
  const deliver = isPushable(events)
    ? async (): Promise<IteratorResult<never>> => {
        await events[pushEvents]((payload) => {
          if (gone()) return void stop()
          const executed = run(payload)
          if (!(executed instanceof Promise)) return send(executed)
          return executed.then((result) => (gone() ? void stop() : send(result)))
        })
        return { done: true, value: undefined }
      }
    : async (): Promise<IteratorResult<never>> => {
        for (;;) {
          const event = await events.next()
          if (event.done || stopped) return { done: true, value: undefined }
          const executed = run(event.value)
          const result = executed instanceof Promise ? await executed : executed
          if (gone()) return { done: true, value: undefined }
          const waiting = send(result)
          if (waiting) await waiting
        }
      }
  const stop = async () => {
    stopped = true
    await events.return?.()
    return { done: true as const, value: undefined }
  }
  const subscription: AsyncIterableIterator<never> = {
    // graphql-ws asks once: the answer comes when the subscription has ended.
    next: () => (delivering ??= deliver()),
    return: stop,
    throw: async (error?: unknown) => {
      await stop()
      throw error
    },
    [Symbol.asyncIterator]: () => subscription,
  }
  return subscription
}

const documentIds = new WeakMap<DocumentNode, number>()
let nextDocumentId = 0
function documentId(document: DocumentNode): number {
  let id = documentIds.get(document)
  if (id === undefined) documentIds.set(document, (id = ++nextDocumentId))
  return id
}
