import type { PrismaClient } from '../generated/prisma/client.ts'

/** A build id taken outside a unit of work, for a job that makes the build's files before it records the build (ids may have gaps). */
export async function nextBuildId(prisma: PrismaClient): Promise<number> {
  const rows = await prisma.$queryRawUnsafe<{ id: bigint }[]>(`SELECT nextval('build_ids') AS id`)
  return Number(rows[0]?.id)
}
