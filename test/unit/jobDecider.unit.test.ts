import { describe, it } from 'node:test'
import { jobDecider, type JobEvent } from '../../src/domain/job/job.ts'
import { WrongStateError } from '../../src/domain/shared/errors.ts'
import { deciderSpec } from '../support/decider.ts'

const spec = deciderSpec(jobDecider)
const queued: JobEvent = { type: 'JobQueued', data: { jobId: 7, kind: 'commit', repo: null, buildId: 3, contents: {}, startAfter: null } }

describe('job decider: attempts', () => {
  it('counts the first start as attempt 1', () => {
    spec([queued]).when({ type: 'StartJob', data: { workerId: 'w1', attempt: 1 } }).then([{ type: 'JobStarted', data: { jobId: 7, workerId: 'w1', attempt: 1 } }])
  })
  it('counts an attempt killed before it recorded its start (the queue claimed it twice)', () => {
    spec([queued]).when({ type: 'StartJob', data: { workerId: 'w2', attempt: 2 } }).then([{ type: 'JobStarted', data: { jobId: 7, workerId: 'w2', attempt: 2 } }])
  })
  it('counts up from the recorded starts when the claim count says less', () => {
    spec([queued, { type: 'JobStarted', data: { jobId: 7, workerId: 'w1', attempt: 1 } }])
      .when({ type: 'StartJob', data: { workerId: 'w2' } })
      .then([{ type: 'JobStarted', data: { jobId: 7, workerId: 'w2', attempt: 2 } }])
  })
  it('refuses to start a job that has ended', () => {
    spec([queued, { type: 'JobStarted', data: { jobId: 7, workerId: 'w1', attempt: 1 } }, { type: 'JobSucceeded', data: { jobId: 7, results: {} } }])
      .when({ type: 'StartJob', data: { workerId: 'w2', attempt: 2 } })
      .thenThrows(WrongStateError, 'Job 7 has already ended')
  })
})
