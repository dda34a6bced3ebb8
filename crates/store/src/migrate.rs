//! A small migration runner: numbered SQL files per backend, embedded in the binary, applied in
//! order inside one transaction each and recorded in `schema_migrations`.
//!
//! On PostgreSQL an advisory lock serialises concurrent start-ups of several slotd processes;
//! on SQLite `BEGIN IMMEDIATE` does the same for processes sharing one file.

use sqlx::{Acquire, AnyPool, Executor};

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
];

const SQLITE: &[Migration] = &[
    Migration { version: 1, name: "foundation", sql: include_str!("../migrations/sqlite/0001_foundation.sql") },
    Migration { version: 2, name: "bookings", sql: include_str!("../migrations/sqlite/0002_bookings.sql") },
    Migration { version: 3, name: "webhooks", sql: include_str!("../migrations/sqlite/0003_webhooks.sql") },
    Migration { version: 4, name: "deliveries", sql: include_str!("../migrations/sqlite/0004_deliveries.sql") },
    Migration { version: 5, name: "attempt_leases", sql: include_str!("../migrations/sqlite/0005_attempt_leases.sql") },
    Migration { version: 6, name: "slack_channels", sql: include_str!("../migrations/sqlite/0006_slack_channels.sql") },
];

/// Arbitrary constant naming slotd's migration lock among PostgreSQL advisory locks.
const PG_MIGRATION_LOCK: i64 = 0x5107_D000_0001;

/// Applies every migration of `backend` that the database has not recorded yet.
pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<()> {
    let migrations = match backend {
        Backend::Postgres => POSTGRES,
        Backend::Sqlite => SQLITE,
    };
    let mut conn = pool.acquire().await?;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_us BIGINT NOT NULL)",
    )
    .await?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *conn).await?;
    }
    let outcome = apply_pending(&mut conn, backend, migrations).await;
    if backend == Backend::Postgres {
        // Released even when a migration failed, so another process may try again.
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *conn).await?;
    }
    outcome
}

async fn apply_pending(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    backend: Backend,
    migrations: &[Migration],
) -> Result<()> {
    for migration in migrations {
        let mut tx = match backend {
            Backend::Sqlite => sqlx::Connection::begin_with(&mut **conn, "BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        };
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
