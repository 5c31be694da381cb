import type { InlineHandler } from '../eventStore/eventStore.ts'
import { buildsProjection } from './builds.ts'
import { jobQueueOutbox, jobsProjection } from '../jobs/projection.ts'
import { ociImagesProjection, repoRefsProjection, reposProjection, tokensProjection } from './reposAndTokens.ts'

/** Order matters: builds reference repos. */
export const inlineHandlers: readonly InlineHandler[] = [
  reposProjection,
  buildsProjection,
  jobsProjection,
  tokensProjection,
  ociImagesProjection,
  repoRefsProjection,
  jobQueueOutbox,
]

/** Read-model tables in delete order (children first). */
export const readModelTables = ['checks', 'build_refs', 'builds', 'jobs', 'tokens', 'oci_images', 'repo_refs', 'repos'] as const
