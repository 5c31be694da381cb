import { rm } from 'node:fs/promises'
import path from 'node:path'
import { parseRef } from '../../src/domain/build/names.ts'
import { repoDecider, repoStreamId } from '../../src/domain/repo/repo.ts'
import { refsToDelete, runtimeStillUsed } from '../../src/ostree/deletion.ts'
import { deleteRef } from '../../src/ostree/ostree.ts'
import type { JobHandler } from './types.ts'
import { configuredRepo } from './updateRepo.ts'

/**
 * Deletes refs from a repo: an app with its extensions (`<app>.Locale`, `.Debug` …) on every arch
 * and branch, or refs named one by one. A runtime that an app left in the repo still uses is
 * refused unless forced. The refs go at once; their objects at the next prune. The pipeline then
 * updates the repo (appstream drops the app, the summary is signed again); clients that have the
 * app keep it, and flatpak says it is no longer available.
 */
export const deleteJob: JobHandler<'delete'> = {
  async run({ payload, log, config }) {
    const repo = configuredRepo(config, payload.repo)
    const { present, selected } = await refsToDelete(repo.path, payload)
    if (selected.length === 0) throw new Error(`Nothing to delete: ${payload.app ? `no refs of ${payload.app}` : `none of ${payload.refs.join(', ')}`} in repo ${repo.name}`)
    // Checked when it was asked for too; checked again here, in the repo's queue, where nothing changes the refs meanwhile.
    const inUse = payload.force ? null : await runtimeStillUsed(repo.path, present, selected)
    if (inUse) throw new Error(`${inUse} (repo ${repo.name})`)
    log.message(`Deleting ${selected.join(', ')} from ${repo.name}: ${payload.reason}`)
    for (const refName of selected) {
      await deleteRef(repo.path, refName)
      const ref = parseRef(refName)
      if (ref.kind === 'app' && !present.some((other) => other !== refName && !selected.includes(other) && other.startsWith(`app/${ref.id}/`))) {
        await rm(path.join(repo.path, 'appstream', `${ref.id}.flatpakref`), { force: true })
      }
    }
    return {
      results: { deleted: selected },
      record: async (unit) => {
        await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', { type: 'RecordDeleted', data: { refs: selected, reason: payload.reason } })
      },
    }
  },
}
