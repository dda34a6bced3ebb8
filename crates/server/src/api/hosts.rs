//! `/v1/hosts`: hosts, their weekly hours and date overrides, and manual busy blocks.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use slotd_core::availability::Availability;
use slotd_core::interval::Interval;
use slotd_store::{BusyBlock, Host, HostDeletion, HostPatch, NewHost};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ListResponse, PageParams, parse_path_id};
use crate::app::AppState;
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};

/// A host as the API shows it (and as `host.*` event payloads carry it).
#[derive(Debug, Serialize, ToSchema)]
pub struct HostView {
    id: Uuid,
    name: String,
    email: String,
    /// IANA time zone.
    time_zone: String,
    #[schema(value_type = AvailabilitySchema)]
    availability: Availability,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl From<&Host> for HostView {
    fn from(host: &Host) -> HostView {
        HostView {
            id: host.id,
            name: host.name.clone(),
            email: host.email.clone(),
            time_zone: host.time_zone.clone(),
            availability: host.availability.clone(),
            created_at: host.created_at,
            updated_at: host.updated_at,
        }
    }
}

/// The payload of `host.*` events.
pub fn host_event(host: &Host) -> serde_json::Value {
    serde_json::to_value(HostView::from(host)).expect("host views serialise")
}

/// `HH:MM` wall-clock range (documentation of the availability shape).
#[derive(ToSchema)]
#[allow(dead_code)]
struct WallRangeSchema {
    /// `HH:MM`, 00:00–23:59.
    #[schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "09:00")]
    start: String,
    /// `HH:MM`, 00:01–24:00, after `start`.
    #[schema(pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", example = "17:00")]
    end: String,
}

/// Weekly hours per day name; days left out are closed.
#[derive(ToSchema)]
#[allow(dead_code)]
struct WeeklyHoursSchema {
    monday: Option<Vec<WallRangeSchema>>,
    tuesday: Option<Vec<WallRangeSchema>>,
    wednesday: Option<Vec<WallRangeSchema>>,
    thursday: Option<Vec<WallRangeSchema>>,
    friday: Option<Vec<WallRangeSchema>>,
    saturday: Option<Vec<WallRangeSchema>>,
    sunday: Option<Vec<WallRangeSchema>>,
}

/// Different hours (or none: closed) on one local date.
#[derive(ToSchema)]
#[allow(dead_code)]
struct DateOverrideSchema {
    #[schema(format = Date, example = "2026-12-24")]
    date: String,
    ranges: Vec<WallRangeSchema>,
}

/// Weekly hours and date overrides in the host's wall-clock time.
#[derive(ToSchema)]
#[allow(dead_code)]
struct AvailabilitySchema {
    weekly: Option<WeeklyHoursSchema>,
    overrides: Option<Vec<DateOverrideSchema>>,
}

/// `POST /v1/hosts` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHost {
    #[schema(example = "Ada")]
    name: String,
    #[schema(example = "ada@example.com")]
    email: String,
    #[schema(example = "Europe/London")]
    time_zone: String,
    #[schema(value_type = Option<AvailabilitySchema>)]
    availability: Option<Availability>,
}

/// `PATCH /v1/hosts/{id}` body; fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateHost {
    name: Option<String>,
    email: Option<String>,
    time_zone: Option<String>,
    #[schema(value_type = Option<AvailabilitySchema>)]
    availability: Option<Availability>,
}

/// Checks a display name: 1–200 characters, not blank.
pub fn check_name(pointer: &str, name: &str, errors: &mut Vec<FieldError>) {
    if name.trim().is_empty() {
        errors.push(FieldError::new(pointer, "must not be empty"));
    } else if name.chars().count() > 200 {
        errors.push(FieldError::new(pointer, "must be at most 200 characters"));
    }
}

/// Checks an email address: one `@`, a dotted domain, no spaces, at most 254 characters.
pub fn check_email(pointer: &str, email: &str, errors: &mut Vec<FieldError>) {
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if !valid {
        errors.push(FieldError::new(pointer, format!("'{email}' is not a valid email address")));
    }
}

/// Checks an IANA time zone name against the bundled database.
pub fn check_time_zone(pointer: &str, name: &str, errors: &mut Vec<FieldError>) {
    if let Err(e) = slotd_core::zone::time_zone(name) {
        errors.push(FieldError::new(pointer, e.to_string()));
    }
}

fn check_availability(pointer: &str, availability: &Availability, errors: &mut Vec<FieldError>) {
    errors.extend(
        availability.validate().into_iter().map(|e| FieldError::new(format!("{pointer}{}", e.pointer), e.detail)),
    );
}

fn host_not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no host with id {id}"))
}

/// Create a host.
#[utoipa::path(post, path = "/v1/hosts", tag = "hosts", request_body = CreateHost,
    responses((status = 201, description = "Created", body = HostView)))]
pub async fn create_host(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiJson(body): ApiJson<CreateHost>,
) -> Result<(StatusCode, Json<HostView>), ApiError> {
    let mut errors = Vec::new();
    check_name("/name", &body.name, &mut errors);
    check_email("/email", &body.email, &mut errors);
    check_time_zone("/time_zone", &body.time_zone, &mut errors);
    let availability = body.availability.unwrap_or_default();
    check_availability("/availability", &availability, &mut errors);
    ApiError::check(errors)?;
    let new = NewHost { name: body.name.trim().to_owned(), email: body.email, time_zone: body.time_zone, availability };
    let host = state.store.create_host(org, new, host_event).await?;
    Ok((StatusCode::CREATED, Json(HostView::from(&host))))
}

/// List hosts.
#[utoipa::path(get, path = "/v1/hosts", tag = "hosts", params(PageParams),
    responses((status = 200, description = "A page of hosts", body = ListResponse<HostView>)))]
pub async fn list_hosts(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<ListResponse<HostView>>, ApiError> {
    let page = state.store.list_hosts(org, &params.to_request()?).await?;
    Ok(Json(ListResponse::from_page(page, |h| HostView::from(&h))))
}

/// Get a host.
#[utoipa::path(get, path = "/v1/hosts/{id}", tag = "hosts",
    params(("id" = Uuid, Path, description = "Host id")),
    responses((status = 200, description = "The host", body = HostView)))]
pub async fn get_host(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<HostView>, ApiError> {
    let id = parse_path_id(&id, "host")?;
    let host = state.store.host(org, id).await?.ok_or_else(|| host_not_found(id))?;
    Ok(Json(HostView::from(&host)))
}

/// Update a host's name, email, time zone or availability.
#[utoipa::path(patch, path = "/v1/hosts/{id}", tag = "hosts", request_body = UpdateHost,
    params(("id" = Uuid, Path, description = "Host id")),
    responses((status = 200, description = "The updated host", body = HostView)))]
pub async fn update_host(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateHost>,
) -> Result<Json<HostView>, ApiError> {
    let id = parse_path_id(&id, "host")?;
    let mut errors = Vec::new();
    if let Some(name) = &body.name {
        check_name("/name", name, &mut errors);
    }
    if let Some(email) = &body.email {
        check_email("/email", email, &mut errors);
    }
    if let Some(zone) = &body.time_zone {
        check_time_zone("/time_zone", zone, &mut errors);
    }
    if let Some(availability) = &body.availability {
        check_availability("/availability", availability, &mut errors);
    }
    ApiError::check(errors)?;
    let patch = HostPatch {
        name: body.name.map(|n| n.trim().to_owned()),
        email: body.email,
        time_zone: body.time_zone,
        availability: body.availability,
    };
    let host = state.store.update_host(org, id, patch, host_event).await?.ok_or_else(|| host_not_found(id))?;
    Ok(Json(HostView::from(&host)))
}

/// Replace a host's weekly hours and date overrides.
#[utoipa::path(put, path = "/v1/hosts/{id}/availability", tag = "hosts",
    request_body = AvailabilitySchema,
    params(("id" = Uuid, Path, description = "Host id")),
    responses((status = 200, description = "The updated host", body = HostView)))]
pub async fn put_availability(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(availability): ApiJson<Availability>,
) -> Result<Json<HostView>, ApiError> {
    let id = parse_path_id(&id, "host")?;
    let mut errors = Vec::new();
    check_availability("", &availability, &mut errors);
    ApiError::check(errors)?;
    let patch = HostPatch { availability: Some(availability), ..HostPatch::default() };
    let host = state.store.update_host(org, id, patch, host_event).await?.ok_or_else(|| host_not_found(id))?;
    Ok(Json(HostView::from(&host)))
}

/// Delete a host (refused while an event type still uses it).
#[utoipa::path(delete, path = "/v1/hosts/{id}", tag = "hosts",
    params(("id" = Uuid, Path, description = "Host id")),
    responses((status = 204, description = "Deleted"),
        (status = 409, description = "Still assigned to event types", body = crate::error::Problem,
         content_type = "application/problem+json")))]
pub async fn delete_host(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_path_id(&id, "host")?;
    match state.store.delete_host(org, id, host_event).await? {
        HostDeletion::Deleted(_) => Ok(StatusCode::NO_CONTENT),
        HostDeletion::NotFound => Err(host_not_found(id)),
        HostDeletion::InUse(event_types) => Err(ApiError::Conflict(format!(
            "the host is assigned to event types {}; remove it from them first",
            event_types.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A manual busy block.
#[derive(Debug, Serialize, ToSchema)]
pub struct BusyBlockView {
    id: Uuid,
    host_id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    start: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    end: Timestamp,
    title: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl From<BusyBlock> for BusyBlockView {
    fn from(block: BusyBlock) -> BusyBlockView {
        BusyBlockView {
            id: block.id,
            host_id: block.host_id,
            start: block.interval.start,
            end: block.interval.end,
            title: block.title,
            created_at: block.created_at,
        }
    }
}

/// `POST /v1/hosts/{id}/busy` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBusyBlock {
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::extract::instant")]
    start: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::extract::instant")]
    end: Timestamp,
    title: Option<String>,
}

/// Longest busy block accepted: longer is almost surely a mistake.
const MAX_BUSY_DAYS: i64 = 366;

/// Block time on a host's calendar.
#[utoipa::path(post, path = "/v1/hosts/{id}/busy", tag = "hosts", request_body = CreateBusyBlock,
    params(("id" = Uuid, Path, description = "Host id")),
    responses((status = 201, description = "Created", body = BusyBlockView)))]
pub async fn add_busy(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateBusyBlock>,
) -> Result<(StatusCode, Json<BusyBlockView>), ApiError> {
    let id = parse_path_id(&id, "host")?;
    let mut errors = Vec::new();
    let interval = Interval::new(body.start, body.end);
    if interval.is_none() {
        errors.push(FieldError::new("/end", "must be after start"));
    } else if body.end.duration_since(body.start).as_secs() > MAX_BUSY_DAYS * 86_400 {
        errors.push(FieldError::new("/end", format!("a busy block may last at most {MAX_BUSY_DAYS} days")));
    }
    if let Some(title) = &body.title
        && title.chars().count() > 200
    {
        errors.push(FieldError::new("/title", "must be at most 200 characters"));
    }
    ApiError::check(errors)?;
    let interval = interval.expect("checked above");
    let block = state.store.add_busy_block(org, id, interval, body.title).await?.ok_or_else(|| host_not_found(id))?;
    Ok((StatusCode::CREATED, Json(block.into())))
}

/// List a host's busy blocks.
#[utoipa::path(get, path = "/v1/hosts/{id}/busy", tag = "hosts",
    params(("id" = Uuid, Path, description = "Host id"), PageParams),
    responses((status = 200, description = "A page of busy blocks", body = ListResponse<BusyBlockView>)))]
pub async fn list_busy(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<ListResponse<BusyBlockView>>, ApiError> {
    let id = parse_path_id(&id, "host")?;
    let page = state.store.list_busy_blocks(org, id, &params.to_request()?).await?.ok_or_else(|| host_not_found(id))?;
    Ok(Json(ListResponse::from_page(page, BusyBlockView::from)))
}

/// Delete a busy block.
#[utoipa::path(delete, path = "/v1/hosts/{id}/busy/{busy_id}", tag = "hosts",
    params(("id" = Uuid, Path, description = "Host id"), ("busy_id" = Uuid, Path, description = "Busy block id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_busy(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath((id, busy_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = parse_path_id(&id, "host")?;
    let busy_id = parse_path_id(&busy_id, "busy block")?;
    if state.store.delete_busy_block(org, id, busy_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no busy block with id {busy_id} on host {id}")))
    }
}
