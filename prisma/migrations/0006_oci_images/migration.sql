-- CreateTable
CREATE TABLE "oci_images" (
    "id" SERIAL NOT NULL,
    "repo_name" TEXT NOT NULL,
    "repository" TEXT NOT NULL,
    "ref" TEXT NOT NULL,
    "commit" TEXT NOT NULL,
    "digest" TEXT NOT NULL,
    "media_type" TEXT NOT NULL,
    "os" TEXT NOT NULL,
    "architecture" TEXT NOT NULL,
    "tags" TEXT[],
    "labels" JSONB NOT NULL,
    "annotations" JSONB NOT NULL,
    "size" BIGINT NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL,

    CONSTRAINT "oci_images_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "oci_images_repo_name_idx" ON "oci_images"("repo_name");

-- CreateIndex
CREATE UNIQUE INDEX "oci_images_repository_digest_key" ON "oci_images"("repository", "digest");
