-- AlterTable
ALTER TABLE "job_queue" ADD COLUMN     "debounce_key" TEXT;

-- CreateIndex
CREATE UNIQUE INDEX "job_queue_debounce_key_key" ON "job_queue"("debounce_key");
