import { PermissionDeniedError } from '../../domain/shared/errors.ts'
import type { Prisma } from '../../generated/prisma/client.ts'
import { requireClaims } from '../../services/actor.ts'
import { checkClaims } from '../../domain/token/claims.ts'
import { isFinished, jobStreamId } from '../../domain/job/job.ts'
import { eachOf, pushEvents, type Pushable } from '../../notifications/push.ts'
import { builder } from '../builder.ts'
import type { Context } from '../context.ts'
import { lookupErrors } from './errors.ts'
import { JobKindEnum, JobStatusEnum } from './enums.ts'

const JobLogLineType = builder.prismaObject('JobLogLine', {
  description: "A line of a job's log: flatdepot's own messages and the output of what it ran",
  fields: (t) => ({
    position: t.exposeInt('position', { description: 'Counts from 1, without gaps, per job' }),
    stream: t.exposeString('stream', { description: 'flatdepot, stdout or stderr' }),
    text: t.exposeString('text'),
    at: t.expose('at', { type: 'DateTime' }),
  }),
})

/**
 * A follower's batches one line at a time, with no async generator between: a generator that
 * re-yields each batch cost 0.8–1.5 µs a line against 0.25–0.4 µs (measured), and a thousand
 * watchers of one log pay it on every line. Ending it ends the follower.
 */
function eachLine<T>(batches: AsyncIterableIterator<T[]> & Pushable<T[]>): AsyncIterableIterator<T> & Pushable<T> {
  let batch: T[] = []
  let index = 0
  return {
    async next() {
      while (index >= batch.length) {
        const step = await batches.next()
        if (step.done) return { value: undefined, done: true }
        batch = step.value
        index = 0
      }
      return { value: batch[index++]!, done: false }
    },
    return: async (value?: unknown) => {
      await batches.return?.(value)
      return { value: undefined, done: true }
    },
    throw: async (error?: unknown) => {
      await batches.throw?.(error)
      return { value: undefined, done: true }
    },
    // Pushed (see src/notifications/push.ts): each line of each batch to the receiver.
    [pushEvents]: (sink) => batches[pushEvents]((lines) => eachOf(lines, sink)),
    [Symbol.asyncIterator]() {
      return this
    },
  }
}

/** A job's log lines after `after`, in order: what the `log` field and the `jobLog` subscription read. */
function logLinesAfter(context: Context, jobId: number, after: number, take: number, query: { select?: Prisma.JobLogLineSelect } = {}) {
  return context.prisma.jobLogLine.findMany({ ...query, where: { jobId, position: { gt: after } }, orderBy: { position: 'asc' }, take })
}

export const JobType = builder.prismaObject('Job', {
  description: 'A unit of work a worker runs: commit, check, publish, repo update…',
  fields: (t) => ({
    id: t.exposeInt('id'),
    kind: t.field({ type: JobKindEnum, resolve: (job) => job.kind as never }),
    status: t.field({ type: JobStatusEnum, resolve: (job) => job.status as never }),
    repo: t.exposeString('repoName', { nullable: true }),
    buildId: t.exposeInt('buildId', { nullable: true }),
    contents: t.expose('contents', { type: 'JSON' }),
    results: t.expose('results', { type: 'JSON', nullable: true }),
    error: t.exposeString('error', { nullable: true }),
    attempts: t.exposeInt('attempts'),
    startAfter: t.expose('startAfter', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    log: t.prismaField({
      type: ['JobLogLine'],
      description: 'Log lines after position `after` (0: from the start), for clients that poll',
      args: { after: t.arg.int({ defaultValue: 0 }), first: t.arg.int({ defaultValue: 1000 }) },
      resolve: (query, job, args, context) => logLinesAfter(context, job.id, args.after, Math.min(Math.max(args.first, 0), 10_000), query),
    }),
  }),
})

/** A job the token may read (the builds service decides), or an error. */
const readableJob = (context: Context, id: number, query: { select?: Prisma.JobSelect } = {}) => context.builds.readableJob(context.actor, id, query)

const logPage = 1000

builder.queryFields((t) => ({
  job: t.prismaField({
    type: 'Job',
    authScopes: { token: true },
    errors: { types: lookupErrors },
    args: { id: t.arg.int() },
    resolve: (query, _root, args, context) => readableJob(context, args.id, query),
  }),
  jobs: t.prismaConnection({
    type: 'Job',
    cursor: 'id',
    description: 'Jobs, newest first (needs the `jobs` scope)',
    authScopes: { token: true },
    errors: { types: [PermissionDeniedError] },
    args: {
      repo: t.arg.string({ required: false }),
      buildId: t.arg.int({ required: false }),
      status: t.arg({ type: JobStatusEnum, required: false }),
      kind: t.arg({ type: JobKindEnum, required: false }),
    },
    resolve: (query, _root, args, context) => {
      const reason = checkClaims(requireClaims(context.actor), 'build', 'jobs')
      if (reason) throw new PermissionDeniedError(reason)
      const where: Prisma.JobWhereInput = {
        ...(args.repo ? { repoName: args.repo } : {}),
        ...(args.buildId != null ? { buildId: args.buildId } : {}),
        ...(args.status ? { status: args.status } : {}),
        ...(args.kind ? { kind: args.kind } : {}),
      }
      return context.prisma.job.findMany({ ...query, where, orderBy: { id: 'desc' } })
    },
  }),
}))

builder.subscriptionFields((t) => ({
  jobUpdated: t.prismaField({
    type: 'Job',
    description: 'The job now, then again after every change of its state; ends once it has finished',
    authScopes: { token: true },
    args: { id: t.arg.int() },
    // Checked before the stream starts, so a refusal is the operation's one result with its
    // error, as for the job-log subscriptions (inside the generator it was a protocol error).
    subscribe: async (_root, args, context) => {
      await context.builds.mayFollowJob(context.actor, args.id)
      return (async function* () {
        for await (const _change of context.changes.watch(jobStreamId(args.id))) {
          const status = await context.builds.jobStatus(args.id)
          yield args.id
          if (isFinished(status)) return
        }
      })()
    },
    resolve: (query, _jobId, args, context) => context.prisma.job.findUniqueOrThrow({ ...query, where: { id: args.id } }),
  }),
  jobLog: t.field({
    type: JobLogLineType,
    description:
      "A job's log: the stored lines after position `after` (0: from the start), then each new line as it is written, " +
      'in order, none twice; ends after the last line of a finished job. To resume, pass the last position you saw.',
    authScopes: { token: true },
    args: { jobId: t.arg.int(), after: t.arg.int({ defaultValue: 0 }) },
    subscribe: async (_root, args, context) => {
      await context.builds.mayFollowJob(context.actor, args.jobId)
      return eachLine(context.jobLogs.follow(args.jobId, Math.max(args.after, 0)))
    },
    resolve: (line) => line,
  }),
  jobLogLines: t.field({
    type: [JobLogLineType],
    description:
      'The same log as `jobLog`, a batch of lines per message: the stored lines after `after` first, then the new lines as each ' +
      'write brings them. Fewer messages for many watchers and long logs; ends after the last line of a finished job.',
    authScopes: { token: true },
    args: { jobId: t.arg.int(), after: t.arg.int({ defaultValue: 0 }) },
    // The hub's iterator as it is: a long stored log comes in pages of at most `logPage` lines, as
    // the `log` field reads it, and a batch that fits is the same array for every follower in step
    // (see sharedEvents), with no generator between them.
    subscribe: async (_root, args, context) => {
      await context.builds.mayFollowJob(context.actor, args.jobId)
      return context.jobLogs.follow(args.jobId, Math.max(args.after, 0), logPage)
    },
    resolve: (lines) => lines,
  }),
}))
