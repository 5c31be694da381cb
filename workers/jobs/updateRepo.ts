import path from 'node:path'
import { repoSigning, repoUrl, type Config, type RepoConfig } from '../../src/config/config.ts'
import { flatpakrepo, writeFileAtomically } from '../../src/ostree/descriptors.ts'
import { buildUpdateRepo, exportPublicKeys } from '../../src/ostree/flatpak.ts'
import { run } from '../../src/ostree/run.ts'
import { queueJobOnce } from '../../src/services/jobs.ts'
import { contentsString, type JobHandler } from './types.ts'

function repoFor(config: Config, name: string | null): RepoConfig {
  const repo = name ? config.repos.get(name) : undefined
  if (!repo) throw new Error(`repo ${name ?? '(none)'} is not configured`)
  return repo
}

/**
 * Makes what was published installable: appstream branches and a signed summary in one
 * `build-update-repo`. Static deltas follow in their own job, so a client sees the new version
 * as soon as its commit and summary are in place (deltas take most of a publish's time).
 */
export const updateRepoJob: JobHandler = {
  async run({ job, log, config, prisma, signal }) {
    const repo = repoFor(config, contentsString(job, 'repo'))
    const signing = repoSigning(config, repo)
    log.message('Regenerating appstream branches and the summary')
    await buildUpdateRepo({ repo: repo.path, signing, title: repo.title ?? null, defaultBranch: repo['default-branch'] ?? null, onLine: log.output, signal })
    const gpgKey = signing ? await exportPublicKeys(signing) : null
    const descriptor = path.join(repo.path, `${repo.name.replaceAll('/', '-')}.flatpakrepo`)
    await writeFileAtomically(descriptor, flatpakrepo({ title: repo.title ?? repo.name, url: repoUrl(config, repo), defaultBranch: repo['default-branch'] ?? null, gpgKey }))
    if (repo['post-publish-script']) {
      log.message(`Running post-publish script ${repo['post-publish-script']}`)
      await run(repo['post-publish-script'], [repo.name, repo.path], { signal, onLine: log.output })
    }
    return {
      results: {},
      record: async (unit) => {
        const { jobId, piggyBacked } = await queueJobOnce(unit, prisma, { kind: 'delta', repo: repo.name })
        if (!piggyBacked) log.message(`Queued static delta job ${jobId}`)
      },
    }
  },
}

/** Static deltas (from scratch and from the previous commit of each ref), then a re-signed summary that indexes them. */
export const deltaJob: JobHandler = {
  async run({ job, log, config, signal }) {
    const repo = repoFor(config, contentsString(job, 'repo'))
    const signing = repoSigning(config, repo)
    log.message('Generating static deltas')
    await buildUpdateRepo({
      repo: repo.path,
      signing,
      generateStaticDeltas: true,
      noUpdateAppstream: true,
      onLine: log.output,
      signal,
    })
    return { results: {} }
  },
}
