//! The event outbox: every change writes its event here inside the change's own transaction,
//! and the event log API (and later the webhook workers) read from here.

use jiff::Timestamp;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use crate::{Event, OrgId, Page, PageRequest, Result, Store, StoreError, from_us, now, to_us};

/// Crockford's base32 alphabet, as used by ULIDs.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new event id: `evt_` and a UUIDv7 written as a 26-character ULID, so ids sort by time.
pub(crate) fn new_event_id() -> String {
    let bits = Uuid::now_v7().as_u128();
    let mut id = String::with_capacity(30);
    id.push_str("evt_");
    for i in (0..26).rev() {
        id.push(CROCKFORD[((bits >> (i * 5)) & 0x1f) as usize] as char);
    }
    id
}

/// Writes one event inside the caller's transaction.
pub(crate) async fn insert_event(
    tx: &mut Transaction<'static, Any>,
    org: OrgId,
    event_type: &str,
    data: serde_json::Value,
) -> Result<Event> {
    let event = Event { id: new_event_id(), event_type: event_type.to_owned(), data, created_at: now() };
    sqlx::query("INSERT INTO events (id, organization_id, type, data, created_us) VALUES ($1, $2, $3, $4, $5)")
        .bind(&event.id)
        .bind(org.0.to_string())
        .bind(&event.event_type)
        .bind(event.data.to_string())
        .bind(to_us(event.created_at))
        .execute(&mut **tx)
        .await?;
    Ok(event)
}

impl Store {
    /// The organization's events, oldest first, optionally of one type and since an instant.
    pub async fn list_events(
        &self,
        org: OrgId,
        event_type: Option<&str>,
        since: Option<Timestamp>,
        page: &PageRequest,
    ) -> Result<Page<Event>> {
        let rows = sqlx::query(
            "SELECT id, type, data, created_us FROM events \
             WHERE organization_id = $1 AND id > $2 AND ($3 = '' OR type = $3) AND created_us >= $4 \
             ORDER BY id LIMIT $5",
        )
        .bind(org.0.to_string())
        .bind(page.after_bound())
        .bind(event_type.unwrap_or(""))
        .bind(since.map_or(i64::MIN, to_us))
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        let events = rows
            .iter()
            .map(|row| {
                let data: String = row.try_get("data")?;
                Ok(Event {
                    id: row.try_get("id")?,
                    event_type: row.try_get("type")?,
                    data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    created_at: from_us(row.try_get("created_us")?)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(page.finish(events, |e| e.id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_26_crockford_characters_and_sort_by_creation() {
        let a = new_event_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_event_id();
        assert_eq!(a.len(), 30);
        assert!(a[4..].bytes().all(|c| CROCKFORD.contains(&c)));
        assert!(a < b);
    }
}
