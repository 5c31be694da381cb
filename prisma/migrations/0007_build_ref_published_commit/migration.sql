-- AlterTable
ALTER TABLE "build_refs" ADD COLUMN     "published_commit" TEXT;
