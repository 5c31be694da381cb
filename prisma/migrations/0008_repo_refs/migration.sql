-- AlterTable
ALTER TABLE "repos" ADD COLUMN     "deltas_failed" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN     "deltas_generated_at" TIMESTAMPTZ(6),
ADD COLUMN     "refs_changed_at" TIMESTAMPTZ(6),
ADD COLUMN     "summary_updated_at" TIMESTAMPTZ(6);

-- CreateTable
CREATE TABLE "repo_refs" (
    "repo_name" TEXT NOT NULL,
    "ref" TEXT NOT NULL,
    "commit" TEXT NOT NULL,
    "source" TEXT NOT NULL,
    "build_id" INTEGER,
    "updated_at" TIMESTAMPTZ(6) NOT NULL,

    CONSTRAINT "repo_refs_pkey" PRIMARY KEY ("repo_name","ref")
);

-- AddForeignKey
ALTER TABLE "repo_refs" ADD CONSTRAINT "repo_refs_repo_name_fkey" FOREIGN KEY ("repo_name") REFERENCES "repos"("name") ON DELETE RESTRICT ON UPDATE CASCADE;
