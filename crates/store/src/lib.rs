//! slotd's persistence. One [`Store`] serves both backends: SQLite (the embedded default, a
//! WAL-mode file) and PostgreSQL (production, shared by any number of slotd processes).
//!
//! Both backends are reached through sqlx's `Any` driver with one schema convention (UUID text
//! ids, BIGINT microsecond instants, JSON as text), so nearly every query is a single SQL string
//! with `$n` binds that both dialects accept. Where the dialects must differ (migrations,
//! transaction start), [`Backend`] says which one we are talking to.
//!
//! Every method that reads or writes tenant data takes an [`OrgId`]: there is no query that can
//! see another organization's rows. Every method that changes a host or an event type writes the
//! matching event into the `events` outbox in the same transaction.

mod bookings;
mod busy;
pub use busy::BusyTime;
mod calendars;
pub use calendars::{CalendarConnection, CalendarKind, NewCalendarConnection, OnError, SyncStatus};
mod db;
mod deliveries;
pub use bookings::{
    Actor, Attendee, Booking, BookingChange, BookingFilter, ChangeOutputs, HeldBlock, HistoryEntry, HostLoad,
    IdempotentRequest, NewBooking, Placement, StoredAnswer,
};
pub use deliveries::{
    AttemptOutcome, AttemptStatus, Claim, ClaimedDelivery, DeliveryAttempt, DeliveryFilter, OutcomeEffects,
};
mod error;
mod event_types;
mod events;
mod hosts;
pub use hosts::HostDeletion;
mod migrate;
mod models;
mod orgs;
mod page;
#[doc(hidden)]
pub mod testing;
mod webhooks;
pub use webhooks::{NewWebhookEndpoint, SinkKind, WebhookEndpoint, WebhookPatch};

use std::str::FromStr;

use sqlx::Executor;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use db::Db;

pub use error::StoreError;
pub use models::*;
pub use page::{Page, PageRequest};

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database the store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (single host; writes serialised by `BEGIN IMMEDIATE`).
    Sqlite,
    /// PostgreSQL server (any number of slotd processes).
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Db,
    backend: Backend,
    /// Bumped after every commit that queued webhook deliveries, so this process's delivery
    /// workers wake at once instead of at their next poll.
    deliveries_queued: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// The URL it was opened with (for [`Store::for_delivery_worker`]).
    url: std::sync::Arc<str>,
    /// This process's copy of hosts' busy blocks (see [`busy`]).
    busy_cache: std::sync::Arc<busy::BusyCache>,
}

impl Store {
    /// Connects to `postgres://…` or `sqlite://…` (the SQLite file is created if missing).
    pub async fn connect(url: &str) -> Result<Store> {
        Store::open(url, false).await
    }

    /// A store for a delivery worker: its own connections to the same database, sharing this
    /// store's wake-ups. On PostgreSQL its commits do not wait for the WAL flush
    /// (`synchronous_commit = off`): a worker only writes claims and outcomes, and losing the last
    /// few of those in a database crash only makes their attempts due again (delivered at least
    /// once, as always), while not waiting for the disk keeps claims fast. Its planner uses
    /// indexes only (see `open`). Behind a transaction-mode pooler these settings are made with
    /// `SET LOCAL` in each of its transactions, so they reach no other client (see `db`).
    pub async fn for_delivery_worker(&self) -> Result<Store> {
        match self.backend {
            Backend::Sqlite => Ok(self.clone()),
            Backend::Postgres => {
                let mut store = Store::open(&self.url, true).await?;
                store.deliveries_queued = self.deliveries_queued.clone();
                Ok(store)
            }
        }
    }

    async fn open(url: &str, relaxed_commits: bool) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let options = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                AnyConnectOptions::from_str(&format!("{url}{sep}mode=rwc"))?
            }
            _ => AnyConnectOptions::from_str(url)?,
        };
        let pool = match backend {
            Backend::Sqlite => Db::direct(
                AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // WAL lets readers run beside the single writer; the busy timeout
                            // makes a second writer wait instead of failing at once.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?,
            ),
            Backend::Postgres => {
                let behind_pooler = is_behind_pooler(url);
                let pool = AnyPoolOptions::new()
                    .max_connections(if relaxed_commits { 4 } else { 16 })
                    .acquire_timeout(std::time::Duration::from_secs(5))
                    .after_connect(move |conn, _meta| {
                        Box::pin(async move {
                            if relaxed_commits && !behind_pooler {
                                // A worker's statements are index lookups on a queue whose
                                // statistics are always stale (rows come and go faster than
                                // autovacuum samples them); a plan from such statistics could
                                // read the whole queue for a few rows, so the worker's
                                // connections use no sequential or bitmap scans. A plan that
                                // must use one anyway carries the planner's penalty cost, far
                                // above the JIT threshold: compiling it would take longer than
                                // running it, so no JIT either. (Behind a pooler a session
                                // setting would leak to other clients: there each of the
                                // worker's transactions sets them with `SET LOCAL`, see `db`.)
                                conn.execute(db::DIRECT_WORKER_SETTINGS).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?;
                match behind_pooler {
                    true => Db::behind_pooler(pool, relaxed_commits),
                    false => Db::direct(pool),
                }
            }
        };
        Ok(Store {
            pool,
            backend,
            deliveries_queued: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            url: std::sync::Arc::from(url),
            busy_cache: std::sync::Arc::default(),
        })
    }

    /// Whether this store runs its statements as a transaction-mode pooler needs (PostgreSQL
    /// URL with `statement-cache-capacity=0`).
    pub fn behind_pooler(&self) -> bool {
        self.pool.is_behind_pooler()
    }

    /// The backend this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the migrations this database has not seen yet.
    pub async fn migrate(&self) -> Result<()> {
        migrate::run(&self.pool, self.backend).await
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every pooled connection (graceful shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so a transaction that reads before it writes can never fail to
    /// upgrade its lock half-way.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_immediate().await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// Whether a PostgreSQL URL says the store sits behind a transaction-mode pooler: its
/// `statement-cache-capacity` is 0. sqlx's statement cache cannot work there (its statements
/// live on one server connection), so turning it off is what such a URL already has to say; the
/// store then also runs every statement inside a transaction and clears the statement names of
/// the server connection it gets at the start of each (see `db`). Any other URL keeps the cache.
pub fn is_behind_pooler(url: &str) -> bool {
    let Some((_, query)) = url.split_once('?') else { return false };
    query.split('&').any(|pair| match pair.split_once('=') {
        Some(("statement-cache-capacity", value)) => value.trim().parse::<usize>() == Ok(0),
        _ => false,
    })
}

/// Microseconds since the Unix epoch, the unit every instant is stored in.
fn to_us(t: jiff::Timestamp) -> i64 {
    t.as_microsecond()
}

/// The instant a stored microsecond count stands for.
fn from_us(us: i64) -> Result<jiff::Timestamp> {
    jiff::Timestamp::from_microsecond(us).map_err(|e| StoreError::Corrupt(format!("instant {us} out of range: {e}")))
}

/// Parses a stored UUID.
fn parse_id(text: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("bad id {text:?}: {e}")))
}

/// The current time, truncated to the microsecond precision the database keeps, so what a
/// write returns equals what a later read returns.
fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(jiff::Timestamp::now().as_microsecond())
        .expect("the clock is within jiff's range")
}

#[cfg(test)]
mod tests {
    use super::is_behind_pooler;

    #[test]
    fn only_a_statement_cache_capacity_of_zero_says_the_store_is_behind_a_pooler() {
        assert!(is_behind_pooler("postgres://u@127.0.0.1:6432/db?statement-cache-capacity=0"));
        assert!(is_behind_pooler("postgres://u@127.0.0.1:6432/db?sslmode=disable&statement-cache-capacity=0"));
        assert!(!is_behind_pooler("postgres://u@127.0.0.1:5432/db"));
        assert!(!is_behind_pooler("postgres://u@127.0.0.1:5432/db?statement-cache-capacity=100"));
        assert!(!is_behind_pooler("postgres://u@127.0.0.1:5432/db?application_name=statement-cache-capacity=0"));
        assert!(!is_behind_pooler("postgres://u@127.0.0.1:5432/statement-cache-capacity=0"));
    }
}
