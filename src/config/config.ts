import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Cron } from 'croner'
import { z } from 'zod'

const isCronPattern = (pattern: string) => {
  try {
    new Cron(pattern, { paused: true })
    return true
  } catch {
    return false
  }
}
const cronMessage = 'must be a cron pattern such as "0 3 * * *" (minute hour day month weekday)'

/**
 * An upstream repo whose selected refs a repo mirrors: its URL, the GPG key(s) every pulled
 * commit must be signed with, and which refs to follow (id globs, and optionally branches and
 * arches; with the runtime each app names and the app's extensions, so a mirrored app installs).
 */
const upstreamSchema = z.strictObject({
  url: z.url(),
  'gpg-key': z.string().min(1),
  'collection-id': z.string().optional(),
  refs: z
    .array(
      z.strictObject({
        id: z.array(z.string().min(1)).min(1),
        branch: z.array(z.string().min(1)).default([]),
        arch: z.array(z.string().min(1)).default([]),
        'with-runtime': z.boolean().default(true),
        'with-extensions': z.boolean().default(true),
      }),
    )
    .min(1, 'name the refs to follow'),
  /** New upstream versions land as a build (checks, review, then publish) instead of going straight in. */
  review: z.boolean().default(false),
  schedule: z.string().refine(isCronPattern, cronMessage).optional(),
})

const gpgKeys = z.union([z.string().min(1), z.array(z.string().min(1))]).nullable().optional()
const argv = z.array(z.string()).min(1, 'needs at least the program to run')

/** Per repo: flat-manager's RepoConfig (kebab-case, unknown keys refused), plus title/default-branch. */
const repoSchema = z.strictObject({
  path: z.string().min(1),
  title: z.string().optional(),
  'default-branch': z.string().optional(),
  'collection-id': z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/, 'must be a reverse-DNS id like org.example.Repo').optional(),
  'deploy-collection-id': z.boolean().default(false),
  'suggested-repo-name': z.string().optional(),
  'gpg-key': gpgKeys,
  'base-url': z.string().url().optional(),
  'runtime-repo-url': z.string().optional(),
  'default-token-type': z.number().int().default(0),
  'require-auth-for-token-types': z.array(z.number().int()).default([]),
  /**
   * Per-subset summaries: a build whose refs' ids match a subset's `ids` globs is published into
   * that subset (`xa.subsets`), and `<repo>-<subset>.flatpakrepo` installs only the subset.
   * `collection-id` and `base-url` are flat-manager's keys (unused there since 2019): accepted,
   * and `base-url` becomes the subset's .flatpakrepo Url when given.
   */
  subsets: z
    .record(z.string(), z.strictObject({ 'collection-id': z.string().optional(), 'base-url': z.string().optional(), ids: z.array(z.string().min(1)).default([]) }))
    .superRefine((subsets, context) => {
      for (const name of Object.keys(subsets)) {
        if (!/^[A-Za-z0-9_-]+$/.test(name)) context.addIssue({ code: 'custom', path: [name], message: 'subset names are letters, digits, "_" and "-" (they name files)' })
      }
    })
    .default({}),
  /**
   * What a prune keeps, and when it runs by itself: `depth` parents behind each ref's commit
   * (flat-manager prunes at 3), every commit younger than `keep-younger-than-days` besides, and a
   * cron `schedule` ("0 3 * * *": at 03:00 each day, in the server's time zone).
   */
  /**
   * A copy for downstream mirrors (rsync, a CDN's origin), refreshed after every repo update:
   * consistent at any moment; content that left the repo goes after `grace-secs`.
   */
  export: z.strictObject({ path: z.string().min(1), 'grace-secs': z.number().int().min(0).default(3600) }).optional(),
  /**
   * OCI distribution: each app and runtime ref is exported as an OCI image after every update,
   * served as `/v2/<prefix>/<id in lower case>` and listed in the registry index (`oci+http` remotes).
   */
  oci: z
    .strictObject({ prefix: z.string().regex(/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, 'an OCI repository path: lower-case letters, digits, ".", "_", "-" and "/"').optional() })
    .optional(),
  upstreams: z
    .record(z.string(), upstreamSchema)
    .superRefine((upstreams, context) => {
      for (const name of Object.keys(upstreams)) {
        if (!/^[A-Za-z0-9_-]+$/.test(name)) context.addIssue({ code: 'custom', path: [name], message: 'upstream names are letters, digits, "_" and "-"' })
      }
    })
    .default({}),
  prune: z
    .strictObject({
      depth: z.number().int().min(0).default(3),
      'keep-younger-than-days': z.number().int().min(0).optional(),
      schedule: z
        .string()
        .refine(isCronPattern, cronMessage)
        .optional(),
    })
    .default({ depth: 3 }),
  'post-publish-script': z.string().optional(),
  hooks: z
    .strictObject({
      publish: argv.optional(),
      checks: z.record(z.string(), z.strictObject({ command: argv, reviewable: z.boolean().default(false) })).default({}),
    })
    .default({ checks: {} }),
  deltas: z
    .array(z.strictObject({ id: z.array(z.string()), arch: z.array(z.string()).default([]), depth: z.number().int().min(0) }))
    // Absent: every app and runtime gets a delta from scratch and one from its previous commit
    // (what `--generate-static-deltas` makes). `[]` turns app and runtime deltas off, as in flat-manager.
    .default([{ id: ['*'], arch: [], depth: 2 }]),
  'appstream-delta-depth': z.number().int().min(0).default(5),
}).superRefine((repo, context) => {
  // Mirrored commits keep upstream's collection binding: a client of this repo checks it against this repo's id.
  for (const [name, upstream] of Object.entries(repo.upstreams)) {
    if (repo['collection-id'] && upstream['collection-id'] && repo['collection-id'] !== upstream['collection-id']) {
      context.addIssue({
        code: 'custom',
        path: ['upstreams', name, 'collection-id'],
        message: `is ${upstream['collection-id']} but the repo's is ${repo['collection-id']}: mirrored commits are bound to upstream's collection, so the repo must have the same id (or none)`,
      })
    }
  }
})

// A repo name is a URL path (/repo/<name>/) and a stream id: segments of letters, digits, "_", "-"
// and inner dots, none starting with a dot (no "..", no hidden segments).
const repoNamePattern = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*(\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$/

const configSchema = z.strictObject({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8080),
  'base-url': z.string().default(''),
  /** base64 of the HS256 key bytes, as in flat-manager. */
  secret: z.string().min(1).optional(),
  'repo-secret': z.string().min(1).optional(),
  'token-prefix': z.string().optional(),
  'database-url': z.string().optional(),
  'build-repo-base': z.string().min(1),
  'build-gpg-key': gpgKeys,
  'gpg-homedir': z.string().optional(),
  'delay-update-secs': z.number().int().min(0).default(0),
  'local-delta-threads': z.number().int().min(1).default(1),
  'max-object-size': z.number().int().positive().default(2 * 1024 ** 3),
  'max-build-size': z.number().int().positive().default(32 * 1024 ** 3),
  /**
   * Public keys that verify tokens a token service signs (the server never holds their private
   * halves): PEM or JWK files, each with its key id and one algorithm. `jwks`: more keys from a
   * JWKS file or URL, read again every `refresh-secs`. `accept-secret-tokens: false` refuses
   * tokens signed with `secret` (HS256) once every client has a key-signed one.
   */
  'token-keys': z
    .array(
      z.strictObject({
        kid: z.string().min(1).max(128),
        alg: z.enum(['EdDSA', 'ES256', 'RS256']).optional(),
        file: z.string().min(1),
        expires: z.iso.datetime({ offset: true }).optional(),
      }),
    )
    .default([])
    .superRefine((keys, context) => {
      const seen = new Set<string>()
      keys.forEach((key, index) => {
        if (seen.has(key.kid)) context.addIssue({ code: 'custom', path: [index, 'kid'], message: `key id "${key.kid}" is used twice: a token names one key` })
        seen.add(key.kid)
      })
    }),
  jwks: z
    .strictObject({ file: z.string().min(1).optional(), url: z.url().optional(), 'refresh-secs': z.number().int().min(1).default(300) })
    .refine((jwks) => (jwks.file === undefined) !== (jwks.url === undefined), 'give either "file" or "url"')
    .optional(),
  'accept-secret-tokens': z.boolean().default(true),
  /** /status and /metrics: open to anyone (flat-manager's way), else a token with the jobs scope. */
  'public-status': z.boolean().default(false),
  'public-metrics': z.boolean().default(false),
  repos: z.record(z.string(), repoSchema).superRefine((repos, context) => {
    for (const name of Object.keys(repos)) {
      if (!repoNamePattern.test(name)) {
        context.addIssue({ code: 'custom', path: [name], message: 'repo names are "/"-separated segments of letters, digits, ".", "_" and "-", none starting with "."' })
      }
    }
  }),
})

export type RawConfig = z.infer<typeof configSchema>
export type RepoConfig = z.infer<typeof repoSchema> & { name: string }

export type Config = Readonly<{
  file: string
  dataDir: string
  host: string
  port: number
  baseUrl: string
  secret: Uint8Array
  repoSecret: Uint8Array | null
  tokenPrefix: string | null
  database: { engine: 'postgresql'; url: string } | { engine: 'pglite'; dataDir: string }
  buildRepoBase: string
  buildGpgKeys: string[]
  gpgHomedir: string | null
  delayUpdateSecs: number
  localDeltaThreads: number
  maxObjectSize: number
  maxBuildSize: number
  publicStatus: boolean
  publicMetrics: boolean
  tokenKeys: readonly Readonly<{ kid: string; alg: 'EdDSA' | 'ES256' | 'RS256' | null; file: string; expires: Date | null }>[]
  jwks: Readonly<{ source: { file: string } | { url: string }; refreshSecs: number }> | null
  acceptSecretTokens: boolean
  repos: ReadonlyMap<string, RepoConfig>
  raw: RawConfig
}>

export class ConfigError extends Error {}

const keyList = (keys: string | string[] | null | undefined) => (keys == null ? [] : Array.isArray(keys) ? keys : [keys])

export function parseSecret(value: string, where: string): Uint8Array {
  const bytes = Buffer.from(value.trim(), 'base64')
  if (bytes.length < 16) {
    throw new ConfigError(`${where}: must be the base64 of at least 16 random bytes (e.g. \`openssl rand -base64 32\`)`)
  }
  return new Uint8Array(bytes)
}

function formatIssues(file: string, error: z.ZodError): string {
  const lines = error.issues.map((issue) => {
    const key = issue.path.length ? issue.path.join('.') : '(top level)'
    return `  ${key}: ${issue.message}`
  })
  return `invalid config ${file}:\n${lines.join('\n')}`
}

export type LoadOptions = {
  env?: NodeJS.ProcessEnv
  /** Create a working default config when none exists (first start). */
  createDefault?: boolean
  onCreated?: (file: string) => void
}

export function configPath(env: NodeJS.ProcessEnv): { file: string; explicit: boolean; dataDir: string } {
  const dataDir = path.resolve(env.FLATDEPOT_DATA_DIR ?? 'data')
  const explicit = env.FLATDEPOT_CONFIG ?? env.REPO_CONFIG
  return { file: path.resolve(explicit ?? path.join(dataDir, 'config.json')), explicit: explicit !== undefined, dataDir }
}

export function defaultConfig(): RawConfig {
  return configSchema.parse({
    secret: randomBytes(32).toString('base64'),
    'build-repo-base': 'builds',
    repos: {
      stable: { path: 'repos/stable', title: 'flatdepot stable', 'default-branch': 'stable' },
    },
  })
}

/** Reads, validates and resolves the config; errors name the key and what is wrong with it. */
export function loadConfig({ env = process.env, createDefault = false, onCreated }: LoadOptions = {}): Config {
  const location = configPath(env)
  if (!existsSync(location.file)) {
    if (location.explicit || !createDefault) {
      throw new ConfigError(`config file ${location.file} does not exist`)
    }
    mkdirSync(path.dirname(location.file), { recursive: true })
    const { 'max-object-size': _o, 'max-build-size': _b, ...written } = defaultConfig()
    writeFileSync(location.file, `${JSON.stringify(written, null, 2)}\n`, { mode: 0o600 })
    onCreated?.(location.file)
  }
  let json: unknown
  try {
    json = JSON.parse(readFileSync(location.file, 'utf8'))
  } catch (error) {
    throw new ConfigError(`cannot read config ${location.file}: ${(error as Error).message}`)
  }
  const parsed = configSchema.safeParse(json)
  if (!parsed.success) throw new ConfigError(formatIssues(location.file, parsed.error))
  return resolveConfig(parsed.data, location.file, env)
}

export function resolveConfig(raw: RawConfig, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const base = path.dirname(file)
  const resolve = (p: string) => path.resolve(base, p)
  const secretText = env.FLATDEPOT_SECRET ?? raw.secret
  if (!secretText) throw new ConfigError(`invalid config ${file}:\n  secret: required (or set FLATDEPOT_SECRET)`)
  const databaseUrl = env.DATABASE_URL ?? raw['database-url']
  const port = env.FLATDEPOT_PORT ? Number(env.FLATDEPOT_PORT) : raw.port
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`FLATDEPOT_PORT: ${env.FLATDEPOT_PORT} is not a port number`)
  }
  const host = env.FLATDEPOT_HOST ?? raw.host
  return {
    file,
    dataDir: base,
    host,
    port,
    baseUrl: raw['base-url'],
    secret: parseSecret(secretText, env.FLATDEPOT_SECRET ? 'FLATDEPOT_SECRET' : `${file}: secret`),
    repoSecret: raw['repo-secret'] ? parseSecret(raw['repo-secret'], `${file}: repo-secret`) : null,
    tokenPrefix: raw['token-prefix'] ?? null,
    database: databaseUrl
      ? { engine: 'postgresql', url: databaseUrl }
      : { engine: 'pglite', dataDir: path.join(base, 'db') },
    buildRepoBase: resolve(raw['build-repo-base']),
    buildGpgKeys: keyList(raw['build-gpg-key']),
    gpgHomedir: raw['gpg-homedir'] ? resolve(raw['gpg-homedir']) : null,
    delayUpdateSecs: raw['delay-update-secs'],
    localDeltaThreads: raw['local-delta-threads'],
    maxObjectSize: raw['max-object-size'],
    maxBuildSize: raw['max-build-size'],
    publicStatus: raw['public-status'],
    publicMetrics: raw['public-metrics'],
    tokenKeys: raw['token-keys'].map((key) => ({ kid: key.kid, alg: key.alg ?? null, file: resolve(key.file), expires: key.expires ? new Date(key.expires) : null })),
    jwks: raw.jwks ? { source: raw.jwks.file ? { file: resolve(raw.jwks.file) } : { url: raw.jwks.url! }, refreshSecs: raw.jwks['refresh-secs'] } : null,
    acceptSecretTokens: raw['accept-secret-tokens'],
    repos: new Map(
      Object.entries(raw.repos).map(([name, repo]) => [
        name,
        {
          ...repo,
          name,
          path: resolve(repo.path),
          ...(repo.export && { export: { ...repo.export, path: resolve(repo.export.path) } }),
          upstreams: Object.fromEntries(Object.entries(repo.upstreams).map(([upstream, settings]) => [upstream, { ...settings, 'gpg-key': resolve(settings['gpg-key']) }])),
        },
      ]),
    ),
    raw,
  }
}

/** Validate a config object (tests, tools) without touching the file system. */
export function parseConfig(json: unknown, file: string, env: NodeJS.ProcessEnv = {}): Config {
  const parsed = configSchema.safeParse(json)
  if (!parsed.success) throw new ConfigError(formatIssues(file, parsed.error))
  return resolveConfig(parsed.data, file, env)
}

export const repoGpgKeys = (repo: RepoConfig) => keyList(repo['gpg-key'])

export const buildSigning = (config: Config) =>
  config.buildGpgKeys.length ? { keys: config.buildGpgKeys, homedir: config.gpgHomedir } : null

export const repoSigning = (config: Config, repo: RepoConfig) => {
  const keys = repoGpgKeys(repo)
  return keys.length ? { keys, homedir: config.gpgHomedir } : null
}

/** Where clients reach a repo: its base-url, else the server's base url + /repo/<name>. */
export function repoUrl(config: Config, repo: RepoConfig): string {
  return repo['base-url'] ?? `${serverBaseUrl(config)}/repo/${repo.name}`
}

export function serverBaseUrl(config: Config): string {
  return (config.baseUrl || `http://${config.host}:${config.port}`).replace(/\/+$/, '')
}
