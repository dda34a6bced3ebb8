-- Claims hold an attempt with a lease of its own instead of moving due_us (see the PostgreSQL
-- migration of the same name): an attempt is claimable when it is pending, due and not leased.
ALTER TABLE webhook_attempts ADD COLUMN lease_until_us BIGINT NOT NULL DEFAULT 0;
