import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { processAlive, processStartTime } from '../util/processes.ts'

type Holder = { pid: number; startTime: string | null; host: string; command: string; since: string }

/** Another process has the embedded database open: the message says which, and what to do. */
export class DataDirLockedError extends Error {}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/**
 * Takes the embedded database's lock (`<dataDir>.lock`, PostgreSQL's postmaster.pid idea): one
 * process at a time, since two PGlite instances on one directory corrupt it beyond repair. A lock
 * whose process is gone (killed, crashed, the machine restarted) is taken over; the process is
 * named by pid and start time, so a reused pid does not keep a dead lock alive. Returns the
 * release, which runs on exit too.
 */
export function lockDataDir(dataDir: string): () => void {
  const file = `${dataDir}.lock`
  const me: Holder = {
    pid: process.pid,
    startTime: processStartTime(process.pid),
    host: hostname(),
    command: process.argv.slice(1).join(' '),
    since: new Date().toISOString(),
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: 'wx', mode: 0o644 })
      const release = () => {
        process.off('exit', release)
        try {
          if ((JSON.parse(readFileSync(file, 'utf8')) as Holder).pid === me.pid) rmSync(file, { force: true })
        } catch {
          // Gone already, or never ours.
        }
      }
      process.on('exit', release)
      return release
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new Error(`cannot lock the embedded database ${dataDir} (${file}): ${(error as Error).message}`, { cause: error })
      }
    }
    let holder: Holder | null = null
    try {
      holder = JSON.parse(readFileSync(file, 'utf8')) as Holder
    } catch {
      // Being written this very moment, or left empty by a process killed while writing it.
      const age = Date.now() - (statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0)
      if (age < 2000) {
        sleep(100)
        continue
      }
    }
    if (holder && (holder.host !== me.host || processAlive(holder.pid, holder.startTime))) {
      const where = holder.host === me.host ? `process ${holder.pid}` : `process ${holder.pid} on ${holder.host}`
      throw new DataDirLockedError(
        [
          `the embedded database ${dataDir} is in use by ${where} (\`${holder.command}\`, since ${holder.since}).`,
          'Two processes on one embedded database corrupt it: stop that one first, give this one its own data directory',
          `(FLATDEPOT_DATA_DIR), or use PostgreSQL (DATABASE_URL) to run several processes. If no such process exists, remove ${file}.`,
        ].join('\n'),
      )
    }
    // Left by a process that is gone: take it over.
    rmSync(file, { force: true })
  }
  throw new DataDirLockedError(`could not take the lock ${file} on the embedded database: it keeps changing hands`)
}
