import type { Command } from 'commander'
import { pruneRepoMutation } from '../../client/documents.ts'
import { awaitJob } from '../../client/workflow.ts'
import { bytes, nonNegativeInt, print, printJob, withClient, withConnection } from '../shared.ts'


export function register(program: Command): void {
  withConnection(
    program
      .command('prune')
      .description("remove the objects no kept commit needs (needs the prune scope); unset options come from the repo's prune config")
      .argument('<repo>')
      .option('--depth <n>', "parents kept behind each ref's commit (0: only the commit)", nonNegativeInt)
      .option('--keep-younger-than <days>', 'keep every commit younger than this many days, whatever the depth', nonNegativeInt)
      .option('--dry-run', 'only count what would go (implies --wait)')
      .option('--wait', 'follow the job; exit status from its outcome'),
  ).action(async (repo: string, options) => {
    await withClient(options, async (client) => {
      const dryRun = Boolean(options.dryRun)
      const { pruneRepo } = await client.graphql(pruneRepoMutation, { repo, depth: options.depth ?? null, keepYoungerThanDays: options.keepYoungerThan ?? null, dryRun })
      if (!options.wait && !dryRun) return printJob(options, 'prune', pruneRepo.id, null)
      const job = await awaitJob(client, pruneRepo.id, 'prune', Boolean(options.json))
      const results = (job.results ?? {}) as { objects?: number; bytes?: number; heldBuilds?: number[] }
      const held = results.heldBuilds?.length ? `; kept what builds ${results.heldBuilds.join(', ')} borrow` : ''
      print(options, { jobId: pruneRepo.id, job }, `${dryRun ? 'would remove' : 'removed'} ${results.objects ?? 0} objects, ${bytes(results.bytes ?? 0)} (prune job ${pruneRepo.id}${held})`)
    })
  })
}
