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
    /// The database could not be reached or a pool/lock wait timed out.
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
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Database(other),
        }
    }
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
