//! The connection pool as the store's queries see it: straight to the database, or through a
//! transaction-mode pooler such as PgBouncer, where every transaction may run on a different
//! server connection (shared with other clients).
//!
//! Two things break behind such a pooler, and [`Db`] handles both in one place, so the queries
//! themselves need not know:
//!
//! - sqlx prepares a statement with one round trip (`Parse`, `Describe`, `Sync`) and runs it
//!   with another (`Bind`, `Execute`, `Sync`). Outside a transaction the pooler may hand the
//!   second one to another server connection, where the statement does not exist or, worse,
//!   is someone else's. So behind a pooler every statement that is not already in one of the
//!   store's transactions runs in a transaction of its own.
//! - sqlx names its statements `sqlx_s_1`, `sqlx_s_2`, … per client connection, so two clients
//!   sharing one server connection collide (`prepared statement "sqlx_s_1" already exists`),
//!   even with the statement cache off, since it still names (and never closes) them. So behind
//!   a pooler every transaction starts with `DEALLOCATE ALL`: the server connection is ours
//!   until the transaction ends, and none of the names left on it by earlier transactions
//!   (ours or other clients') can collide with the ones this transaction makes. With the cache
//!   off (which is how the store is told it is behind a pooler) sqlx never reuses a name after
//!   its transaction.
//!
//! Session settings (`SET`) do not survive a pooler either: behind one, a connection's settings
//! are applied with `SET LOCAL` at the start of every transaction instead.

use std::future::Future;
use std::pin::Pin;

use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::{Any, AnyPool, Either, Error, Execute, Executor, SqlStr, Transaction};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How every transaction starts behind a transaction-mode pooler.
const POOLED_BEGIN: &str = "BEGIN; DEALLOCATE ALL";

/// How a delivery worker's transactions start behind a pooler: as [`POOLED_BEGIN`], with the
/// worker's settings (see `Store::for_delivery_worker`) for this transaction only.
const POOLED_WORKER_BEGIN: &str = "BEGIN; DEALLOCATE ALL; SET LOCAL synchronous_commit = off; \
     SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL jit = off";

/// The worker's settings on a direct connection, for the whole session.
pub(crate) const DIRECT_WORKER_SETTINGS: &str =
    "SET synchronous_commit = off; SET enable_seqscan = off; SET enable_bitmapscan = off; SET jit = off;";

/// The pool, and whether a transaction-mode pooler stands between it and the database.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pool: AnyPool,
    /// Behind a pooler: the statement every transaction starts with.
    pooled_begin: Option<&'static str>,
}

impl Db {
    /// A pool connected straight to the database.
    pub(crate) fn direct(pool: AnyPool) -> Db {
        Db { pool, pooled_begin: None }
    }

    /// A pool behind a transaction-mode pooler; `worker` applies the delivery worker's settings
    /// to each transaction.
    pub(crate) fn behind_pooler(pool: AnyPool, worker: bool) -> Db {
        Db { pool, pooled_begin: Some(if worker { POOLED_WORKER_BEGIN } else { POOLED_BEGIN }) }
    }

    /// Whether a transaction-mode pooler stands between us and the database.
    pub(crate) fn is_behind_pooler(&self) -> bool {
        self.pooled_begin.is_some()
    }

    /// Starts a transaction (behind a pooler: one that starts as described in the module docs).
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Any>, Error> {
        match self.pooled_begin {
            Some(begin) => self.pool.begin_with(begin).await,
            None => self.pool.begin().await,
        }
    }

    /// Starts a transaction with `BEGIN IMMEDIATE` (SQLite only, never behind a pooler).
    pub(crate) async fn begin_immediate(&self) -> Result<Transaction<'static, Any>, Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// One pooled connection (test support: behind a pooler, only what runs in one transaction
    /// is guaranteed one server connection).
    pub(crate) async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Any>, Error> {
        self.pool.acquire().await
    }

    /// Closes every pooled connection.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// Runs statements like the pool does, except that behind a pooler each runs in a transaction
/// of its own (its rows are collected before the commit).
impl<'p> Executor<'p> for &'_ Db {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        let Some(begin) = self.pooled_begin else {
            return self.pool.fetch_many(query);
        };
        let pool = self.pool.clone();
        let steps = async move {
            let mut tx = pool.begin_with(begin).await?;
            let steps: Vec<_> = (&mut *tx).fetch_many(query).try_collect().await?;
            tx.commit().await?;
            Ok::<_, Error>(steps)
        };
        stream::once(steps)
            .flat_map(|outcome| {
                stream::iter(match outcome {
                    Ok(steps) => steps.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                })
            })
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        let Some(begin) = self.pooled_begin else {
            return self.pool.fetch_optional(query);
        };
        let pool = self.pool.clone();
        Box::pin(async move {
            let mut tx = pool.begin_with(begin).await?;
            let row = (&mut *tx).fetch_optional(query).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    fn prepare_with<'e>(self, sql: SqlStr, parameters: &'e [AnyTypeInfo]) -> BoxFuture<'e, Result<AnyStatement, Error>>
    where
        'p: 'e,
    {
        // The store runs no statement prepared ahead; this is here for the trait's sake, and
        // behind a pooler such a statement would be bound to one server connection.
        self.pool.prepare_with(sql, parameters)
    }
}
