import type { Command } from 'commander'
import { followJob } from '../../client/workflow.ts'
import { positiveInt, withClient, withConnection } from '../shared.ts'

export function register(program: Command): void {
  withConnection(
    program
      .command('follow')
      .description("print a job's log as it is written, until the job ends; exit status 0 only if it succeeded")
      .argument('<job-id>', 'job', positiveInt('job id')),
  ).action(async (jobId: number, options) => {
    await withClient(options, async (client) => {
      const job = await followJob(client, jobId, (line) =>
        process.stdout.write(options.json ? `${JSON.stringify({ jobId, ...line })}\n` : `${line.stream === 'flatdepot' ? '' : `${line.stream}: `}${line.text}\n`),
      )
      if (options.json) process.stdout.write(`${JSON.stringify({ job })}\n`)
      else process.stderr.write(`job ${jobId} (${job.kind.toLowerCase()}) ${job.status.toLowerCase()}${job.error ? `: ${job.error}` : ''}\n`)
      if (job.status !== 'SUCCEEDED') process.exitCode = 1
    })
  })
}
