import type { ResultOf } from 'gql.tada'
import { graphql } from './tada.ts'

/** The GraphQL documents the CLI sends (typed: see tada.ts). */
export { graphql }

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
  `mutation CommitBuild($buildId: Int!, $eol: String, $rebase: String, $tokenType: Int) {
    commitBuild(buildId: $buildId, endOfLife: $eol, endOfLifeRebase: $rebase, tokenType: $tokenType) { __typename ... on Job { id } ...ErrorFields }
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

export const auditLogQuery = graphql(
  `query AuditLog($repo: String, $buildId: Int, $appId: String, $tokenName: String, $type: String, $since: DateTime, $until: DateTime, $before: String, $first: Int) {
    auditLog(repo: $repo, buildId: $buildId, appId: $appId, tokenName: $tokenName, type: $type, since: $since, until: $until, before: $before, first: $first) {
      __typename
      ... on AuditPage { nextBefore events { position streamId type data actorName actorJti requestId at } }
      ...ErrorFields
    }
  }`,
  [errorFields],
)

export const republishAppMutation = graphql(
  `mutation RepublishApp($repo: String!, $app: String!, $endOfLife: String, $endOfLifeRebase: String) {
    republishApp(repo: $repo, app: $app, endOfLife: $endOfLife, endOfLifeRebase: $endOfLifeRebase) { __typename ... on Job { id } ...ErrorFields }
  }`,
  [errorFields],
)

export const deleteFromRepoMutation = graphql(
  `mutation DeleteFromRepo($repo: String!, $app: String, $refs: [String!], $reason: String!, $force: Boolean) {
    deleteFromRepo(repo: $repo, app: $app, refs: $refs, reason: $reason, force: $force) { __typename ... on Job { id } ...ErrorFields }
  }`,
  [errorFields],
)

export const rollbackRefMutation = graphql(
  `mutation RollbackRef($repo: String!, $ref: String!, $to: String!) { rollbackRef(repo: $repo, ref: $ref, to: $to) { __typename ... on Job { id } ...ErrorFields } }`,
  [errorFields],
)

export const pruneRepoMutation = graphql(
  `mutation PruneRepo($repo: String!, $depth: Int, $keepYoungerThanDays: Int, $dryRun: Boolean) {
    pruneRepo(repo: $repo, depth: $depth, keepYoungerThanDays: $keepYoungerThanDays, dryRun: $dryRun) { __typename ... on Job { id } ...ErrorFields }
  }`,
  [errorFields],
)

export const lockAppMutation = graphql(
  `mutation LockApp($repo: String!, $app: String!, $reason: String!) { lockApp(repo: $repo, app: $app, reason: $reason) { __typename ... on Repo { name } ...ErrorFields } }`,
  [errorFields],
)

export const unlockAppMutation = graphql(
  `mutation UnlockApp($repo: String!, $app: String!) { unlockApp(repo: $repo, app: $app) { __typename ... on Repo { name } ...ErrorFields } }`,
  [errorFields],
)

export const subsetTokenMutation = graphql(
  `mutation SubsetToken($input: SubsetTokenInput!) {
    subsetToken(input: $input) { __typename ... on MintedToken { token jti name sub scope prefixes apps repos expiresAt } ...ErrorFields }
  }`,
  [errorFields],
)

export const tokensQuery = graphql(
  `query Tokens($nameContains: String, $revoked: Boolean, $expired: Boolean, $first: Int) {
    tokens(nameContains: $nameContains, revoked: $revoked, expired: $expired, first: $first) {
      __typename ... on QueryTokensSuccess { data { jti name sub scope issuedAt expiresAt lastUsedAt revokedAt } } ...ErrorFields
    }
  }`,
  [errorFields],
)

export const revokeTokensMutation = graphql(
  `mutation RevokeTokens($jtis: [String!]!) { revokeTokens(jtis: $jtis) { __typename ... on MutationRevokeTokensSuccess { data { jti revokedAt } } ...ErrorFields } }`,
  [errorFields],
)

export const syncMirrorMutation = graphql(
  `mutation SyncMirror($repo: String!, $upstream: String!) { syncMirror(repo: $repo, upstream: $upstream) { __typename ... on Job { id } ...ErrorFields } }`,
  [errorFields],
)

export const exportRepoMutation = graphql(
  `mutation ExportRepo($repo: String!) { exportRepo(repo: $repo) { __typename ... on Job { id } ...ErrorFields } }`,
  [errorFields],
)
