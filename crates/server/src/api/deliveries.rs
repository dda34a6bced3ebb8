//! What happened to an endpoint's deliveries, and how to make them again:
//! `POST /v1/webhooks/{id}/test`, `GET /v1/webhooks/{id}/deliveries`,
//! `POST /v1/webhooks/{id}/deliveries/{attempt_id}/retry` and `POST /v1/webhooks/{id}/replay`.
//! Handlers only queue attempts; the delivery workers make them. The same steps serve Slack
//! channels (`api::slack`): each finds the sink by organization, kind and id first, so an id of
//! another organization or of the other kind is not found.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use slotd_store::{AttemptStatus, DeliveryAttempt, DeliveryFilter, OrgId, SinkKind, WebhookEndpoint};
use utoipa::{IntoParams, ToSchema};

use super::events::EventEnvelope;
use super::{ListResponse, PageParams, parse_path_id};
use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};

/// Most events one replay call queues; the answer says where to continue.
const REPLAY_MAX_EVENTS: u32 = 10_000;

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Attempt id (for `…/deliveries/{attempt_id}/retry`).
    #[schema(example = "1042")]
    id: String,
    /// The event, also sent as the `webhook-id` header.
    event_id: String,
    /// The event's type.
    event_type: String,
    /// 1 for the first attempt of this event to this endpoint, then 2, 3, …
    attempt: i64,
    /// Why the attempt was made: `event`, `retry`, `manual`, `replay` or `test`.
    trigger: String,
    /// `pending`, `succeeded` or `failed`.
    #[schema(example = "succeeded")]
    status: String,
    /// The receiver's HTTP status, when it answered.
    response_status: Option<u16>,
    /// The first 4 KB of the receiver's answer.
    response_body: Option<String>,
    /// How long the attempt took.
    duration_ms: Option<u64>,
    /// Why it failed, in words.
    error: Option<String>,
    /// When the attempt was queued.
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// When it was made (finished or failed).
    #[schema(value_type = Option<String>, format = DateTime)]
    attempted_at: Option<Timestamp>,
    /// For a pending attempt: when it is due (or, while it is being made, when its claim ends).
    #[schema(value_type = Option<String>, format = DateTime)]
    next_attempt_at: Option<Timestamp>,
}

impl From<DeliveryAttempt> for DeliveryView {
    fn from(a: DeliveryAttempt) -> DeliveryView {
        DeliveryView {
            id: a.id.to_string(),
            event_id: a.event_id,
            event_type: a.event_type,
            attempt: a.attempt,
            trigger: a.origin,
            status: a.status.as_str().to_owned(),
            response_status: a.response_status,
            response_body: a.response_body,
            duration_ms: a.duration_ms,
            error: a.error,
            created_at: a.created_at,
            attempted_at: a.finished_at,
            next_attempt_at: (a.status == AttemptStatus::Pending).then_some(a.due_at),
        }
    }
}

/// The answer of `POST /v1/webhooks/{id}/test`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestSent {
    /// The `webhook.test` event (also in `GET /v1/events`).
    event: EventEnvelope,
    /// Its queued attempt; follow it in the deliveries list.
    delivery: DeliveryView,
}

/// What a sink of a kind is called in messages, and its collection's path.
fn noun(kind: SinkKind) -> (&'static str, &'static str) {
    match kind {
        SinkKind::Webhook => ("webhook endpoint", "/v1/webhooks"),
        SinkKind::Slack => ("Slack channel", "/v1/slack-channels"),
        SinkKind::Calendar => ("calendar connection", "/v1/hosts/{host_id}/calendars"),
    }
}

/// The 404 of a sink that is not there (for this organization and kind).
pub(super) fn sink_not_found(kind: SinkKind, id: impl std::fmt::Display) -> ApiError {
    ApiError::NotFound(format!("no {} with id {id}", noun(kind).0))
}

async fn endpoint(state: &AppState, org: OrgId, raw_id: &str) -> Result<WebhookEndpoint, ApiError> {
    sink(state, org, SinkKind::Webhook, raw_id).await
}

/// The organization's live sink of this kind with the id in the path.
pub(super) async fn sink(
    state: &AppState,
    org: OrgId,
    kind: SinkKind,
    raw_id: &str,
) -> Result<WebhookEndpoint, ApiError> {
    let id = parse_path_id(raw_id, noun(kind).0)?;
    state.store.sink(org, kind, id).await?.ok_or_else(|| sink_not_found(kind, id))
}

fn require_enabled(endpoint: &WebhookEndpoint) -> Result<(), ApiError> {
    if endpoint.enabled {
        return Ok(());
    }
    let (name, path) = noun(endpoint.kind);
    let why = match (endpoint.kind, endpoint.disabled_reason.as_deref()) {
        (_, None) => String::new(),
        (SinkKind::Webhook, Some("gone")) => " (slotd disabled it after it answered 410 Gone)".into(),
        (_, Some("failing")) => " (slotd disabled it after its deliveries kept failing)".into(),
        (SinkKind::Slack, Some(said)) => format!(" (slotd disabled it after Slack answered {said})"),
        (SinkKind::Webhook | SinkKind::Calendar, Some(_)) => String::new(),
    };
    Err(ApiError::Conflict(format!("the {name} is disabled{why}; enable it with PATCH {path}/{} first", endpoint.id)))
}

/// Send a `webhook.test` event to this endpoint only (also when it is disabled).
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 202, description = "Queued; the delivery is made at once", body = TestSent)))]
pub async fn send_test(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<TestSent>), ApiError> {
    test_sink(&state, org, SinkKind::Webhook, &id).await
}

/// Queues a `webhook.test` event to one sink of the kind.
pub(super) async fn test_sink(
    state: &AppState,
    org: OrgId,
    kind: SinkKind,
    id: &str,
) -> Result<(StatusCode, Json<TestSent>), ApiError> {
    let endpoint = sink(state, org, kind, id).await?;
    let (event, attempt_id) =
        state.store.send_test_event(org, endpoint.id).await?.ok_or_else(|| sink_not_found(kind, endpoint.id))?;
    let delivery = state
        .store
        .delivery_attempt(org, endpoint.id, attempt_id)
        .await?
        .ok_or_else(|| ApiError::Internal("the queued test delivery vanished".into()))?;
    Ok((StatusCode::ACCEPTED, Json(TestSent { event: event.into(), delivery: delivery.into() })))
}

/// `GET /v1/webhooks/{id}/deliveries` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only attempts in this state: `pending`, `succeeded` or `failed`.
    status: Option<String>,
    /// Only attempts of this event.
    event_id: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List the endpoint's delivery attempts, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id"), DeliveryParams),
    responses((status = 200, description = "A page of attempts", body = ListResponse<DeliveryView>)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> Result<Json<ListResponse<DeliveryView>>, ApiError> {
    list_sink_deliveries(&state, org, SinkKind::Webhook, &id, params).await
}

/// A page of one sink's attempts, newest first.
pub(super) async fn list_sink_deliveries(
    state: &AppState,
    org: OrgId,
    kind: SinkKind,
    id: &str,
    params: DeliveryParams,
) -> Result<Json<ListResponse<DeliveryView>>, ApiError> {
    let endpoint = sink(state, org, kind, id).await?;
    let page = PageParams { limit: params.limit, cursor: params.cursor }.to_request()?;
    let before = match page.after {
        None => None,
        Some(text) => {
            Some(text.parse::<i64>().map_err(|_| ApiError::field("/cursor", "not a cursor this API handed out"))?)
        }
    };
    let status = match params.status.as_deref() {
        None => None,
        Some("pending") => Some(AttemptStatus::Pending),
        Some("succeeded") => Some(AttemptStatus::Succeeded),
        Some("failed") => Some(AttemptStatus::Failed),
        Some(_) => return Err(ApiError::field("/status", "must be pending, succeeded or failed")),
    };
    let filter = DeliveryFilter { status, event_id: params.event_id, limit: page.limit, before };
    let (attempts, next) = state.store.list_deliveries(org, endpoint.id, &filter).await?;
    let page = slotd_store::Page { items: attempts, next_after: next.map(|id| id.to_string()) };
    Ok(Json(ListResponse::from_page(page, DeliveryView::from)))
}

/// Try a failed attempt's event again now (a new attempt with a fresh retry schedule).
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{attempt_id}/retry", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id"), ("attempt_id" = String, Path, description = "Attempt id")),
    responses((status = 202, description = "The new attempt, queued", body = DeliveryView)))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath((id, attempt_id)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    retry_sink_delivery(&state, org, SinkKind::Webhook, &id, &attempt_id).await
}

/// Queues a failed attempt of one sink again.
pub(super) async fn retry_sink_delivery(
    state: &AppState,
    org: OrgId,
    kind: SinkKind,
    id: &str,
    attempt_id: &str,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let endpoint = sink(state, org, kind, id).await?;
    let missing = || ApiError::NotFound(format!("no delivery attempt {attempt_id} of this {}", noun(kind).0));
    let attempt: i64 = attempt_id.parse().map_err(|_| missing())?;
    require_enabled(&endpoint)?;
    let queued = state.store.retry_delivery(org, endpoint.id, attempt).await?.ok_or_else(missing)?;
    Ok((StatusCode::ACCEPTED, Json(queued.into())))
}

/// `POST /v1/webhooks/{id}/replay` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Send again every event created at or after this instant (that the endpoint subscribes to).
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::extract::instant")]
    since: Timestamp,
}

/// The answer of a replay.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayQueued {
    /// Events queued for delivery by this call.
    queued: u64,
    /// False when the call stopped at its limit (10,000 events): call again with `since` = `next_since`.
    complete: bool,
    /// Where to continue when not complete.
    #[schema(value_type = Option<String>, format = DateTime)]
    next_since: Option<Timestamp>,
}

/// Deliver the organization's events since an instant to this endpoint again (the same event
/// ids, so receivers can tell repeats). Events already waiting for this endpoint are skipped.
#[utoipa::path(post, path = "/v1/webhooks/{id}/replay", tag = "webhooks", request_body = ReplayRequest,
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 202, description = "Queued", body = ReplayQueued)))]
pub async fn replay(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> Result<(StatusCode, Json<ReplayQueued>), ApiError> {
    let endpoint = endpoint(&state, org, &id).await?;
    require_enabled(&endpoint)?;
    let (queued, last) = state
        .store
        .replay_events(org, endpoint.id, body.since, REPLAY_MAX_EVENTS)
        .await?
        .ok_or_else(|| sink_not_found(SinkKind::Webhook, endpoint.id))?;
    let complete = queued < u64::from(REPLAY_MAX_EVENTS);
    Ok((
        StatusCode::ACCEPTED,
        Json(ReplayQueued { queued, complete, next_since: (!complete).then_some(last).flatten() }),
    ))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn pending_attempts_show_when_they_are_due_and_finished_ones_do_not() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let mut attempt = DeliveryAttempt {
            id: 7,
            endpoint_id: Uuid::nil(),
            event_id: "evt_1".into(),
            event_type: "host.created".into(),
            attempt: 1,
            origin: "event".into(),
            status: AttemptStatus::Pending,
            due_at: at,
            response_status: None,
            response_body: None,
            duration_ms: None,
            error: None,
            created_at: at,
            finished_at: None,
        };
        let view = serde_json::to_value(DeliveryView::from(attempt.clone())).unwrap();
        assert_eq!(view["id"], "7");
        assert_eq!(view["next_attempt_at"], "2027-01-15T08:00:00Z");
        attempt.status = AttemptStatus::Succeeded;
        let view = serde_json::to_value(DeliveryView::from(attempt)).unwrap();
        assert!(view["next_attempt_at"].is_null());
    }
}
