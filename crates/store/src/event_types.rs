//! Event types: what can be booked, with its rules and its hosts.
//!
//! The rules live in one JSON `settings` document (they are always read together); the hosts
//! live in `event_type_hosts` so a host that is still in use cannot be deleted.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use uuid::Uuid;

use crate::hosts::{HOST_COLUMNS, host_from_prefixed_row, host_from_row, placeholders};
use crate::{
    EventType, Host, NewEventType, OrgId, Page, PageRequest, Result, Store, StoreError, from_us, now, parse_id, to_us,
};

const EVENT_TYPE_COLUMNS: &str = "id, slug, title, description, settings, created_us, updated_us";

/// An event type row without its hosts.
fn event_type_from_row(row: &AnyRow) -> Result<EventType> {
    let settings: String = row.try_get("settings")?;
    Ok(EventType {
        id: parse_id(row.try_get("id")?)?,
        slug: row.try_get("slug")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        settings: serde_json::from_str(&settings).map_err(|e| StoreError::Corrupt(format!("settings: {e}")))?,
        host_ids: Vec::new(),
        created_at: from_us(row.try_get("created_us")?)?,
        updated_at: from_us(row.try_get("updated_us")?)?,
    })
}

fn settings_json(new: &NewEventType) -> String {
    serde_json::to_string(&new.settings).expect("settings always serialise")
}

/// Maps a unique violation on the slug to a conflict naming it.
fn slug_conflict(slug: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| {
        if StoreError::is_unique_violation(&e) {
            StoreError::Conflict(format!("an event type with slug '{slug}' already exists"))
        } else {
            e.into()
        }
    }
}

/// Checks that every host exists in the organization and takes its row lock (the no-op update),
/// so a concurrent host deletion waits for this transaction and then sees the new assignment.
async fn lock_hosts(tx: &mut Transaction<'static, Any>, org: OrgId, host_ids: &[Uuid]) -> Result<()> {
    for host_id in host_ids {
        let done =
            sqlx::query("UPDATE hosts SET id = id WHERE organization_id = $1 AND id = $2 AND deleted_us IS NULL")
                .bind(org.0.to_string())
                .bind(host_id.to_string())
                .execute(&mut **tx)
                .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::MissingReference(format!("host {host_id} does not exist")));
        }
    }
    Ok(())
}

async fn insert_hosts(tx: &mut Transaction<'static, Any>, event_type_id: Uuid, host_ids: &[Uuid]) -> Result<()> {
    for (position, host_id) in host_ids.iter().enumerate() {
        sqlx::query("INSERT INTO event_type_hosts (event_type_id, host_id, position) VALUES ($1, $2, $3)")
            .bind(event_type_id.to_string())
            .bind(host_id.to_string())
            .bind(position as i64)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Creates an event type and writes `event_type.created`.
    pub async fn create_event_type(
        &self,
        org: OrgId,
        new: NewEventType,
        event_data: impl FnOnce(&EventType) -> serde_json::Value + Send,
    ) -> Result<EventType> {
        let at = now();
        let mut tx = self.begin_write().await?;
        lock_hosts(&mut tx, org, &new.host_ids).await?;
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO event_types (id, organization_id, slug, title, description, settings, created_us, updated_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(id.to_string())
        .bind(org.0.to_string())
        .bind(&new.slug)
        .bind(&new.title)
        .bind(new.description.clone())
        .bind(settings_json(&new))
        .bind(to_us(at))
        .execute(&mut *tx)
        .await
        .map_err(slug_conflict(&new.slug))?;
        insert_hosts(&mut tx, id, &new.host_ids).await?;
        let event_type = EventType {
            id,
            slug: new.slug,
            title: new.title,
            description: new.description,
            settings: new.settings,
            host_ids: new.host_ids,
            created_at: at,
            updated_at: at,
        };
        let (_, queued) = self.insert_event(&mut tx, org, "event_type.created", event_data(&event_type)).await?;
        tx.commit().await?;
        if queued {
            self.wake_delivery_workers();
        }
        Ok(event_type)
    }

    /// Reads one event type with its hosts.
    pub async fn event_type(&self, org: OrgId, id: Uuid) -> Result<Option<EventType>> {
        self.event_type_row(org, id, "AND deleted_us IS NULL").await
    }

    /// Reads one live event type with its live hosts (in the event type's order) in one query:
    /// what the slot API and the booking commit start from.
    pub async fn event_type_with_hosts(&self, org: OrgId, id: Uuid) -> Result<Option<(EventType, Vec<Host>)>> {
        let columns = EVENT_TYPE_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ");
        let host_columns = HOST_COLUMNS.split(", ").map(|c| format!("h.{c} AS h_{c}")).collect::<Vec<_>>().join(", ");
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {columns}, eh.host_id AS assigned_host_id, {host_columns} FROM event_types e \
             LEFT JOIN event_type_hosts eh ON eh.event_type_id = e.id \
             LEFT JOIN hosts h ON h.id = eh.host_id AND h.organization_id = e.organization_id AND h.deleted_us IS NULL \
             WHERE e.organization_id = $1 AND e.id = $2 AND e.deleted_us IS NULL ORDER BY eh.position"
        )))
        .bind(org.0.to_string())
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let mut event_type = event_type_from_row(first)?;
        let mut hosts = Vec::new();
        for row in &rows {
            let assigned: Option<String> = row.try_get("assigned_host_id")?;
            if let Some(assigned) = assigned {
                event_type.host_ids.push(parse_id(&assigned)?);
            }
            let host_id: Option<String> = row.try_get("h_id")?;
            if host_id.is_some() {
                hosts.push(host_from_prefixed_row(row, "h_")?);
            }
        }
        Ok(Some((event_type, hosts)))
    }

    /// Reads one event type even if it was deleted since (what an existing booking was made of).
    pub async fn event_type_of_booking(&self, org: OrgId, id: Uuid) -> Result<Option<EventType>> {
        self.event_type_row(org, id, "").await
    }

    async fn event_type_row(&self, org: OrgId, id: Uuid, live: &str) -> Result<Option<EventType>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {EVENT_TYPE_COLUMNS} FROM event_types WHERE organization_id = $1 AND id = $2 {live}"
        )))
        .bind(org.0.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut event_types = vec![event_type_from_row(&row)?];
        self.attach_hosts(&mut event_types).await?;
        Ok(event_types.pop())
    }

    /// Lists event types with their hosts, oldest first.
    pub async fn list_event_types(&self, org: OrgId, page: &PageRequest) -> Result<Page<EventType>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {EVENT_TYPE_COLUMNS} FROM event_types WHERE organization_id = $1 AND deleted_us IS NULL \
             AND id > $2 ORDER BY id LIMIT $3"
        )))
        .bind(org.0.to_string())
        .bind(page.after_bound())
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        let mut event_types = rows.iter().map(event_type_from_row).collect::<Result<Vec<_>>>()?;
        self.attach_hosts(&mut event_types).await?;
        Ok(page.finish(event_types, |e| e.id.to_string()))
    }

    /// Fills in `host_ids` of each event type with one query.
    async fn attach_hosts(&self, event_types: &mut [EventType]) -> Result<()> {
        if event_types.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT event_type_id, host_id FROM event_type_hosts WHERE event_type_id IN ({}) \
             ORDER BY event_type_id, position",
            placeholders(1, event_types.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for event_type in event_types.iter() {
            query = query.bind(event_type.id.to_string());
        }
        let mut hosts_of: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for row in query.fetch_all(&self.pool).await? {
            let event_type_id = parse_id(row.try_get("event_type_id")?)?;
            hosts_of.entry(event_type_id).or_default().push(parse_id(row.try_get("host_id")?)?);
        }
        for event_type in event_types {
            event_type.host_ids = hosts_of.remove(&event_type.id).unwrap_or_default();
        }
        Ok(())
    }

    /// Replaces an event type's fields if it was last changed at `expected_updated_at`
    /// (optimistic concurrency: two PATCHes never silently overwrite each other). Writes
    /// `event_type.updated`. `None` when there is no such event type.
    pub async fn replace_event_type(
        &self,
        org: OrgId,
        id: Uuid,
        expected_updated_at: jiff::Timestamp,
        new: NewEventType,
        event_data: impl FnOnce(&EventType) -> serde_json::Value + Send,
    ) -> Result<Option<EventType>> {
        let mut tx = self.begin_write().await?;
        lock_hosts(&mut tx, org, &new.host_ids).await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE event_types SET slug = $3, title = $4, description = $5, settings = $6, updated_us = $7 \
             WHERE organization_id = $1 AND id = $2 AND deleted_us IS NULL AND updated_us = $8 \
             RETURNING {EVENT_TYPE_COLUMNS}"
        )))
        .bind(org.0.to_string())
        .bind(id.to_string())
        .bind(&new.slug)
        .bind(&new.title)
        .bind(new.description.clone())
        .bind(settings_json(&new))
        .bind(to_us(now()))
        .bind(to_us(expected_updated_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(slug_conflict(&new.slug))?;
        let Some(row) = row else {
            tx.rollback().await?;
            return match self.event_type(org, id).await? {
                Some(_) => Err(StoreError::Conflict(
                    "the event type was changed by another request; read it again and retry".into(),
                )),
                None => Ok(None),
            };
        };
        let mut event_type = event_type_from_row(&row)?;
        sqlx::query("DELETE FROM event_type_hosts WHERE event_type_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        insert_hosts(&mut tx, id, &new.host_ids).await?;
        event_type.host_ids = new.host_ids;
        let (_, queued) = self.insert_event(&mut tx, org, "event_type.updated", event_data(&event_type)).await?;
        tx.commit().await?;
        if queued {
            self.wake_delivery_workers();
        }
        Ok(Some(event_type))
    }

    /// Deletes an event type and writes `event_type.deleted`; answers what was deleted.
    pub async fn delete_event_type(
        &self,
        org: OrgId,
        id: Uuid,
        event_data: impl FnOnce(&EventType) -> serde_json::Value + Send,
    ) -> Result<Option<EventType>> {
        let Some(mut event_type) = self.event_type(org, id).await? else { return Ok(None) };
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE event_types SET deleted_us = $3 WHERE organization_id = $1 AND id = $2 AND deleted_us IS NULL",
        )
        .bind(org.0.to_string())
        .bind(id.to_string())
        .bind(to_us(now()))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None); // deleted meanwhile by another request
        }
        // The soft-deleted row keeps its hosts for history; the slug becomes free again.
        event_type.updated_at = now();
        let (_, queued) = self.insert_event(&mut tx, org, "event_type.deleted", event_data(&event_type)).await?;
        tx.commit().await?;
        if queued {
            self.wake_delivery_workers();
        }
        Ok(Some(event_type))
    }

    /// The live hosts with these ids, in the order given (missing ones are left out).
    pub async fn hosts_by_ids(&self, org: OrgId, ids: &[Uuid]) -> Result<Vec<Host>> {
        self.host_rows(org, ids, "AND deleted_us IS NULL").await
    }

    /// The hosts with these ids, deleted ones included (the hosts of existing bookings).
    pub async fn hosts_of_bookings(&self, org: OrgId, ids: &[Uuid]) -> Result<Vec<Host>> {
        self.host_rows(org, ids, "").await
    }

    async fn host_rows(&self, org: OrgId, ids: &[Uuid], live: &str) -> Result<Vec<Host>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {HOST_COLUMNS} FROM hosts WHERE organization_id = $1 {live} AND id IN ({})",
            placeholders(2, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(org.0.to_string());
        for id in ids {
            query = query.bind(id.to_string());
        }
        let mut found = query.fetch_all(&self.pool).await?.iter().map(host_from_row).collect::<Result<Vec<_>>>()?;
        found.sort_by_key(|h| ids.iter().position(|id| *id == h.id));
        Ok(found)
    }
}
