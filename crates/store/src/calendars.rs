//! Calendar connections: a host's CalDAV calendars, ICS feeds and Google calendars, whose busy
//! time blocks the host's slots and which, with `write_back`, receive the host's bookings as
//! events.
//!
//! The store keeps what a connection is (its kind, what may be shown of its address, its sealed
//! credentials, its settings) and how its last read went; it never talks to a calendar. Adding
//! or removing a connection bumps the host's `busy_version` in the same transaction, so every
//! process's copy of the host's busy sources (see `busy`) notices. A write-back connection has a
//! delivery sink of kind `calendar` with the same id, so booking changes reach it through the
//! outbox (see `Store::queue_calendar_writes`).

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use crate::hosts::{bump_busy_version, placeholders};
use crate::{OrgId, Result, Store, StoreError, from_us, now, parse_id, to_us};

/// What kind of calendar a connection reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CalendarKind {
    /// A CalDAV calendar collection.
    CalDav,
    /// An iCalendar feed URL (read only).
    Ics,
    /// Google Calendar through its API.
    Google,
}

impl CalendarKind {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarKind::CalDav => "caldav",
            CalendarKind::Ics => "ics",
            CalendarKind::Google => "google",
        }
    }

    /// Parses `caldav`, `ics` or `google`.
    pub fn parse(s: &str) -> Option<CalendarKind> {
        match s {
            "caldav" => Some(CalendarKind::CalDav),
            "ics" => Some(CalendarKind::Ics),
            "google" => Some(CalendarKind::Google),
            _ => None,
        }
    }
}

/// What a commit does when the connection cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnError {
    /// Refuse the commit (`503 calendar_unavailable`): the default.
    Fail,
    /// Go on without this calendar's busy time.
    Ignore,
}

impl OnError {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Fail => "fail",
            OnError::Ignore => "ignore",
        }
    }

    /// Parses `fail` or `ignore`.
    pub fn parse(s: &str) -> Option<OnError> {
        match s {
            "fail" => Some(OnError::Fail),
            "ignore" => Some(OnError::Ignore),
            _ => None,
        }
    }
}

/// How a connection's last read went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncStatus {
    /// Not read yet.
    Pending,
    /// The last read succeeded.
    Ok,
    /// The last read failed (`last_error` says why).
    Error,
}

impl SyncStatus {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Pending => "pending",
            SyncStatus::Ok => "ok",
            SyncStatus::Error => "error",
        }
    }

    fn parse(s: &str) -> Result<SyncStatus> {
        match s {
            "pending" => Ok(SyncStatus::Pending),
            "ok" => Ok(SyncStatus::Ok),
            "error" => Ok(SyncStatus::Error),
            other => Err(StoreError::Corrupt(format!("calendar status {other:?}"))),
        }
    }
}

/// A host's calendar connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarConnection {
    /// Its id (also its write-back sink's id).
    pub id: Uuid,
    /// Its organization.
    pub organization_id: OrgId,
    /// The host whose calendar it is.
    pub host_id: Uuid,
    /// CalDAV, ICS or Google.
    pub kind: CalendarKind,
    /// What may be shown of its address (a CalDAV calendar's URL, an ICS feed's masked URL, ''
    /// for Google).
    pub url: String,
    /// Google calendar ids read for busy time (the first also takes written events); empty for
    /// the other kinds.
    pub calendar_ids: Vec<String>,
    /// The credentials (and an ICS feed's URL), sealed by the server.
    pub credentials_sealed: String,
    /// Whether the host's bookings are written into it.
    pub write_back: bool,
    /// What a commit does when it cannot be read.
    pub on_error: OnError,
    /// How its last read went.
    pub status: SyncStatus,
    /// When it was last read successfully.
    pub last_synced_at: Option<Timestamp>,
    /// Why its last read failed (`None` after a success).
    pub last_error: Option<String>,
    /// Since when every write-back attempt has failed (`None` while they succeed).
    pub write_back_failing_since: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// What a new connection is made of (validated and sealed by the caller).
#[derive(Clone, Debug)]
pub struct NewCalendarConnection {
    /// CalDAV, ICS or Google.
    pub kind: CalendarKind,
    /// What may be shown of its address.
    pub url: String,
    /// Google calendar ids.
    pub calendar_ids: Vec<String>,
    /// Sealed credentials.
    pub credentials_sealed: String,
    /// Write bookings into it.
    pub write_back: bool,
    /// What a commit does when it cannot be read.
    pub on_error: OnError,
}

/// A connection's columns, with its write-back sink's failure streak (a new row has none).
const COLUMNS: &str = "id, organization_id, host_id, kind, url, calendar_ids, credentials_sealed, \
     CAST(CASE WHEN write_back THEN 1 ELSE 0 END AS BIGINT) AS write_back_flag, on_error, status, last_synced_us, \
     last_error, created_us, updated_us, CAST(NULL AS BIGINT) AS write_failing_since_us";

/// [`COLUMNS`] of `calendar_connections c`, with the failure streak of its write-back sink.
const READ_COLUMNS: &str = "c.id, c.organization_id, c.host_id, c.kind, c.url, c.calendar_ids, \
     c.credentials_sealed, CAST(CASE WHEN c.write_back THEN 1 ELSE 0 END AS BIGINT) AS write_back_flag, c.on_error, \
     c.status, c.last_synced_us, c.last_error, c.created_us, c.updated_us, \
     (SELECT w.failing_since_us FROM webhook_endpoints w WHERE w.id = c.id AND w.deleted_us IS NULL) \
     AS write_failing_since_us";

fn connection_from_row(row: &AnyRow) -> Result<CalendarConnection> {
    let kind: String = row.try_get("kind")?;
    let on_error: String = row.try_get("on_error")?;
    let calendar_ids: String = row.try_get("calendar_ids")?;
    let write_back: i64 = row.try_get("write_back_flag")?;
    let synced: Option<i64> = row.try_get("last_synced_us")?;
    let failing: Option<i64> = row.try_get("write_failing_since_us")?;
    Ok(CalendarConnection {
        id: parse_id(row.try_get("id")?)?,
        organization_id: OrgId(parse_id(row.try_get("organization_id")?)?),
        host_id: parse_id(row.try_get("host_id")?)?,
        kind: CalendarKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("calendar kind {kind:?}")))?,
        url: row.try_get("url")?,
        calendar_ids: serde_json::from_str(&calendar_ids)
            .map_err(|e| StoreError::Corrupt(format!("calendar ids: {e}")))?,
        credentials_sealed: row.try_get("credentials_sealed")?,
        write_back: write_back != 0,
        on_error: OnError::parse(&on_error).ok_or_else(|| StoreError::Corrupt(format!("on_error {on_error:?}")))?,
        status: SyncStatus::parse(row.try_get("status")?)?,
        last_synced_at: synced.map(from_us).transpose()?,
        last_error: row.try_get("last_error")?,
        write_back_failing_since: failing.map(from_us).transpose()?,
        created_at: from_us(row.try_get("created_us")?)?,
        updated_at: from_us(row.try_get("updated_us")?)?,
    })
}

impl Store {
    /// Adds a calendar connection that the caller read successfully at `read_at` to a live host
    /// (and, for write-back, its delivery sink), in one transaction that also marks the host's
    /// busy sources as changed. `None`: no such host.
    pub async fn create_calendar_connection(
        &self,
        org: OrgId,
        host_id: Uuid,
        new: NewCalendarConnection,
        read_at: Timestamp,
    ) -> Result<Option<CalendarConnection>> {
        let at = now();
        let mut tx = self.begin_write().await?;
        if !bump_busy_version(&mut tx, org, host_id).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let id = Uuid::now_v7();
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO calendar_connections (id, organization_id, host_id, kind, url, calendar_ids, \
             credentials_sealed, write_back, on_error, status, last_synced_us, last_error, checked_us, created_us, \
             updated_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'ok', $10, NULL, $10, $11, $11) RETURNING {COLUMNS}"
        )))
        .bind(id.to_string())
        .bind(org.0.to_string())
        .bind(host_id.to_string())
        .bind(new.kind.as_str())
        .bind(&new.url)
        .bind(serde_json::to_string(&new.calendar_ids).expect("strings serialise"))
        .bind(&new.credentials_sealed)
        .bind(new.write_back)
        .bind(new.on_error.as_str())
        .bind(to_us(read_at))
        .bind(to_us(at))
        .fetch_one(&mut *tx)
        .await?;
        let connection = connection_from_row(&row)?;
        if new.write_back {
            insert_sink(&mut tx, org, id, to_us(at)).await?;
        }
        tx.commit().await?;
        Ok(Some(connection))
    }

    /// A live host's connections, oldest first; `None` when there is no such host.
    pub async fn list_calendar_connections(
        &self,
        org: OrgId,
        host_id: Uuid,
    ) -> Result<Option<Vec<CalendarConnection>>> {
        let host = self.host(org, host_id).await?;
        if host.is_none() {
            return Ok(None);
        }
        Ok(Some(self.calendar_connections_of(org, &[host_id]).await?))
    }

    /// The connections of these hosts (deleted hosts' too), oldest first.
    pub(crate) async fn calendar_connections_of(
        &self,
        org: OrgId,
        host_ids: &[Uuid],
    ) -> Result<Vec<CalendarConnection>> {
        if host_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {READ_COLUMNS} FROM calendar_connections c WHERE c.organization_id = $1 AND c.host_id IN ({}) \
         ORDER BY c.id",
            placeholders(2, host_ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(org.0.to_string());
        for id in host_ids {
            query = query.bind(id.to_string());
        }
        query.fetch_all(&self.pool).await?.iter().map(connection_from_row).collect()
    }

    /// One connection of the organization (any host, live or not).
    pub async fn calendar_connection(&self, org: OrgId, id: Uuid) -> Result<Option<CalendarConnection>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {READ_COLUMNS} FROM calendar_connections c WHERE c.organization_id = $1 AND c.id = $2"
        )))
        .bind(org.0.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(connection_from_row).transpose()
    }

    /// Changes a host's connection's settings (`None` leaves one as it is): write-back turned on
    /// gives it a sink (its old one back, with its attempt log), turned off deletes the sink.
    /// Marks the host's busy sources as changed. `None`: no such connection on a live host.
    pub async fn update_calendar_connection(
        &self,
        org: OrgId,
        host_id: Uuid,
        id: Uuid,
        write_back: Option<bool>,
        on_error: Option<OnError>,
    ) -> Result<Option<CalendarConnection>> {
        let mut tx = self.begin_write().await?;
        if !bump_busy_version(&mut tx, org, host_id).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let at = to_us(now());
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE calendar_connections SET write_back = COALESCE($4, write_back), on_error = COALESCE($5, on_error), \
             updated_us = $6 WHERE organization_id = $1 AND host_id = $2 AND id = $3 RETURNING {COLUMNS}"
        )))
        .bind(org.0.to_string())
        .bind(host_id.to_string())
        .bind(id.to_string())
        .bind(write_back)
        .bind(on_error.map(OnError::as_str))
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let connection = connection_from_row(&row)?;
        match write_back {
            Some(true) => {
                let revived = sqlx::query(
                    "UPDATE webhook_endpoints SET deleted_us = NULL, url = $3, enabled = $4, updated_us = $5 \
                     WHERE organization_id = $1 AND id = $2 AND kind = 'calendar'",
                )
                .bind(org.0.to_string())
                .bind(id.to_string())
                .bind(format!("calendar:{id}"))
                .bind(true)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if revived.rows_affected() == 0 {
                    insert_sink(&mut tx, org, id, at).await?;
                }
            }
            Some(false) => delete_sink(&mut tx, org, id).await?,
            None => {}
        }
        tx.commit().await?;
        self.calendar_connection(org, connection.id).await
    }

    /// Removes a host's connection (its write-back sink is deleted with it; events already
    /// written stay in the calendar). Whether there was one.
    pub async fn delete_calendar_connection(&self, org: OrgId, host_id: Uuid, id: Uuid) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("DELETE FROM calendar_connections WHERE organization_id = $1 AND host_id = $2 AND id = $3")
                .bind(org.0.to_string())
                .bind(host_id.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE webhook_endpoints SET deleted_us = $3, url = $4 WHERE organization_id = $1 AND id = $2 \
             AND kind = 'calendar' AND deleted_us IS NULL",
        )
        .bind(org.0.to_string())
        .bind(id.to_string())
        .bind(to_us(now()))
        .bind(format!("calendar:{id}:deleted"))
        .execute(&mut *tx)
        .await?;
        bump_busy_version(&mut tx, org, host_id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records how a read of a connection that finished at `at` went: `Ok(())` a success, `Err`
    /// why it failed. Only the status columns change (not `updated_at`, not the host's busy
    /// version), and only if no later read was recorded already (records may arrive out of order,
    /// from several processes).
    pub async fn record_calendar_sync(
        &self,
        org: OrgId,
        id: Uuid,
        at: Timestamp,
        outcome: std::result::Result<(), &str>,
    ) -> Result<()> {
        let (status, synced, error) = match outcome {
            Ok(()) => ("ok", Some(to_us(at)), None),
            Err(error) => ("error", None, Some(error.to_owned())),
        };
        sqlx::query(
            "UPDATE calendar_connections SET status = $3, last_synced_us = COALESCE($4, last_synced_us), \
             last_error = $5, checked_us = $6 \
             WHERE organization_id = $1 AND id = $2 AND (checked_us IS NULL OR checked_us <= $6)",
        )
        .bind(org.0.to_string())
        .bind(id.to_string())
        .bind(status)
        .bind(synced)
        .bind(error)
        .bind(to_us(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Adds a connection's write-back sink (its url only keeps the per-organization uniqueness of
/// sink urls).
async fn insert_sink(tx: &mut sqlx::Transaction<'static, sqlx::Any>, org: OrgId, id: Uuid, at_us: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, organization_id, kind, url, description, events, enabled, \
         secret_sealed, created_us, updated_us) VALUES ($1, $2, 'calendar', $3, '', '[]', $4, '', $5, $5)",
    )
    .bind(id.to_string())
    .bind(org.0.to_string())
    .bind(format!("calendar:{id}"))
    .bind(true)
    .bind(at_us)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Soft-deletes a connection's write-back sink (its attempt log stays; its url is freed).
async fn delete_sink(tx: &mut sqlx::Transaction<'static, sqlx::Any>, org: OrgId, id: Uuid) -> Result<()> {
    sqlx::query(
        "UPDATE webhook_endpoints SET deleted_us = $3, url = $4 WHERE organization_id = $1 AND id = $2 \
         AND kind = 'calendar' AND deleted_us IS NULL",
    )
    .bind(org.0.to_string())
    .bind(id.to_string())
    .bind(to_us(now()))
    .bind(format!("calendar:{id}:deleted"))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes every connection of a host being deleted, with their sinks, in its transaction.
pub(crate) async fn delete_connections_of_host(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    org: OrgId,
    host_id: Uuid,
) -> Result<()> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM calendar_connections WHERE organization_id = $1 AND host_id = $2")
            .bind(org.0.to_string())
            .bind(host_id.to_string())
            .fetch_all(&mut **tx)
            .await?;
    for id in ids {
        delete_sink(tx, org, parse_id(&id)?).await?;
    }
    sqlx::query("DELETE FROM calendar_connections WHERE organization_id = $1 AND host_id = $2")
        .bind(org.0.to_string())
        .bind(host_id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
