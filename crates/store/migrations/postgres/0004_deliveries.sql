-- Webhook delivery attempts: the delivery queue and the attempt log in one table.
--
-- Each row is one HTTP attempt of one event to one endpoint. A row is written 'pending' (in
-- the event's own transaction for the first attempt, so no event is ever without its
-- deliveries), claimed by a worker, which moves due_us one lease ahead and bumps claims (so a
-- crashed worker's rows become due again, and a late answer from a lost lease is ignored),
-- and finished as 'succeeded' or 'failed'. A failure that has retries left writes the next
-- attempt as a new pending row.
ALTER TABLE webhook_endpoints ADD COLUMN failing_since_us BIGINT;
ALTER TABLE webhook_endpoints ADD COLUMN disabled_reason TEXT;

CREATE TABLE webhook_attempts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- 1, 2, 3, … over every attempt of this event to this endpoint.
    attempt          BIGINT NOT NULL,
    -- Position in the current retry run (manual retries and replays start a new run).
    run_attempt      BIGINT NOT NULL,
    -- Why the attempt exists: event, retry, manual, replay or test.
    origin           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    due_us           BIGINT NOT NULL,
    claims           BIGINT NOT NULL DEFAULT 0,
    response_status  BIGINT,
    response_body    TEXT,
    duration_ms      BIGINT,
    error            TEXT,
    created_us       BIGINT NOT NULL,
    finished_us      BIGINT
);
CREATE INDEX webhook_attempts_due ON webhook_attempts (due_us) WHERE status = 'pending';
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
CREATE INDEX webhook_attempts_event ON webhook_attempts (event_id, endpoint_id);
-- At most one attempt of an event to an endpoint is waiting at any time.
CREATE UNIQUE INDEX webhook_attempts_one_pending ON webhook_attempts (endpoint_id, event_id) WHERE status = 'pending';
