//! `/v1/webhooks`: the organization's webhook endpoints — URL (through the SSRF guard), event
//! filter, enabled flag, description — and their signing secrets, shown in full only when
//! created or rotated and stored sealed. The plan limits the number of endpoints.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use slotd_core::webhook::SigningSecret;
use slotd_store::{NewWebhookEndpoint, OrgId, Plan, StoreError, WebhookEndpoint, WebhookPatch};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ListResponse, PageParams, parse_path_id};
use crate::app::AppState;
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};

/// Every event a webhook can subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "booking.requested",
    "booking.confirmed",
    "booking.rejected",
    "booking.cancelled",
    "booking.rescheduled",
    "event_type.created",
    "event_type.updated",
    "event_type.deleted",
    "host.created",
    "host.updated",
    "host.deleted",
    "webhook.test",
    "webhook.disabled",
];

/// Longest description.
const DESCRIPTION_MAX_CHARS: usize = 500;
/// How long the previous secret keeps signing after a rotation.
const ROTATION_GRACE_HOURS: i64 = 24;
/// Random bytes in a new signing secret.
const SECRET_BYTES: usize = 32;

/// How many endpoints a plan allows (`None`: unlimited).
fn endpoint_limit(plan: Plan) -> Option<u32> {
    match plan {
        Plan::Free => Some(2),
        Plan::Starter => Some(10),
        Plan::Growth => None,
    }
}

/// An endpoint as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    id: Uuid,
    url: String,
    description: String,
    /// Subscribed events; empty means every event.
    #[schema(schema_with = webhook_event_names)]
    events: Vec<String>,
    enabled: bool,
    /// Why slotd disabled it: `gone` (it answered 410 Gone) or `failing` (every attempt failed
    /// for the configured period, 5 days by default); null while enabled or when disabled by hand.
    #[schema(example = json!(null))]
    disabled_reason: Option<String>,
    /// The signing secret (`whsec_…`): only in the answers of create and rotate-secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl WebhookView {
    fn of(endpoint: WebhookEndpoint, secret: Option<String>) -> WebhookView {
        WebhookView {
            id: endpoint.id,
            url: endpoint.url,
            description: endpoint.description,
            events: endpoint.events,
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason,
            secret,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

/// `POST /v1/webhooks` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `http` or `https` URL of a public address.
    #[schema(example = "https://example.com/hooks")]
    url: String,
    #[schema(example = "CRM")]
    description: Option<String>,
    /// Event types to send (left out or empty: every event).
    #[schema(schema_with = webhook_event_names)]
    events: Option<Vec<String>>,
    /// Default true.
    enabled: Option<bool>,
}

/// `PATCH /v1/webhooks/{id}` body: fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    url: Option<String>,
    description: Option<String>,
    #[schema(schema_with = webhook_event_names)]
    events: Option<Vec<String>>,
    enabled: Option<bool>,
}

async fn checked_url(state: &AppState, url: &str, errors: &mut Vec<FieldError>) {
    if let Err(detail) = crate::ssrf::check(url, &state.resolver, state.allow_private_webhooks).await {
        errors.push(FieldError::new("/url", detail));
    }
}

fn checked_description(description: &str, errors: &mut Vec<FieldError>) {
    if description.chars().count() > DESCRIPTION_MAX_CHARS {
        errors.push(FieldError::new("/description", format!("must be at most {DESCRIPTION_MAX_CHARS} characters")));
    }
}

fn checked_events(events: Vec<String>, errors: &mut Vec<FieldError>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        if !EVENT_TYPES.contains(&event.as_str()) {
            errors.push(FieldError::new(format!("/events/{i}"), format!("'{event}' is not an event type")));
        } else if !kept.contains(&event) {
            kept.push(event);
        }
    }
    kept
}

/// A new signing secret.
fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    SigningSecret::from_bytes(&bytes).expect("32 bytes is a valid secret length").to_string_form()
}

fn plan_limit(e: StoreError) -> ApiError {
    match e {
        StoreError::PlanLimit(limit) => ApiError::PlanLimit { resource: "webhook endpoints", limit },
        other => other.into(),
    }
}

/// Create a webhook endpoint; the answer shows its signing secret (only here and on rotate).
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, description = "Created (with its secret)", body = WebhookView),
        (status = 403, description = "The plan's endpoint limit is reached", body = crate::error::Problem)))]
pub async fn create_webhook(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let mut errors = Vec::new();
    checked_url(&state, &body.url, &mut errors).await;
    let description = body.description.unwrap_or_default();
    checked_description(&description, &mut errors);
    let events = checked_events(body.events.unwrap_or_default(), &mut errors);
    ApiError::check(errors)?;
    let plan = organization_plan(&state, org).await?;
    let secret = new_secret();
    let new = NewWebhookEndpoint::webhook(
        body.url,
        description,
        events,
        body.enabled.unwrap_or(true),
        state.sealer.seal(&secret),
    );
    let endpoint = state.store.create_webhook_endpoint(org, new, endpoint_limit(plan)).await.map_err(plan_limit)?;
    Ok((StatusCode::CREATED, Json(WebhookView::of(endpoint, Some(secret)))))
}

async fn organization_plan(state: &AppState, org: OrgId) -> Result<Plan, ApiError> {
    Ok(state
        .store
        .organization(org)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("organization {} of a valid key is missing", org.0)))?
        .plan)
}

/// List webhook endpoints, oldest first.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", params(PageParams),
    responses((status = 200, description = "A page of endpoints", body = ListResponse<WebhookView>)))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<ListResponse<WebhookView>>, ApiError> {
    let page = state.store.list_webhook_endpoints(org, &params.to_request()?).await?;
    Ok(Json(ListResponse::from_page(page, |e| WebhookView::of(e, None))))
}

/// Read a webhook endpoint (without its secret).
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 200, description = "The endpoint", body = WebhookView)))]
pub async fn get_webhook(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = parse_path_id(&id, "webhook endpoint")?;
    let endpoint = state.store.webhook_endpoint(org, id).await?.ok_or_else(|| not_found(id))?;
    Ok(Json(WebhookView::of(endpoint, None)))
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no webhook endpoint with id {id}"))
}

/// Change a webhook endpoint's URL, description, events or enabled flag.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", request_body = UpdateWebhook,
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 200, description = "The updated endpoint", body = WebhookView)))]
pub async fn update_webhook(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateWebhook>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = parse_path_id(&id, "webhook endpoint")?;
    let mut errors = Vec::new();
    if let Some(url) = &body.url {
        checked_url(&state, url, &mut errors).await;
    }
    if let Some(description) = &body.description {
        checked_description(description, &mut errors);
    }
    let events = body.events.map(|events| checked_events(events, &mut errors));
    ApiError::check(errors)?;
    let patch = WebhookPatch {
        url: body.url,
        description: body.description,
        events,
        enabled: body.enabled,
        ..WebhookPatch::default()
    };
    let endpoint = state.store.update_webhook_endpoint(org, id, patch).await?.ok_or_else(|| not_found(id))?;
    Ok(Json(WebhookView::of(endpoint, None)))
}

/// Delete a webhook endpoint.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_path_id(&id, "webhook endpoint")?;
    if state.store.delete_webhook_endpoint(org, id).await? { Ok(StatusCode::NO_CONTENT) } else { Err(not_found(id)) }
}

/// Replace the signing secret; the previous one keeps signing (a second signature) for 24 hours.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 200, description = "The endpoint with its new secret", body = WebhookView)))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = parse_path_id(&id, "webhook endpoint")?;
    let secret = new_secret();
    let until = Timestamp::now() + SignedDuration::from_hours(ROTATION_GRACE_HOURS);
    let endpoint = state
        .store
        .rotate_webhook_secret(org, id, &state.sealer.seal(&secret), until)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(WebhookView::of(endpoint, Some(secret))))
}

/// `events` in the OpenAPI document: the names this resource accepts.
fn webhook_event_names() -> utoipa::openapi::schema::Array {
    super::event_names_schema(EVENT_TYPES)
}
