import assert from 'node:assert/strict'
import http from 'node:http'
import { gzipSync } from 'node:zlib'
import { after, before, describe, it } from 'node:test'
import { mintToken } from '../../src/tokens/jwt.ts'
import { buildFixture, type Fixture } from '../support/fixture.ts'
import { createPostgresDatabase, testEngines } from '../support/databases.ts'
import { startServer, waitFor, type ServerProcess } from '../support/server.ts'
import { signedRepoConfig } from '../support/config.ts'
import { uploadMissing } from '../support/upload.ts'

const secretByte = 13
const secret = new Uint8Array(Buffer.alloc(32, secretByte))
const publicBase = 'https://flatpak.example.test/sub/path'

type Answer = { status: number; headers: Headers; text: string; json: Record<string, unknown> | null }

/** flat-manager's REST API on the wire: its success conventions and its error JSON for every failure. */
for (const engine of testEngines) {
  describe(`flat-manager's REST API on ${engine}`, () => {
    let fixture: Fixture
    let server: ServerProcess
    let dropDatabase = async () => {}
    const tokens: Record<string, string> = {}
    let buildId = 0
    let committedBuild = 0

    async function call(method: string, path: string, options: { token?: string | null; body?: unknown; raw?: Buffer | string; headers?: Record<string, string> } = {}): Promise<Answer> {
      const token = options.token === undefined ? tokens.full : options.token
      const headers: Record<string, string> = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...options.headers }
      let body: Buffer | string | undefined
      if (options.raw !== undefined) body = options.raw
      else if (options.body !== undefined) {
        body = JSON.stringify(options.body)
        headers['content-type'] ??= 'application/json'
      }
      // node:http, not fetch: flat-manager's clients send bodies on GET, and fetch refuses to.
      const response = await new Promise<{ status: number; headers: Headers; text: string }>((resolve, reject) => {
        const request = http.request(`${server.url}${path}`, { method, headers }, (res) => {
          const chunks: Buffer[] = []
          res.on('data', (chunk: Buffer) => chunks.push(chunk))
          res.on('end', () => {
            const answerHeaders = new Headers()
            for (const [key, value] of Object.entries(res.headers)) if (typeof value === 'string') answerHeaders.set(key, value)
            resolve({ status: res.statusCode ?? 0, headers: answerHeaders, text: Buffer.concat(chunks).toString('utf8') })
          })
          res.on('error', reject)
        })
        request.on('error', reject)
        if (body !== undefined) request.setHeader('content-length', Buffer.byteLength(body))
        request.end(body)
      })
      const text = response.text
      let json: Record<string, unknown> | null = null
      try {
        json = JSON.parse(text) as Record<string, unknown>
      } catch {
        // not JSON: the assertions below say so
      }
      return { status: response.status, headers: response.headers, text, json }
    }

    before(async () => {
      fixture = await buildFixture('small')
      let databaseUrl: string | null = null
      if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
      server = await startServer({ databaseUrl, config: (port) => ({ ...signedRepoConfig(fixture, port, {}, secretByte), 'base-url': publicBase }) })
      const all = ['build', 'upload', 'download', 'publish', 'jobs', 'republish', 'reviewcheck', 'tokenmanagement']
      tokens.full = await server.cli('token', 'create', '--name', 'full', '--repo', 'stable', ...all.flatMap((scope) => ['--scope', scope]))
      tokens.admin = await server.cli('token', 'create', '--name', 'admin', '--sub', '', '--scope', 'tokenmanagement', '--repo', 'stable')
      tokens.anyRepo = await server.cli('token', 'create', '--name', 'any-repo')
      tokens.noScopes = await server.cli('token', 'create', '--name', 'nothing', '--scope', 'download', '--repo', 'stable')
      tokens.otherRepo = await server.cli('token', 'create', '--name', 'other', '--repo', 'beta')
      tokens.otherApps = await server.cli('token', 'create', '--name', 'apps', '--repo', 'stable', '--prefix', 'org.other')
      tokens.expired = (await mintToken(secret, { name: 'old', sub: 'build', scope: ['build'], prefixes: [''], repos: [''], durationSecs: 60, now: new Date(Date.now() - 3600_000) })).token
      tokens.foreign = (await mintToken(new Uint8Array(Buffer.alloc(32, 99)), { name: 'x', sub: 'build', scope: ['build'], prefixes: [''], repos: [''], durationSecs: 600 })).token
      tokens.revoked = (await mintToken(secret, { name: 'gone', sub: 'build', scope: ['build'], prefixes: [''], repos: [''], durationSecs: 600, jti: 'revoked-in-test' })).token
      const revoked = await call('POST', '/api/v1/tokens/revoke', { token: tokens.admin, body: { token_ids: ['revoked-in-test'] } })
      assert.equal(revoked.status, 204)
      const created = await call('POST', '/api/v1/build', { body: { repo: 'stable' } })
      buildId = (created.json as { id: number }).id
      tokens.buildOnly = await server.cli('token', 'create', '--name', 'one', '--sub', `build/${buildId}`, '--scope', 'upload', '--repo', 'stable')
      // A build that is committing or failed: its refs point at objects never uploaded.
      committedBuild = ((await call('POST', '/api/v1/build', { body: { repo: 'stable' } })).json as { id: number }).id
      await call('POST', `/api/v1/build/${committedBuild}/build_ref`, { body: { ref: fixture.app.ref, commit: 'a'.repeat(64) } })
      assert.equal((await call('POST', `/api/v1/build/${committedBuild}/commit`, { body: {} })).status, 200)
    })
    after(async () => {
      await server?.stop()
      await dropDatabase()
    })

    it('answers with 200, flat-manager\'s JSON and an absolute Location under the configured base URL (path prefix kept)', async () => {
      const created = await call('POST', '/api/v1/build', { body: { repo: 'stable', 'app-id': 'org.test.Hello', 'build-log-url': 'https://ci.example.test/1' } })
      assert.equal(created.status, 200)
      const build = created.json as Record<string, unknown>
      assert.equal(created.headers.get('location'), `${publicBase}/api/v1/build/${build.id as number}`)
      assert.equal(build.repo_state, 0)
      assert.equal(build.published_state, 0)
      assert.equal(build.public_download, false)
      assert.equal(build.app_id, 'org.test.Hello')
      assert.match(String(build.created), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/)
      assert.ok(!('repo_state_reason' in build) && !('commit_job_id' in build), 'null fields are left out, as flat-manager does')
      const ref = await call('POST', `/api/v1/build/${build.id as number}/build_ref`, { body: { ref: fixture.app.ref, commit: fixture.app.v1 } })
      assert.equal(ref.status, 200)
      assert.equal(ref.headers.get('location'), `${publicBase}/api/v1/build/${build.id as number}/build_ref/${(ref.json as { id: number }).id}`)
      const extended = await call('GET', `/api/v1/build/${build.id as number}/extended`, { body: {} })
      assert.deepEqual((extended.json as { build_refs: { ref_name: string }[] }).build_refs.map((row) => row.ref_name), [fixture.app.ref])
      const listed = await call('GET', '/api/v1/build?app-id=org.test.Hello', { body: {} })
      assert.ok((listed.json as unknown as { id: number }[]).some((row) => row.id === build.id))
      const review = await call('GET', `/api/v1/job/${(await call('GET', `/api/v1/build/${committedBuild}`, { body: {} })).json!.commit_job_id as number}`, { body: { 'log-offset': 0 } })
      const job = review.json as Record<string, unknown>
      assert.equal(job.kind, 0)
      assert.equal(typeof job.contents, 'string', 'contents is JSON inside a string, as flat-manager sends it')
      assert.equal(JSON.parse(job.contents as string).build, committedBuild)
    })

    it('/status lists the jobs waiting and running, /status/<id> shows one job with its log, for a token with the jobs scope', async () => {
      const page = await call('GET', '/status')
      assert.equal(page.status, 200)
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
      assert.match(page.text, /<h1>flatdepot \d+\.\d+\.\d+<\/h1>/)
      const commitJob = (await call('GET', `/api/v1/build/${committedBuild}`, { body: {} })).json!.commit_job_id as number
      const job = await call('GET', `/status/${commitJob}`)
      assert.equal(job.status, 200)
      assert.match(job.text, new RegExp(`<h1>Job ${commitJob}: commit, `))
      assert.match(job.text, /<h2>Log<\/h2><pre>[^<]*Committing ref/)
      assert.equal((await call('GET', `/status/${commitJob}`, { token: tokens.buildOnly })).status, 403, 'a token without the jobs scope')
    })

    const cases: { name: string; request: () => Promise<Answer>; status: number; type: string; message?: RegExp }[] = [
      // tokens on the wire
      { name: 'no Authorization header', request: () => call('GET', '/api/v1/build', { token: null }), status: 401, type: 'invalid-token', message: /No Authorization header/ },
      { name: 'Basic instead of Bearer', request: () => call('GET', '/api/v1/build', { token: null, headers: { authorization: 'Basic dXNlcjpwYXNz' } }), status: 401, type: 'invalid-token' },
      { name: 'Bearer without a value', request: () => call('GET', '/api/v1/build', { token: null, headers: { authorization: 'Bearer ' } }), status: 401, type: 'invalid-token' },
      { name: 'a token that is not a JWT', request: () => call('GET', '/api/v1/build', { token: 'not-a-jwt' }), status: 401, type: 'invalid-token' },
      { name: 'an expired token', request: () => call('GET', '/api/v1/build', { token: tokens.expired }), status: 401, type: 'invalid-token', message: /expired/i },
      { name: 'a token signed with another secret', request: () => call('GET', '/api/v1/build', { token: tokens.foreign }), status: 401, type: 'invalid-token' },
      { name: 'a revoked token', request: () => call('GET', '/api/v1/build', { token: tokens.revoked }), status: 401, type: 'invalid-token', message: /revoked/ },
      // paths and methods
      { name: 'an unknown endpoint', request: () => call('GET', '/api/v1/nothing-here'), status: 404, type: 'not-found' },
      { name: 'a build id that is not a number', request: () => call('GET', '/api/v1/build/abc'), status: 404, type: 'not-found' },
      { name: 'a build id past 2^31', request: () => call('GET', '/api/v1/build/99999999999', { body: {} }), status: 404, type: 'not-found' },
      { name: 'a build that does not exist', request: () => call('GET', '/api/v1/build/4242', { body: {} }), status: 404, type: 'not-found' },
      { name: 'DELETE on the build list', request: () => call('DELETE', '/api/v1/build'), status: 405, type: 'generic-error', message: /allowed: GET, POST/ },
      { name: 'a job id that is not a number', request: () => call('GET', '/api/v1/job/x1'), status: 404, type: 'not-found' },
      { name: 'a job that does not exist', request: () => call('GET', '/api/v1/job/777777', { body: {} }), status: 404, type: 'not-found' },
      { name: 'a ref that does not exist', request: () => call('GET', `/api/v1/build/${buildId}/build_ref/55555`, { body: {} }), status: 404, type: 'not-found' },
      { name: 'the commit job of a build not committed', request: () => call('GET', `/api/v1/build/${buildId}/commit`, { body: {} }), status: 404, type: 'not-found' },
      { name: 'a check that does not exist', request: () => call('GET', `/api/v1/build/${buildId}/check/nope/job`, { body: {} }), status: 404, type: 'not-found' },
      // bodies
      { name: 'malformed JSON', request: () => call('POST', '/api/v1/build', { raw: '{"repo": ', headers: { 'content-type': 'application/json' } }), status: 400, type: 'generic-error', message: /Json deserialize error/ },
      { name: 'a JSON body sent as text/plain', request: () => call('POST', '/api/v1/build', { raw: '{"repo":"stable"}', headers: { 'content-type': 'text/plain' } }), status: 400, type: 'generic-error', message: /Content type error/ },
      { name: 'a body without "repo"', request: () => call('POST', '/api/v1/build', { body: {} }), status: 400, type: 'generic-error', message: /repo/ },
      { name: '"repo" as a number', request: () => call('POST', '/api/v1/build', { body: { repo: 7 } }), status: 400, type: 'generic-error', message: /Json deserialize error/ },
      { name: 'a JSON array instead of an object', request: () => call('POST', '/api/v1/build', { body: ['stable'] }), status: 400, type: 'generic-error' },
      { name: 'a body over 2 MiB', request: () => call('POST', '/api/v1/build', { raw: `{"repo":"${'x'.repeat(3 << 20)}"}`, headers: { 'content-type': 'application/json' } }), status: 413, type: 'generic-error', message: /larger than/ },
      { name: 'a gzip body that is not gzip', request: () => call('POST', '/api/v1/build', { raw: 'plain', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } }), status: 400, type: 'generic-error', message: /gzip/ },
      { name: 'an unknown repo', request: () => call('POST', '/api/v1/build', { token: tokens.anyRepo, body: { repo: 'nightly' } }), status: 400, type: 'generic-error', message: /No such repo/ },
      { name: 'an app id that is not one', request: () => call('POST', '/api/v1/build', { body: { repo: 'stable', 'app-id': 'nodots' } }), status: 400, type: 'generic-error' },
      { name: 'missing_objects without a list', request: () => call('GET', `/api/v1/build/${buildId}/missing_objects`, { body: { wanted: 'x' } }), status: 400, type: 'generic-error' },
      { name: 'missing_objects gzip over 10 MiB once inflated', request: () => call('GET', `/api/v1/build/${buildId}/missing_objects`, { raw: gzipSync(`{"wanted":["${'a'.repeat(11 << 20)}"]}`), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } }), status: 413, type: 'generic-error' },
      { name: 'an upload that is not multipart', request: () => call('POST', `/api/v1/build/${buildId}/upload`, { body: { file: 'x' } }), status: 400, type: 'generic-error', message: /multipart/ },
      // permissions
      { name: 'a token for another repo creating a build', request: () => call('POST', '/api/v1/build', { token: tokens.otherRepo, body: { repo: 'stable' } }), status: 403, type: 'token-insufficient', message: /Not enough permissions: Not matching repo in token/ },
      { name: 'a build/N token creating a build', request: () => call('POST', '/api/v1/build', { token: tokens.buildOnly, body: { repo: 'stable' } }), status: 403, type: 'token-insufficient' },
      { name: 'a build/N token reading another build', request: () => call('GET', `/api/v1/build/${committedBuild}`, { token: tokens.buildOnly, body: {} }), status: 403, type: 'token-insufficient' },
      { name: 'a download-only token committing', request: () => call('POST', `/api/v1/build/${buildId}/commit`, { token: tokens.noScopes, body: {} }), status: 403, type: 'token-insufficient' },
      { name: 'a ref outside the token\'s prefixes', request: () => call('POST', `/api/v1/build/${buildId}/build_ref`, { token: tokens.otherApps, body: { ref: fixture.app.ref, commit: fixture.app.v1 } }), status: 403, type: 'token-insufficient' },
      { name: 'a build/N token reading another build\'s job', request: () => call('GET', '/api/v1/job/1', { token: tokens.buildOnly, body: {} }), status: 403, type: 'token-insufficient' },
      { name: 'a review without the reviewcheck scope', request: () => call('POST', '/api/v1/job/1/check/review', { token: tokens.noScopes, body: { 'new-status': { status: 'Passed' } } }), status: 403, type: 'token-insufficient' },
      { name: 'token_subset asking for a scope the token lacks', request: () => call('POST', '/api/v1/token_subset', { token: tokens.noScopes, body: { sub: 'build', scope: ['publish'], duration: 60, name: 'x' } }), status: 403, type: 'token-insufficient', message: /scope 'publish'/ },
      { name: 'token_subset outliving its parent', request: () => call('POST', '/api/v1/token_subset', { body: { sub: 'build', scope: ['upload'], duration: 10 * 365 * 86400, name: 'x' } }), status: 403, type: 'token-insufficient', message: /expire/ },
      { name: 'tokens/get_list without sub ""', request: () => call('POST', '/api/v1/tokens/get_list', { body: { token_ids: ['a'] } }), status: 403, type: 'token-insufficient' },
      { name: 'prune without tokenmanagement', request: () => call('POST', '/api/v1/prune', { token: tokens.noScopes, body: { repo: 'stable' } }), status: 403, type: 'token-insufficient' },
      { name: 'republish without the republish scope', request: () => call('POST', '/api/v1/repo/stable/republish', { token: tokens.noScopes, body: { app: 'org.test.Hello' } }), status: 403, type: 'token-insufficient' },
      // build rules and states
      { name: 'an invalid ref name', request: () => call('POST', `/api/v1/build/${buildId}/build_ref`, { body: { ref: 'app/org.test.Hello', commit: fixture.app.v1 } }), status: 400, type: 'generic-error' },
      { name: 'a commit that is not a checksum', request: () => call('POST', `/api/v1/build/${buildId}/build_ref`, { body: { ref: fixture.app.ref, commit: 'abc' } }), status: 400, type: 'generic-error' },
      { name: 'an invalid extra id', request: () => call('POST', `/api/v1/build/${buildId}/add_extra_ids`, { body: { ids: ['bad id'] } }), status: 400, type: 'generic-error', message: /extra id/i },
      { name: 'a commit of a build without refs', request: () => call('POST', `/api/v1/build/${buildId}/commit`, { body: {} }), status: 400, type: 'generic-error', message: /No refs/ },
      { name: 'a publish of a build still uploading', request: () => call('POST', `/api/v1/build/${buildId}/publish`, { body: {} }), status: 400, type: 'wrong-repo-state' },
      { name: 'a second commit', request: () => call('POST', `/api/v1/build/${committedBuild}/commit`, { body: {} }), status: 400, type: 'wrong-repo-state' },
      { name: 'an upload into a build no longer uploading', request: () => call('GET', `/api/v1/build/${committedBuild}/missing_objects`, { body: { wanted: [] } }), status: 400, type: 'wrong-repo-state' },
      { name: 'a review with an unknown status', request: () => call('POST', '/api/v1/job/1/check/review', { body: { 'new-status': { status: 'Great' } } }), status: 400, type: 'generic-error' },
      { name: 'a review of a job that is not a check', request: () => call('POST', '/api/v1/job/1/check/review', { body: { 'new-status': { status: 'Passed' } } }), status: 404, type: 'not-found' },
      { name: 'a revoke without a list', request: () => call('POST', '/api/v1/tokens/revoke', { token: tokens.admin, body: { token_ids: 'abc' } }), status: 400, type: 'generic-error' },
      { name: 'prune of an unknown repo', request: () => call('POST', '/api/v1/prune', { body: { repo: 'nightly' } }), status: 403, type: 'token-insufficient' },
      { name: 'republish of an app id that is not one', request: () => call('POST', '/api/v1/repo/stable/republish', { body: { app: 'x' } }), status: 400, type: 'generic-error' },
      // the pages beside the API
      { name: '/status without a token', request: () => call('GET', '/status', { token: null }), status: 403, type: 'token-insufficient', message: /jobs scope/ },
      { name: '/metrics with a bad token', request: () => call('GET', '/metrics', { token: 'nope' }), status: 401, type: 'invalid-token' },
    ]

    it(`answers ${cases.length} malformed or unauthorized requests with flat-manager's JSON error shape`, async () => {
      assert.ok(cases.length >= 40)
      const failures: string[] = []
      for (const example of cases) {
        const answer = await example.request()
        const problems: string[] = []
        if (answer.status !== example.status) problems.push(`status ${answer.status}, expected ${example.status}`)
        if (!answer.headers.get('content-type')?.startsWith('application/json')) problems.push(`content-type ${answer.headers.get('content-type')}`)
        if (!answer.json) problems.push(`not JSON: ${answer.text.slice(0, 100)}`)
        else {
          if (answer.json.status !== answer.status) problems.push(`"status" ${String(answer.json.status)}`)
          if (answer.json['error-type'] !== example.type) problems.push(`error-type ${String(answer.json['error-type'])}, expected ${example.type}`)
          if (typeof answer.json.message !== 'string' || answer.json.message === '') problems.push('no message')
          else if (example.message && !example.message.test(answer.json.message)) problems.push(`message ${answer.json.message}`)
          if (example.type.startsWith('wrong-') && !(typeof answer.json['current-state'] === 'string' && typeof answer.json['expected-state'] === 'string')) problems.push('no current-state/expected-state')
        }
        if (problems.length) failures.push(`${example.name}: ${problems.join('; ')}`)
      }
      assert.deepEqual(failures, [])
    })

    it('/metrics is OpenMetrics text whose counters move as a push goes through', async () => {
      const scrape = async () => {
        const answer = await call('GET', '/metrics')
        assert.equal(answer.status, 200)
        assert.match(answer.headers.get('content-type') ?? '', /^application\/openmetrics-text; version=1\.0\.0/)
        return parseOpenMetrics(answer.text)
      }
      const before = await scrape()
      const created = await call('POST', '/api/v1/build', { body: { repo: 'stable' } })
      const id = (created.json as { id: number }).id
      await uploadMissing(server.url, tokens.full!, id, fixture.repoV1)
      for (const [ref, commit] of [[fixture.runtime.ref, fixture.runtime.commit], [fixture.app.ref, fixture.app.v1]] as const) {
        await call('POST', `/api/v1/build/${id}/build_ref`, { body: { ref, commit } })
      }
      await call('POST', `/api/v1/build/${id}/commit`, { body: {} })
      await waitFor('the commit', async () => ((await call('GET', `/api/v1/build/${id}`, { body: {} })).json!.repo_state === 2 ? true : undefined))
      const afterPush = await scrape()
      const value = (samples: Map<string, number>, key: string) => samples.get(key) ?? 0
      assert.ok(value(afterPush, 'flatdepot_upload_objects_total') > value(before, 'flatdepot_upload_objects_total'), 'objects counted')
      assert.ok(value(afterPush, 'flatdepot_upload_bytes_total') > value(before, 'flatdepot_upload_bytes_total'), 'bytes counted')
      assert.ok(value(afterPush, 'flatdepot_http_requests_total{route="api-upload",status="200"}') > value(before, 'flatdepot_http_requests_total{route="api-upload",status="200"}'))
      assert.ok(value(afterPush, 'flatdepot_events_appended_total{stream_type="build"}') > value(before, 'flatdepot_events_appended_total{stream_type="build"}'))
      assert.ok(value(afterPush, 'flatdepot_jobs{kind="commit",status="Succeeded"}') >= 1)
      assert.ok(value(afterPush, 'flatdepot_job_duration_seconds_count{kind="commit",status="Succeeded"}') >= 1, 'the commit job\'s duration observed')
      assert.ok(value(afterPush, 'flatdepot_upload_rejections_total{reason="filename"}') >= 0)
    })
  })
}

/**
 * OpenMetrics text, checked line by line against the format's rules (what promtool checks):
 * families declared by # TYPE before their samples, sample lines `name{labels} value`, and # EOF
 * last. Returns each sample by `name{labels}`.
 */
function parseOpenMetrics(text: string): Map<string, number> {
  const lines = text.split('\n')
  assert.equal(lines.at(-1), '', 'ends with a newline')
  assert.equal(lines.at(-2), '# EOF', 'ends with # EOF')
  const types = new Map<string, string>()
  const samples = new Map<string, number>()
  for (const line of lines.slice(0, -2)) {
    const meta = /^# (TYPE|HELP|UNIT) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$/.exec(line)
    if (meta) {
      if (meta[1] === 'TYPE') {
        assert.match(meta[3] ?? '', /^(counter|gauge|histogram|gaugehistogram|stateset|info|summary|unknown)$/, line)
        types.set(meta[2]!, meta[3]!)
      }
      continue
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})? (-?(?:[0-9.e+-]+|NaN|\+Inf|-Inf))(?: -?[0-9.]+)?$/.exec(line)
    assert.ok(sample, `not an OpenMetrics line: ${JSON.stringify(line)}`)
    const family = [...types.keys()].find((name) => sample[1] === name || sample[1]!.startsWith(`${name}_`))
    assert.ok(family, `sample ${sample[1]} has no # TYPE before it`)
    samples.set(`${sample[1]}${sample[2] ?? ''}`, Number(sample[3]))
  }
  return samples
}
