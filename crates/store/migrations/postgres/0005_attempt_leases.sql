-- Claims hold an attempt with a lease of its own instead of moving due_us.
--
-- A claim now writes only lease_until_us and claims, neither of them indexed, so PostgreSQL can
-- make it a heap-only (HOT) update: no new entry in any of the table's five indexes. An attempt
-- is claimable when it is pending, due (due_us <= now) and not leased (lease_until_us <= now);
-- a crashed worker's attempts become claimable again when their lease ends, at their original
-- place in the due order. Rows claimed before this migration carry the old lease in due_us and
-- are claimable when it ends, as before.
--
-- fillfactor 70 leaves room in each page for those same-page updates.
ALTER TABLE webhook_attempts ADD COLUMN lease_until_us BIGINT NOT NULL DEFAULT 0;
ALTER TABLE webhook_attempts SET (fillfactor = 70);

-- Each endpoint's pending attempts in due order: a claim reads each endpoint's queue on its own
-- (as far as the worker has room for that endpoint), instead of one queue of every endpoint in
-- due order, where a dead endpoint's backlog stood in line ahead of everyone else.
DROP INDEX webhook_attempts_due;
CREATE INDEX webhook_attempts_queue ON webhook_attempts (endpoint_id, due_us) WHERE status = 'pending';
