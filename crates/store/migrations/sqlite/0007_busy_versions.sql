-- A counter per host, bumped in the same transaction as every change to its busy blocks, so a
-- slotd process can keep a host's busy blocks in memory and know, from one cheap read per
-- request, whether they are still what the database holds (see Store::busy_time).
ALTER TABLE hosts ADD COLUMN busy_version BIGINT NOT NULL DEFAULT 0;
