-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "log_lines" INTEGER;
