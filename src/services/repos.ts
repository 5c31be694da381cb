import type { RepoConfig } from '../config/config.ts'
import { repoGpgKeys } from '../config/config.ts'
import { repoDecider, repoStreamId } from '../domain/repo/repo.ts'
import type { CommandRunner } from '../eventStore/unitOfWork.ts'
import { commandMetadata, systemActor } from './actor.ts'

/** Records each configured repo's settings as events when they changed since the last start. */
export async function syncRepoConfig(run: CommandRunner, repos: Iterable<RepoConfig>): Promise<number> {
  const { events } = await run(commandMetadata(systemActor), async (unit) => {
    for (const repo of repos) {
      await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', {
        type: 'ConfigureRepo',
        data: {
          name: repo.name,
          settings: {
            path: repo.path,
            title: repo.title ?? null,
            collectionId: repo['collection-id'] ?? null,
            defaultBranch: repo['default-branch'] ?? null,
            baseUrl: repo['base-url'] ?? null,
            gpgKey: repoGpgKeys(repo).join(',') || null,
          },
        },
      })
    }
  })
  return events.length
}
