import type { ResultOf } from 'gql.tada'
import { graphql } from '../client/tada.ts'

/**
 * Every GraphQL document the dashboard sends, typed from schema.graphql by gql.tada: the page can
 * send nothing the schema does not know (`npm run check` type-checks them against the schema).
 */

const errorFields = graphql(`fragment UiError on Error { __typename message code }`)
const jobResult = graphql(`fragment UiJobResult on Job { __typename id kind status }`)

export const signInQuery = graphql(`query UiSignIn { builds(first: 1) { __typename ... on PermissionDeniedError { message } } }`)

export const reposQuery = graphql(`
  query UiRepos {
    repos {
      name title collectionId defaultBranch baseUrl refsChangedAt summaryUpdatedAt deltasGeneratedAt deltasFailed
      refs { ref commit source buildId updatedAt }
    }
  }
`)
export type Repo = ResultOf<typeof reposQuery>['repos'][number]

export const buildRow = graphql(`
  fragment UiBuildRow on Build { id repo appId repoState publishedState createdAt updatedAt uploadedObjects uploadedBytes tokenName }
`)
export type BuildRow = ResultOf<typeof buildRow>

export const buildsQuery = graphql(
  `
  query UiBuilds($first: Int, $after: String, $last: Int, $before: String, $repo: String, $appId: String, $repoState: RepoState, $publishedState: PublishedState) {
    builds(first: $first, after: $after, last: $last, before: $before, repo: $repo, appId: $appId, repoState: $repoState, publishedState: $publishedState) {
      __typename
      ... on QueryBuildsConnection {
        edges { node { ...UiBuildRow } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
      ...UiError
    }
  }
`,
  [buildRow, errorFields],
)

export const buildsUpdatedSubscription = graphql(
  `
  subscription UiBuildsUpdated($repo: String, $appId: String, $repoState: RepoState, $publishedState: PublishedState) {
    buildsUpdated(repo: $repo, appId: $appId, repoState: $repoState, publishedState: $publishedState) { ...UiBuildRow }
  }
`,
  [buildRow],
)

export const buildDetail = graphql(`
  fragment UiBuildDetail on Build {
    id repo appId repoState repoStateReason publishedState publishedStateReason publicDownload createdAt updatedAt
    uploadedObjects uploadedBytes tokenName tokenType buildLogUrl mirrorUpstream extraIds
    refs { id refName commit publishedCommit }
    checks { name jobId status statusReason results updatedAt }
    jobs { id kind status createdAt startedAt finishedAt error }
  }
`)
export type BuildDetail = ResultOf<typeof buildDetail>

export const buildQuery = graphql(`query UiBuild($id: Int!) { build(id: $id) { __typename ...UiBuildDetail ...UiError } }`, [buildDetail, errorFields])
export const buildUpdatedSubscription = graphql(`subscription UiBuildUpdated($id: Int!) { buildUpdated(id: $id) { __typename ...UiBuildDetail } }`, [buildDetail])

export const jobDetail = graphql(`
  fragment UiJobDetail on Job { id kind status repo buildId attempts createdAt startAfter startedAt finishedAt error results contents }
`)
export type JobDetail = ResultOf<typeof jobDetail>
export const jobQuery = graphql(`query UiJob($id: Int!) { job(id: $id) { __typename ...UiJobDetail ...UiError } }`, [jobDetail, errorFields])
export const jobUpdatedSubscription = graphql(`subscription UiJobUpdated($id: Int!) { jobUpdated(id: $id) { __typename ...UiJobDetail } }`, [jobDetail])
export const jobLogSubscription = graphql(`subscription UiJobLog($jobId: Int!, $after: Int!) { jobLogLines(jobId: $jobId, after: $after) { position stream text at } }`)
export type LogLine = ResultOf<typeof jobLogSubscription>['jobLogLines'][number]

export const jobsQuery = graphql(
  `
  query UiJobs($first: Int, $after: String, $status: JobStatus, $kind: JobKind, $repo: String) {
    jobs(first: $first, after: $after, status: $status, kind: $kind, repo: $repo) {
      __typename
      ... on QueryJobsConnection {
        edges { node { id kind status repo buildId createdAt startedAt finishedAt error } }
        pageInfo { hasNextPage endCursor }
      }
      ...UiError
    }
  }
`,
  [errorFields],
)

export const tokensQuery = graphql(
  `
  query UiTokens($nameContains: String, $revoked: Boolean) {
    tokens(first: 200, nameContains: $nameContains, revoked: $revoked) {
      __typename
      ... on QueryTokensSuccess { data { jti name sub scope repos apps prefixes issuedAt expiresAt lastUsedAt revokedAt } }
      ...UiError
    }
  }
`,
  [errorFields],
)
export type Token = Extract<ResultOf<typeof tokensQuery>['tokens'], { __typename: 'QueryTokensSuccess' }>['data'][number]

export const commitMutation = graphql(`mutation UiCommit($id: Int!) { commitBuild(buildId: $id) { ...UiJobResult ...UiError } }`, [jobResult, errorFields])
export const publishMutation = graphql(`mutation UiPublish($id: Int!) { publishBuild(buildId: $id) { ...UiJobResult ...UiError } }`, [jobResult, errorFields])
export const purgeMutation = graphql(`mutation UiPurge($id: Int!) { purgeBuild(buildId: $id) { __typename ... on Build { id } ...UiError } }`, [errorFields])
export const reviewMutation = graphql(
  `mutation UiReview($jobId: Int!, $status: CheckStatus!, $reason: String) { reviewCheck(jobId: $jobId, status: $status, reason: $reason) { __typename ... on Check { name status } ...UiError } }`,
  [errorFields],
)
export const republishMutation = graphql(
  `mutation UiRepublish($repo: String!, $app: String!) { republishApp(repo: $repo, app: $app) { ...UiJobResult ...UiError } }`,
  [jobResult, errorFields],
)
export const deleteMutation = graphql(
  `mutation UiDelete($repo: String!, $app: String!, $reason: String!) { deleteFromRepo(repo: $repo, app: $app, reason: $reason) { ...UiJobResult ...UiError } }`,
  [jobResult, errorFields],
)
export const rollbackMutation = graphql(
  `mutation UiRollback($repo: String!, $ref: String!, $to: String!) { rollbackRef(repo: $repo, ref: $ref, to: $to) { ...UiJobResult ...UiError } }`,
  [jobResult, errorFields],
)
export const revokeMutation = graphql(
  `mutation UiRevoke($jtis: [String!]!) { revokeTokens(jtis: $jtis) { __typename ... on MutationRevokeTokensSuccess { data { jti revokedAt } } ...UiError } }`,
  [errorFields],
)
