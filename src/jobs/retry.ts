import pRetry from 'p-retry'
import { CommandError } from '../process/run.ts'
import type { RetryPolicy } from './kinds.ts'

/** errno codes of a passing condition: a busy executable, a full process or file table, a dropped connection. */
const transientErrnos = new Set(['ETXTBSY', 'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'ENOMEM', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE'])
/** Prisma: the database cannot be reached, the connection closed, the pool timed out. */
const transientPrismaCodes = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024'])
/** PostgreSQL SQLSTATE classes and codes: connection exceptions, shutdown, serialization and deadlock. */
const transientSqlStates = /^(08|57P0[1-3]|40001|40P01|53300)/

/**
 * OSTree's own race between two transactions in one repo (ostreedev/ostree#1620 and #2038, open
 * upstream): a transaction looking for a staging directory to reuse can find one that the other
 * transaction's clean-up is removing, and fails with `opendir(staging-…): No such file or
 * directory` before it has written anything. The commit job runs its refs side by side in the
 * build repo and met it once in a fresh-clone CI run (session 15); run again, it passes.
 */
const ostreeStagingRace = /opendir\(staging-[^)]*\): No such file or directory/

/**
 * A failure worth trying again because it says nothing about the job: the command could not be
 * started, the database went away for a moment, OSTree's staging race above. A command that ran
 * and failed otherwise is real: trying it again would only repeat its message.
 */
export function isTransient(error: unknown): boolean {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; depth++) {
    if (current instanceof CommandError) {
      if (current.kind === 'SpawnFailed') return transientErrnos.has(current.errno ?? '')
      return current.kind === 'Failed' && ostreeStagingRace.test(current.stderr)
    }
    const { code } = current as { code?: unknown }
    if (typeof code === 'string' && (transientErrnos.has(code) || transientPrismaCodes.has(code) || transientSqlStates.test(code))) return true
    current = (current as { cause?: unknown }).cause
  }
  return false
}

/**
 * Runs `work`, trying again after a transient failure with exponential backoff and jitter
 * (p-retry) up to the policy's limit; any other failure, or the last transient one, is thrown.
 */
export function retryTransient<T>(
  work: () => Promise<T>,
  policy: RetryPolicy,
  options: { signal?: AbortSignal; onRetry?: (error: Error, attempt: number, delayHint: string) => void } = {},
): Promise<T> {
  return pRetry(work, {
    retries: policy.retries,
    minTimeout: policy.minMs,
    maxTimeout: policy.maxMs,
    factor: 2,
    randomize: true,
    signal: options.signal,
    shouldRetry: (error) => isTransient(error),
    onFailedAttempt: (error) => {
      if (error.retriesLeft > 0 && isTransient(error)) {
        const base = Math.min(policy.maxMs, policy.minMs * 2 ** (error.attemptNumber - 1))
        options.onRetry?.(error, error.attemptNumber, `${(base / 1000).toFixed(1)}-${((base * 2) / 1000).toFixed(1)} s`)
      }
    },
  })
}
