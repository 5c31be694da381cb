import type { Fixture } from './fixture.ts'

/** A server config that signs builds and the `stable` repo with the fixture's key. */
export function signedRepoConfig(fixture: Fixture, port: number, repo: Record<string, unknown> = {}, secretByte = 3) {
  return {
    secret: Buffer.alloc(32, secretByte).toString('base64'),
    'base-url': `http://127.0.0.1:${port}`,
    'build-repo-base': 'builds',
    'gpg-homedir': fixture.gnupghome,
    'build-gpg-key': fixture.keyId,
    repos: { stable: { path: 'repos/stable', 'gpg-key': fixture.keyId, ...repo } },
  }
}
