import path from 'node:path'
import { repoSigning, repoUrl, type Config, type RepoConfig } from '../../src/config/config.ts'
import { parseDeltaName } from '../../src/domain/repo/deltas.ts'
import { repoDecider, repoStreamId } from '../../src/domain/repo/repo.ts'
import { buildUpdateRepo, exportPublicKeys } from '../../src/ostree/flatpak.ts'
import { flatpakrepo, writeFileAtomically } from '../../src/storage/descriptors.ts'
import { retireDelta } from '../../src/storage/deltas.ts'
import { publishSummarySnapshot } from '../../src/storage/summary.ts'
import { runHook } from '../hooks.ts'
import type { JobHandler } from './types.ts'

export function configuredRepo(config: Config, name: string): RepoConfig {
  const repo = config.repos.get(name)
  if (!repo) throw new Error(`repo ${name} is not configured`)
  return repo
}

/**
 * Makes what was published installable: retires the deltas the last delta job found unwanted
 * (recorded on the repo's stream; here, in the repo's queue, so no summary is being written
 * meanwhile), then appstream branches and a signed summary in one `build-update-repo`, served
 * from a snapshot taken once complete. The pipeline then queues the static deltas in their own
 * job and queue: a client sees the new version as soon as its commit and summary are in place.
 */
export const updateRepoJob: JobHandler<'update-repo'> = {
  async run({ payload, log, config, signal, read }) {
    const repo = configuredRepo(config, payload.repo)
    const signing = repoSigning(config, repo)
    const state = await read(repoDecider, repoStreamId(repo.name), 'repo')
    const retiring = state.status === 'Configured' ? state.retiring : []
    for (const name of retiring) {
      const delta = parseDeltaName(name)
      if (!delta) continue
      await retireDelta(repo.path, delta)
      log.message(`Retired delta ${name}`)
    }
    log.message('Regenerating appstream branches and the summary')
    await buildUpdateRepo({ repo: repo.path, signing, title: repo.title ?? null, defaultBranch: repo['default-branch'] ?? null, onLine: log.output, signal })
    await publishSummarySnapshot(repo.path)
    const gpgKey = signing ? await exportPublicKeys(signing) : null
    const descriptorName = repo.name.replaceAll('/', '-')
    const title = repo.title ?? repo.name
    const defaultBranch = repo['default-branch'] ?? null
    await writeFileAtomically(path.join(repo.path, `${descriptorName}.flatpakrepo`), flatpakrepo({ title, url: repoUrl(config, repo), defaultBranch, gpgKey }))
    // One per subset: the same repo, read through the subset's summary.
    for (const [subset, settings] of Object.entries(repo.subsets)) {
      const url = settings['base-url'] ?? repoUrl(config, repo)
      await writeFileAtomically(path.join(repo.path, `${descriptorName}-${subset}.flatpakrepo`), flatpakrepo({ title: `${title} (${subset})`, url, defaultBranch, gpgKey, subset }))
    }
    if (repo['post-publish-script']) {
      await runHook('post-publish script', [repo['post-publish-script'], repo.name, repo.path], { env: {}, signal, log })
    }
    return {
      results: { retired: retiring.length },
      record: async (unit) => {
        await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', { type: 'RecordSummaryUpdated', data: { retired: [...retiring] } })
      },
    }
  },
}
