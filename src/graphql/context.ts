import type { Claims } from '../domain/token/claims.ts'
import type { PrismaClient } from '../generated/prisma/client.ts'
import type { ChangeFeed } from '../notifications/changeFeed.ts'
import type { JobLogHub } from '../notifications/jobLogHub.ts'
import type { Actor } from '../services/actor.ts'
import type { AuditService } from '../services/audit.ts'
import type { BuildService } from '../services/builds.ts'
import type { RepoService } from '../services/repos.ts'
import type { TokenService } from '../services/tokens.ts'
import type { UploadService } from '../upload/uploadService.ts'

/** What every resolver gets: read models through Prisma, writes only through services. */
export type Context = {
  prisma: PrismaClient
  claims: Claims | null
  actor: Actor
  requestId: string
  builds: BuildService
  audit: AuditService
  repos: RepoService
  tokens: TokenService
  uploads: UploadService
  changes: ChangeFeed
  /** One reader per followed job in this process, shared by every subscriber of its log. */
  jobLogs: JobLogHub
}
