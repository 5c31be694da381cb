import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isTransient, retryTransient } from '../../src/jobs/retry.ts'
import { CommandError } from '../../src/process/run.ts'

// The message a fresh-clone CI run got from a commit job whose two refs were committed side by
// side into one build repo (session 15).
const stagingRace = () =>
  new CommandError(
    'Failed',
    'flatpak build-commit-from --no-update-summary --timestamp=NOW --untrusted --disable-fsync --force --src-repo=/tmp/b/2/upload /tmp/b/2 runtime/org.test.Platform/x86_64/1.0',
    1,
    'error: opendir(staging-3b8f2917-bc2f-42b4-bc50-8d4ee2268351-18iSig): No such file or directory\n',
  )

describe('which job failures are tried again', () => {
  it("OSTree's staging race between two transactions in one repo is passing; a command's real failure is not", () => {
    assert.equal(isTransient(stagingRace()), true, 'the staging race')
    assert.equal(isTransient(new Error('The job failed', { cause: stagingRace() })), true, 'the staging race as the cause')
    assert.equal(isTransient(new CommandError('Failed', 'flatpak build-commit-from', 1, 'error: No such ref runtime/org.test.Platform/x86_64/1.0\n')), false, 'a missing ref')
    assert.equal(isTransient(new CommandError('Failed', 'ostree fsck', 1, 'error: opendir(objects/ab): No such file or directory\n')), false, 'a missing object directory is not the race')
    assert.equal(isTransient(new CommandError('TimedOut', 'flatpak build-commit-from', null, 'error: opendir(staging-x): No such file or directory')), false, 'a timeout')
    assert.equal(isTransient(new CommandError('SpawnFailed', 'ostree', null, '', 'EAGAIN')), true, 'a process table full for a moment')
    assert.equal(isTransient(new CommandError('SpawnFailed', 'ostree', null, '', 'EACCES')), false, 'a command that may not run')
  })

  it('a job that meets the staging race runs again and succeeds; one that fails for real fails once', async () => {
    const policy = { retries: 3, minMs: 1, maxMs: 5 }
    let attempts = 0
    const retried: number[] = []
    const result = await retryTransient(
      async () => {
        attempts += 1
        if (attempts === 1) throw stagingRace()
        return 'committed'
      },
      policy,
      { onRetry: (_error, attempt) => retried.push(attempt) },
    )
    assert.equal(result, 'committed')
    assert.equal(attempts, 2, 'tried twice')
    assert.deepEqual(retried, [1], 'the retry is reported once, for the first attempt')

    let realAttempts = 0
    await assert.rejects(
      retryTransient(async () => {
        realAttempts += 1
        throw new CommandError('Failed', 'flatpak build-commit-from', 1, 'error: No such ref x\n')
      }, policy),
      /No such ref x/,
    )
    assert.equal(realAttempts, 1, 'a real failure is not repeated')
  })
})
