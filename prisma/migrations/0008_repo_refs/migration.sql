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

-- Backfill from the event log, as the repo_refs projection would have left it (it keeps the table
-- from now on; `flatdepot rebuild-read-models` gives the same result): the latest event per ref
-- wins, a delete removes it.
WITH ref_events AS (
    SELECT e.global_position AS pos, (e.metadata->>'at')::timestamptz AS at, b.repo_name, x.key AS ref, x.value AS commit, 'publish' AS source, b.id AS build_id
      FROM events e JOIN builds b ON b.id = (e.data->>'buildId')::int, jsonb_each_text(e.data->'refs') x
     WHERE e.type = 'BuildPublished'
    UNION ALL
    SELECT e.global_position, (e.metadata->>'at')::timestamptz, e.data->>'name', x.key, x.value, 'republish', NULL
      FROM events e, jsonb_each_text(e.data->'refs') x
     WHERE e.type = 'RepoAppRepublished'
    UNION ALL
    SELECT e.global_position, (e.metadata->>'at')::timestamptz, e.data->>'name', e.data->>'ref', e.data->>'commit', 'rollback', NULL
      FROM events e
     WHERE e.type = 'RepoRolledBack'
    UNION ALL
    SELECT e.global_position, (e.metadata->>'at')::timestamptz, e.data->>'name', x.key, x.value, 'mirror', NULL
      FROM events e, jsonb_each_text(e.data->'refs') x
     WHERE e.type = 'RepoRefsMirrored'
    UNION ALL
    SELECT e.global_position, (e.metadata->>'at')::timestamptz, e.data->>'name', x.ref, NULL, 'delete', NULL
      FROM events e, jsonb_array_elements_text(e.data->'refs') AS x(ref)
     WHERE e.type = 'RepoRefsDeleted'
), latest AS (
    SELECT DISTINCT ON (repo_name, ref) * FROM ref_events ORDER BY repo_name, ref, pos DESC
), inserted AS (
    INSERT INTO "repo_refs" ("repo_name", "ref", "commit", "source", "build_id", "updated_at")
    SELECT repo_name, ref, commit, source, build_id, at FROM latest
     WHERE source <> 'delete' AND repo_name IN (SELECT name FROM "repos")
)
UPDATE "repos" r SET "refs_changed_at" = c.at
  FROM (SELECT repo_name, max(at) AS at FROM ref_events GROUP BY repo_name) c
 WHERE c.repo_name = r.name;

UPDATE "repos" r SET "summary_updated_at" = s.at
  FROM (SELECT e.data->>'name' AS name, max((e.metadata->>'at')::timestamptz) AS at FROM events e WHERE e.type = 'RepoSummaryUpdated' GROUP BY 1) s
 WHERE s.name = r.name;

UPDATE "repos" r SET "deltas_generated_at" = d.at, "deltas_failed" = d.failed
  FROM (SELECT DISTINCT ON (e.data->>'name') e.data->>'name' AS name, (e.metadata->>'at')::timestamptz AS at,
               ARRAY(SELECT jsonb_array_elements_text(e.data->'failed')) AS failed
          FROM events e WHERE e.type = 'RepoDeltasGenerated' ORDER BY e.data->>'name', e.global_position DESC) d
 WHERE d.name = r.name;
