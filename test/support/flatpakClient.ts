import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import type { Fixture } from './fixture.ts'

const exec = promisify(execFile)

/** A real flatpak client with a user installation in a temporary home. */
export function flatpakClient(fixture: Fixture) {
  const home = mkdtempSync(path.join(tmpdir(), 'flatpak-client-'))
  const env = { ...process.env, HOME: home, FLATPAK_USER_DIR: path.join(home, 'flatpak'), FLATPAK_SYSTEM_HELPER_ON_SESSION: '1', XDG_DATA_HOME: path.join(home, 'data') }
  const flatpak = async (...args: string[]) => (await exec('flatpak', ['--user', ...args], { env, maxBuffer: 16 << 20 })).stdout
  const installedVersion = async () =>
    readFileSync(path.join(env.FLATPAK_USER_DIR, 'app', fixture.app.id, 'current', 'active', 'files', 'share', fixture.app.id, 'version'), 'utf8').trim()
  return { home, env, flatpak, installedVersion, cleanup: () => rmSync(home, { recursive: true, force: true }) }
}

/** A fresh client adds the server's repo (key from the fixture), installs the app and says which version it got. */
export async function installedFrom(fixture: Fixture, serverUrl: string): Promise<string> {
  const client = flatpakClient(fixture)
  try {
    await client.flatpak('remote-add', `--gpg-import=${fixture.keyFile}`, 'test', `${serverUrl}/repo/stable`)
    await client.flatpak('install', '-y', '--noninteractive', 'test', fixture.app.id)
    return await client.installedVersion()
  } finally {
    client.cleanup()
  }
}
