import { checkStatuses, publishedStates, repoStates } from '../../domain/build/events.ts'
import { jobKinds, jobStatuses } from '../../domain/job/job.ts'
import { builder } from '../builder.ts'

const constantCase = (value: string) =>
  value
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toUpperCase()

function enumFrom<const T extends string>(name: string, values: readonly T[], description: string) {
  return builder.enumType(name, {
    description,
    values: Object.fromEntries(values.map((value) => [constantCase(value), { value }])) as Record<string, { value: T }>,
  })
}

export const RepoStateEnum = enumFrom('RepoState', repoStates, "Where a build's content is (flat-manager's repo_state)")
export const PublishedStateEnum = enumFrom('PublishedState', publishedStates, 'Whether a build is in its main repo')
export const CheckStatusEnum = enumFrom('CheckStatus', checkStatuses, 'The outcome of a check hook or a review')
export const JobKindEnum = enumFrom('JobKind', jobKinds, 'What a job does')
export const JobStatusEnum = enumFrom('JobStatus', jobStatuses, 'Where a job is in its life')
