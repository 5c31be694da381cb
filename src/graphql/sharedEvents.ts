import { mapAsyncIterator } from '@whatwg-node/promise-helpers'
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

/**
 * graphql's subscribe (the source stream made through the schema as usual), with each event
 * executed once per payload and operation: the same document (yoga's parser cache gives one
 * object per query text), operation name and variables. Events are executed with graphql's own
 * `execute`, as graphql's `subscribe` does (yoga's executor would treat the subscription
 * document as a new subscription); the shared fields only read their payload.
 */
export async function subscribeShared(args: ExecutionArgs): Promise<AsyncGenerator<ExecutionResult> | ExecutionResult> {
  const source = await createSourceEventStream(args)
  if (!(Symbol.asyncIterator in source)) return source as ExecutionResult
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
  // A mapping iterator, not an async generator: one delivery to one watcher costs a promise or
  // two instead of a generator's queue, which a thousand watchers of one log pay per batch.
  // Ending it (the watcher left) ends the source, as graphql's own subscribe does.
  return mapAsyncIterator(source as AsyncIterable<unknown>, run) as AsyncGenerator<ExecutionResult>
}

const documentIds = new WeakMap<DocumentNode, number>()
let nextDocumentId = 0
function documentId(document: DocumentNode): number {
  let id = documentIds.get(document)
  if (id === undefined) documentIds.set(document, (id = ++nextDocumentId))
  return id
}
