import { Option, type Command } from 'commander'
import { reviewCheckMutation } from '../../client/documents.ts'
import { positiveInt, print, withClient, withConnection } from '../shared.ts'

const statuses = ['passed', 'passed-with-warnings', 'failed', 'review-required', 'pending'] as const
type CheckStatus = 'PASSED' | 'PASSED_WITH_WARNINGS' | 'FAILED' | 'REVIEW_REQUIRED' | 'PENDING'

export function register(program: Command): void {
  withConnection(
    program
      .command('review')
      .description("set a check's status: a reviewer passing or failing a build")
      .argument('<check-job-id>', "the check's job id (`flatdepot build show` lists them)", positiveInt('check job id'))
      .addOption(new Option('--status <status>', 'the outcome').choices(statuses).makeOptionMandatory())
      .option('--reason <text>', 'why (shown with the check)')
      .option('--results <text>', 'free-form results'),
  ).action(async (jobId: number, options) => {
    await withClient(options, async (client) => {
      const status = String(options.status).toUpperCase().replace(/-/g, '_') as CheckStatus
      const { reviewCheck } = await client.graphql(reviewCheckMutation, { jobId, status, reason: options.reason ?? null, results: options.results ?? null })
      print(options, reviewCheck, `check ${reviewCheck.name} of build ${reviewCheck.buildId}: ${reviewCheck.status.toLowerCase()}`)
    })
  })
}
