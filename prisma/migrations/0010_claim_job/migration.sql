-- The job claim as one call: a worker slot woken by a NOTIFY claims its job in one round trip
-- instead of four (BEGIN and the candidates, the queue's advisory lock, the lease, COMMIT).
-- Called in a transaction of its own. Every statement in it takes a fresh snapshot (a VOLATILE
-- function under READ COMMITTED), so the lease's "nothing else of this queue is leased" check runs
-- after the queue's advisory lock is held and sees every lease committed before it, as the
-- statements did when they were sent one by one.
CREATE FUNCTION flatdepot_claim_job(p_worker text, p_lease_secs double precision, p_host text, p_compute_slots integer, p_compute_kinds text[])
RETURNS TABLE (job_id integer, attempts integer, kind text, repo_name text, build_id integer, contents jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  candidate record;
  compute_checked boolean := false;
  compute_full boolean := false;
  held integer;
BEGIN
  -- The first runnable job of every queue that has none leased: a queue with fifty jobs waiting
  -- behind a running one does not hide another queue's job from an idle worker.
  FOR candidate IN
    WITH heads AS (
      SELECT DISTINCT ON (waiting.queue) waiting.job_id FROM job_queue waiting
      WHERE waiting.run_after <= now() AND (waiting.locked_until IS NULL OR waiting.locked_until < now())
        AND NOT EXISTS (SELECT 1 FROM job_queue leased WHERE leased.queue = waiting.queue AND leased.locked_until >= now())
      ORDER BY waiting.queue, waiting.priority, waiting.job_id)
    SELECT q.job_id, q.queue, (SELECT j.kind FROM jobs j WHERE j.id = q.job_id) AS kind FROM job_queue q
    WHERE q.job_id IN (SELECT heads.job_id FROM heads)
    ORDER BY q.priority, q.job_id
    LIMIT 20
    FOR UPDATE OF q SKIP LOCKED
  LOOP
    -- Compute admission: the host's claims of compute jobs take turns (a transaction-scoped lock
    -- per host) and count what the host's workers hold now; expired leases do not count.
    IF p_compute_slots IS NOT NULL AND candidate.kind = ANY (p_compute_kinds) THEN
      IF NOT compute_checked THEN
        PERFORM pg_advisory_xact_lock(hashtext('flatdepot-compute:' || p_host));
        SELECT count(*)::integer INTO held FROM job_queue hq JOIN jobs hj ON hj.id = hq.job_id
        WHERE hq.locked_until >= now() AND split_part(hq.locked_by, ':', 1) = p_host AND hj.kind = ANY (p_compute_kinds);
        compute_full := held >= p_compute_slots;
        compute_checked := true;
      END IF;
      CONTINUE WHEN compute_full;
    END IF;
    CONTINUE WHEN NOT pg_try_advisory_xact_lock(hashtext('flatdepot-queue:' || candidate.queue));
    -- Checked again on the row as it is now: another slot may have claimed it since the
    -- candidates were read.
    RETURN QUERY
      WITH claimed AS (
        UPDATE job_queue SET locked_by = p_worker,
          locked_until = now() + make_interval(secs => p_lease_secs),
          attempts = job_queue.attempts + 1, debounce_key = NULL
        WHERE job_queue.job_id = candidate.job_id
          AND (job_queue.locked_until IS NULL OR job_queue.locked_until < now())
          AND NOT EXISTS (
            SELECT 1 FROM job_queue other
            WHERE other.queue = job_queue.queue AND other.job_id <> job_queue.job_id AND other.locked_until >= now())
        RETURNING job_queue.job_id, job_queue.attempts)
      SELECT claimed.job_id, claimed.attempts, jobs.kind, jobs.repo_name, jobs.build_id, jobs.contents
      FROM claimed JOIN jobs ON jobs.id = claimed.job_id;
    IF FOUND THEN
      RETURN;
    END IF;
  END LOOP;
END
$$;
