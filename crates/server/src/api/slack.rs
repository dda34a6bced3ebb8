//! `/v1/slack-channels`: team messages on booking changes. A Slack channel is a delivery sink of
//! kind `slack` next to the webhook endpoints (same outbox, claims, retries and attempt log): its
//! incoming-webhook URL goes through the same SSRF guard, is stored sealed (it is the channel's
//! credential) and is only ever shown masked. Channels do not count against the plan's webhook
//! endpoint limit. The messages themselves are built by `delivery::slack`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use slotd_store::{NewWebhookEndpoint, SinkKind, WebhookEndpoint, WebhookPatch};
use utoipa::ToSchema;
use uuid::Uuid;

use super::deliveries::{self, DeliveryParams, DeliveryView, TestSent};
use super::hosts::check_time_zone;
use super::{ListResponse, PageParams, parse_path_id};
use crate::app::AppState;
use crate::delivery::slack::{self, DEFAULT_EVENT_TYPES, EVENT_TYPES};
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};

/// A Slack channel as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlackChannelView {
    id: Uuid,
    /// The incoming-webhook URL, masked (it is the channel's credential).
    #[schema(example = "https://hooks.slack.com/services/T…/…/…4f9Z")]
    webhook_url: String,
    /// The events that post a message.
    #[schema(schema_with = slack_event_names)]
    events: Vec<String>,
    /// The zone messages state times in; null: each booking's first host's zone.
    #[schema(example = "Europe/London")]
    time_zone: Option<String>,
    enabled: bool,
    /// Why slotd disabled it: what Slack answered (e.g. `channel_is_archived`,
    /// `channel_not_found`), or `failing` (every attempt failed for the configured period); null
    /// while enabled or when disabled by hand.
    #[schema(example = json!(null))]
    disabled_reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl SlackChannelView {
    fn of(state: &AppState, channel: WebhookEndpoint) -> SlackChannelView {
        let webhook_url =
            state.sealer.open(&channel.secret_sealed).map_or_else(|| "…".to_owned(), |u| slack::mask_url(&u));
        SlackChannelView {
            id: channel.id,
            webhook_url,
            events: channel.events,
            time_zone: channel.time_zone,
            enabled: channel.enabled,
            disabled_reason: channel.disabled_reason,
            created_at: channel.created_at,
            updated_at: channel.updated_at,
        }
    }
}

/// `POST /v1/slack-channels` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSlackChannel {
    /// The channel's incoming-webhook URL (`http` or `https`, a public address).
    #[schema(example = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXX4f9Z")]
    webhook_url: String,
    /// `booking.requested|confirmed|rejected|cancelled|rescheduled` and `webhook.test`; left out
    /// or empty: every `booking.*` event.
    #[schema(schema_with = slack_event_names)]
    events: Option<Vec<String>>,
    /// IANA zone for the times in messages (default: each booking's first host's zone).
    #[schema(example = "Europe/London")]
    time_zone: Option<String>,
    /// Default true.
    enabled: Option<bool>,
}

/// `PATCH /v1/slack-channels/{id}` body: fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSlackChannel {
    webhook_url: Option<String>,
    #[schema(schema_with = slack_event_names)]
    events: Option<Vec<String>>,
    /// A zone, or null for the default (each booking's first host's zone).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    time_zone: Option<Option<String>>,
    enabled: Option<bool>,
}

/// A field that is present (possibly null) as `Some`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

async fn checked_url(state: &AppState, url: &str, errors: &mut Vec<FieldError>) {
    if let Err(detail) = crate::ssrf::check(url, &state.resolver, state.allow_private_webhooks).await {
        errors.push(FieldError::new("/webhook_url", detail));
    }
}

/// The events asked for, deduplicated; none: every booking event.
fn checked_events(events: Vec<String>, errors: &mut Vec<FieldError>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        if !EVENT_TYPES.contains(&event.as_str()) {
            errors.push(FieldError::new(
                format!("/events/{i}"),
                format!("'{event}' is not an event a Slack channel can follow (booking.* or webhook.test)"),
            ));
        } else if !kept.contains(&event) {
            kept.push(event);
        }
    }
    if kept.is_empty() {
        // Stored explicitly: an empty list would mean "every event" to the outbox.
        kept = DEFAULT_EVENT_TYPES.iter().map(|e| (*e).to_owned()).collect();
    }
    kept
}

/// Create a Slack channel: booking changes it follows are posted there.
#[utoipa::path(post, path = "/v1/slack-channels", tag = "slack", request_body = CreateSlackChannel,
    responses((status = 201, description = "Created (its URL masked)", body = SlackChannelView)))]
pub async fn create_slack_channel(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiJson(body): ApiJson<CreateSlackChannel>,
) -> Result<(StatusCode, Json<SlackChannelView>), ApiError> {
    let mut errors = Vec::new();
    checked_url(&state, &body.webhook_url, &mut errors).await;
    let events = checked_events(body.events.unwrap_or_default(), &mut errors);
    if let Some(zone) = &body.time_zone {
        check_time_zone("/time_zone", zone, &mut errors);
    }
    ApiError::check(errors)?;
    let new = NewWebhookEndpoint {
        kind: SinkKind::Slack,
        url: slack::url_digest(&body.webhook_url),
        description: String::new(),
        time_zone: body.time_zone,
        events,
        enabled: body.enabled.unwrap_or(true),
        secret_sealed: state.sealer.seal(&body.webhook_url),
    };
    // Channels are not webhook endpoints: the plan's endpoint limit does not apply.
    let channel = state.store.create_webhook_endpoint(org, new, None).await?;
    Ok((StatusCode::CREATED, Json(SlackChannelView::of(&state, channel))))
}

/// List Slack channels, oldest first.
#[utoipa::path(get, path = "/v1/slack-channels", tag = "slack", params(PageParams),
    responses((status = 200, description = "A page of channels", body = ListResponse<SlackChannelView>)))]
pub async fn list_slack_channels(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<ListResponse<SlackChannelView>>, ApiError> {
    let page = state.store.list_sinks(org, SinkKind::Slack, &params.to_request()?).await?;
    Ok(Json(ListResponse::from_page(page, |c| SlackChannelView::of(&state, c))))
}

/// Read a Slack channel.
#[utoipa::path(get, path = "/v1/slack-channels/{id}", tag = "slack",
    params(("id" = Uuid, Path, description = "Channel id")),
    responses((status = 200, description = "The channel", body = SlackChannelView)))]
pub async fn get_slack_channel(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SlackChannelView>, ApiError> {
    let channel = deliveries::sink(&state, org, SinkKind::Slack, &id).await?;
    Ok(Json(SlackChannelView::of(&state, channel)))
}

/// Change a Slack channel's URL, events, time zone or enabled flag.
#[utoipa::path(patch, path = "/v1/slack-channels/{id}", tag = "slack", request_body = UpdateSlackChannel,
    params(("id" = Uuid, Path, description = "Channel id")),
    responses((status = 200, description = "The updated channel", body = SlackChannelView)))]
pub async fn update_slack_channel(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateSlackChannel>,
) -> Result<Json<SlackChannelView>, ApiError> {
    let id = parse_path_id(&id, "Slack channel")?;
    let mut errors = Vec::new();
    if let Some(url) = &body.webhook_url {
        checked_url(&state, url, &mut errors).await;
    }
    let events = body.events.map(|events| checked_events(events, &mut errors));
    if let Some(Some(zone)) = &body.time_zone {
        check_time_zone("/time_zone", zone, &mut errors);
    }
    ApiError::check(errors)?;
    let patch = WebhookPatch {
        url: body.webhook_url.as_deref().map(slack::url_digest),
        secret_sealed: body.webhook_url.as_deref().map(|url| state.sealer.seal(url)),
        events,
        time_zone: body.time_zone,
        enabled: body.enabled,
        description: None,
    };
    let channel = state
        .store
        .update_sink(org, SinkKind::Slack, id, patch)
        .await?
        .ok_or_else(|| deliveries::sink_not_found(SinkKind::Slack, id))?;
    Ok(Json(SlackChannelView::of(&state, channel)))
}

/// Delete a Slack channel.
#[utoipa::path(delete, path = "/v1/slack-channels/{id}", tag = "slack",
    params(("id" = Uuid, Path, description = "Channel id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_slack_channel(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_path_id(&id, "Slack channel")?;
    if state.store.delete_sink(org, SinkKind::Slack, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(deliveries::sink_not_found(SinkKind::Slack, id))
    }
}

/// Post a test message (a `webhook.test` event) to this channel only, also when it is disabled.
#[utoipa::path(post, path = "/v1/slack-channels/{id}/test", tag = "slack",
    params(("id" = Uuid, Path, description = "Channel id")),
    responses((status = 202, description = "Queued; the message is posted at once", body = TestSent)))]
pub async fn send_slack_test(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<TestSent>), ApiError> {
    deliveries::test_sink(&state, org, SinkKind::Slack, &id).await
}

/// List the channel's delivery attempts, newest first.
#[utoipa::path(get, path = "/v1/slack-channels/{id}/deliveries", tag = "slack",
    params(("id" = Uuid, Path, description = "Channel id"), DeliveryParams),
    responses((status = 200, description = "A page of attempts", body = ListResponse<DeliveryView>)))]
pub async fn list_slack_deliveries(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> Result<Json<ListResponse<DeliveryView>>, ApiError> {
    deliveries::list_sink_deliveries(&state, org, SinkKind::Slack, &id, params).await
}

/// Post a failed attempt's event to the channel again now (a new attempt, fresh retry schedule).
#[utoipa::path(post, path = "/v1/slack-channels/{id}/deliveries/{attempt_id}/retry", tag = "slack",
    params(("id" = Uuid, Path, description = "Channel id"), ("attempt_id" = String, Path, description = "Attempt id")),
    responses((status = 202, description = "The new attempt, queued", body = DeliveryView)))]
pub async fn retry_slack_delivery(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath((id, attempt_id)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    deliveries::retry_sink_delivery(&state, org, SinkKind::Slack, &id, &attempt_id).await
}

/// `events` in the OpenAPI document: the names this resource accepts.
fn slack_event_names() -> utoipa::openapi::schema::Array {
    super::event_names_schema(EVENT_TYPES)
}
