-- Bookings, the hosts' time they hold, their history, and stored idempotent answers.
--
-- The no-double-booking guarantee lives in `booking_hosts`: one row per booking and host with
-- the booking's block (buffers included). SQLite has no exclusion constraints: the store checks
-- for an overlap and inserts inside one BEGIN IMMEDIATE transaction (one writer at a time).

CREATE TABLE bookings (
    id                TEXT PRIMARY KEY,
    organization_id   TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    human_id          TEXT NOT NULL,
    event_type_id     TEXT NOT NULL REFERENCES event_types (id),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
    version           INTEGER NOT NULL,
    start_us          INTEGER NOT NULL,
    end_us            INTEGER NOT NULL,
    seat_group        TEXT NOT NULL,
    attendees         TEXT NOT NULL,
    answers           TEXT NOT NULL,
    metadata          TEXT NOT NULL,
    token_generation  INTEGER NOT NULL DEFAULT 0,
    created_us        INTEGER NOT NULL,
    updated_us        INTEGER NOT NULL,
    CHECK (start_us < end_us)
);
CREATE UNIQUE INDEX bookings_org_human_id ON bookings (organization_id, human_id);
CREATE INDEX bookings_org_start ON bookings (organization_id, start_us);
CREATE INDEX bookings_seat_group ON bookings (seat_group);

CREATE TABLE booking_hosts (
    booking_id       TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    organization_id  TEXT NOT NULL,
    host_id          TEXT NOT NULL REFERENCES hosts (id),
    event_type_id    TEXT NOT NULL,
    seat_group       TEXT NOT NULL,
    start_us         INTEGER NOT NULL,
    block_start_us   INTEGER NOT NULL,
    block_end_us     INTEGER NOT NULL,
    blocking         INTEGER NOT NULL CHECK (blocking IN (0, 1)),
    PRIMARY KEY (booking_id, host_id),
    CHECK (block_start_us < block_end_us),
    -- The longest block an event type allows (1,440-minute meeting, 43,200-minute buffers): the
    -- store's busy-time and overlap queries rely on it to bound their index scans.
    CHECK (block_end_us - block_start_us <= 5270400000000)
);
-- Busy time of a host in a window: block starts are bounded below by the longest possible block.
CREATE INDEX booking_hosts_host_block ON booking_hosts (host_id, block_start_us) WHERE blocking;

-- Seated slots: one row per seat group, locked while a seat is taken so capacity is counted
-- by one transaction at a time.
CREATE TABLE seat_slots (
    seat_group  TEXT PRIMARY KEY
);

CREATE TABLE booking_history (
    id                 TEXT PRIMARY KEY,
    booking_id         TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    at_us              INTEGER NOT NULL,
    action             TEXT NOT NULL,
    actor              TEXT NOT NULL,
    reason             TEXT,
    previous_start_us  INTEGER,
    previous_end_us    INTEGER
);
CREATE INDEX booking_history_booking ON booking_history (booking_id, id);

-- Answers of requests sent with an Idempotency-Key, stored in the same transaction as the
-- change, so a retry (from any process) gets the first answer instead of a second booking.
CREATE TABLE idempotency_keys (
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key              TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    status_code      INTEGER NOT NULL,
    response         TEXT NOT NULL,
    created_us       INTEGER NOT NULL,
    PRIMARY KEY (organization_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_us);
