import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { buildFixture, type Fixture } from '../support/fixture.ts'
import { createPostgresDatabase, testEngines } from '../support/databases.ts'
import { graphql, startServer, waitFor, type ServerProcess } from '../support/server.ts'
import { repoObjects, uploadMissing } from '../support/upload.ts'

const maxObjectSize = 1_000_000

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort()
}

async function upload(server: ServerProcess, token: string, buildId: number, parts: { name: string; bytes: Uint8Array }[]) {
  const form = new FormData()
  for (const part of parts) form.append("file", new Blob([Buffer.from(part.bytes)]), part.name)
  const response = await fetch(`${server.url}/api/v1/build/${buildId}/upload`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

for (const engine of testEngines) {
  describe(`bad input on ${engine}: a clear error, and nothing written outside the build`, () => {
    let fixture: Fixture
    let server: ServerProcess
    let token: string
    let dropDatabase = async () => {}
    let mainRepoFiles: string[]

    const createBuild = async (appId?: string) => {
      const { body } = await graphql(server.url, token, `mutation($appId: String) { createBuild(input: { repo: "stable", appId: $appId }) { ... on Build { id } ... on Error { message } } }`, { appId })
      return body.data.createBuild.id as number
    }
    const createRef = async (id: number, ref: string, commit: string) =>
      (await graphql(server.url, token, `mutation($id: Int!, $ref: String!, $commit: String!) { createBuildRef(buildId: $id, refName: $ref, commit: $commit) {
        __typename ... on Error { message code } ... on InvalidInputError { field } } }`, { id, ref, commit })).body.data.createBuildRef
    const buildDir = (id: number) => path.join(server.dataDir, 'builds', String(id))
    const objectBytes = (suffix: string, minSize = 0) => {
      const object = repoObjects(fixture.repoV1).filter((o) => o.name.endsWith(suffix)).map((o) => ({ ...o, bytes: readFileSync(o.file) })).find((o) => o.bytes.length >= minSize)
      assert.ok(object, `a ${suffix} object of at least ${minSize} bytes`)
      return object
    }

    before(async () => {
      fixture = await buildFixture('small')
      let databaseUrl: string | null = null
      if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
      server = await startServer({
        databaseUrl,
        config: (port) => ({
          secret: Buffer.alloc(32, 4).toString('base64'),
          'base-url': `http://127.0.0.1:${port}`,
          'build-repo-base': 'builds',
          'max-object-size': maxObjectSize,
          repos: { stable: { path: 'repos/stable', hooks: { checks: { review: { command: ['false'], reviewable: true } } } } },
        }),
      })
      token = await server.cli('token', 'create', '--name', 'bot', '--repo', 'stable', '--scope', 'build', '--scope', 'upload', '--scope', 'publish', '--scope', 'download', '--scope', 'jobs')
      mainRepoFiles = filesUnder(path.join(server.dataDir, 'repos/stable'))
    })
    after(async () => {
      assert.deepEqual(filesUnder(path.join(server.dataDir, 'repos/stable')), mainRepoFiles, 'the main repo is untouched')
      await server?.stop()
      await dropDatabase()
    })

    it('refuses an object whose content does not match its name, and keeps nothing of it', async () => {
      const id = await createBuild()
      const real = objectBytes('.dirtree')
      const other = objectBytes('.dirmeta')
      const { status, body } = await upload(server, token, id, [{ name: real.name, bytes: other.bytes }])
      assert.equal(status, 400)
      assert.equal(body['error-type'], 'generic-error')
      assert.match(String(body.message), new RegExp(`^Checksum mismatch for ${real.name}: its content hashes to [0-9a-f]{64}$`))
      assert.deepEqual(filesUnder(path.join(buildDir(id), 'upload/objects')), [])
      assert.deepEqual(filesUnder(path.join(buildDir(id), 'upload/tmp')), [])
    })

    it('refuses traversal and malformed names', async () => {
      const id = await createBuild()
      for (const name of ['../../../etc/passwd', `../${'a'.repeat(64)}.filez`, 'abc.filez', `${'a'.repeat(64)}.commitmeta`, `${'A'.repeat(64)}.dirtree`]) {
        const { status, body } = await upload(server, token, id, [{ name, bytes: new Uint8Array([1, 2, 3]) }])
        assert.equal(status, 400, name)
        assert.match(String(body.message), /^Invalid upload filename/, name)
      }
      assert.deepEqual(filesUnder(path.join(buildDir(id), 'upload/objects')), [])
    })

    it('refuses an object over the size limit while it streams', async () => {
      const id = await createBuild()
      const name = `${'b'.repeat(64)}.dirtree`
      const { status, body } = await upload(server, token, id, [{ name, bytes: randomBytes(maxObjectSize + 100_000) }])
      assert.equal(status, 400)
      assert.equal(body.message, `${name} is larger than the object size limit of ${maxObjectSize} bytes`)
      const kept = filesUnder(path.join(buildDir(id), 'upload')).map((file) => path.relative(buildDir(id), file))
      assert.deepEqual(kept.filter((file) => file.startsWith('upload/objects/') || file.startsWith('upload/tmp/')), [])
    })

    it('survives a client that drops the connection mid-upload: whole objects are kept, the torn one is not', async () => {
      const id = await createBuild()
      const objects = repoObjects(fixture.repoV1).map((object) => ({ ...object, bytes: readFileSync(object.file) }))
      // The largest object streams (over 512 KiB) rather than being read whole: the harder case.
      const torn = objects.reduce((largest, object) => (object.bytes.length > largest.bytes.length ? object : largest))
      assert.ok(torn.bytes.length > 600_000)
      const whole = objects.filter((object) => object !== torn)
      const boundary = 'flatdepot-torn-upload'
      const part = (name: string, bytes: Buffer) =>
        Buffer.concat([Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${name}"\r\ncontent-type: application/octet-stream\r\n\r\n`), bytes, Buffer.from('\r\n')])
      const body = Buffer.concat([...whole.map((object) => part(object.name, object.bytes)), part(torn.name, torn.bytes.subarray(0, torn.bytes.length - 65536))])
      const errorsBefore = server.logs().filter((line) => Number(line.level) >= 50).length
      // Everything but the end of the last part, then the connection goes away.
      await new Promise<void>((resolve) => {
        const request = http.request(`${server.url}/api/v1/build/${id}/upload`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length + torn.bytes.length },
        })
        request.on('error', () => resolve())
        request.write(body, () => setTimeout(() => { request.destroy(); resolve() }, 200))
      })
      assert.ok((await fetch(`${server.url}/healthz`)).ok, 'the server is still up')
      // A client going away is not the server's error: nothing at error level, no stack.
      await new Promise((resolve) => setTimeout(resolve, 300))
      assert.deepEqual(server.logs().filter((line) => Number(line.level) >= 50).slice(errorsBefore), [])
      const { body: missing } = await waitFor('the torn request handled', async () => {
        const response = await graphql(server.url, token, 'query($id: Int!, $wanted: [String!]!) { missingObjects(buildId: $id, objects: $wanted) { ... on QueryMissingObjectsSuccess { data } } }', {
          id,
          wanted: objects.map((object) => object.name),
        })
        return filesUnder(path.join(buildDir(id), 'upload/tmp')).length === 0 ? response : undefined
      })
      // The torn object is missing; objects the server had whole before the tear are either kept
      // (verified and in place) or missing, never broken.
      assert.ok(missing.data.missingObjects.data.includes(torn.name))
      for (const object of whole) {
        const file = path.join(buildDir(id), 'upload/objects', object.name.slice(0, 2), object.name.slice(2))
        if (existsSync(file)) assert.deepEqual(readFileSync(file), object.bytes, object.name)
        else assert.ok(missing.data.missingObjects.data.includes(object.name), object.name)
      }
      // A retry of what is missing completes the build's objects.
      const retry = objects.filter((object) => missing.data.missingObjects.data.includes(object.name))
      const { status } = await upload(server, token, id, retry.map((object) => ({ name: object.name, bytes: object.bytes })))
      assert.equal(status, 200)
    })

    it('answers the first requests of a new build all at once (the build repos are made once)', async () => {
      const id = await createBuild()
      const objects = repoObjects(fixture.repoV1).slice(0, 12).map((object) => ({ name: object.name, bytes: readFileSync(object.file) }))
      const answers = await Promise.all([
        ...objects.map((object) => upload(server, token, id, [object])),
        ...objects.map((object) =>
          fetch(`${server.url}/api/v1/build/${id}/missing_objects`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ wanted: [object.name] }),
          }).then(async (response) => ({ status: response.status, body: (await response.json()) as Record<string, unknown> })),
        ),
      ])
      for (const answer of answers) assert.equal(answer.status, 200, JSON.stringify(answer.body))
      const { body } = await graphql(server.url, token, 'query($id: Int!, $wanted: [String!]!) { missingObjects(buildId: $id, objects: $wanted) { ... on QueryMissingObjectsSuccess { data } } }', {
        id,
        wanted: objects.map((object) => object.name),
      })
      assert.deepEqual(body.data.missingObjects.data, [])
    })

    it("accepts flat-manager-client's nameless `attachment; filename=` parts (nothing silently dropped)", async () => {
      const id = await createBuild()
      const objects = repoObjects(fixture.repoV1).slice(0, 5).map((object) => ({ name: object.name, bytes: readFileSync(object.file) }))
      const boundary = 'python-aiohttp-boundary'
      const body = Buffer.concat([
        ...objects.flatMap((object) => [
          Buffer.from(`--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=${object.name}\r\n\r\n`),
          object.bytes,
          Buffer.from('\r\n'),
        ]),
        Buffer.from(`--${boundary}--\r\n`),
      ])
      const response = await fetch(`${server.url}/api/v1/build/${id}/upload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
        body,
      })
      assert.equal(response.status, 200)
      assert.deepEqual(await response.json(), objects.map((object) => object.bytes.length))
      for (const object of objects) {
        const stored = path.join(buildDir(id), 'upload/objects', object.name.slice(0, 2), object.name.slice(2))
        assert.ok(readFileSync(stored).equals(object.bytes), object.name)
      }
    })

    it('refuses invalid ref names with the field named', async () => {
      const id = await createBuild()
      for (const ref of ['app/org.test.Hello/x86_64', 'app/../x86_64/stable', 'other/org.test.Hello/x86_64/stable']) {
        const result = await createRef(id, ref, fixture.app.v1)
        assert.equal(result.__typename, 'InvalidInputError', ref)
        assert.equal(result.field, 'refName')
        assert.match(result.message, new RegExp(`^Invalid ref_name ${ref.replace(/\./g, '\\.')}`))
      }
    })

    it('fails a commit with a missing object, naming it; refuses uploads after commit', async () => {
      const id = await createBuild()
      assert.equal((await createRef(id, fixture.app.ref, fixture.app.v1)).__typename, 'BuildRef')
      const withheld = objectBytes('.filez')
      const rest = repoObjects(fixture.repoV1).filter((object) => object.name !== withheld.name)
      for (let i = 0; i < rest.length; i += 50) {
        const { status } = await upload(server, token, id, rest.slice(i, i + 50).map((o) => ({ name: o.name, bytes: readFileSync(o.file) })))
        assert.equal(status, 200)
      }
      await graphql(server.url, token, 'mutation($id: Int!) { commitBuild(buildId: $id) { __typename } }', { id })
      const failed = await waitFor('commit to fail', async () => {
        const { body } = await graphql(server.url, token, 'query($id: Int!) { build(id: $id) { ... on Build { repoState repoStateReason } } }', { id })
        return body.data.build.repoState === 'COMMITTING' ? undefined : body.data.build
      })
      assert.equal(failed.repoState, 'FAILED')
      const missingChecksum = withheld.name.replace(/\.filez$/, '')
      assert.ok(failed.repoStateReason.includes(missingChecksum) || /Couldn't find file object/.test(failed.repoStateReason), failed.repoStateReason)
      const late = await upload(server, token, id, [{ name: withheld.name, bytes: withheld.bytes }])
      assert.equal(late.status, 400)
      assert.deepEqual(
        { type: late.body['error-type'], current: late.body['current-state'], expected: late.body['expected-state'] },
        { type: 'wrong-repo-state', current: 'failed', expected: 'uploading' },
      )
    })

    it('refuses to publish before checks pass; a reviewer unblocks it', async () => {
      const id = await createBuild()
      await createRef(id, fixture.runtime.ref, fixture.runtime.commit)
      await uploadMissing(server.url, token, id, fixture.repoV1)
      await graphql(server.url, token, 'mutation($id: Int!) { commitBuild(buildId: $id) { __typename } }', { id })
      const checks = await waitFor('the check to ask for review', async () => {
        const { body } = await graphql(server.url, token, 'query($id: Int!) { build(id: $id) { ... on Build { repoState checks { name status jobId } } } }', { id })
        return body.data.build.checks[0]?.status === 'REVIEW_REQUIRED' ? body.data.build : undefined
      })
      assert.equal(checks.repoState, 'VALIDATING')
      const early = await graphql(server.url, token, 'mutation($id: Int!) { publishBuild(buildId: $id) { __typename ... on WrongStateError { message expectedState currentState } } }', { id })
      assert.deepEqual(early.body.data.publishBuild, { __typename: 'WrongStateError', message: 'Build is still validating', expectedState: 'ready', currentState: 'validating' })
      const reviewer = await server.cli('token', 'create', '--name', 'reviewer', '--scope', 'reviewcheck')
      const review = await graphql(server.url, reviewer, 'mutation($job: Int!) { reviewCheck(jobId: $job, status: PASSED, reason: "looked at it") { __typename ... on Check { status statusReason } } }', { job: checks.checks[0].jobId })
      assert.deepEqual(review.body.data.reviewCheck, { __typename: 'Check', status: 'PASSED', statusReason: 'looked at it' })
      const { body } = await graphql(server.url, token, 'query($id: Int!) { build(id: $id) { ... on Build { repoState } } }', { id })
      assert.equal(body.data.build.repoState, 'READY')
    })

    it('refuses to serve a private build repo without a token, and never serves main repo files from it', async () => {
      const id = await createBuild(fixture.app.id)
      await createRef(id, fixture.app.ref, fixture.app.v1)
      await uploadMissing(server.url, token, id, fixture.repoV1)
      const anonymous = await fetch(`${server.url}/build-repo/${id}/config`)
      assert.equal(anonymous.status, 403)
      assert.match(((await anonymous.json()) as { message: string }).message, new RegExp(`Build ${id} is private`))
      const allowed = await fetch(`${server.url}/build-repo/${id}/config`, { headers: { authorization: `Bearer ${token}` } })
      assert.equal(allowed.status, 200)
      for (const escape of ['parent/config', 'upload/config', '..%2F..%2Frepos%2Fstable%2Fconfig', '.lock']) {
        const response = await fetch(`${server.url}/build-repo/${id}/${escape}`, { headers: { authorization: `Bearer ${token}` } })
        assert.equal(response.status, 404, escape)
      }
      assert.equal((await fetch(`${server.url}/repo/stable/`)).status, 404, 'no directory listings')
    })
  })
}
