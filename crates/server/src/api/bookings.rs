//! `/v1/bookings`: create, read, list, the lifecycle commands (confirm, reject, cancel,
//! reschedule), manage-token rotation and the iCalendar file. The commands themselves live in
//! [`crate::booking`], shared with the self-service routes.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use slotd_core::booking::{BookingAction, BookingStatus};
use slotd_store::{Actor, Attendee, BookingFilter};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ListResponse, PageParams};
use crate::app::AppState;
use crate::booking::{self, BookingView, ChangeInput, CreateInput, validate};
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJsonValue, ApiPath, ApiQuery, Caller};
use crate::idempotency::{self, Idempotency};

/// The attendee of a new booking.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttendeeInput {
    #[schema(example = "Grace")]
    name: String,
    #[schema(example = "grace@example.com")]
    email: String,
    /// IANA zone the attendee sees times in.
    #[schema(example = "America/New_York")]
    time_zone: String,
}

/// `POST /v1/bookings` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBooking {
    /// The event type to book.
    #[schema(value_type = Uuid)]
    event_type_id: String,
    /// A start from `/v1/slots` (RFC 3339 instant).
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::extract::instant")]
    start: Timestamp,
    attendee: AttendeeInput,
    /// Answers to the event type's questions, by question key.
    #[serde(default)]
    #[schema(value_type = Object)]
    answers: serde_json::Map<String, serde_json::Value>,
    /// Free-form object (at most 16 KB) echoed in webhooks.
    #[serde(default)]
    #[schema(value_type = Object)]
    metadata: serde_json::Map<String, serde_json::Value>,
}

/// `confirm` body (no fields needed).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBooking {}

/// `reject` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why (shown to the attendee and sent in webhooks).
    #[schema(example = "Not enough credits")]
    reason: Option<String>,
}

/// `cancel` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why (shown to the attendee and sent in webhooks).
    #[schema(example = "Not enough credits")]
    reason: Option<String>,
    /// Act as the host: the event type's cut-off notice does not apply.
    #[serde(default)]
    override_notice: bool,
}

/// `reschedule` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBody {
    /// The new start, from `/v1/slots`.
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::extract::instant")]
    start: Timestamp,
    /// Why (required when the event type says so).
    #[schema(example = "Flight delayed")]
    reason: Option<String>,
    /// Act as the host: the cut-off and minimum notice do not apply.
    #[serde(default)]
    override_notice: bool,
}

/// `GET /v1/bookings` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BookingListParams {
    /// Only bookings in this status (`pending`, `confirmed`, `rejected`, `cancelled`).
    status: Option<String>,
    /// Only bookings of this host.
    #[param(value_type = Option<Uuid>)]
    host_id: Option<String>,
    /// Starts at or after this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(default, with = "crate::extract::instant::option")]
    from: Option<Timestamp>,
    /// Starts before this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(default, with = "crate::extract::instant::option")]
    to: Option<Timestamp>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Create a booking on a free slot (`confirmed`, or `pending` when the event type requires
/// confirmation). Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/bookings", tag = "bookings", request_body = CreateBooking,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key (24 h)")),
    responses((status = 201, description = "Booked", body = BookingView),
        (status = 409, description = "The slot was taken (with alternatives)", body = crate::error::Problem)))]
pub async fn create_booking(
    State(state): State<AppState>,
    Caller(org): Caller,
    headers: HeaderMap,
    ApiJsonValue(body, raw): ApiJsonValue<CreateBooking>,
) -> Result<Response, ApiError> {
    let idempotency = Idempotency::from_headers(&headers, "POST /v1/bookings", &raw)?;
    let mut errors = Vec::new();
    let event_type_id = Uuid::parse_str(&body.event_type_id);
    if event_type_id.is_err() {
        errors.push(FieldError::new("/event_type_id", format!("'{}' is not an event type id", body.event_type_id)));
    }
    let attendee = Attendee {
        name: body.attendee.name.trim().to_owned(),
        email: body.attendee.email,
        time_zone: body.attendee.time_zone,
    };
    validate::attendee("/attendee", &attendee, &mut errors);
    validate::metadata(&body.metadata, &mut errors);
    ApiError::check(errors)?;
    let input = CreateInput {
        event_type_id: event_type_id.expect("checked"),
        start: body.start,
        attendee,
        answers: body.answers,
        metadata: body.metadata,
    };
    idempotency::run(&state.store, org, idempotency, StatusCode::CREATED, |request| async {
        Ok(booking::create(&state, org, input, request).await?.view_json(&state))
    })
    .await
}

/// List bookings, oldest first, with filters.
#[utoipa::path(get, path = "/v1/bookings", tag = "bookings", params(BookingListParams),
    responses((status = 200, description = "A page of bookings", body = ListResponse<BookingView>)))]
pub async fn list_bookings(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiQuery(params): ApiQuery<BookingListParams>,
) -> Result<Json<ListResponse<BookingView>>, ApiError> {
    let mut errors = Vec::new();
    let status = params.status.as_deref().map(|s| {
        BookingStatus::parse(s).ok_or_else(|| {
            FieldError::new("/status", format!("'{s}' is not one of pending, confirmed, rejected, cancelled"))
        })
    });
    let status = match status.transpose() {
        Ok(s) => s,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let host_id = params.host_id.as_deref().map(|h| Uuid::parse_str(h).map_err(|_| h.to_owned())).transpose();
    let host_id = host_id.unwrap_or_else(|h| {
        errors.push(FieldError::new("/host_id", format!("'{h}' is not a host id")));
        None
    });
    if let (Some(from), Some(to)) = (params.from, params.to)
        && to <= from
    {
        errors.push(FieldError::new("/to", "must be after from"));
    }
    let page = PageParams { limit: params.limit, cursor: params.cursor.clone() }.to_request();
    ApiError::check(errors)?;
    let filter = BookingFilter { status, host_id, from: params.from, to: params.to };
    let found = state.store.list_bookings(org, &filter, &page?).await?;
    let mut data = Vec::with_capacity(found.items.len());
    for item in &found.items {
        data.push(booking::context(&state, item.clone()).await?.view(&state));
    }
    let mut views = data.into_iter();
    Ok(Json(ListResponse::from_page(found, |_| views.next().expect("one view per booking"))))
}

/// Read a booking by id or human id (`BK-…`).
#[utoipa::path(get, path = "/v1/bookings/{id}", tag = "bookings",
    params(("id" = String, Path, description = "Booking id or human id")),
    responses((status = 200, description = "The booking", body = BookingView)))]
pub async fn get_booking(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BookingView>, ApiError> {
    let found = booking::find(&state, org, &id).await?;
    Ok(Json(booking::context(&state, found).await?.view(&state)))
}

/// Runs a lifecycle command from the API.
async fn command(
    state: AppState,
    org: slotd_store::OrgId,
    reference: String,
    headers: HeaderMap,
    raw: serde_json::Value,
    input: ChangeInput,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    validate::reason(&input.reason, &mut errors);
    ApiError::check(errors)?;
    let id = booking::find(&state, org, &reference).await?.id;
    // The resolved id is part of the request: one key reused on another booking is another
    // request (and the id and the human id of one booking are the same request).
    let route = format!("POST /v1/bookings/{id}/{}", input.action.as_str());
    let idempotency = Idempotency::from_headers(&headers, &route, &raw)?;
    idempotency::run(&state.store, org, idempotency, StatusCode::OK, |request| async {
        Ok(booking::change(&state, org, id, input, request).await?.view_json(&state))
    })
    .await
}

fn actor(override_notice: bool) -> Actor {
    if override_notice { Actor::Host } else { Actor::Api }
}

/// Confirm a pending booking. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/bookings/{id}/confirm", tag = "bookings", request_body = ConfirmBooking,
    params(("id" = String, Path, description = "Booking id or human id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key (24 h)")),
    responses((status = 200, description = "Confirmed", body = BookingView),
        (status = 409, description = "Not pending, or the slot was taken meanwhile", body = crate::error::Problem)))]
pub async fn confirm_booking(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJsonValue(_body, raw): ApiJsonValue<ConfirmBooking>,
) -> Result<Response, ApiError> {
    let input =
        ChangeInput { action: BookingAction::Confirm, by: Actor::Api, reason: None, start: None, link_token: None };
    command(state, org, id, headers, raw, input).await
}

/// Reject a pending booking with a reason. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/bookings/{id}/reject", tag = "bookings", request_body = RejectBody,
    params(("id" = String, Path, description = "Booking id or human id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key (24 h)")),
    responses((status = 200, description = "Rejected", body = BookingView),
        (status = 409, description = "Not pending", body = crate::error::Problem)))]
pub async fn reject_booking(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJsonValue(body, raw): ApiJsonValue<RejectBody>,
) -> Result<Response, ApiError> {
    let input = ChangeInput {
        action: BookingAction::Reject,
        by: Actor::Api,
        reason: body.reason,
        start: None,
        link_token: None,
    };
    command(state, org, id, headers, raw, input).await
}

/// Cancel a pending or confirmed booking. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/bookings/{id}/cancel", tag = "bookings", request_body = ReasonBody,
    params(("id" = String, Path, description = "Booking id or human id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key (24 h)")),
    responses((status = 200, description = "Cancelled", body = BookingView),
        (status = 409, description = "Already rejected or cancelled", body = crate::error::Problem)))]
pub async fn cancel_booking(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJsonValue(body, raw): ApiJsonValue<ReasonBody>,
) -> Result<Response, ApiError> {
    let input = ChangeInput {
        action: BookingAction::Cancel,
        by: actor(body.override_notice),
        reason: body.reason,
        start: None,
        link_token: None,
    };
    command(state, org, id, headers, raw, input).await
}

/// Move a pending or confirmed booking to another free start (same id, `version` + 1).
/// Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/bookings/{id}/reschedule", tag = "bookings", request_body = RescheduleBody,
    params(("id" = String, Path, description = "Booking id or human id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key (24 h)")),
    responses((status = 200, description = "Rescheduled", body = BookingView),
        (status = 409, description = "Not movable, or the new slot is taken (with alternatives)", body = crate::error::Problem)))]
pub async fn reschedule_booking(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJsonValue(body, raw): ApiJsonValue<RescheduleBody>,
) -> Result<Response, ApiError> {
    let input = ChangeInput {
        action: BookingAction::Reschedule,
        by: actor(body.override_notice),
        reason: body.reason,
        start: Some(body.start),
        link_token: None,
    };
    command(state, org, id, headers, raw, input).await
}

/// Invalidate the booking's manage links and answer it with new ones.
#[utoipa::path(post, path = "/v1/bookings/{id}/rotate-manage-token", tag = "bookings",
    params(("id" = String, Path, description = "Booking id or human id")),
    responses((status = 200, description = "The booking with new links", body = BookingView)))]
pub async fn rotate_manage_token(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BookingView>, ApiError> {
    let id = booking::find(&state, org, &id).await?.id;
    let rotated = state
        .store
        .rotate_manage_token(org, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no booking {id}")))?;
    Ok(Json(booking::context(&state, rotated).await?.view(&state)))
}

/// An iCalendar answer.
pub fn ics_response(body: String, human_id: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/calendar; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{human_id}.ics\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The booking as an RFC 5545 file (`SEQUENCE` = version; `METHOD:CANCEL` once cancelled).
#[utoipa::path(get, path = "/v1/bookings/{id}/ics", tag = "bookings",
    params(("id" = String, Path, description = "Booking id or human id")),
    responses((status = 200, description = "iCalendar file", content_type = "text/calendar", body = String)))]
pub async fn booking_ics(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let found = booking::find(&state, org, &id).await?;
    let context = booking::context(&state, found).await?;
    Ok(ics_response(context.ics(&state), &context.booking.human_id))
}
