import { existsSync } from 'node:fs'
import { chromium, type Browser, type BrowserContext } from 'playwright-core'

/** Debian's Chromium (scripts/bootstrap.sh installs it); FLATDEPOT_CHROMIUM points elsewhere. */
export const chromiumPath = process.env.FLATDEPOT_CHROMIUM ?? '/usr/bin/chromium'

/**
 * Headless Chromium as the machine's probe started it: no sandbox (root), no GPU, and none of
 * Chromium's own background connections (this machine's network is closed).
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath)) throw new Error(`no Chromium at ${chromiumPath}: run scripts/bootstrap.sh (it installs Debian's chromium), or set FLATDEPOT_CHROMIUM`)
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}

/**
 * A browser context that may reach `origin` only: every request elsewhere is refused and
 * remembered (a page that needs a CDN shows it here).
 */
export async function isolatedContext(browser: Browser, origin: string, options: { viewport?: { width: number; height: number } } = {}): Promise<{ context: BrowserContext; blocked: string[] }> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 800 } })
  const blocked: string[] = []
  await context.route('**/*', async (route) => {
    const url = route.request().url()
    if (url.startsWith(`${origin}/`) || url.startsWith('data:') || url.startsWith('blob:')) await route.continue()
    else {
      blocked.push(url)
      await route.abort('blockedbyclient')
    }
  })
  return { context, blocked }
}
