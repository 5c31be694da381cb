import assert from 'node:assert/strict'
import { existsSync, rmSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { createPostgresDatabase, testEngines } from '../support/databases.ts'
import { graphql, startServer, waitFor, type ServerProcess } from '../support/server.ts'

const commit = 'e'.repeat(64)

const createBuild = `mutation($repo: String!, $appId: String) {
  createBuild(input: { repo: $repo, appId: $appId }) {
    __typename
    ... on Build { id repo appId repoState publishedState publicDownload tokenName }
    ... on Error { message code }
  }
}`
const createRef = `mutation($buildId: Int!, $ref: String!, $commit: String!) {
  createBuildRef(buildId: $buildId, refName: $ref, commit: $commit) {
    __typename
    ... on BuildRef { refName commit }
    ... on InvalidInputError { field }
    ... on Error { message code }
  }
}`

for (const engine of testEngines) {
  describe(`flatdepot serve on ${engine}, used as a new user would`, () => {
    let server: ServerProcess
    let dropDatabase = async () => {}
    let bot: string
    let databaseUrl: string | null = null

    before(async () => {
      if (engine === 'postgresql') {
        const created = await createPostgresDatabase()
        databaseUrl = created.url
        dropDatabase = created.drop
      }
      server = await startServer({ databaseUrl })
      bot = await server.cli('token', 'create', '--name', 'ci-bot', '--repo', 'stable', '--prefix', 'org.example')
    })
    after(async () => {
      await server?.stop()
      await dropDatabase()
    })

    it('answers anonymous queries of public data: the configured repos', async () => {
      const { status, body } = await graphql(server.url, null, '{ repos { name title defaultBranch } }')
      assert.equal(status, 200)
      assert.deepEqual(body.data.repos, [{ name: 'stable', title: 'flatdepot stable', defaultBranch: 'stable' }])
    })

    it('runs a mutation and a query with a CLI-minted token', async () => {
      const created = await graphql(server.url, bot, createBuild, { repo: 'stable', appId: 'org.example.Hello' })
      assert.equal(created.body.data.createBuild.__typename, 'Build')
      assert.deepEqual(
        { ...created.body.data.createBuild, id: undefined },
        { __typename: 'Build', id: undefined, repo: 'stable', appId: 'org.example.Hello', repoState: 'UPLOADING', publishedState: 'UNPUBLISHED', publicDownload: false, tokenName: 'ci-bot' },
      )
      const id = created.body.data.createBuild.id
      const ref = await graphql(server.url, bot, createRef, { buildId: id, ref: 'app/org.example.Hello/x86_64/stable', commit })
      assert.deepEqual(ref.body.data.createBuildRef, { __typename: 'BuildRef', refName: 'app/org.example.Hello/x86_64/stable', commit })
      const listed = await graphql(server.url, bot, `{ builds(first: 10, repo: "stable") {
        ... on QueryBuildsConnection { edges { node { id refs { refName } } } } } }`)
      assert.deepEqual(listed.body.data.builds.edges, [{ node: { id, refs: [{ refName: 'app/org.example.Hello/x86_64/stable' }] } }])
    })

    it('says what is wrong with a bad, an expired and a revoked token, each distinctly', async () => {
      const bad = await graphql(server.url, `${bot}x`, '{ repos { name } }')
      assert.equal(bad.status, 401)
      assert.equal(bad.body.errors[0].extensions.code, 'TOKEN_INVALID')
      assert.match(bad.body.errors[0].message, /^Invalid token claims: /)

      const shortLived = await server.cli('token', 'create', '--duration', '1')
      await new Promise((resolve) => setTimeout(resolve, 2100))
      const expired = await graphql(server.url, shortLived, '{ repos { name } }')
      assert.equal(expired.status, 401)
      assert.deepEqual(expired.body.errors[0], { message: 'Token is expired', extensions: { code: 'TOKEN_EXPIRED' } })

      const victim = await server.cli('token', 'create', '--name', 'leaked', '--json')
      const { token: leaked, claims } = JSON.parse(victim) as { token: string; claims: { jti: string } }
      assert.equal((await graphql(server.url, leaked, '{ repos { name } }')).status, 200)
      const admin = await server.cli('token', 'create', '--name', 'admin', '--sub', '', '--scope', 'tokenmanagement')
      const revoked = await graphql(server.url, admin, `mutation($jtis: [String!]!) { revokeTokens(jtis: $jtis) {
        __typename ... on MutationRevokeTokensSuccess { data { jti name revokedAt } } } }`, { jtis: [claims.jti] })
      const [row] = revoked.body.data.revokeTokens.data
      assert.equal(row.jti, claims.jti)
      assert.equal(row.name, 'leaked')
      assert.ok(row.revokedAt)
      const after = await graphql(server.url, leaked, '{ repos { name } }')
      assert.equal(after.status, 401)
      assert.deepEqual(after.body.errors[0], { message: 'Token has been revoked', extensions: { code: 'TOKEN_REVOKED' } })
    })

    it('refuses a token for another repo or another app with a typed error, and writes nothing', async () => {
      const before = await graphql(server.url, bot, '{ builds(first: 50) { ... on QueryBuildsConnection { edges { node { id } } } } }')
      const otherRepo = await server.cli('token', 'create', '--repo', 'beta')
      const denied = await graphql(server.url, otherRepo, createBuild, { repo: 'stable' })
      assert.deepEqual(denied.body.data.createBuild, {
        __typename: 'PermissionDeniedError',
        message: 'Not enough permissions: Not matching repo in token',
        code: 'PERMISSION_DENIED',
      })
      const otherApp = await graphql(server.url, bot, createBuild, { repo: 'stable', appId: 'org.other.App' })
      assert.equal(otherApp.body.data.createBuild.message, 'Not enough permissions: Id org.other.App not matching prefix in token')
      const noRepo = await graphql(server.url, await server.cli('token', 'create'), createBuild, { repo: 'nightly' })
      assert.deepEqual(noRepo.body.data.createBuild, { __typename: 'NotFoundError', message: 'No such repo "nightly"', code: 'NOT_FOUND' })
      const afterwards = await graphql(server.url, bot, '{ builds(first: 50) { ... on QueryBuildsConnection { edges { node { id } } } } }')
      assert.deepEqual(afterwards.body.data.builds, before.body.data.builds)
    })

    it('returns invalid input as a typed error naming the field', async () => {
      const created = await graphql(server.url, bot, createBuild, { repo: 'stable', appId: 'org.example.Bad' })
      const id = created.body.data.createBuild.id
      const bad = await graphql(server.url, bot, createRef, { buildId: id, ref: 'app/org.example.Bad/x86_64', commit })
      assert.deepEqual(bad.body.data.createBuildRef, {
        __typename: 'InvalidInputError',
        message: 'Invalid ref_name app/org.example.Bad/x86_64: expected app/<id>/<arch>/<branch>, runtime/<id>/<arch>/<branch> or screenshots/<arch>',
        code: 'INVALID_INPUT',
        field: 'refName',
      })
    })

    it('streams build changes over graphql-ws, authenticated at connect', async () => {
      const created = await graphql(server.url, bot, createBuild, { repo: 'stable', appId: 'org.example.Live' })
      const id = created.body.data.createBuild.id as number
      const client = createClient({
        url: `${server.url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${bot}` },
        retryAttempts: 0,
      })
      const updates = client.iterate<{ buildUpdated: { id: number; refs: { refName: string }[]; extraIds: string[] } }>({
        query: 'subscription($id: Int!) { buildUpdated(id: $id) { id extraIds refs { refName } } }',
        variables: { id },
      })
      try {
        const first = await updates.next()
        assert.deepEqual(first.value?.data?.buildUpdated, { id, extraIds: [], refs: [] })
        await graphql(server.url, bot, createRef, { buildId: id, ref: 'app/org.example.Live/x86_64/stable', commit })
        const second = await updates.next()
        assert.deepEqual(second.value?.data?.buildUpdated.refs, [{ refName: 'app/org.example.Live/x86_64/stable' }])
      } finally {
        await updates.return?.()
        await client.dispose()
      }

      const closed = await new Promise<{ code: number; reason: string }>((resolve) => {
        const rejected = createClient({
          url: `${server.url.replace('http', 'ws')}/graphql`,
          webSocketImpl: WebSocket,
          connectionParams: { authorization: 'Bearer not-a-token' },
          retryAttempts: 0,
          on: { closed: (event) => resolve(event as { code: number; reason: string }) },
        })
        rejected.subscribe({ query: '{ repos { name } }' }, { next: () => {}, error: () => {}, complete: () => {} })
      })
      assert.equal(closed.code, 4401)
      assert.match(closed.reason, /^Invalid token claims/)
    })

    it('refuses to follow the log of a job that does not exist, with the error code, over graphql-ws', async () => {
      const client = createClient({
        url: `${server.url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${bot}` },
        retryAttempts: 0,
      })
      try {
        // Both job-log subscriptions are executed once per line for all their watchers, around
        // envelop's subscribe: their refusals must still come back as every other error does.
        for (const field of ['jobLog', 'jobLogLines']) {
          const lines = client.iterate({ query: `subscription { ${field}(jobId: 987654) { position text } }` })
          // A refusal at the start is the operation's one result, with errors, then the end.
          const first = await lines.next()
          const [error] = (first.value?.errors ?? []) as { message: string; extensions?: { code?: string } }[]
          assert.equal(error?.extensions?.code, 'NOT_FOUND', `${field}: the error carries its code: ${JSON.stringify(first.value)}`)
          assert.match(error?.message ?? '', /Job 987654 not found/, `${field}: the message names the job`)
          assert.equal((await lines.next()).done, true, `${field}: and the subscription ends`)
        }
      } finally {
        await client.dispose()
      }
    })

    it('streams the build list live: every build the token may see as it changes, none it may not', async () => {
      const narrow = await server.cli('token', 'create', '--name', 'narrow-bot', '--repo', 'stable', '--prefix', 'org.example.Only')
      const listen = (token: string, variables: Record<string, unknown> = {}) => {
        const client = createClient({ url: `${server.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 })
        const seen: { id: number; appId: string | null; refs: number }[] = []
        const stop = client.subscribe<{ buildsUpdated: { id: number; appId: string | null; refs: unknown[] } }>(
          { query: 'subscription($appId: String) { buildsUpdated(appId: $appId) { id appId refs { refName } } }', variables },
          { next: ({ data }) => data && seen.push({ id: data.buildsUpdated.id, appId: data.buildsUpdated.appId, refs: data.buildsUpdated.refs.length }), error: () => {}, complete: () => {} },
        )
        return { seen, close: async () => (stop(), await client.dispose()) }
      }
      const everything = listen(bot)
      const onlyOne = listen(narrow)
      const filtered = listen(bot, { appId: 'org.example.Only' })
      try {
        await new Promise((resolve) => setTimeout(resolve, 500))
        const other = (await graphql(server.url, bot, createBuild, { repo: 'stable', appId: 'org.example.Other' })).body.data.createBuild.id as number
        const only = (await graphql(server.url, bot, createBuild, { repo: 'stable', appId: 'org.example.Only' })).body.data.createBuild.id as number
        await graphql(server.url, bot, createRef, { buildId: only, ref: 'app/org.example.Only/x86_64/stable', commit })
        await waitFor('the ref to reach the narrow subscriber', async () => (onlyOne.seen.some((build) => build.id === only && build.refs === 1) ? true : undefined), 10_000)
        await waitFor('both builds to reach the wide subscriber', async () => (everything.seen.some((build) => build.id === other) && everything.seen.some((build) => build.id === only && build.refs === 1) ? true : undefined), 10_000)
        assert.ok(!onlyOne.seen.some((build) => build.id === other), 'a build of an app the token may not see is not sent')
        assert.ok(!filtered.seen.some((build) => build.id === other), 'the appId filter applies')
        assert.ok(filtered.seen.some((build) => build.id === only))
      } finally {
        await Promise.all([everything.close(), onlyOne.close(), filtered.close()])
      }
    })

    it('gives every request an id, in the response and in the structured log', async () => {
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'trace-me-42' },
        body: JSON.stringify({ query: '{ repos { name } }' }),
      })
      assert.equal(response.headers.get('x-request-id'), 'trace-me-42')
      await new Promise((resolve) => setTimeout(resolve, 200))
      assert.ok(server.logs().some((line) => line.requestId === 'trace-me-42' && line.msg === 'request' && line.status === 200))
    })

    it('makes at start-up the repos of a build whose creator died before making them; requests never do', async () => {
      const { body } = await graphql(server.url, bot, createBuild, { repo: 'stable', appId: 'org.example.Repair' })
      const id = body.data.createBuild.id as number
      const buildDir = path.join(server.dataDir, 'builds', String(id))
      assert.ok(existsSync(path.join(buildDir, 'upload', '.flatdepot-ready')), 'made with the build')
      // As if the process had died between recording the build and making its repos.
      rmSync(buildDir, { recursive: true, force: true })
      const refused = await fetch(`${server.url}/api/v1/build/${id}/missing_objects`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bot}`, 'content-type': 'application/json' },
        body: '{"wanted": []}',
      })
      assert.equal(refused.status, 400)
      assert.match(((await refused.json()) as { message: string }).message, /has no upload area yet: the server stopped while creating it/)
      assert.equal(existsSync(buildDir), false, 'a request does not make them')
      await server.stopKeepingData()
      server = await startServer({ databaseUrl, restart: { dataDir: server.dataDir, port: server.port } })
      assert.ok(existsSync(path.join(buildDir, 'upload', '.flatdepot-ready')), 'made at start-up')
      const answered = await fetch(`${server.url}/api/v1/build/${id}/missing_objects`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bot}`, 'content-type': 'application/json' },
        body: JSON.stringify({ wanted: [`${commit}.commit`] }),
      })
      assert.deepEqual(await answered.json(), { missing: [`${commit}.commit`] })
    })
  })
}
