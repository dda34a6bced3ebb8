//! The store's error type: what went wrong in terms the API layer can map to a status.

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is neither `postgres://` nor `sqlite:`.
    #[error("database URL must start with postgres:// or sqlite:")]
    UnsupportedUrl,
    /// A uniqueness rule was violated (for example a duplicate slug); the text names it.
    #[error("{0}")]
    Conflict(String),
    /// The time is no longer free: another booking or a busy block holds it, or its seats
    /// are all taken. Nothing was written.
    #[error("the slot is no longer available")]
    SlotTaken,
    /// The organization's plan allows no more of this resource (the number is the limit).
    #[error("the plan allows at most {0}")]
    PlanLimit(u32),
    /// The idempotency key was used by a request that committed first; read its answer.
    #[error("the idempotency key was already used")]
    IdempotencyKeyTaken,
    /// A referenced row does not exist in the caller's organization; the text names it.
    #[error("{0}")]
    MissingReference(String),
    /// The database could not be reached, a pool wait timed out, or the connection was lost or
    /// terminated mid-request (server shutdown, failover): the API answers 503 with
    /// `Retry-After`, never a 500.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be read back (a bug or manual tampering).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Applying a migration failed.
    #[error("migration {version} failed: {message}")]
    Migration {
        /// The migration's version number.
        version: i64,
        /// What the database said.
        message: String,
    },
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailability(&e) { StoreError::Unavailable(e.to_string()) } else { StoreError::Database(e) }
    }
}

/// Whether an error says the database could not be reached or the connection was lost, not that
/// the request or the code was wrong: trying again later is the remedy, and nothing of the
/// failed transaction was kept (a lost `COMMIT` may have landed, which is what idempotency keys
/// are for).
fn is_unavailability(e: &sqlx::Error) -> bool {
    match e {
        // No connection to be had, a socket that broke (refused, reset, EOF), a TLS handshake
        // that failed, a message cut off mid-way, or SQLite's connection thread gone.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_unavailable_sqlstate(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs that mean "the server cannot do it now":
/// - class `08`, connection exceptions;
/// - class `57`, operator intervention: `57P01` admin shutdown (`pg_ctl stop -m fast`, a
///   failover), `57P02` crash shutdown, `57P03` cannot connect now (starting up or shutting
///   down), `57P04`/`57P05` dropped database and idle timeouts, and `57014` query canceled:
///   slotd sets no statement timeout and never cancels its own queries, so a cancel comes from
///   an operator (`pg_cancel_backend`) or a server-side timeout, and the statement's transaction
///   was rolled back: retrying is right;
/// - class `53`, insufficient resources (too many connections, out of memory or disk);
/// - `25006` read-only transaction: a write reached a server that is (still) a standby during a
///   failover.
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57") || code.starts_with("53") || code == "25006"
}

impl StoreError {
    /// True when the error is a unique-constraint violation (on either backend).
    pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
    }

    /// True when PostgreSQL aborted the transaction to break a deadlock (SQLSTATE 40P01).
    pub(crate) fn is_deadlock(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(db)) if db.code().as_deref() == Some("40P01"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_and_operator_intervention_are_unavailability() {
        for code in ["57P01", "57P02", "57P03", "57014", "08006", "08001", "08003", "53300", "25006"] {
            assert!(is_unavailable_sqlstate(code), "{code}");
        }
        for code in ["23505", "23P01", "40P01", "42P01", "22P02", "XX000"] {
            assert!(!is_unavailable_sqlstate(code), "{code}");
        }
        let broken = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(matches!(StoreError::from(broken), StoreError::Unavailable(_)));
        assert!(matches!(StoreError::from(sqlx::Error::PoolTimedOut), StoreError::Unavailable(_)));
        assert!(matches!(StoreError::from(sqlx::Error::Protocol("unexpected eof".into())), StoreError::Unavailable(_)));
        assert!(matches!(StoreError::from(sqlx::Error::RowNotFound), StoreError::Database(_)));
    }
}
