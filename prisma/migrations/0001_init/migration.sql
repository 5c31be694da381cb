-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateTable
CREATE TABLE "streams" (
    "id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "version" INTEGER NOT NULL,

    CONSTRAINT "streams_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "events" (
    "global_position" BIGSERIAL NOT NULL,
    "stream_id" TEXT NOT NULL,
    "stream_position" INTEGER NOT NULL,
    "type" TEXT NOT NULL,
    "data" JSONB NOT NULL,
    "metadata" JSONB NOT NULL,
    "transaction_id" xid8 NOT NULL DEFAULT pg_current_xact_id(),
    "recorded_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "events_pkey" PRIMARY KEY ("global_position")
);

-- CreateTable
CREATE TABLE "projection_checkpoints" (
    "name" TEXT NOT NULL,
    "transaction_id" TEXT NOT NULL,
    "position" BIGINT NOT NULL,

    CONSTRAINT "projection_checkpoints_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "repos" (
    "name" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "title" TEXT,
    "collection_id" TEXT,
    "default_branch" TEXT,
    "base_url" TEXT,
    "gpg_key" TEXT,
    "configured_at" TIMESTAMPTZ(6) NOT NULL,

    CONSTRAINT "repos_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "builds" (
    "id" INTEGER NOT NULL,
    "repo_name" TEXT NOT NULL,
    "app_id" TEXT,
    "public_download" BOOLEAN NOT NULL,
    "build_log_url" TEXT,
    "repo_state" TEXT NOT NULL,
    "repo_state_reason" TEXT,
    "published_state" TEXT NOT NULL,
    "published_state_reason" TEXT,
    "extra_ids" TEXT[],
    "token_name" TEXT,
    "token_type" TEXT,
    "commit_job_id" INTEGER,
    "publish_job_id" INTEGER,
    "uploaded_objects" INTEGER NOT NULL DEFAULT 0,
    "uploaded_bytes" BIGINT NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(6) NOT NULL,
    "updated_at" TIMESTAMPTZ(6) NOT NULL,

    CONSTRAINT "builds_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "build_refs" (
    "id" INTEGER NOT NULL,
    "build_id" INTEGER NOT NULL,
    "ref_name" TEXT NOT NULL,
    "commit" TEXT NOT NULL,
    "build_log_url" TEXT,
    "created_at" TIMESTAMPTZ(6) NOT NULL,

    CONSTRAINT "build_refs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "checks" (
    "build_id" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "job_id" INTEGER NOT NULL,
    "status" TEXT NOT NULL,
    "status_reason" TEXT,
    "results" TEXT,
    "updated_at" TIMESTAMPTZ(6) NOT NULL,

    CONSTRAINT "checks_pkey" PRIMARY KEY ("build_id","name")
);

-- CreateTable
CREATE TABLE "jobs" (
    "id" INTEGER NOT NULL,
    "kind" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "repo_name" TEXT,
    "build_id" INTEGER,
    "contents" JSONB NOT NULL,
    "results" JSONB,
    "error" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "start_after" TIMESTAMPTZ(6),
    "created_at" TIMESTAMPTZ(6) NOT NULL,
    "started_at" TIMESTAMPTZ(6),
    "finished_at" TIMESTAMPTZ(6),

    CONSTRAINT "jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "tokens" (
    "jti" TEXT NOT NULL,
    "name" TEXT,
    "sub" TEXT,
    "scope" TEXT[],
    "repos" TEXT[],
    "prefixes" TEXT[],
    "apps" TEXT[],
    "expires_at" TIMESTAMPTZ(6),
    "issued_at" TIMESTAMPTZ(6),
    "revoked_at" TIMESTAMPTZ(6),

    CONSTRAINT "tokens_pkey" PRIMARY KEY ("jti")
);

-- CreateTable
CREATE TABLE "job_queue" (
    "job_id" INTEGER NOT NULL,
    "queue" TEXT NOT NULL,
    "run_after" TIMESTAMPTZ(6) NOT NULL,
    "locked_by" TEXT,
    "locked_until" TIMESTAMPTZ(6),
    "attempts" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "job_queue_pkey" PRIMARY KEY ("job_id")
);

-- CreateTable
CREATE TABLE "job_log_lines" (
    "job_id" INTEGER NOT NULL,
    "position" INTEGER NOT NULL,
    "stream" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "job_log_lines_pkey" PRIMARY KEY ("job_id","position")
);

-- CreateTable
CREATE TABLE "token_usage" (
    "jti" TEXT NOT NULL,
    "first_used" TIMESTAMPTZ(6) NOT NULL,
    "last_used" TIMESTAMPTZ(6) NOT NULL,

    CONSTRAINT "token_usage_pkey" PRIMARY KEY ("jti")
);

-- CreateIndex
CREATE INDEX "events_transaction_id_global_position_idx" ON "events"("transaction_id", "global_position");

-- CreateIndex
CREATE UNIQUE INDEX "events_stream_id_stream_position_key" ON "events"("stream_id", "stream_position");

-- CreateIndex
CREATE INDEX "builds_repo_name_app_id_idx" ON "builds"("repo_name", "app_id");

-- CreateIndex
CREATE INDEX "builds_repo_state_idx" ON "builds"("repo_state");

-- CreateIndex
CREATE UNIQUE INDEX "build_refs_build_id_ref_name_key" ON "build_refs"("build_id", "ref_name");

-- CreateIndex
CREATE INDEX "jobs_build_id_idx" ON "jobs"("build_id");

-- CreateIndex
CREATE INDEX "jobs_status_idx" ON "jobs"("status");

-- CreateIndex
CREATE INDEX "job_queue_queue_run_after_idx" ON "job_queue"("queue", "run_after");

-- AddForeignKey
ALTER TABLE "builds" ADD CONSTRAINT "builds_repo_name_fkey" FOREIGN KEY ("repo_name") REFERENCES "repos"("name") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "build_refs" ADD CONSTRAINT "build_refs_build_id_fkey" FOREIGN KEY ("build_id") REFERENCES "builds"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "checks" ADD CONSTRAINT "checks_build_id_fkey" FOREIGN KEY ("build_id") REFERENCES "builds"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Identifiers handed to commands (the domain generates none). Sequences never roll back, so a
-- retried command may leave a gap; ids stay unique across engines and processes.
CREATE SEQUENCE "build_ids";
CREATE SEQUENCE "job_ids";
CREATE SEQUENCE "build_ref_ids";
