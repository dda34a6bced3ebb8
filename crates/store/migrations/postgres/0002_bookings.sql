-- Bookings, the hosts' time they hold, their history, and stored idempotent answers.
--
-- The no-double-booking guarantee lives in `booking_hosts`: one row per booking and host with
-- the booking's block (buffers included). The exclusion constraint forbids two blocking rows of
-- one host whose blocks overlap, unless they share a seat group (the bookings of one seated
-- slot: same event type, same start). Any number of slotd processes may race; PostgreSQL lets
-- exactly one of two overlapping blocks commit and answers the other with SQLSTATE 23P01.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE bookings (
    id                TEXT PRIMARY KEY,
    organization_id   TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    human_id          TEXT NOT NULL,
    event_type_id     TEXT NOT NULL REFERENCES event_types (id),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
    version           BIGINT NOT NULL,
    start_us          BIGINT NOT NULL,
    end_us            BIGINT NOT NULL,
    seat_group        TEXT NOT NULL,
    attendees         TEXT NOT NULL,
    answers           TEXT NOT NULL,
    metadata          TEXT NOT NULL,
    token_generation  BIGINT NOT NULL DEFAULT 0,
    created_us        BIGINT NOT NULL,
    updated_us        BIGINT NOT NULL,
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
    start_us         BIGINT NOT NULL,
    block_start_us   BIGINT NOT NULL,
    block_end_us     BIGINT NOT NULL,
    blocking         BOOLEAN NOT NULL,
    PRIMARY KEY (booking_id, host_id),
    CHECK (block_start_us < block_end_us),
    -- The longest block an event type allows (1,440-minute meeting, 43,200-minute buffers): the
    -- store's busy-time and overlap queries rely on it to bound their index scans.
    CHECK (block_end_us - block_start_us <= 5270400000000),
    -- to_timestamp(float8) is immutable; for instants before about 2100 the float round trip
    -- is within half a microsecond, so the range equals the stored integers exactly. Bookings
    -- lie within the booking window (at most 3,650 days ahead), far inside that.
    CONSTRAINT booking_hosts_no_overlap EXCLUDE USING gist (
        host_id WITH =,
        tstzrange(to_timestamp(block_start_us::float8 / 1000000), to_timestamp(block_end_us::float8 / 1000000), '[)') WITH &&,
        seat_group WITH <>
    ) WHERE (blocking)
);
-- Busy time of a host in a window is read through the constraint's GiST index (same expression).

-- Seated slots: one row per seat group, locked while a seat is taken so capacity is counted
-- by one transaction at a time.
CREATE TABLE seat_slots (
    seat_group  TEXT PRIMARY KEY
);

CREATE TABLE booking_history (
    id                 TEXT PRIMARY KEY,
    booking_id         TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    at_us              BIGINT NOT NULL,
    action             TEXT NOT NULL,
    actor              TEXT NOT NULL,
    reason             TEXT,
    previous_start_us  BIGINT,
    previous_end_us    BIGINT
);
CREATE INDEX booking_history_booking ON booking_history (booking_id, id);

-- Answers of requests sent with an Idempotency-Key, stored in the same transaction as the
-- change, so a retry (from any process) gets the first answer instead of a second booking.
CREATE TABLE idempotency_keys (
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key              TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    status_code      BIGINT NOT NULL,
    response         TEXT NOT NULL,
    created_us       BIGINT NOT NULL,
    PRIMARY KEY (organization_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_us);
