import { print } from '@0no-co/graphql.web'

/**
 * What every flatdepot GraphQL client here shares, the CLI's (api.ts) and the dashboard's
 * (src/ui/api.ts): the error it throws and a typed document's text. Nothing of Node's, so the
 * browser bundle takes it too.
 */

/** A failure a person can act on: what went wrong and, where the server said so, its error code. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | null = null,
    /** Worth another try: the network, a timeout, or a 5xx from a proxy or the server. */
    readonly transient = false,
  ) {
    super(message)
  }
}

const printed = new WeakMap<object, string>()

/** A document's query text, printed once per document. */
export function queryText(document: object): string {
  let text = printed.get(document)
  if (text === undefined) printed.set(document, (text = print(document as Parameters<typeof print>[0])))
  return text
}
