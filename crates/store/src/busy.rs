//! Busy time as the slot engine needs it: manual busy blocks and blocking bookings' blocks of a
//! set of hosts over a range, through one per-process cache of the busy blocks.
//!
//! Busy blocks are the bulk of a host's busy time (thousands of rows for a busy calendar) and
//! change rarely, so each process keeps every host's blocks it has read, with the host's
//! `busy_version` at the time. That counter is bumped in the same transaction as every change to
//! the host's blocks (`hosts.rs`), so the version read at the start of a request says whether the
//! copy is still what the database holds, whichever process made the change: a request reads the
//! versions and the bookings' blocks in one round trip, and the blocks again only for hosts whose
//! version moved (or whose copy does not cover the range). Bookings' blocks are always read live:
//! they are few, and they change with every booking.
//!
//! A copy is stored under the version read *before* the blocks were read: a change committed
//! between the two reads makes the copy newer than its version says, never older, so at worst
//! the next request reads the blocks again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::SignedDuration;
use slotd_core::interval::Interval;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use crate::bookings::HeldBlock;
use crate::calendars::CalendarConnection;
use crate::hosts::placeholders;
use crate::{Backend, OrgId, Result, Store, StoreError, from_us, parse_id, to_us};

/// How far before a range a cache fill reads, so that ranges sliding forward with the clock
/// (every "next 14 days" request starts a little later) stay covered.
const FILL_BEFORE: SignedDuration = SignedDuration::from_hours(24);
/// How far past a range a cache fill reads.
const FILL_AFTER: SignedDuration = SignedDuration::from_hours(24 * 14);
/// Hosts whose blocks one process keeps; past it the cache starts afresh.
const MAX_CACHED_HOSTS: usize = 10_000;
/// Blocks one process keeps in all (about 32 bytes each); past it the cache starts afresh.
const MAX_CACHED_BLOCKS: usize = 2_000_000;

/// One host's busy blocks over `covered`, as they were at `version`.
struct CachedBlocks {
    org: OrgId,
    version: i64,
    covered: Interval,
    blocks: Vec<Interval>,
}

/// The per-process copy of hosts' busy blocks (shared by a store's clones).
#[derive(Default)]
pub(crate) struct BusyCache {
    hosts: Mutex<CachedHosts>,
}

#[derive(Default)]
struct CachedHosts {
    by_host: HashMap<Uuid, Arc<CachedBlocks>>,
    /// Blocks held in all.
    blocks: usize,
    /// Each host's calendar connections, as they were at a version.
    calendars: HashMap<Uuid, CachedCalendars>,
}

/// One host's calendar connections as they were at `version`.
struct CachedCalendars {
    org: OrgId,
    version: i64,
    connections: Arc<Vec<CalendarConnection>>,
}

/// Everything that makes a set of hosts busy over a range, as the store knows it.
#[derive(Clone, Debug, Default)]
pub struct BusyTime {
    /// Manual busy blocks `(host, interval)`.
    pub blocks: Vec<(Uuid, Interval)>,
    /// Blocking bookings' blocks.
    pub held: Vec<HeldBlock>,
    /// The hosts' calendar connections, whose busy time the caller reads (the store never
    /// talks to a calendar).
    pub calendars: Vec<CalendarConnection>,
}

impl std::fmt::Debug for BusyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts = self.hosts.lock().map(|h| h.by_host.len()).unwrap_or(0);
        f.debug_struct("BusyCache").field("hosts", &hosts).finish()
    }
}

impl BusyCache {
    /// The copies of `host`'s blocks (covering `range`) and calendar connections that are still
    /// current at `version`, under one lock.
    fn lookup(
        &self,
        org: OrgId,
        host: Uuid,
        version: i64,
        range: Interval,
    ) -> (Option<Arc<CachedBlocks>>, Option<Arc<Vec<CalendarConnection>>>) {
        let hosts = self.hosts.lock().expect("busy cache");
        let blocks = hosts.by_host.get(&host).filter(|c| {
            c.org == org && c.version == version && c.covered.start <= range.start && c.covered.end >= range.end
        });
        let calendars = hosts.calendars.get(&host).filter(|c| c.org == org && c.version == version);
        (blocks.cloned(), calendars.map(|c| c.connections.clone()))
    }

    fn put_calendars(&self, host: Uuid, calendars: CachedCalendars) {
        let mut hosts = self.hosts.lock().expect("busy cache");
        if hosts.calendars.len() >= MAX_CACHED_HOSTS {
            hosts.calendars.clear();
        }
        hosts.calendars.insert(host, calendars);
    }

    fn put(&self, host: Uuid, blocks: CachedBlocks) {
        let mut hosts = self.hosts.lock().expect("busy cache");
        if let Some(old) = hosts.by_host.remove(&host) {
            hosts.blocks -= old.blocks.len();
        }
        if hosts.by_host.len() >= MAX_CACHED_HOSTS || hosts.blocks + blocks.blocks.len() > MAX_CACHED_BLOCKS {
            *hosts = CachedHosts::default();
        }
        hosts.blocks += blocks.blocks.len();
        hosts.by_host.insert(host, Arc::new(blocks));
    }
}

impl Store {
    /// Everything that makes these hosts busy within `range`: manual busy blocks `(host,
    /// interval)` and calendar connections (from this process's cache while their host's
    /// `busy_version` has not moved) and blocking bookings' blocks (always live). One round trip
    /// when the cache is current, more when some host's blocks or connections must be read.
    pub async fn busy_time(&self, org: OrgId, host_ids: &[Uuid], range: Interval) -> Result<BusyTime> {
        if host_ids.is_empty() {
            return Ok(BusyTime::default());
        }
        let (versions, held) = self.busy_versions_and_bookings(org, host_ids, range).await?;
        let mut busy = Vec::new();
        let mut stale = Vec::new();
        let mut calendars = Vec::new();
        let mut stale_calendars = Vec::new();
        for &(host, version) in &versions {
            let (blocks, connections) = self.busy_cache.lookup(org, host, version, range);
            match blocks {
                Some(cached) => busy.extend(cached.blocks.iter().filter(|b| b.overlaps(&range)).map(|b| (host, *b))),
                None => stale.push((host, version)),
            }
            match connections {
                Some(cached) => calendars.extend(cached.iter().cloned()),
                None => stale_calendars.push((host, version)),
            }
        }
        if !stale_calendars.is_empty() {
            // Read after the versions, so a copy is never older than the version it is kept under.
            let ids: Vec<Uuid> = stale_calendars.iter().map(|(host, _)| *host).collect();
            let read = self.calendar_connections_of(org, &ids).await?;
            for (host, version) in stale_calendars {
                let connections: Vec<CalendarConnection> = read.iter().filter(|c| c.host_id == host).cloned().collect();
                calendars.extend(connections.iter().cloned());
                self.busy_cache
                    .put_calendars(host, CachedCalendars { org, version, connections: Arc::new(connections) });
            }
        }
        if !stale.is_empty() {
            // Saturating at the ends of time (the API refuses such ranges, but the store must not panic).
            let covered = Interval {
                start: range.start.checked_sub(FILL_BEFORE).unwrap_or(range.start),
                end: range.end.checked_add(FILL_AFTER).unwrap_or(range.end),
            };
            let ids: Vec<Uuid> = stale.iter().map(|(host, _)| *host).collect();
            let mut read: HashMap<Uuid, Vec<Interval>> = HashMap::new();
            for (host, block) in self.read_busy_blocks(org, &ids, covered).await? {
                read.entry(host).or_default().push(block);
            }
            for (host, version) in stale {
                let blocks = read.remove(&host).unwrap_or_default();
                busy.extend(blocks.iter().filter(|b| b.overlaps(&range)).map(|b| (host, *b)));
                self.busy_cache.put(host, CachedBlocks { org, version, covered, blocks });
            }
        }
        Ok(BusyTime { blocks: busy, held, calendars })
    }

    /// The hosts' `busy_version`s and the blocks of their blocking bookings that overlap
    /// `range`, in one round trip (host rows carry a version, booking rows none).
    async fn busy_versions_and_bookings(
        &self,
        org: OrgId,
        host_ids: &[Uuid],
        range: Interval,
    ) -> Result<(Vec<(Uuid, i64)>, Vec<HeldBlock>)> {
        let hosts = placeholders(4, host_ids.len());
        let overlaps = match self.backend {
            // The expression of the exclusion constraint, so its GiST index finds the overlapping
            // blocks directly (a B-tree can bound only one end of a block).
            Backend::Postgres => "tstzrange(to_timestamp(block_start_us::float8 / 1000000), \
                 to_timestamp(block_end_us::float8 / 1000000), '[)') && \
                 tstzrange(to_timestamp($2::float8 / 1000000), to_timestamp($3::float8 / 1000000), '[)')"
                .to_owned(),
            Backend::Sqlite => format!(
                "block_end_us > $2 AND block_start_us < $3 AND block_start_us > $2 - {}",
                crate::bookings::MAX_BLOCK_US
            ),
        };
        let sql = format!(
            "SELECT id AS host_id, busy_version, '' AS booking_id, '' AS event_type_id, \
             CAST(0 AS BIGINT) AS start_us, CAST(0 AS BIGINT) AS block_start_us, CAST(0 AS BIGINT) AS block_end_us \
             FROM hosts WHERE organization_id = $1 AND id IN ({hosts}) \
             UNION ALL \
             SELECT host_id, CAST(-1 AS BIGINT), booking_id, event_type_id, start_us, block_start_us, block_end_us \
             FROM booking_hosts WHERE blocking AND organization_id = $1 AND host_id IN ({hosts}) AND {overlaps}"
        );
        let mut query =
            sqlx::query(AssertSqlSafe(sql)).bind(org.0.to_string()).bind(to_us(range.start)).bind(to_us(range.end));
        for id in host_ids {
            query = query.bind(id.to_string());
        }
        let (mut versions, mut held) = (Vec::new(), Vec::new());
        for row in query.fetch_all(&self.pool).await? {
            let host_id = parse_id(row.try_get("host_id")?)?;
            let version: i64 = row.try_get("busy_version")?;
            if version >= 0 {
                versions.push((host_id, version));
                continue;
            }
            let block = Interval::new(from_us(row.try_get("block_start_us")?)?, from_us(row.try_get("block_end_us")?)?)
                .ok_or_else(|| StoreError::Corrupt("block with start >= end".into()))?;
            held.push(HeldBlock {
                host_id,
                booking_id: parse_id(row.try_get("booking_id")?)?,
                event_type_id: parse_id(row.try_get("event_type_id")?)?,
                start: from_us(row.try_get("start_us")?)?,
                block,
            });
        }
        Ok((versions, held))
    }

    /// The hosts' manual busy blocks that overlap `range`.
    async fn read_busy_blocks(&self, org: OrgId, host_ids: &[Uuid], range: Interval) -> Result<Vec<(Uuid, Interval)>> {
        let sql = format!(
            "SELECT host_id, start_us, end_us FROM busy_blocks \
             WHERE organization_id = $1 AND end_us > $2 AND start_us < $3 AND host_id IN ({})",
            placeholders(4, host_ids.len())
        );
        let mut query =
            sqlx::query(AssertSqlSafe(sql)).bind(org.0.to_string()).bind(to_us(range.start)).bind(to_us(range.end));
        for id in host_ids {
            query = query.bind(id.to_string());
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let block = Interval::new(from_us(row.try_get("start_us")?)?, from_us(row.try_get("end_us")?)?)
                    .ok_or_else(|| StoreError::Corrupt("busy block with start >= end".into()))?;
                Ok((parse_id(row.try_get("host_id")?)?, block))
            })
            .collect()
    }
}
