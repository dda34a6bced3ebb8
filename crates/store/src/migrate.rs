//! A small migration runner: numbered SQL files per backend, embedded in the binary, applied in
//! order inside one transaction each and recorded in `schema_migrations`.
//!
//! On PostgreSQL a transaction-scoped advisory lock (`pg_advisory_xact_lock`, taken first in
//! each migration's transaction) serialises concurrent start-ups of several slotd processes; it
//! is released with its transaction, so it holds through a transaction-mode pooler as well as on
//! a direct connection (a session lock would stay behind on whichever server connection the
//! pooler gave us). On SQLite `BEGIN IMMEDIATE` does the same for processes sharing one file.

use sqlx::{Any, Executor, Transaction};

use crate::db::Db;
use crate::{Backend, Result, StoreError};

/// One migration: its version, a name for the log, and its SQL.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "foundation", sql: include_str!("../migrations/postgres/0001_foundation.sql") },
    Migration { version: 2, name: "bookings", sql: include_str!("../migrations/postgres/0002_bookings.sql") },
    Migration { version: 3, name: "webhooks", sql: include_str!("../migrations/postgres/0003_webhooks.sql") },
    Migration { version: 4, name: "deliveries", sql: include_str!("../migrations/postgres/0004_deliveries.sql") },
    Migration {
        version: 5,
        name: "attempt_leases",
        sql: include_str!("../migrations/postgres/0005_attempt_leases.sql"),
    },
    Migration {
        version: 6,
        name: "slack_channels",
        sql: include_str!("../migrations/postgres/0006_slack_channels.sql"),
    },
    Migration { version: 7, name: "busy_versions", sql: include_str!("../migrations/postgres/0007_busy_versions.sql") },
    Migration {
        version: 8,
        name: "calendar_connections",
        sql: include_str!("../migrations/postgres/0008_calendar_connections.sql"),
    },
];

const SQLITE: &[Migration] = &[
    Migration { version: 1, name: "foundation", sql: include_str!("../migrations/sqlite/0001_foundation.sql") },
    Migration { version: 2, name: "bookings", sql: include_str!("../migrations/sqlite/0002_bookings.sql") },
    Migration { version: 3, name: "webhooks", sql: include_str!("../migrations/sqlite/0003_webhooks.sql") },
    Migration { version: 4, name: "deliveries", sql: include_str!("../migrations/sqlite/0004_deliveries.sql") },
    Migration { version: 5, name: "attempt_leases", sql: include_str!("../migrations/sqlite/0005_attempt_leases.sql") },
    Migration { version: 6, name: "slack_channels", sql: include_str!("../migrations/sqlite/0006_slack_channels.sql") },
    Migration { version: 7, name: "busy_versions", sql: include_str!("../migrations/sqlite/0007_busy_versions.sql") },
    Migration {
        version: 8,
        name: "calendar_connections",
        sql: include_str!("../migrations/sqlite/0008_calendar_connections.sql"),
    },
];

/// Arbitrary constant naming slotd's migration lock among PostgreSQL advisory locks.
const PG_MIGRATION_LOCK: i64 = 0x5107_D000_0001;

/// Applies every migration of `backend` that the database has not recorded yet.
pub(crate) async fn run(db: &Db, backend: Backend) -> Result<()> {
    let migrations = match backend {
        Backend::Postgres => POSTGRES,
        Backend::Sqlite => SQLITE,
    };
    let mut tx = begin_locked(db, backend).await?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_us BIGINT NOT NULL)",
    )
    .await?;
    tx.commit().await?;
    for migration in migrations {
        let mut tx = begin_locked(db, backend).await?;
        let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await?;
        if applied.is_some() {
            continue;
        }
        tracing::info!(version = migration.version, name = migration.name, "applying migration");
        tx.execute(migration.sql)
            .await
            .map_err(|e| StoreError::Migration { version: migration.version, message: e.to_string() })?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_us) VALUES ($1, $2, $3)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(crate::to_us(crate::now()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// A transaction that no other process's migration transaction runs beside.
async fn begin_locked(db: &Db, backend: Backend) -> Result<Transaction<'static, Any>> {
    Ok(match backend {
        Backend::Sqlite => db.begin_immediate().await?,
        Backend::Postgres => {
            let mut tx = db.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *tx).await?;
            tx
        }
    })
}
