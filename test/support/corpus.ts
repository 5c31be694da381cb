import { existsSync, lstatSync, readdirSync } from 'node:fs'
import path from 'node:path'

/** What a bad request came back with: the HTTP status (or a process's exit code), an error code, a message. */
export type Outcome = { status: number; code: string | null; message: string }

export type Expectation = {
  status: number | number[]
  /** The error code of the API's own shape: GraphQL `extensions.code` or union `code`, REST `error-type`. */
  code?: string | null
  message: RegExp
}

export type Case<Context> = {
  area: 'graphql' | 'websocket' | 'rest' | 'upload' | 'serving' | 'config' | 'cli'
  name: string
  run: (context: Context) => Promise<Outcome>
  expect: Expectation
}

/** GraphQL's answer as an Outcome: the first top-level error, else the first typed error union member. */
export function graphqlOutcome(status: number, body: { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: string } }[] }): Outcome {
  const error = body.errors?.[0]
  if (error) return { status, code: error.extensions?.code ?? null, message: error.message }
  for (const value of Object.values(body.data ?? {})) {
    const member = value as { __typename?: string; code?: string; message?: string } | null
    if (member && typeof member.message === 'string') return { status, code: member.code ?? null, message: member.message }
  }
  return { status, code: null, message: JSON.stringify(body.data) }
}

/** A flat-manager-shaped JSON error (or any body) as an Outcome. */
export async function restOutcome(response: Response): Promise<Outcome> {
  const text = await response.text()
  try {
    const body = JSON.parse(text) as { 'error-type'?: string; message?: string }
    return { status: response.status, code: body['error-type'] ?? null, message: body.message ?? text }
  } catch {
    return { status: response.status, code: null, message: text }
  }
}

/**
 * Every file under `root` except what a bad request may legitimately touch (the builds' upload
 * areas, the database), with its size and modification time: equal before and after a case means
 * the case wrote nothing anywhere else.
 */
export function writtenFiles(root: string): Map<string, string> {
  const files = new Map<string, string>()
  const walk = (dir: string) => {
    if (!existsSync(dir)) return
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      const relative = path.relative(root, full)
      // The trash is where purged trees are deleted, in the background: not a write.
      if (/^db(\.lock)?$/.test(relative) || /^builds\/\d+\/upload(\/|$)/.test(relative) || relative === 'builds/.trash') continue
      if (entry.isDirectory()) walk(full)
      else {
        const info = lstatSync(full, { throwIfNoEntry: false })
        if (info) files.set(relative, `${info.size} ${info.mtimeMs}`)
      }
    }
  }
  walk(root)
  return files
}

/** What changed between two listings, for an assertion message. */
export function changedFiles(before: Map<string, string>, after: Map<string, string>): string[] {
  const changed: string[] = []
  for (const [file, stamp] of after) if (before.get(file) !== stamp) changed.push(`${before.has(file) ? 'changed' : 'added'} ${file}`)
  for (const file of before.keys()) if (!after.has(file)) changed.push(`removed ${file}`)
  return changed
}

/**
 * A file object (.filez) as flatdepot receives it: the archive header of a regular file (or
 * whatever `mode` says) declaring `declaredSize` bytes, then `deflated` as its content.
 */
export function fileObject(declaredSize: bigint, mode: number, deflated: Buffer, rdev = 0): Buffer {
  const header = Buffer.alloc(26)
  header.writeBigUInt64BE(declaredSize, 0)
  header.writeUInt32BE(0, 8)
  header.writeUInt32BE(0, 12)
  header.writeUInt32BE(mode, 16)
  header.writeUInt32BE(rdev, 20)
  header[24] = 0 // the symlink target: empty
  header[25] = 25 // framing offset: where the string ends
  const prefix = Buffer.alloc(8)
  prefix.writeUInt32BE(header.length, 0)
  return Buffer.concat([prefix, header, deflated])
}
