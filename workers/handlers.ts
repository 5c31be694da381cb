import type { JobKind } from '../src/domain/job/job.ts'
import { checkJob } from './jobs/check.ts'
import { commitJob } from './jobs/commit.ts'
import { deleteJob } from './jobs/delete.ts'
import { deltaJob } from './jobs/delta.ts'
import { exportJob } from './jobs/export.ts'
import { ociExportJob } from './jobs/ociExport.ts'
import { mirrorSyncJob } from './jobs/mirrorSync.ts'
import { publishJob } from './jobs/publish.ts'
import { pruneJob } from './jobs/prune.ts'
import { purgeJob } from './jobs/purge.ts'
import { republishJob } from './jobs/republish.ts'
import { rollbackJob } from './jobs/rollback.ts'
import type { JobHandler } from './jobs/types.ts'
import { updateRepoJob } from './jobs/updateRepo.ts'

/** Each kind's effect handler; a kind without one fails with "no worker handles … yet". */
export type JobHandlers = { readonly [K in JobKind]?: JobHandler<K> }

export const jobHandlers: JobHandlers = {
  commit: commitJob,
  check: checkJob,
  publish: publishJob,
  purge: purgeJob,
  'update-repo': updateRepoJob,
  delta: deltaJob,
  prune: pruneJob,
  republish: republishJob,
  delete: deleteJob,
  rollback: rollbackJob,
  'mirror-sync': mirrorSyncJob,
  export: exportJob,
  'oci-export': ociExportJob,
}
