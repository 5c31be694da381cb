-- DropIndex
DROP INDEX "job_queue_queue_run_after_idx";

-- AlterTable
ALTER TABLE "job_queue" ADD COLUMN     "priority" INTEGER NOT NULL DEFAULT 1;

-- CreateIndex
CREATE INDEX "job_queue_priority_job_id_idx" ON "job_queue"("priority", "job_id");

-- CreateIndex
CREATE INDEX "job_queue_queue_idx" ON "job_queue"("queue");
