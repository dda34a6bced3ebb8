//! Test support shared by the store's conformance suite and the server's API tests: a fresh,
//! empty database per test on either backend. Never used by the running server.

use uuid::Uuid;

use crate::Store;

/// Declares each listed `async fn name(db: &TestDatabase)` as two tests, `sqlite::name` and
/// `postgres::name`, each on a fresh database that is removed afterwards.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::testing::TestDatabase::sqlite().await;
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::testing::TestDatabase::postgres().await;
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

/// Where tests find PostgreSQL (override with `SLOTD_TEST_DATABASE_URL`).
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database made for one test; [`TestDatabase::cleanup`] removes it.
pub struct TestDatabase {
    /// Connection URL of the fresh database.
    pub url: String,
    /// Migrated store on it.
    pub store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    Postgres { admin: Store, name: String },
    Sqlite { _dir: tempfile_dir::TempDir },
}

impl TestDatabase {
    /// A fresh PostgreSQL database on the test server. Panics with instructions when the
    /// server does not answer: a missing PostgreSQL fails the run, it never skips tests.
    pub async fn postgres() -> TestDatabase {
        let db = TestDatabase::postgres_unmigrated().await;
        db.store.migrate().await.expect("migrate the test database");
        db
    }

    /// A fresh, empty PostgreSQL database (no tables yet), for tests of the migrations.
    pub async fn postgres_unmigrated() -> TestDatabase {
        let admin_url = std::env::var("SLOTD_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into());
        let admin = Store::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for these tests and did not answer at {admin_url}: {e}. \
                 Start it (scripts/test does) or set SLOTD_TEST_DATABASE_URL."
            )
        });
        let name = format!("slotd_test_{}", Uuid::now_v7().simple());
        admin.execute_admin(&format!("CREATE DATABASE {name}")).await.expect("create test database");
        let url = match admin_url.rfind('/') {
            Some(i) => format!("{}/{name}", &admin_url[..i]),
            None => panic!("SLOTD_TEST_DATABASE_URL must end with a database name"),
        };
        let store = Store::connect(&url).await.expect("connect to the test database");
        TestDatabase { url, store, cleanup: Cleanup::Postgres { admin, name } }
    }

    /// A fresh SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDatabase {
        let dir = tempfile_dir::TempDir::new();
        let url = format!("sqlite://{}", dir.path().join("slotd.db").display());
        let store = Store::connect(&url).await.expect("open the test database");
        store.migrate().await.expect("migrate the test database");
        TestDatabase { url, store, cleanup: Cleanup::Sqlite { _dir: dir } }
    }

    /// Closes connections and removes the database.
    pub async fn cleanup(self) {
        self.store.close().await;
        if let Cleanup::Postgres { admin, name } = self.cleanup {
            let _ = admin.execute_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            admin.close().await;
        }
    }
}

impl Store {
    /// Runs one administrative statement (test support only: the SQL is built by this module).
    async fn execute_admin(&self, sql: &str) -> crate::Result<()> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&self.pool).await?;
        Ok(())
    }
}

/// A directory under the system temp dir, removed on drop (no extra dependency needed).
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> TempDir {
            let path = std::env::temp_dir().join(format!("slotd-test-{}", uuid::Uuid::now_v7().simple()));
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Checks the tests make directly against the database.
impl Store {
    /// Pairs of blocking booking rows of one host whose blocks overlap (must always be 0).
    pub async fn count_overlapping_blocking_bookings(&self) -> crate::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM booking_hosts a JOIN booking_hosts b \
             ON a.host_id = b.host_id AND a.booking_id < b.booking_id AND a.seat_group <> b.seat_group \
             WHERE a.blocking AND b.blocking AND a.block_start_us < b.block_end_us AND b.block_start_us < a.block_end_us",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// The blocks of the organization's blocking bookings.
    pub async fn held_blocks_for_test(&self, org: crate::OrgId) -> crate::Result<Vec<slotd_core::Interval>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT block_start_us, block_end_us FROM booking_hosts WHERE blocking AND organization_id = $1",
        )
        .bind(org.0.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(s, e)| {
                slotd_core::Interval::new(crate::from_us(s)?, crate::from_us(e)?)
                    .ok_or_else(|| crate::StoreError::Corrupt("block with start >= end".into()))
            })
            .collect()
    }
}

impl Store {
    /// Moves a booking's times (not its host blocks) `by` earlier, so a test can have a booking
    /// that is over without waiting for it.
    pub async fn shift_booking_into_past_for_test(&self, booking_id: uuid::Uuid, by: jiff::SignedDuration) {
        let us = by.as_micros() as i64;
        sqlx::query("UPDATE bookings SET start_us = start_us - $1, end_us = end_us - $1 WHERE id = $2")
            .bind(us)
            .bind(booking_id.to_string())
            .execute(&self.pool)
            .await
            .expect("shift booking");
    }

    /// Every stored webhook secret column, as stored (tests check they are sealed).
    pub async fn sealed_webhook_secrets_for_test(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT secret_sealed FROM webhook_endpoints")
            .fetch_all(&self.pool)
            .await
            .expect("read webhook secrets")
    }
}

impl Store {
    /// PostgreSQL's generic plans (what a prepared statement may keep for the life of its
    /// connection) of the statements that record delivery outcomes, as `EXPLAIN` text, planned
    /// on one of this store's connections with its settings and the tables as they are now.
    pub async fn outcome_write_generic_plans_for_test(&self) -> crate::Result<Vec<String>> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut *conn).await?;
        let mut plans = Vec::new();
        for sql in crate::deliveries::postgres_outcome_statements() {
            sqlx::query(sqlx::AssertSqlSafe(format!("PREPARE slotd_outcomes (BIGINT, TEXT) AS {sql}")))
                .execute(&mut *conn)
                .await?;
            let lines: Vec<String> =
                sqlx::query_scalar("EXPLAIN EXECUTE slotd_outcomes (0, '[]')").fetch_all(&mut *conn).await?;
            sqlx::query("DEALLOCATE slotd_outcomes").execute(&mut *conn).await?;
            plans.push(lines.join("\n"));
        }
        sqlx::query("RESET plan_cache_mode").execute(&mut *conn).await?;
        Ok(plans)
    }
}

impl Store {
    /// The value of a PostgreSQL setting as this store's statements see it.
    pub async fn setting_for_test(&self, name: &str) -> crate::Result<String> {
        Ok(sqlx::query_scalar("SELECT current_setting($1)").bind(name).fetch_one(&self.pool).await?)
    }

    /// The migrations recorded as applied: (version, how many times).
    pub async fn applied_migrations_for_test(&self) -> crate::Result<Vec<(i64, i64)>> {
        Ok(sqlx::query_as("SELECT version, COUNT(*) FROM schema_migrations GROUP BY version ORDER BY version")
            .fetch_all(&self.pool)
            .await?)
    }
}

impl Store {
    /// PostgreSQL: later connections to this database commit without waiting for the WAL flush
    /// (`synchronous_commit = off`), for tests that time deliveries rather than the disk.
    pub async fn commit_without_flush_wait_for_test(&self) -> crate::Result<()> {
        let name: String = sqlx::query_scalar("SELECT CAST(current_database() AS TEXT)").fetch_one(&self.pool).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE \"{name}\" SET synchronous_commit = off")))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
