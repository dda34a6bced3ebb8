-- Calendar connections: where a host's busy time is read from (CalDAV, an ICS feed, Google
-- Calendar) and, with write_back, where slotd writes the host's bookings as events.
--
-- Everything that is a credential (passwords, OAuth tokens and client secrets, and an ICS feed's
-- URL, which is often a secret address) is in credentials_sealed, encrypted by the server; the
-- store never sees it in clear. url is what may be shown: a CalDAV calendar's URL, an ICS feed's
-- masked URL, '' for Google. status/last_synced_us/last_error are the last read's outcome.
--
-- A write-back connection also has a delivery sink row of kind 'calendar' with the same id in
-- webhook_endpoints, so its writes go through the one outbox (claims, retries, attempt log).
-- Changing a host's connections bumps the host's busy_version, like its busy blocks.
CREATE TABLE calendar_connections (
    id                  TEXT PRIMARY KEY,
    organization_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    host_id             TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    kind                TEXT NOT NULL CHECK (kind IN ('caldav', 'ics', 'google')),
    url                 TEXT NOT NULL,
    calendar_ids        TEXT NOT NULL,
    credentials_sealed  TEXT NOT NULL,
    write_back          BOOLEAN NOT NULL,
    on_error            TEXT NOT NULL CHECK (on_error IN ('fail', 'ignore')),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'error')),
    last_synced_us      BIGINT,
    last_error          TEXT,
    -- When the read that set status finished: a status write with an older read is dropped.
    checked_us          BIGINT,
    created_us          BIGINT NOT NULL,
    updated_us          BIGINT NOT NULL
);
CREATE INDEX calendar_connections_host ON calendar_connections (organization_id, host_id, id);

-- SQLite cannot change a CHECK constraint in place: the kind column is replaced by one with the
-- wider check (a column's own CHECK does not stop it being dropped; no index uses it).
ALTER TABLE webhook_endpoints ADD COLUMN sink_kind TEXT NOT NULL DEFAULT 'webhook'
    CHECK (sink_kind IN ('webhook', 'slack', 'calendar'));
UPDATE webhook_endpoints SET sink_kind = kind;
ALTER TABLE webhook_endpoints DROP COLUMN kind;
ALTER TABLE webhook_endpoints RENAME COLUMN sink_kind TO kind;
