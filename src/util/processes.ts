import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'

/**
 * When a process started, in clock ticks since boot (/proc/<pid>/stat, field 22): with the pid it
 * names one process for good, even after the pid is reused. null where /proc cannot tell.
 */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which is in parentheses and may itself hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null
  } catch {
    return null
  }
}

/** Whether the process that had `pid` and `startTime` (null: unknown) is still running. */
export function processAlive(pid: number, startTime: string | null): boolean {
  try {
    process.kill(pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false
  }
  const now = processStartTime(pid)
  return startTime === null || now === null || now === startTime
}

/** A short, file-name-safe id of this machine, so files left by another machine are never judged here. */
export const hostTag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8)

/** This process, as a file-name-safe tag: `<host>.<pid>.<start time>`. */
export const processTag = `${hostTag}.${process.pid}.${processStartTime(process.pid) ?? '0'}`

/**
 * Whether the process a tag names has certainly gone: it ran on this machine and is not running.
 * A tag from another machine (shared storage) is never judged gone; age decides for those.
 */
export function tagGone(tag: string): boolean {
  const match = /^([0-9a-f]{8})\.(\d+)\.(\d+)$/.exec(tag)
  if (!match || match[1] !== hostTag) return false
  return !processAlive(Number(match[2]), match[3] === '0' ? null : match[3]!)
}
