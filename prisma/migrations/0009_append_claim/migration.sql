-- The event store's version claim as one statement that fails on its own: an append sends its
-- claims, events, read-model writes and notifications to the server as one script, and a stream
-- that moved on must abort that script. SQLSTATE FD409 is flatdepot's "stream moved on".
CREATE FUNCTION flatdepot_claim_stream(p_stream text, p_type text, p_expected integer, p_next integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF p_expected = 0 THEN
    INSERT INTO streams (id, type, version) VALUES (p_stream, p_type, p_next) ON CONFLICT (id) DO NOTHING;
  ELSE
    UPDATE streams SET version = p_next WHERE id = p_stream AND version = p_expected;
  END IF;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'stream % is no longer at version %', p_stream, p_expected
      USING ERRCODE = 'FD409', DETAIL = p_stream, HINT = p_expected::text;
  END IF;
END
$$;
