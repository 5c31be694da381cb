import { createHash } from 'node:crypto'
import pg from 'pg'

/** A JSON document for a jsonb column; wrap values with `json()` so arrays are not taken for text[]. */
export class Json {
  constructor(readonly value: unknown) {}
}
export const json = (value: unknown): Json => new Json(value)

export type SqlValue = string | number | bigint | boolean | null | undefined | Date | readonly string[] | Json

/**
 * One SQL statement with its values, written as a tagged template (`sql\`... ${value} ...\``).
 * It runs two ways: with bind parameters (`text` and `params`, for reads), or with its values
 * written in as literals (`inline()`), so that the writes of a transaction go to the server as one
 * script in one round trip. Literals are made by node-postgres's own `escapeLiteral`; only the
 * types above are accepted, each with an explicit cast where its type is not plain.
 */
export class Statement {
  constructor(
    readonly strings: readonly string[],
    readonly values: readonly SqlValue[],
    /** See prepare(). */
    readonly prepared = false,
  ) {}

  /**
   * The same statement, sent on PostgreSQL as a named prepared statement: parsed and planned once
   * per connection, then only bound and run. For hot reads whose text is fixed (a stream's
   * events, a token's row, a job's new log lines); every distinct text stays prepared on each
   * pooled connection for its life, so not for text that varies with its values. PGlite runs it
   * as any other statement.
   */
  prepare(): Statement {
    return new Statement(this.strings, this.values, true)
  }

  get text(): string {
    return this.strings.reduce((text, part, index) => text + placeholder(this.values[index - 1], index) + part)
  }

  get params(): unknown[] {
    return this.values.map(param)
  }

  inline(): string {
    return this.strings.reduce((text, part, index) => text + literal(this.values[index - 1]) + part)
  }
}

/** A statement; a value that is itself a statement is written in place, with its own values. */
export function sql(strings: TemplateStringsArray, ...values: (SqlValue | Statement)[]): Statement {
  const parts: string[] = [strings[0] ?? '']
  const flat: SqlValue[] = []
  values.forEach((value, index) => {
    const next = strings[index + 1] ?? ''
    if (value instanceof Statement) {
      const [first = '', ...rest] = value.strings
      parts[parts.length - 1] += first
      parts.push(...rest)
      parts[parts.length - 1] += next
      flat.push(...value.values)
    } else {
      parts.push(next)
      flat.push(value)
    }
  })
  return new Statement(parts, flat)
}

function placeholder(value: SqlValue, index: number): string {
  if (value instanceof Json) return `$${index}::jsonb`
  if (Array.isArray(value)) return `$${index}::text[]`
  if (value instanceof Date) return `$${index}::timestamptz`
  return `$${index}`
}

function param(value: SqlValue): unknown {
  if (value instanceof Json) return JSON.stringify(value.value)
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'bigint') return value.toString()
  return value ?? null
}

export function literal(value: SqlValue): string {
  if (value === null || value === undefined) return 'NULL'
  if (typeof value === 'string') return pg.escapeLiteral(value)
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE'
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`not a number SQL can hold: ${value}`)
    return String(value)
  }
  if (value instanceof Date) return `${pg.escapeLiteral(value.toISOString())}::timestamptz`
  if (value instanceof Json) return `${pg.escapeLiteral(JSON.stringify(value.value))}::jsonb`
  if (Array.isArray(value)) return value.length ? `ARRAY[${value.map((item: string) => pg.escapeLiteral(String(item))).join(', ')}]::text[]` : `'{}'::text[]`
  throw new TypeError(`no SQL literal for ${typeof value}`)
}

const preparedNames = new Map<string, string>()

/** A prepared statement's name on the server: its text's digest (one name per distinct text). */
export function preparedName(text: string): string {
  let name = preparedNames.get(text)
  if (name === undefined) preparedNames.set(text, (name = `flatdepot_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`))
  return name
}
