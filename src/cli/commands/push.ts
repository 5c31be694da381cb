import type { Command } from 'commander'
import { push } from '../../client/push.ts'
import { awaitDeltas, awaitJob, awaitReady, awaitUpdate, commitBuild, describeBuild, getBuild, publishBuild } from '../../client/workflow.ts'
import { bytes, nonNegativeInt, positiveInt, print, progressBar, withClient, withConnection } from '../shared.ts'

export function register(program: Command): void {
  withConnection(
    program
      .command('push')
      .description('upload refs of a local archive repo into a build (only what the server lacks), then create the refs')
      .argument('<repo>', 'the repo on the server, e.g. stable')
      .argument('<local-repo>', 'a local OSTree archive repo (flatpak-builder --repo, flatpak build-export)')
      .argument('[refs...]', 'refs to push (default: every app/, runtime/ and screenshots/ ref in it)')
      .option('--build-id <id>', 'push into this build (resume an interrupted push) instead of creating one', positiveInt('--build-id'))
      .option('--app-id <id>', 'restrict a new build to this app and its extensions')
      .option('--public-download', 'let anyone download the build repo before it is published')
      .option('--build-log-url <url>', 'recorded with the build and its refs')
      .option('--commit', 'commit the build once the refs are created')
      .option('--publish', 'then wait for the commit and its checks, and publish (implies --commit)')
      .option('--wait', 'wait for the last job started (commit or publish) to finish; exit status from its outcome')
      .option('--wait-update', 'after publishing, also wait for the repo update that makes the build installable')
      .option('--wait-deltas', 'and then for its static deltas and the update that lists them (implies --wait-update)')
      .option('--end-of-life <message>', 'mark the refs end-of-life when committing')
      .option('--end-of-life-rebase <app-id>', 'the app id that replaces this one, when committing')
      .option('--token-type <n>', 'the commits\' token type (xa.token-type): a type the repo lists in require-auth-for-token-types needs a download token', nonNegativeInt)
      .option('--concurrency <n>', 'upload requests in flight', positiveInt('--concurrency'), 8)
      .option('--batch-objects <n>', 'at most this many objects per upload request', positiveInt('--batch-objects'), 256)
      .option('--no-progress', 'no progress bar')
      .option('-q, --quiet', 'no job log lines while waiting'),
  ).action(async (repo: string, localRepo: string, refs: string[], options) => {
    await withClient(options, async (client) => {
      const bar = options.progress ? await progressBar() : null
      let buildId: number | undefined = options.buildId
      const say = (text: string) => process.stderr.write(`${text}\n`)
      let result
      // Ctrl-C or a CI timeout: say how to resume before going.
      const interrupted = (signal: NodeJS.Signals) => {
        bar?.stop()
        if (buildId !== undefined && !options.buildId) say(`interrupted; run the same push with --build-id ${buildId} to upload only what is still missing`)
        process.exit(signal === 'SIGINT' ? 130 : 143)
      }
      process.once('SIGINT', interrupted).once('SIGTERM', interrupted)
      try {
        result = await push(client, {
          repo,
          localRepo,
          refs,
          buildId,
          appId: options.appId,
          publicDownload: options.publicDownload,
          buildLogUrl: options.buildLogUrl,
          concurrency: options.concurrency,
          batchObjects: options.batchObjects,
          onBuild: (id, created) => {
            buildId = id
            say(created ? `created build ${id} in ${repo}` : `pushing into build ${id}`)
          },
          // Once every answer is in; the upload has begun by then.
          onMissing: (missing, total, size) => (bar?.say ?? say)(`${total} objects; ${missing} missing on the server (${bytes(size)}), ${total - missing} already there`),
          onProgress: (progress) => bar?.update(progress),
          onRetry: say,
        })
      } catch (error) {
        bar?.stop()
        if (buildId !== undefined && !options.buildId) say(`the push did not finish; run it again with --build-id ${buildId} to upload only what is still missing`)
        throw error
      }
      process.off('SIGINT', interrupted).off('SIGTERM', interrupted)
      bar?.stop()
      say(`uploaded ${result.uploaded} objects (${bytes(result.uploadedBytes)}) into build ${result.buildId}; created ${result.refs.length} ref(s)`)
      const outcome: Record<string, unknown> = { ...result }
      if (options.commit || options.publish) {
        const commitJob = await commitBuild(client, result.buildId, options)
        outcome.commitJobId = commitJob
        say(`committing build ${result.buildId} (job ${commitJob})`)
        if (options.publish || options.wait) await awaitJob(client, commitJob, 'commit', options.quiet)
        if (options.publish) {
          await awaitReady(client, result.buildId)
          const publishJob = await publishBuild(client, result.buildId)
          outcome.publishJobId = publishJob
          say(`publishing build ${result.buildId} (job ${publishJob})`)
          if (options.wait || options.waitUpdate || options.waitDeltas) {
            const job = await awaitJob(client, publishJob, 'publish', options.quiet)
            if (options.waitUpdate || options.waitDeltas) {
              const update = await awaitUpdate(client, job, options.quiet)
              outcome.updateRepoJobId = update.id
              if (options.waitDeltas) outcome.deltaJobId = await awaitDeltas(client, update, options.quiet)
            }
          }
        }
      }
      const build = await getBuild(client, result.buildId)
      outcome.build = build
      print(options, outcome, describeBuild(build))
    })
  })
}
