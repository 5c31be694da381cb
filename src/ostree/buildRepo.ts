import { existsSync } from 'node:fs'
import { appendFile, mkdir, rm, symlink } from 'node:fs/promises'
import path from 'node:path'
import { run } from './run.ts'

export const buildDir = (base: string, buildId: number) => path.join(base, String(buildId))
export const uploadDir = (base: string, buildId: number) => path.join(buildDir(base, buildId), 'upload')

/**
 * The build repo `<base>/<id>` (what commit writes and /build-repo serves) and its upload repo
 * `<base>/<id>/upload` (what uploads fill), both archive-mode, with the main repo as `core.parent`
 * so objects a client skipped because the main repo has them are found (flat-manager's layout).
 * Idempotent: a repeated call, or one after a crash half-way, finishes the job.
 */
export async function ensureBuildRepos(
  base: string,
  buildId: number,
  main: { path: string; collectionId: string | null },
): Promise<void> {
  const build = buildDir(base, buildId)
  const upload = uploadDir(base, buildId)
  if (existsSync(path.join(upload, '.flatdepot-ready'))) return
  await mkdir(build, { recursive: true })
  for (const [repo, collectionId] of [
    [build, main.collectionId ? `${main.collectionId}.Build${buildId}` : null],
    [upload, null],
  ] as const) {
    if (!existsSync(path.join(repo, 'config'))) {
      await rm(repo === build ? path.join(build, 'objects') : repo, { recursive: true, force: true })
      const args = [`--repo=${repo}`, 'init', '--mode=archive-z2']
      if (collectionId) args.push(`--collection-id=${collectionId}`)
      await run('ostree', args, { timeoutMs: 60_000 })
      // core.parent: a key of [core], which `ostree init` wrote last.
      await appendFile(path.join(repo, 'config'), `parent=${main.path}\nmin-free-space-size=500MB\n`)
    }
  }
  if (!existsSync(path.join(build, 'parent'))) await symlink(main.path, path.join(build, 'parent'))
  await appendFile(path.join(upload, '.flatdepot-ready'), '')
}
