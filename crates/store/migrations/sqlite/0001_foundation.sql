-- Foundation: tenants, API keys, hosts, busy blocks, event types and the event outbox.
-- Conventions shared with the SQLite schema so one SQL string serves both backends:
-- ids are UUID text, instants are INTEGER microseconds since the Unix epoch (`*_us`),
-- JSON documents are TEXT written and read by the application.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    plan        TEXT NOT NULL CHECK (plan IN ('free', 'starter', 'growth')),
    created_us  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key_hash         TEXT NOT NULL UNIQUE,
    key_prefix       TEXT NOT NULL,
    created_us       INTEGER NOT NULL,
    revoked_us       INTEGER
);

CREATE TABLE hosts (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    email            TEXT NOT NULL,
    time_zone        TEXT NOT NULL,
    availability     TEXT NOT NULL,
    created_us       INTEGER NOT NULL,
    updated_us       INTEGER NOT NULL,
    deleted_us       INTEGER
);
CREATE INDEX hosts_org_id ON hosts (organization_id, id);

CREATE TABLE busy_blocks (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    host_id          TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    start_us         INTEGER NOT NULL,
    end_us           INTEGER NOT NULL,
    title            TEXT,
    created_us       INTEGER NOT NULL,
    CHECK (start_us < end_us)
);
-- Slot queries look forward in time: bounding by end keeps past blocks out of the scan.
CREATE INDEX busy_blocks_host_end ON busy_blocks (host_id, end_us);

CREATE TABLE event_types (
    id                          TEXT PRIMARY KEY,
    organization_id             TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    slug                        TEXT NOT NULL,
    title                       TEXT NOT NULL,
    description                 TEXT,
    settings                    TEXT NOT NULL,
    created_us                  INTEGER NOT NULL,
    updated_us                  INTEGER NOT NULL,
    deleted_us                  INTEGER
);
CREATE UNIQUE INDEX event_types_org_slug ON event_types (organization_id, slug) WHERE deleted_us IS NULL;
CREATE INDEX event_types_org_id ON event_types (organization_id, id);

CREATE TABLE event_type_hosts (
    event_type_id  TEXT NOT NULL REFERENCES event_types (id) ON DELETE CASCADE,
    host_id        TEXT NOT NULL REFERENCES hosts (id),
    position       INTEGER NOT NULL,
    PRIMARY KEY (event_type_id, host_id)
);
CREATE INDEX event_type_hosts_host ON event_type_hosts (host_id);

-- The transactional outbox: written in the same transaction as the change it describes.
CREATE TABLE events (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    type             TEXT NOT NULL,
    data             TEXT NOT NULL,
    created_us       INTEGER NOT NULL
);
CREATE INDEX events_org_id ON events (organization_id, id);
