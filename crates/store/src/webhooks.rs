//! Delivery sinks: where an organization's events are delivered, which events, and the secret
//! (stored sealed by the server: the store never sees it in clear). A sink is of a [`SinkKind`]:
//! a webhook endpoint (its secret is the signing secret) or a Slack channel (its secret is the
//! incoming-webhook URL itself, and `url` holds only a digest of it, for uniqueness). Every read
//! and change names the kind, so an id of one kind is never found as the other.
//!
//! The plan limit is checked and the endpoint inserted in one transaction that first locks the
//! organization's row, so concurrent creations cannot together pass the limit.

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use crate::{OrgId, Page, PageRequest, Result, Store, StoreError, from_us, now, parse_id, to_us};

/// What kind of sink an endpoint row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SinkKind {
    /// A webhook endpoint: signed Standard Webhooks POSTs of the event envelope.
    Webhook,
    /// A Slack channel: incoming-webhook messages built from the event.
    Slack,
    /// A calendar connection's write-back: the booking's event put into or deleted from the
    /// host's calendar (the row's id is the connection's).
    Calendar,
}

impl SinkKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::Slack => "slack",
            SinkKind::Calendar => "calendar",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<SinkKind> {
        match s {
            "webhook" => Ok(SinkKind::Webhook),
            "slack" => Ok(SinkKind::Slack),
            "calendar" => Ok(SinkKind::Calendar),
            other => Err(StoreError::Corrupt(format!("sink kind {other:?}"))),
        }
    }
}

/// A delivery sink: a webhook endpoint or a Slack channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// Its id.
    pub id: Uuid,
    /// Webhook endpoint or Slack channel.
    pub kind: SinkKind,
    /// Where events are POSTed (for a Slack channel: `slack:` and the URL's digest).
    pub url: String,
    /// Free text for people.
    pub description: String,
    /// The zone a Slack channel's messages state times in (`None`: the booking's first host's).
    pub time_zone: Option<String>,
    /// Subscribed event types; empty means every event.
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// The signing secret (for a Slack channel: its URL), sealed by the server.
    pub secret_sealed: String,
    /// The previous secret during a rotation's grace period, sealed.
    pub previous_secret_sealed: Option<String>,
    /// When the previous secret stops signing.
    pub previous_secret_until: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Why slotd disabled it (`gone`: it answered 410; `failing`: every attempt failed for the
    /// configured period; for a Slack channel, what Slack answered, e.g. `channel_is_archived`);
    /// `None` while enabled or when it was disabled through the API.
    pub disabled_reason: Option<String>,
}

/// What a new endpoint is made of (validated by the caller).
#[derive(Clone, Debug)]
pub struct NewWebhookEndpoint {
    /// Webhook endpoint or Slack channel.
    pub kind: SinkKind,
    /// Where events are POSTed (for a Slack channel: `slack:` and the URL's digest).
    pub url: String,
    /// Free text.
    pub description: String,
    /// A Slack channel's time zone.
    pub time_zone: Option<String>,
    /// Subscribed event types (empty: all).
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// The signing secret (a Slack channel's URL), sealed.
    pub secret_sealed: String,
}

impl NewWebhookEndpoint {
    /// A webhook endpoint (no time zone).
    pub fn webhook(
        url: String,
        description: String,
        events: Vec<String>,
        enabled: bool,
        secret_sealed: String,
    ) -> Self {
        NewWebhookEndpoint {
            kind: SinkKind::Webhook,
            url,
            description,
            time_zone: None,
            events,
            enabled,
            secret_sealed,
        }
    }
}

/// A partial update of an endpoint; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct WebhookPatch {
    /// New URL (validated).
    pub url: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New event filter.
    pub events: Option<Vec<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New time zone (`Some(None)`: back to the default).
    pub time_zone: Option<Option<String>>,
    /// New sealed secret (a Slack channel whose URL changes).
    pub secret_sealed: Option<String>,
}

const COLUMNS: &str = "id, kind, time_zone, url, description, events, CAST(CASE WHEN enabled THEN 1 ELSE 0 END AS BIGINT) AS enabled_flag, \
     secret_sealed, previous_secret_sealed, previous_secret_until_us, created_us, updated_us, disabled_reason";

fn endpoint_from_row(row: &AnyRow) -> Result<WebhookEndpoint> {
    let events: String = row.try_get("events")?;
    let enabled: i64 = row.try_get("enabled_flag")?;
    let until: Option<i64> = row.try_get("previous_secret_until_us")?;
    Ok(WebhookEndpoint {
        id: parse_id(row.try_get("id")?)?,
        kind: SinkKind::parse(row.try_get("kind")?)?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        time_zone: row.try_get("time_zone")?,
        events: serde_json::from_str(&events).map_err(|e| StoreError::Corrupt(format!("events: {e}")))?,
        enabled: enabled != 0,
        secret_sealed: row.try_get("secret_sealed")?,
        previous_secret_sealed: row.try_get("previous_secret_sealed")?,
        previous_secret_until: until.map(from_us).transpose()?,
        created_at: from_us(row.try_get("created_us")?)?,
        updated_at: from_us(row.try_get("updated_us")?)?,
        disabled_reason: row.try_get("disabled_reason")?,
    })
}

fn url_conflict(kind: SinkKind, url: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| {
        if StoreError::is_unique_violation(&e) {
            StoreError::Conflict(match kind {
                SinkKind::Webhook => format!("a webhook endpoint for {url} already exists in this organization"),
                // The URL is a secret: the message does not repeat it.
                SinkKind::Slack => "a Slack channel with this webhook URL already exists in this organization".into(),
                SinkKind::Calendar => "this calendar connection already has a write-back sink".into(),
            })
        } else {
            e.into()
        }
    }
}

impl Store {
    /// Creates an endpoint unless the organization already has `limit` of its kind
    /// ([`StoreError::PlanLimit`]) or one with the same URL ([`StoreError::Conflict`]).
    pub async fn create_webhook_endpoint(
        &self,
        org: OrgId,
        new: NewWebhookEndpoint,
        limit: Option<u32>,
    ) -> Result<WebhookEndpoint> {
        let at = now();
        let mut tx = self.begin_write().await?;
        // The organization's row lock serialises creations of one organization.
        sqlx::query("UPDATE organizations SET id = id WHERE id = $1").bind(org.0.to_string()).execute(&mut *tx).await?;
        if let Some(limit) = limit {
            let count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM webhook_endpoints WHERE organization_id = $1 AND kind = $2 AND deleted_us IS NULL",
            )
            .bind(org.0.to_string())
            .bind(new.kind.as_str())
            .fetch_one(&mut *tx)
            .await?;
            if count >= i64::from(limit) {
                return Err(StoreError::PlanLimit(limit));
            }
        }
        let endpoint = WebhookEndpoint {
            id: Uuid::now_v7(),
            kind: new.kind,
            url: new.url,
            description: new.description,
            time_zone: new.time_zone,
            events: new.events,
            enabled: new.enabled,
            secret_sealed: new.secret_sealed,
            previous_secret_sealed: None,
            previous_secret_until: None,
            created_at: at,
            updated_at: at,
            disabled_reason: None,
        };
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, organization_id, url, description, events, enabled, secret_sealed, \
             created_us, updated_us, kind, time_zone) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)",
        )
        .bind(endpoint.id.to_string())
        .bind(org.0.to_string())
        .bind(&endpoint.url)
        .bind(&endpoint.description)
        .bind(serde_json::to_string(&endpoint.events).expect("strings serialise"))
        .bind(endpoint.enabled)
        .bind(&endpoint.secret_sealed)
        .bind(to_us(at))
        .bind(endpoint.kind.as_str())
        .bind(endpoint.time_zone.clone())
        .execute(&mut *tx)
        .await
        .map_err(url_conflict(endpoint.kind, &endpoint.url))?;
        tx.commit().await?;
        Ok(endpoint)
    }

    /// One live webhook endpoint of the organization.
    pub async fn webhook_endpoint(&self, org: OrgId, id: Uuid) -> Result<Option<WebhookEndpoint>> {
        self.sink(org, SinkKind::Webhook, id).await
    }

    /// One live sink of the organization, of that kind.
    pub async fn sink(&self, org: OrgId, kind: SinkKind, id: Uuid) -> Result<Option<WebhookEndpoint>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE organization_id = $1 AND id = $2 AND kind = $3 \
             AND deleted_us IS NULL"
        )))
        .bind(org.0.to_string())
        .bind(id.to_string())
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(endpoint_from_row).transpose()
    }

    /// The organization's live webhook endpoints, oldest first.
    pub async fn list_webhook_endpoints(&self, org: OrgId, page: &PageRequest) -> Result<Page<WebhookEndpoint>> {
        self.list_sinks(org, SinkKind::Webhook, page).await
    }

    /// The organization's live sinks of that kind, oldest first.
    pub async fn list_sinks(&self, org: OrgId, kind: SinkKind, page: &PageRequest) -> Result<Page<WebhookEndpoint>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE organization_id = $1 AND kind = $4 AND deleted_us IS NULL \
             AND id > $2 ORDER BY id LIMIT $3"
        )))
        .bind(org.0.to_string())
        .bind(page.after_bound())
        .bind(page.fetch_limit())
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        let endpoints = rows.iter().map(endpoint_from_row).collect::<Result<Vec<_>>>()?;
        Ok(page.finish(endpoints, |e| e.id.to_string()))
    }

    /// Applies a patch to a webhook endpoint; `None` when there is no such endpoint.
    pub async fn update_webhook_endpoint(
        &self,
        org: OrgId,
        id: Uuid,
        patch: WebhookPatch,
    ) -> Result<Option<WebhookEndpoint>> {
        self.update_sink(org, SinkKind::Webhook, id, patch).await
    }

    /// Applies a patch to a sink of that kind; `None` when there is no such sink.
    pub async fn update_sink(
        &self,
        org: OrgId,
        kind: SinkKind,
        id: Uuid,
        patch: WebhookPatch,
    ) -> Result<Option<WebhookEndpoint>> {
        let Some(mut endpoint) = self.sink(org, kind, id).await? else { return Ok(None) };
        if let Some(url) = patch.url {
            endpoint.url = url;
        }
        if let Some(description) = patch.description {
            endpoint.description = description;
        }
        if let Some(events) = patch.events {
            endpoint.events = events;
        }
        let time_zone_changes = patch.time_zone.is_some();
        if let Some(time_zone) = patch.time_zone {
            endpoint.time_zone = time_zone;
        }
        // Written only when the patch brings one: a rotation committed since the read above
        // must not be undone by writing back the secret that was read.
        if let Some(sealed) = &patch.secret_sealed {
            endpoint.secret_sealed = sealed.clone();
        }
        if let Some(enabled) = patch.enabled {
            if enabled != endpoint.enabled {
                endpoint.disabled_reason = None;
            }
            endpoint.enabled = enabled;
        }
        endpoint.updated_at = now();
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET url = $3, description = $4, events = $5, \
             failing_since_us = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since_us END, \
             disabled_reason = CASE WHEN $6 = enabled THEN disabled_reason ELSE NULL END, enabled = $6, updated_us = $7, \
             time_zone = CASE WHEN $11 THEN $8 ELSE time_zone END, secret_sealed = COALESCE($9, secret_sealed) \
             WHERE organization_id = $1 AND id = $2 AND kind = $10 AND deleted_us IS NULL",
        )
        .bind(org.0.to_string())
        .bind(id.to_string())
        .bind(&endpoint.url)
        .bind(&endpoint.description)
        .bind(serde_json::to_string(&endpoint.events).expect("strings serialise"))
        .bind(endpoint.enabled)
        .bind(to_us(endpoint.updated_at))
        .bind(endpoint.time_zone.clone())
        .bind(patch.secret_sealed)
        .bind(kind.as_str())
        .bind(time_zone_changes)
        .execute(&self.pool)
        .await
        .map_err(url_conflict(kind, &endpoint.url))?;
        Ok((done.rows_affected() == 1).then_some(endpoint))
    }

    /// Replaces the signing secret; the current one keeps signing until `previous_until`.
    pub async fn rotate_webhook_secret(
        &self,
        org: OrgId,
        id: Uuid,
        new_sealed: &str,
        previous_until: Timestamp,
    ) -> Result<Option<WebhookEndpoint>> {
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret_sealed = secret_sealed, previous_secret_until_us = $4, \
             secret_sealed = $3, updated_us = $5 WHERE organization_id = $1 AND id = $2 AND kind = 'webhook' \
             AND deleted_us IS NULL",
        )
        .bind(org.0.to_string())
        .bind(id.to_string())
        .bind(new_sealed)
        .bind(to_us(previous_until))
        .bind(to_us(now()))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        self.webhook_endpoint(org, id).await
    }

    /// Deletes a webhook endpoint (its URL becomes free again); false when there is none.
    pub async fn delete_webhook_endpoint(&self, org: OrgId, id: Uuid) -> Result<bool> {
        self.delete_sink(org, SinkKind::Webhook, id).await
    }

    /// Deletes a sink of that kind (its URL becomes free again); false when there is none.
    pub async fn delete_sink(&self, org: OrgId, kind: SinkKind, id: Uuid) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET deleted_us = $3 WHERE organization_id = $1 AND id = $2 AND kind = $4 \
             AND deleted_us IS NULL",
        )
        .bind(org.0.to_string())
        .bind(id.to_string())
        .bind(to_us(now()))
        .bind(kind.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
