import assert from 'node:assert/strict'
import { mkdtempSync, realpathSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isTransient } from '../../src/jobs/retry.ts'
import { CommandError, run, useSpawner } from '../../src/process/run.ts'

/** What a caller of run() sees must not depend on where the command was started from. */
for (const mode of ['from this process', 'from the spawn helper'] as const) {
  describe(`run(), commands started ${mode}`, () => {
    let stopHelper: (() => void) | null = null
    before(() => {
      if (mode === 'from the spawn helper') stopHelper = useSpawner()
    })
    after(() => stopHelper?.())

    const failure = async (promise: Promise<unknown>): Promise<CommandError> => {
      const error = await promise.then(
        () => assert.fail('the command should have failed'),
        (error: unknown) => error,
      )
      assert.ok(error instanceof CommandError, `a CommandError, not ${String(error)}`)
      return error
    }

    it('starts the command where the mode says', async () => {
      const { stdout } = await run('sh', ['-c', 'echo $PPID'])
      if (mode === 'from this process') assert.equal(Number(stdout), process.pid, 'the command is this process’s child')
      else assert.notEqual(Number(stdout), process.pid, 'the command is the helper’s child, not this process’s')
    })

    it('gives stdout and stderr without the final newline, and the lines as they come', async () => {
      const lines: string[] = []
      const result = await run('sh', ['-c', 'printf "one\\ntwo\\r\\n"; printf "warn\\n" >&2; printf "last"'], { onLine: (line, stream) => lines.push(`${stream}:${line}`) })
      assert.equal(result.stdout, 'one\ntwo\r\nlast', 'stdout as printed, without a final newline')
      assert.equal(result.stderr, 'warn', 'stderr without its final newline')
      assert.deepEqual(lines.filter((line) => line.startsWith('stdout')), ['stdout:one', 'stdout:two', 'stdout:last'], 'stdout lines in order, CR dropped, the unterminated last line too')
      assert.deepEqual(lines.filter((line) => line.startsWith('stderr')), ['stderr:warn'], 'stderr lines')
    })

    it('keeps binary output byte for byte', async () => {
      const { stdout } = await run('printf', ['\\000\\377\\n'], { encoding: 'buffer' })
      assert.deepEqual([...(stdout as unknown as Buffer)], [0, 255, 10], 'every byte, the trailing newline included')
    })

    it('runs in the given directory with the given environment added', async () => {
      const dir = realpathSync(mkdtempSync(path.join(tmpdir(), 'flatdepot-run-')))
      const { stdout } = await run('sh', ['-c', 'echo "$(pwd) $FLATDEPOT_RUN_TEST ${PATH:+has-path}"'], { cwd: dir, env: { FLATDEPOT_RUN_TEST: 'given' } })
      assert.equal(stdout, `${dir} given has-path`, 'cwd, the added variable, and the inherited PATH')
    })

    it('says how a command failed: its exit code and stderr', async () => {
      const error = await failure(run('sh', ['-c', 'echo "error: No such ref" >&2; exit 3']))
      assert.equal(error.kind, 'Failed')
      assert.equal(error.exitCode, 3, 'the exit code')
      assert.equal(error.stderr, 'error: No such ref', 'what it printed on stderr')
      assert.match(error.message, /exited unsuccessfully \(3\): error: No such ref/, 'a message a person can act on')
    })

    it('without buffering, quotes only stderr’s last lines and returns no stdout', async () => {
      const lines: string[] = []
      const result = await run('sh', ['-c', 'seq 1 30 >&2; echo out'], { buffer: false, onLine: (line) => lines.push(line) })
      assert.equal(result.stdout, '', 'stdout went to onLine only')
      assert.equal(lines.length, 31, 'every line reached onLine')
      const error = await failure(run('sh', ['-c', 'seq 1 30 >&2; exit 1'], { buffer: false, onLine: () => {} }))
      assert.equal(error.stderr.split('\n').length, 20, 'the last 20 lines of stderr')
      assert.equal(error.stderr.split('\n').at(-1), '30', 'ending with the last one')
    })

    it('names a command that is not installed', async () => {
      const error = await failure(run('flatdepot-no-such-command', ['x']))
      assert.equal(error.kind, 'NotFound')
      assert.match(error.message, /flatdepot-no-such-command is not installed/)
    })

    it('stops a command that runs too long', async () => {
      const started = Date.now()
      const error = await failure(run('sleep', ['10'], { timeoutMs: 200 }))
      assert.equal(error.kind, 'TimedOut')
      assert.ok(Date.now() - started < 5000, 'stopped at the timeout, not at the end of the command')
    })

    it('stops a command when asked, and does not start one already cancelled', async () => {
      const controller = new AbortController()
      const running = run('sleep', ['10'], { signal: controller.signal })
      setTimeout(() => controller.abort(), 100)
      const started = Date.now()
      assert.equal((await failure(running)).kind, 'Cancelled')
      assert.ok(Date.now() - started < 5000, 'stopped when asked')
      assert.equal((await failure(run('sh', ['-c', 'exit 0'], { signal: AbortSignal.abort() }))).kind, 'Cancelled', 'an aborted signal')
    })

    it('runs commands side by side, each with its own output', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => run('sh', ['-c', `sleep 0.0${i % 5}; echo ${i}`])))
      assert.deepEqual(
        results.map((result) => result.stdout),
        Array.from({ length: 20 }, (_, i) => String(i)),
        'each call got its own command’s output',
      )
    })

    if (mode === 'from the spawn helper') {
      it('a helper that dies fails what it was running as worth trying again, and the next command starts a new one', async () => {
        const helperPid = Number((await run('sh', ['-c', 'echo $PPID'])).stdout)
        const running = run('sleep', ['10'])
        await new Promise((resolve) => setTimeout(resolve, 100))
        process.kill(helperPid, 'SIGKILL')
        const error = await failure(running)
        assert.equal(error.kind, 'SpawnFailed')
        assert.equal(isTransient(error), true, 'a job retries it')
        const next = Number((await run('sh', ['-c', 'echo $PPID'])).stdout)
        assert.notEqual(next, helperPid, 'a new helper')
        assert.notEqual(next, process.pid, 'still not this process')
      })

      it('stopping the helper fails what it runs at once, and later commands start from this process', async () => {
        const running = run('sleep', ['10'])
        await new Promise((resolve) => setTimeout(resolve, 100))
        const started = Date.now()
        useSpawner()() // the same helper's stop, as a server stopping calls it
        const error = await failure(running)
        assert.equal(error.kind, 'SpawnFailed', 'the running command failed')
        assert.ok(Date.now() - started < 2000, 'at once, not when the command would have ended')
        assert.equal(Number((await run('sh', ['-c', 'echo $PPID'])).stdout), process.pid, 'no helper any more')
      })
    }
  })
}
