import { spawn, type ChildProcess } from 'node:child_process'

/**
 * A small long-lived Node process that starts commands for a server process. Node forks to spawn
 * (libuv's uv_spawn), and a fork copies the page tables of the whole process and waits for the
 * child's exec: from a server of ~190 MB that held the event loop 4–9 ms per command (1.5 ms from
 * a 50 MB process), a stall every request and every log subscriber shared. A publish runs half a
 * dozen commands. The helper forks instead, off the server's thread, and streams each command's
 * output back over IPC; `run()` keeps its contract either way (see useSpawner).
 *
 * The helper is plain CommonJS, sent with `node -e`: no module of this project runs in it, so it
 * stays small whatever the server loads. It exits when its parent does (the IPC channel closes),
 * which leaves the commands it started as a dying server leaves its own: their output pipes closed.
 */
const helperSource = String.raw`
process.title = 'flatdepot-spawn-helper'
const { spawn } = require('node:child_process')
const running = new Map()
const send = (message) => { if (process.connected) process.send(message) }
process.on('disconnect', () => process.exit(0))
// A terminal's Ctrl-C is for the server, which stops its commands itself; the helper goes with it.
process.on('SIGINT', () => {})
process.on('message', (message) => {
  if (message.t === 'kill') {
    const entry = running.get(message.id)
    if (entry) stop(entry, 'cancelled')
    return
  }
  if (message.t !== 'run') return
  const { id, file, args, cwd, env, timeoutMs } = message
  let child
  try {
    child = spawn(file, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (error) {
    send({ t: 'exit', id, errno: error.code || 'EINVAL' })
    return
  }
  const entry = { child, why: null, timer: null, force: null }
  running.set(id, entry)
  if (timeoutMs > 0) entry.timer = setTimeout(() => stop(entry, 'timedOut'), timeoutMs)
  child.stdout.on('data', (bytes) => send({ t: 'out', id, s: 1, b: bytes }))
  child.stderr.on('data', (bytes) => send({ t: 'out', id, s: 2, b: bytes }))
  let spawnError = null
  child.on('error', (error) => { spawnError = error })
  child.on('close', (code, signal) => {
    clearTimeout(entry.timer)
    clearTimeout(entry.force)
    running.delete(id)
    if (spawnError && child.pid === undefined) send({ t: 'exit', id, errno: spawnError.code || 'EINVAL' })
    else send({ t: 'exit', id, code, signal, why: entry.why })
  })
})
// As execa does: SIGTERM, then SIGKILL five seconds later if the command is still there.
function stop(entry, why) {
  if (entry.why) return
  entry.why = why
  entry.child.kill('SIGTERM')
  entry.force = setTimeout(() => entry.child.kill('SIGKILL'), 5000)
  entry.force.unref()
}
`

export type SpawnRequest = Readonly<{
  file: string
  args: readonly string[]
  cwd: string
  env: NodeJS.ProcessEnv
  timeoutMs: number
}>

/** How a command ended: it never started (`errno`), or its exit code or signal, and why we stopped it. */
export type SpawnExit =
  | Readonly<{ errno: string }>
  | Readonly<{ errno?: undefined; code: number | null; signal: NodeJS.Signals | null; why: 'timedOut' | 'cancelled' | null }>

type Pending = {
  onOutput: (stream: 'stdout' | 'stderr', bytes: Buffer) => void
  resolve: (exit: SpawnExit) => void
}

export class Spawner {
  #helper: ChildProcess | null = null
  #next = 1
  readonly #pending = new Map<number, Pending>()

  /**
   * Starts `request` in the helper; `onOutput` gets its output as it comes, and the promise how it
   * ended. `signal` stops it (SIGTERM, then SIGKILL). A helper that died fails what it was running
   * as a spawn failure (EPIPE: worth trying again) and is started afresh for the next command.
   */
  run(request: SpawnRequest, onOutput: Pending['onOutput'], signal?: AbortSignal): Promise<SpawnExit> {
    const helper = this.#start()
    const id = this.#next++
    // A command in flight holds the process open, as a directly spawned child would.
    if (this.#pending.size === 0) helper.channel?.ref()
    return new Promise<SpawnExit>((resolve) => {
      const onAbort = () => this.#send(helper, { t: 'kill', id })
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#pending.set(id, {
        onOutput,
        resolve: (exit) => {
          signal?.removeEventListener('abort', onAbort)
          if (this.#pending.size === 0) helper.channel?.unref()
          resolve(exit)
        },
      })
      if (!this.#send(helper, { t: 'run', id, ...request })) {
        // The channel closed under us: as a helper that died (its 'disconnect' follows).
        const pending = this.#pending.get(id)
        this.#pending.delete(id)
        pending?.resolve({ errno: 'EPIPE' })
        return
      }
      if (signal?.aborted) onAbort()
    })
  }

  /** False when the channel is closed; a send that fails later comes as the helper's 'error'. */
  #send(helper: ChildProcess, message: Record<string, unknown>): boolean {
    if (!helper.connected) return false
    try {
      helper.send(message)
      return true
    } catch {
      return false
    }
  }

  /** Starts the helper now (a fork costs least while this process is still small). */
  warm(): void {
    this.#start()
  }

  #start(): ChildProcess {
    if (this.#helper) return this.#helper
    // The server's own node options (a CPU profile, a heap limit) are not the helper's business.
    const helper = spawn(process.execPath, ['-e', helperSource], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced',
      env: { ...process.env, NODE_OPTIONS: '' },
    })
    this.#helper = helper
    helper.on('message', (message: { t: 'out'; id: number; s: 1 | 2; b: Uint8Array } | ({ t: 'exit'; id: number } & SpawnExit)) => {
      const pending = this.#pending.get(message.id)
      if (!pending) return
      if (message.t === 'out') pending.onOutput(message.s === 1 ? 'stdout' : 'stderr', Buffer.from(message.b.buffer, message.b.byteOffset, message.b.byteLength))
      else {
        this.#pending.delete(message.id)
        const { t: _t, id: _id, ...exit } = message
        pending.resolve(exit as SpawnExit)
      }
    })
    const gone = () => {
      if (this.#helper !== helper) return // stopped, or already replaced: its commands were failed then
      this.#helper = null
      this.#failAll()
    }
    // `on`, not `once`: every failed send after the channel closed emits another 'error', and an
    // 'error' without a listener would end the server.
    helper.once('disconnect', gone)
    helper.once('exit', gone)
    helper.on('error', gone)
    // It must not keep a process alive that is otherwise done; a command in flight does (run()).
    helper.unref()
    helper.channel?.unref()
    return helper
  }

  /** Stops the helper; what it was running fails as it would if the helper died. */
  stop(): void {
    const helper = this.#helper
    this.#helper = null
    helper?.kill()
    this.#failAll()
  }

  #failAll(): void {
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id)
      pending.resolve({ errno: 'EPIPE' })
    }
  }
}
