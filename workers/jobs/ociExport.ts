import { parseRef } from '../../src/domain/build/names.ts'
import { repoDecider, repoStreamId, type OciImageRecord } from '../../src/domain/repo/repo.ts'
import { buildOciBundle, listRefs, revParse } from '../../src/ostree/flatpak.ts'
import { readCommitAccess } from '../../src/storage/commitAccess.ts'
import { importLayout, ociRoot, scratchLayout } from '../../src/storage/ociStore.ts'
import type { JobHandler } from './types.ts'
import { configuredRepo } from './updateRepo.ts'

/**
 * Exports the repo's app and runtime refs whose commit has no image yet as OCI images (the real
 * `flatpak build-bundle --oci`), their blobs stored once by digest. Each image is tagged with its
 * branch, and `latest` when it is the repo's default branch or the id's only branch on that arch;
 * tags move to the newest image (the read model does it). Runs after every repo update.
 */
export const ociExportJob: JobHandler<'oci-export'> = {
  async run({ payload, log, config, prisma, signal }) {
    const repo = configuredRepo(config, payload.repo)
    if (!repo.oci) throw new Error(`repo ${repo.name} has no "oci" in the config`)
    const root = ociRoot(config.dataDir)
    const refs = (await listRefs(repo.path)).flatMap((refName) => {
      if (!refName.startsWith('app/') && !refName.startsWith('runtime/')) return [] // appstream, ostree-metadata
      const ref = parseRef(refName)
      return ref.kind === 'app' || ref.kind === 'runtime' ? [{ refName, ...ref }] : []
    })
    const images: OciImageRecord[] = []
    for (const ref of refs) {
      const commit = await revParse(repo.path, ref.refName)
      if (await prisma.ociImage.findFirst({ where: { repoName: repo.name, ref: ref.refName, commit }, select: { id: true } })) continue
      // A registry has no download tokens: a commit the repo serves only to download tokens stays out of it.
      const access = repo['require-auth-for-token-types'].length ? await readCommitAccess(repo.path, commit, repo['default-token-type']) : null
      if (access && repo['require-auth-for-token-types'].includes(access.tokenType)) {
        log.message(` ${ref.refName}: not exported, its commit needs a download token (token type ${access.tokenType})`)
        continue
      }
      const layout = await scratchLayout(root)
      await buildOciBundle({ repo: repo.path, dir: layout, id: ref.id, arch: ref.arch, branch: ref.branch, runtime: ref.kind === 'runtime', onLine: log.output, signal })
      const image = await importLayout(root, layout)
      const branches = new Set(refs.filter((other) => other.id === ref.id && other.arch === ref.arch).map((other) => other.branch))
      const latest = branches.size === 1 || ref.branch === repo['default-branch']
      images.push({
        repository: `${repo.oci.prefix ?? repo.name.toLowerCase()}/${ref.id.toLowerCase()}`,
        ref: ref.refName,
        commit,
        ...image,
        tags: latest ? [ref.branch, 'latest'] : [ref.branch],
        annotations: {},
      })
      log.message(` ${ref.refName} → ${images.at(-1)!.repository}@${image.digest} (${image.size} bytes)`)
    }
    if (images.length === 0) log.message('Every ref already has its image')
    return {
      results: { images: images.map(({ repository, ref, digest, tags }) => ({ repository, ref, digest, tags })) },
      record: async (unit) => {
        for (const image of images) await unit.decide(repoDecider, repoStreamId(repo.name), 'repo', { type: 'RecordOciImage', data: image })
      },
    }
  },
}
