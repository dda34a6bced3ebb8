//! Hosts, their availability and their manually entered busy blocks.
//!
//! Hosts are soft-deleted (`deleted_us`), so bookings and history that name them stay readable;
//! a deleted host is invisible to every query here.

use slotd_core::availability::Availability;
use slotd_core::interval::Interval;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use crate::{
    BusyBlock, Host, HostPatch, NewHost, OrgId, Page, PageRequest, Result, Store, StoreError, from_us, now, parse_id,
    to_us,
};

/// What deleting a host did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostDeletion {
    /// The host was deleted.
    Deleted(Box<Host>),
    /// No such host in this organization.
    NotFound,
    /// The host is still assigned to these event types; nothing was changed.
    InUse(Vec<Uuid>),
}

pub(crate) const HOST_COLUMNS: &str = "id, name, email, time_zone, availability, created_us, updated_us";

pub(crate) fn host_from_row(row: &AnyRow) -> Result<Host> {
    host_from_prefixed_row(row, "")
}

/// A host whose columns are named `{prefix}id`, `{prefix}name`, … (joined queries).
pub(crate) fn host_from_prefixed_row(row: &AnyRow, prefix: &str) -> Result<Host> {
    let column = |name: &str| format!("{prefix}{name}");
    let availability: String = row.try_get(column("availability").as_str())?;
    Ok(Host {
        id: parse_id(row.try_get(column("id").as_str())?)?,
        name: row.try_get(column("name").as_str())?,
        email: row.try_get(column("email").as_str())?,
        time_zone: row.try_get(column("time_zone").as_str())?,
        availability: serde_json::from_str(&availability)
            .map_err(|e| StoreError::Corrupt(format!("availability: {e}")))?,
        created_at: from_us(row.try_get(column("created_us").as_str())?)?,
        updated_at: from_us(row.try_get(column("updated_us").as_str())?)?,
    })
}

/// The `[start_us, end_us)` columns of a row as an interval.
fn interval_from_row(row: &AnyRow) -> Result<Interval> {
    Interval::new(from_us(row.try_get("start_us")?)?, from_us(row.try_get("end_us")?)?)
        .ok_or_else(|| StoreError::Corrupt("interval with start >= end".into()))
}

fn availability_json(availability: &Availability) -> String {
    serde_json::to_string(availability).expect("availability always serialises")
}

/// `$first, $first+1, …` for `count` binds: the only dynamic part any query here has.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

impl Store {
    /// Creates a host and writes `host.created` with `event_data(&host)` as its payload.
    pub async fn create_host(
        &self,
        org: OrgId,
        new: NewHost,
        event_data: impl FnOnce(&Host) -> serde_json::Value + Send,
    ) -> Result<Host> {
        let at = now();
        let host = Host {
            id: Uuid::now_v7(),
            name: new.name,
            email: new.email,
            time_zone: new.time_zone,
            availability: new.availability,
            created_at: at,
            updated_at: at,
        };
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO hosts (id, organization_id, name, email, time_zone, availability, created_us, updated_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(host.id.to_string())
        .bind(org.0.to_string())
        .bind(&host.name)
        .bind(&host.email)
        .bind(&host.time_zone)
        .bind(availability_json(&host.availability))
        .bind(to_us(at))
        .execute(&mut *tx)
        .await?;
        let (_, queued) = self.insert_event(&mut tx, org, "host.created", event_data(&host)).await?;
        tx.commit().await?;
        if queued {
            self.wake_delivery_workers();
        }
        Ok(host)
    }

    /// Reads one host.
    pub async fn host(&self, org: OrgId, id: Uuid) -> Result<Option<Host>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {HOST_COLUMNS} FROM hosts WHERE organization_id = $1 AND id = $2 AND deleted_us IS NULL"
        )))
        .bind(org.0.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(host_from_row).transpose()
    }

    /// Lists hosts, oldest first.
    pub async fn list_hosts(&self, org: OrgId, page: &PageRequest) -> Result<Page<Host>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {HOST_COLUMNS} FROM hosts WHERE organization_id = $1 AND deleted_us IS NULL AND id > $2 \
             ORDER BY id LIMIT $3"
        )))
        .bind(org.0.to_string())
        .bind(page.after_bound())
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        let hosts = rows.iter().map(host_from_row).collect::<Result<Vec<_>>>()?;
        Ok(page.finish(hosts, |h| h.id.to_string()))
    }

    /// Applies a partial update and writes `host.updated`; `None` when there is no such host.
    pub async fn update_host(
        &self,
        org: OrgId,
        id: Uuid,
        patch: HostPatch,
        event_data: impl FnOnce(&Host) -> serde_json::Value + Send,
    ) -> Result<Option<Host>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE hosts SET name = COALESCE($3, name), email = COALESCE($4, email), \
             time_zone = COALESCE($5, time_zone), availability = COALESCE($6, availability), updated_us = $7 \
             WHERE organization_id = $1 AND id = $2 AND deleted_us IS NULL RETURNING {HOST_COLUMNS}"
        )))
        .bind(org.0.to_string())
        .bind(id.to_string())
        .bind(patch.name)
        .bind(patch.email)
        .bind(patch.time_zone)
        .bind(patch.availability.as_ref().map(availability_json))
        .bind(to_us(now()))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let host = host_from_row(&row)?;
        let (_, queued) = self.insert_event(&mut tx, org, "host.updated", event_data(&host)).await?;
        tx.commit().await?;
        if queued {
            self.wake_delivery_workers();
        }
        Ok(Some(host))
    }

    /// Deletes a host that no live event type uses, writing `host.deleted`.
    pub async fn delete_host(
        &self,
        org: OrgId,
        id: Uuid,
        event_data: impl FnOnce(&Host) -> serde_json::Value + Send,
    ) -> Result<HostDeletion> {
        let mut tx = self.begin_write().await?;
        // The update takes the host's row lock first, so an event type being created with this
        // host either commits before (and is seen below) or finds the host gone.
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE hosts SET deleted_us = $3 WHERE organization_id = $1 AND id = $2 AND deleted_us IS NULL \
             RETURNING {HOST_COLUMNS}"
        )))
        .bind(org.0.to_string())
        .bind(id.to_string())
        .bind(to_us(now()))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(HostDeletion::NotFound) };
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT eth.event_type_id FROM event_type_hosts eth JOIN event_types et ON et.id = eth.event_type_id \
             WHERE eth.host_id = $1 AND et.deleted_us IS NULL ORDER BY eth.event_type_id",
        )
        .bind(id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        if !users.is_empty() {
            tx.rollback().await?;
            let ids = users.iter().map(|u| parse_id(u)).collect::<Result<Vec<_>>>()?;
            return Ok(HostDeletion::InUse(ids));
        }
        let host = host_from_row(&row)?;
        // Its calendar connections go with it: their credentials are not kept for a host that
        // can no longer be reached through the API.
        crate::calendars::delete_connections_of_host(&mut tx, org, id).await?;
        let (_, queued) = self.insert_event(&mut tx, org, "host.deleted", event_data(&host)).await?;
        tx.commit().await?;
        if queued {
            self.wake_delivery_workers();
        }
        Ok(HostDeletion::Deleted(Box::new(host)))
    }

    /// Adds a busy block to a host; `None` when there is no such host.
    pub async fn add_busy_block(
        &self,
        org: OrgId,
        host_id: Uuid,
        interval: Interval,
        title: Option<String>,
    ) -> Result<Option<BusyBlock>> {
        let block = BusyBlock { id: Uuid::now_v7(), host_id, interval, title, created_at: now() };
        let mut tx = self.begin_write().await?;
        // INSERT … SELECT inserts nothing unless the host exists in this organization.
        let done = sqlx::query(
            "INSERT INTO busy_blocks (id, organization_id, host_id, start_us, end_us, title, created_us) \
             SELECT $1, organization_id, id, $4, $5, $6, $7 FROM hosts \
             WHERE organization_id = $2 AND id = $3 AND deleted_us IS NULL",
        )
        .bind(block.id.to_string())
        .bind(org.0.to_string())
        .bind(host_id.to_string())
        .bind(to_us(interval.start))
        .bind(to_us(interval.end))
        .bind(block.title.clone())
        .bind(to_us(block.created_at))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        bump_busy_version(&mut tx, org, host_id).await?;
        tx.commit().await?;
        Ok(Some(block))
    }

    /// Lists a host's busy blocks, oldest first; `None` when there is no such host.
    pub async fn list_busy_blocks(
        &self,
        org: OrgId,
        host_id: Uuid,
        page: &PageRequest,
    ) -> Result<Option<Page<BusyBlock>>> {
        if self.host(org, host_id).await?.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT id, host_id, start_us, end_us, title, created_us FROM busy_blocks \
             WHERE organization_id = $1 AND host_id = $2 AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(org.0.to_string())
        .bind(host_id.to_string())
        .bind(page.after_bound())
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        let blocks = rows
            .iter()
            .map(|row| {
                Ok(BusyBlock {
                    id: parse_id(row.try_get("id")?)?,
                    host_id: parse_id(row.try_get("host_id")?)?,
                    interval: interval_from_row(row)?,
                    title: row.try_get("title")?,
                    created_at: from_us(row.try_get("created_us")?)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(page.finish(blocks, |b| b.id.to_string())))
    }

    /// Deletes one busy block; answers whether it existed.
    pub async fn delete_busy_block(&self, org: OrgId, host_id: Uuid, block_id: Uuid) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM busy_blocks WHERE organization_id = $1 AND host_id = $2 AND id = $3")
            .bind(org.0.to_string())
            .bind(host_id.to_string())
            .bind(block_id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        bump_busy_version(&mut tx, org, host_id).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Marks a host's busy blocks as changed, in the transaction that changes them: every process's
/// cached copy of them stops matching (see `Store::busy_time`). Whether the host is live (a
/// deleted host's version is left alone).
pub(crate) async fn bump_busy_version(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    org: OrgId,
    host_id: Uuid,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE hosts SET busy_version = busy_version + 1 WHERE organization_id = $1 AND id = $2 AND deleted_us IS NULL",
    )
    .bind(org.0.to_string())
    .bind(host_id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
