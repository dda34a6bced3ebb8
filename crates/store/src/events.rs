//! The event outbox: every change writes its event here inside the change's own transaction,
//! and the event log API (and later the webhook workers) read from here.

use jiff::Timestamp;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use uuid::Uuid;

use crate::{Backend, Event, OrgId, Page, PageRequest, Result, Store, StoreError, from_us, now, to_us};

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

/// The `LIKE` pattern that finds `event_type` in an endpoint's JSON event list (`["a","b"]`).
pub(crate) fn subscription_pattern(event_type: &str) -> String {
    let mut pattern = String::with_capacity(event_type.len() + 4);
    pattern.push_str("%\"");
    for c in event_type.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str("\"%");
    pattern
}

/// The endpoints of an organization that receive an event of type `$3` (pattern `$4`): live,
/// enabled, and subscribed to it or to everything. Calendar sinks are not among them: they take
/// only their host's booking changes (see [`Store::queue_calendar_writes`]).
const SUBSCRIBED: &str = "FROM webhook_endpoints w WHERE w.organization_id = $2 AND w.enabled AND w.deleted_us IS NULL \
     AND w.kind <> 'calendar' AND (w.events = '[]' OR w.events LIKE $4 ESCAPE '\\')";

impl Store {
    /// Writes one event inside the caller's transaction, with the first delivery attempt to every
    /// endpoint subscribed to it (the transactional outbox: the change, its event and its
    /// deliveries commit or vanish together). Answers the event's id and whether any delivery
    /// was queued: then call [`Store::wake_delivery_workers`] after the commit.
    pub(crate) async fn insert_event(
        &self,
        tx: &mut Transaction<'static, Any>,
        org: OrgId,
        event_type: &str,
        data: serde_json::Value,
    ) -> Result<(String, bool)> {
        let event = Event { id: new_event_id(), event_type: event_type.to_owned(), data, created_at: now() };
        let insert_event =
            "INSERT INTO events (id, organization_id, type, data, created_us) VALUES ($1, $2, $3, $5, $6)";
        let fan_out = format!(
            "INSERT INTO webhook_attempts (organization_id, endpoint_id, event_id, attempt, run_attempt, origin, status, \
             due_us, created_us) SELECT $2, w.id, $1, 1, 1, 'event', 'pending', $6, $6 {SUBSCRIBED}"
        );
        // PostgreSQL does both in one round trip; the event row is written first by the CTE.
        let statements = match self.backend {
            Backend::Postgres => {
                vec![format!("WITH ev AS ({insert_event} RETURNING id) {fan_out} AND EXISTS (SELECT 1 FROM ev)")]
            }
            Backend::Sqlite => vec![insert_event.to_owned(), fan_out],
        };
        let mut queued = 0;
        for sql in statements {
            // The fan-out is the last statement; its count is the number of deliveries queued.
            queued = sqlx::query(AssertSqlSafe(sql))
                .bind(&event.id)
                .bind(org.0.to_string())
                .bind(&event.event_type)
                .bind(subscription_pattern(&event.event_type))
                .bind(event.data.to_string())
                .bind(to_us(event.created_at))
                .execute(&mut **tx)
                .await?
                .rows_affected();
        }
        Ok((event.id, queued > 0))
    }

    /// Queues event `event_id` (a booking change) to the write-back calendars of these hosts,
    /// inside the change's transaction; whether any was queued. Each such delivery makes the
    /// calendar match the booking as it is when the delivery runs, so the order and number of
    /// deliveries do not matter.
    pub(crate) async fn queue_calendar_writes(
        tx: &mut Transaction<'static, Any>,
        org: OrgId,
        event_id: &str,
        host_ids: &[Uuid],
    ) -> Result<bool> {
        if host_ids.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "INSERT INTO webhook_attempts (organization_id, endpoint_id, event_id, attempt, run_attempt, origin, \
             status, due_us, created_us) SELECT $1, w.id, $2, 1, 1, 'event', 'pending', $3, $3 \
             FROM webhook_endpoints w JOIN calendar_connections c ON c.id = w.id \
             WHERE w.organization_id = $1 AND w.kind = 'calendar' AND w.enabled AND w.deleted_us IS NULL \
             AND c.host_id IN ({})",
            crate::hosts::placeholders(4, host_ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(org.0.to_string()).bind(event_id).bind(to_us(now()));
        for id in host_ids {
            query = query.bind(id.to_string());
        }
        Ok(query.execute(&mut **tx).await?.rows_affected() > 0)
    }

    /// Wakes this process's delivery workers (after a commit that may have queued deliveries).
    pub(crate) fn wake_delivery_workers(&self) {
        self.deliveries_queued.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes whenever this process queues deliveries.
    pub fn delivery_wakeups(&self) -> tokio::sync::watch::Receiver<u64> {
        self.deliveries_queued.subscribe()
    }

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
