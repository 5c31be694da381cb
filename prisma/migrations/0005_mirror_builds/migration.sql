-- AlterTable
ALTER TABLE "builds" ADD COLUMN     "mirror_upstream" TEXT;
