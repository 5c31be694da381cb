import assert from 'node:assert/strict'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Browser, Page, WebSocketRoute } from 'playwright-core'
import { isolatedContext, launchChromium } from '../support/browser.ts'
import { signedRepoConfig } from '../support/config.ts'
import { createPostgresDatabase, testEngines } from '../support/databases.ts'
import { buildFixture, type Fixture } from '../support/fixture.ts'
import { graphql, runCli, startServer, waitFor, type ServerProcess } from '../support/server.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
/** Every run keeps its screenshots here; UPDATE_SCREENSHOTS=1 also refreshes the README's (docs/screenshots). */
const shots = path.join(root, '.tmp', 'screenshots')
const hookLines = 16

async function pushed(server: ServerProcess, token: string, args: string[]): Promise<number> {
  const result = await runCli(server, token, ['push', ...args, '--json', '--no-progress'])
  assert.equal(result.code, 0, result.stderr)
  const { buildId: id } = JSON.parse(result.stdout) as { buildId: number }
  assert.ok(Number.isInteger(id), result.stdout)
  return id
}

async function screenshot(page: Page, name: string, engine: string): Promise<void> {
  mkdirSync(shots, { recursive: true })
  const file = path.join(shots, `${engine}-${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  if (process.env.UPDATE_SCREENSHOTS && engine === testEngines[0]) {
    mkdirSync(path.join(root, 'docs', 'screenshots'), { recursive: true })
    copyFileSync(file, path.join(root, 'docs', 'screenshots', `${name}.png`))
  }
}

const badge = (page: Page, scope: string, text: string) => page.locator(`${scope} .state`, { hasText: new RegExp(`^${text}$`) })

async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/`)
  await page.getByLabel('Token').fill(token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('heading', { name: 'Builds', level: 1 }).waitFor()
}

for (const engine of testEngines) {
  describe(`dashboard on ${engine}, in headless Chromium with every other host blocked`, () => {
    let fixture: Fixture
    let server: ServerProcess
    let browser: Browser
    let dropDatabase = async () => {}
    let failMarker: string
    const tokens = { maintainer: '', bot: '', admin: '', spare: '' }

    before(async () => {
      fixture = await buildFixture('small')
      let databaseUrl: string | null = null
      if (engine === 'postgresql') ({ url: databaseUrl, drop: dropDatabase } = await createPostgresDatabase())
      const hooks = mkdtempSync(path.join(tmpdir(), 'flatdepot-ui-hooks-'))
      failMarker = path.join(hooks, 'fail')
      const lint = path.join(hooks, 'lint.sh')
      // A check that takes a few seconds, printing as it goes; it asks for a review while the marker exists.
      writeFileSync(
        lint,
        `#!/bin/sh\nfor i in $(seq 1 ${hookLines}); do echo "lint step $i of ${hookLines} (build $FLAT_MANAGER_BUILD_ID)"; sleep 0.25; done\n` +
          `if [ -e ${failMarker} ]; then echo "lint: the manifest's finish-args need a look" >&2; exit 1; fi\n`,
      )
      chmodSync(lint, 0o755)
      server = await startServer({
        databaseUrl,
        config: (port) => signedRepoConfig(fixture, port, { title: 'Test apps', 'default-branch': 'stable', hooks: { checks: { lint: { command: [lint], reviewable: true } } } }),
      })
      const scopes = (...names: string[]) => names.flatMap((name) => ['--scope', name])
      tokens.maintainer = await server.cli('token', 'create', '--name', 'maintainer', ...scopes('build', 'jobs', 'publish', 'reviewcheck', 'upload'))
      tokens.bot = await server.cli('token', 'create', '--name', 'bot', ...scopes('build', 'upload', 'publish', 'jobs'))
      tokens.admin = await server.cli('token', 'create', '--name', 'admin', '--sub', '', ...scopes('tokenmanagement'))
      tokens.spare = await server.cli('token', 'create', '--name', 'spare-bot', ...scopes('build'))
      // flatdepot learns of a token it did not mint through the API when it is first used.
      await graphql(server.url, tokens.spare, '{ builds(first: 1) { __typename } }')
      browser = await launchChromium()
    })
    after(async () => {
      await browser?.close()
      await server?.stop()
      await dropDatabase()
    })

    it('serves GraphiQL from flatdepot itself; it runs a query with the token the dashboard signed in with', async () => {
      const { context, blocked } = await isolatedContext(browser, server.url)
      const page = await context.newPage()
      await signIn(page, server.url, tokens.maintainer)
      await page.getByRole('link', { name: 'GraphiQL' }).click()
      await page.waitForURL(`${server.url}/graphql`)
      const run = page.locator('.graphiql-execute-button')
      await run.waitFor({ timeout: 30_000 })
      await page.locator('.graphiql-query-editor .monaco-editor').first().waitFor()
      await run.click()
      const response = page.locator('.graphiql-response')
      await response.getByText('"QueryBuildsConnection"').first().waitFor({ timeout: 20_000 })
      const text = await response.innerText()
      assert.doesNotMatch(text, /TOKEN_MISSING|TOKEN_INVALID/, 'the header editor carried the token')
      assert.match(text, /"name":\s*"stable"/)
      assert.deepEqual(blocked, [], 'GraphiQL asked for nothing outside flatdepot')
      await screenshot(page, 'graphiql', engine)
      await context.close()
    })

    it('shows a build going from uploading to published live while the CLI pushes it', async () => {
      const { context, blocked } = await isolatedContext(browser, server.url)
      const page = await context.newPage()
      await signIn(page, server.url, tokens.maintainer)
      await page.evaluate(() => Object.assign(window, { stillTheSamePage: true }))
      await page.locator('.connection', { hasText: 'live' }).waitFor()

      const id = await pushed(server, tokens.bot, ['stable', fixture.repoV1])
      const row = `[data-build="${id}"]`
      await badge(page, `${row} td:nth-child(4)`, 'uploading').waitFor({ timeout: 20_000 })
      await pushed(server, tokens.bot, ['stable', fixture.repoV1, '--build-id', String(id), '--publish', '--wait-update'])
      await badge(page, `${row} td:nth-child(5)`, 'published').waitFor({ timeout: 30_000 })
      await badge(page, `${row} td:nth-child(4)`, 'ready').waitFor()
      assert.equal(await page.evaluate(() => (window as unknown as { stillTheSamePage?: boolean }).stillTheSamePage), true, 'the list changed without a reload')
      await screenshot(page, 'builds', engine)

      await page.getByRole('link', { name: 'Repos' }).click()
      const appRow = page.locator(`[data-repo="stable"] [data-ref="${fixture.app.ref}"]`)
      await appRow.waitFor()
      assert.match(await appRow.innerText(), new RegExp(`build #${id}`))
      await page.locator('[data-repo="stable"] .state', { hasText: /^up to date$/ }).waitFor({ timeout: 30_000 })
      await screenshot(page, 'repos', engine)
      assert.deepEqual(blocked, [])
      await context.close()
    })

    it('streams a check log live, resumes it after a lost connection without gaps or repeats, and a reviewer passes the check and publishes', async () => {
      const { context, blocked } = await isolatedContext(browser, server.url)
      const sockets: { page: WebSocketRoute; server: WebSocketRoute }[] = []
      await context.routeWebSocket(/\/graphql$/, (ws) => {
        sockets.push({ page: ws, server: ws.connectToServer() })
      })
      const page = await context.newPage()
      if (process.env.DEBUG_E2E) page.on('console', (message) => console.log('page:', message.text()))
      await signIn(page, server.url, tokens.maintainer)
      writeFileSync(failMarker, '')
      const id = await pushed(server, tokens.bot, ['stable', fixture.repoV2, '--commit'])
      await page.goto(`${server.url}/ui/#/builds/${id}`)
      const check = page.locator('[data-check="lint"]')
      await check.waitFor({ timeout: 30_000 })
      await check.getByRole('link', { name: 'log' }).click()
      await page.getByRole('heading', { name: /Job \d+ · check/ }).waitFor()
      const jobId = Number(/#\/jobs\/(\d+)/.exec(page.url())![1])

      // Following while the hook runs: some lines, not all, with the job running.
      await waitFor('the first lines', async () => ((await page.locator('pre.log .line').count()) >= 3 ? true : undefined), 20_000)
      const seenBeforeDrop = await page.locator('pre.log .line').count()
      assert.ok(seenBeforeDrop < hookLines, `lines arrive as the hook prints them (${seenBeforeDrop} so far)`)
      await badge(page, '[data-testid=job-status]', 'running').waitFor()

      // The connection drops mid-log; graphql-ws reconnects and the log resumes.
      const before = sockets.length
      for (const socket of sockets.splice(0)) {
        await socket.server.close({ code: 1001, reason: 'test: connection lost' })
        await socket.page.close({ code: 1001, reason: 'test: connection lost' })
      }
      await page.getByText(/^End of log/).waitFor({ timeout: 30_000 })
      assert.ok(before >= 1 && sockets.length >= 1, 'the page opened a new connection')

      const positions = await page.locator('pre.log .line').evaluateAll((lines) => lines.map((line) => Number(line.getAttribute('data-position'))))
      const { body } = await graphql(server.url, tokens.maintainer, 'query($id: Int!) { job(id: $id) { ... on Job { log(first: 1000) { position } } } }', { id: jobId })
      const stored = (body.data.job.log as { position: number }[]).map((line) => line.position)
      assert.deepEqual(positions, stored, 'every stored line shown once, in order')
      assert.ok(stored.length >= hookLines + 1, `the hook's ${hookLines} lines and its complaint (${stored.length})`)
      assert.match(await page.locator('pre.log').innerText(), /finish-args need a look/)
      await screenshot(page, 'job-log', engine)

      // The review: the failed check asks for one; passing it makes the build ready; then publish.
      await page.getByRole('link', { name: `Build ${id}` }).click()
      await badge(page, '[data-check="lint"]', 'review required').waitFor({ timeout: 20_000 })
      await page.getByLabel('Review reason').fill('finish-args checked by hand')
      await page.locator('[data-check="lint"]').getByRole('button', { name: 'Pass' }).click()
      await badge(page, '[data-check="lint"]', 'passed').waitFor({ timeout: 20_000 })
      await badge(page, '[data-testid=repo-state]', 'ready').waitFor({ timeout: 20_000 })
      await page.getByRole('button', { name: 'Publish' }).click()
      await badge(page, '[data-testid=published-state]', 'published').waitFor({ timeout: 60_000 })
      await screenshot(page, 'build', engine)
      assert.deepEqual(blocked, [])
      rmSync(failMarker, { force: true })
      await context.close()
    })

    it("reads a wrong token's error as the API says it; an admin token lists and revokes tokens", async () => {
      const { context } = await isolatedContext(browser, server.url)
      const page = await context.newPage()
      await page.goto(`${server.url}/ui/`)
      await page.getByLabel('Token').fill('not-a-token')
      await page.getByRole('button', { name: 'Sign in' }).click()
      const alert = page.getByRole('alert')
      await alert.waitFor()
      assert.match(await alert.innerText(), /token/i)
      assert.match(await alert.innerText(), /\(TOKEN_[A-Z]+\)/)
      assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token is not kept')

      // Signed in as the maintainer, the token page says what the API says: not allowed.
      await signIn(page, server.url, tokens.maintainer)
      await page.getByRole('link', { name: 'Tokens' }).click()
      assert.match(await page.getByRole('alert').innerText(), /PERMISSION_DENIED/)
      await page.getByRole('button', { name: 'Sign out' }).click()

      await page.getByLabel('Token').fill(tokens.admin)
      await page.getByRole('button', { name: 'Sign in' }).click()
      // Still on the tokens page (#/tokens): now it lists them.
      const spare = page.locator('tr', { hasText: 'spare-bot' })
      await spare.waitFor()
      page.once('dialog', (dialog) => void dialog.accept())
      await spare.getByRole('button', { name: 'Revoke' }).click()
      await page.locator('tr', { hasText: 'spare-bot' }).waitFor({ state: 'detached' })
      const refused = await graphql(server.url, tokens.spare, '{ builds(first: 1) { __typename } }')
      assert.equal(refused.body.errors?.[0]?.extensions?.code, 'TOKEN_REVOKED')
      await context.close()
    })

    it('is usable on a phone-sized screen', async () => {
      const { context } = await isolatedContext(browser, server.url, { viewport: { width: 390, height: 844 } })
      const page = await context.newPage()
      await signIn(page, server.url, tokens.maintainer)
      await page.locator('[data-build]').first().waitFor()
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
      assert.ok(overflow <= 0, `the page does not scroll sideways (${overflow}px); wide tables scroll in their own box`)
      await screenshot(page, 'phone-builds', engine)
      await context.close()
    })
  })
}
