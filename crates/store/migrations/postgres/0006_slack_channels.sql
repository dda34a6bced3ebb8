-- Slack channels are a second kind of delivery sink in the same table (one outbox, sinks by
-- kind): a row of kind 'slack' keeps its incoming-webhook URL sealed in secret_sealed, and in
-- url a digest of it ('slack:' + hex SHA-256) that keeps the per-organization uniqueness without
-- revealing it. time_zone is the zone its messages state times in (NULL: each booking's first
-- host's zone).
ALTER TABLE webhook_endpoints ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook' CHECK (kind IN ('webhook', 'slack'));
ALTER TABLE webhook_endpoints ADD COLUMN time_zone TEXT;
