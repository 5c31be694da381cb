import { initGraphQLTada, type ResultOf } from 'gql.tada'
import type { introspection } from './graphql-env.d.ts'

/**
 * The GraphQL documents the CLI sends, typed from schema.graphql by gql.tada: a schema change
 * that breaks one of them (a renamed field, a new required argument) fails `npm run typecheck`.
 * `npm run schema` regenerates `graphql-env.d.ts` with the schema.
 */
export const graphql = initGraphQLTada<{
  introspection: introspection
  scalars: { DateTime: string; JSON: unknown }
  disableMasking: true
}>()

const errorFields = graphql(`fragment ErrorFields on Error { message code }`)

export const buildFields = graphql(`
  fragment BuildFields on Build {
    id repo appId repoState repoStateReason publishedState publishedStateReason publicDownload
    uploadedObjects uploadedBytes createdAt commitJobId publishJobId
    refs { refName commit }
    checks { name jobId status statusReason }
  }
`)
export type Build = ResultOf<typeof buildFields>

export const jobFields = graphql(`fragment JobFields on Job { id kind status error buildId results }`)
export type Job = ResultOf<typeof jobFields>

export const buildQuery = graphql(
  `query Build($id: Int!) { build(id: $id) { __typename ...BuildFields ...ErrorFields } }`,
  [buildFields, errorFields],
)

export const buildsQuery = graphql(
  `query Builds($repo: String, $appId: String, $first: Int) {
    builds(repo: $repo, appId: $appId, first: $first) {
      __typename
      ... on QueryBuildsConnection { edges { node { ...BuildFields } } }
      ...ErrorFields
    }
  }`,
  [buildFields, errorFields],
)

export const jobQuery = graphql(`query Job($id: Int!) { job(id: $id) { __typename ...JobFields ...ErrorFields } }`, [jobFields, errorFields])

export const createBuildMutation = graphql(
  `mutation CreateBuild($input: CreateBuildInput!) { createBuild(input: $input) { __typename ...BuildFields ...ErrorFields } }`,
  [buildFields, errorFields],
)

export const createBuildRefMutation = graphql(
  `mutation CreateBuildRef($buildId: Int!, $refName: String!, $commit: String!, $buildLogUrl: String) {
    createBuildRef(buildId: $buildId, refName: $refName, commit: $commit, buildLogUrl: $buildLogUrl) { __typename ...ErrorFields }
  }`,
  [errorFields],
)

export const commitBuildMutation = graphql(
  `mutation CommitBuild($buildId: Int!, $eol: String, $rebase: String) {
    commitBuild(buildId: $buildId, endOfLife: $eol, endOfLifeRebase: $rebase) { __typename ... on Job { id } ...ErrorFields }
  }`,
  [errorFields],
)

export const publishBuildMutation = graphql(
  `mutation PublishBuild($buildId: Int!) { publishBuild(buildId: $buildId) { __typename ... on Job { id } ...ErrorFields } }`,
  [errorFields],
)

export const purgeBuildMutation = graphql(
  `mutation PurgeBuild($id: Int!) { purgeBuild(buildId: $id) { __typename ...BuildFields ...ErrorFields } }`,
  [buildFields, errorFields],
)

export const reviewCheckMutation = graphql(
  `mutation ReviewCheck($jobId: Int!, $status: CheckStatus!, $reason: String, $results: String) {
    reviewCheck(jobId: $jobId, status: $status, reason: $reason, results: $results) { __typename ... on Check { name status buildId } ...ErrorFields }
  }`,
  [errorFields],
)

export const jobLogSubscription = graphql(`
  subscription JobLog($jobId: Int!, $after: Int!) { jobLog(jobId: $jobId, after: $after) { position stream text at } }
`)
export type JobLogLine = ResultOf<typeof jobLogSubscription>['jobLog']

export const buildUpdatedSubscription = graphql(
  `subscription BuildUpdated($id: Int!) { buildUpdated(id: $id) { ...BuildFields } }`,
  [buildFields],
)
