//! Self-service for attendees, with the manage token from their links as the only credential:
//! `/v1/manage/{token}` (what the booking is and what may be done), its slots, reschedule and
//! cancel, and the booking's calendar file at `/b/{token}.ics`.
//!
//! A token names its booking and carries a MAC over the booking id and its token generation,
//! so it is checked without being stored; rotating the booking's token kills every older link.
//! A token that does not verify answers 404, exactly like a booking that does not exist.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use slotd_core::booking::{BookingAction, BookingStatus};
use slotd_core::interval::Interval;
use slotd_core::manage_token::TokenCheck;
use slotd_store::{Actor, Booking, EventType};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::slots::{SlotsResponse, display_zone, query_window, slots_response};
use crate::app::AppState;
use crate::booking::{self, BookingContext, BookingView, ChangeInput, cutoff_allows, validate};
use crate::error::ApiError;
use crate::extract::{ApiJsonValue, ApiPath, ApiQuery};
use crate::idempotency::{self, Idempotency};
use crate::schedule::{CalendarRead, Schedule};

/// The booking a manage token opens, if the token verifies.
pub async fn booking_for_token(state: &AppState, token: &str) -> Result<Booking, ApiError> {
    let not_found = || ApiError::NotFound("this link is not valid (it may have been replaced by a newer one)".into());
    let id = slotd_core::manage_token::booking_id_of(token).ok_or_else(not_found)?;
    let booking = state.store.booking_for_manage_link(Uuid::from_bytes(id)).await?.ok_or_else(not_found)?;
    match state.manage_key.check(token, id, booking.token_generation as u64, Timestamp::now().as_second()) {
        TokenCheck::Valid => Ok(booking),
        TokenCheck::Expired => Err(ApiError::LinkExpired(
            "this link has expired; ask for a new one where you got it, or use the link in your confirmation".into(),
        )),
        TokenCheck::Invalid => Err(not_found()),
    }
}

/// The booking a token opens for changes: gone once cancelled, rejected or over.
async fn open_booking(state: &AppState, token: &str) -> Result<Booking, ApiError> {
    let booking = booking_for_token(state, token).await?;
    match booking.status {
        BookingStatus::Cancelled | BookingStatus::Rejected => {
            Err(ApiError::Gone(format!("this booking was {}; the link no longer works", booking.status.as_str())))
        }
        _ if booking.interval.end <= Timestamp::now() => {
            Err(ApiError::Gone("this booking is over; the link no longer works".into()))
        }
        _ => Ok(booking),
    }
}

/// What an attendee sees and may do.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManageView {
    /// The booking.
    pub booking: BookingView,
    /// Whether the attendee may still reschedule (status and cut-off).
    pub can_reschedule: bool,
    /// Whether the attendee may still cancel (status and cut-off).
    pub can_cancel: bool,
    /// Whether a reschedule must give a reason.
    pub reschedule_reason_required: bool,
}

/// The manage view of a booking.
pub fn manage_view(state: &AppState, context: &BookingContext) -> ManageView {
    let now = Timestamp::now();
    let allowed = |action: BookingAction| {
        context.booking.status.apply(action).is_ok()
            && cutoff_allows(&context.event_type, &context.booking, action, Actor::Attendee, now).is_ok()
    };
    ManageView {
        can_reschedule: allowed(BookingAction::Reschedule),
        can_cancel: allowed(BookingAction::Cancel),
        reschedule_reason_required: context.event_type.settings.reschedule_reason_required,
        booking: context.view(state),
    }
}

/// The booking behind a manage link and what the attendee may do.
#[utoipa::path(get, path = "/v1/manage/{token}", tag = "self-service", security(()),
    params(("token" = String, Path, description = "Manage token (last segment of links.manage)")),
    responses((status = 200, description = "The booking", body = ManageView),
        (status = 410, description = "Cancelled, rejected or over (`gone`), or a short-lived link past its expiry (`link_expired`)", body = crate::error::Problem)))]
pub async fn get_manage(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Json<ManageView>, ApiError> {
    let booking = open_booking(&state, &token).await?;
    let context = booking::context(&state, booking).await?.with_link_token(&token);
    Ok(Json(manage_view(&state, &context)))
}

/// `GET /v1/manage/{token}/slots` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ManageSlotParams {
    /// Window start (RFC 3339 instant).
    #[param(value_type = String, format = DateTime)]
    #[serde(with = "crate::extract::instant")]
    start: Timestamp,
    /// Window end (exclusive; at most 93 days after start).
    #[param(value_type = String, format = DateTime)]
    #[serde(with = "crate::extract::instant")]
    end: Timestamp,
    /// IANA zone for `local_start` (default: the attendee's).
    time_zone: Option<String>,
}

/// Free slots the booking could move to: its own block does not count as busy (so a move next to
/// it works), and its current start is not offered (it already has it).
pub async fn slots_for_booking(
    state: &AppState,
    booking: &Booking,
    event_type: EventType,
    window: Interval,
    zone: &jiff::tz::TimeZone,
) -> Result<SlotsResponse, ApiError> {
    let schedule =
        Schedule::load(state, booking.organization_id, event_type, window, Some(booking.id), CalendarRead::Cached)
            .await?;
    let mut response = slots_response(&schedule, window, Some(zone));
    response.slots.retain(|slot| slot.start != booking.interval.start);
    // Which of the host's calendars could not be read is the operator's business, not the
    // attendee's (the connection's last_error shows it).
    response.warnings.clear();
    Ok(response)
}

/// The attendee's zone, or UTC if it cannot be read.
pub fn attendee_zone(booking: &Booking) -> jiff::tz::TimeZone {
    booking
        .attendees
        .first()
        .and_then(|a| slotd_core::zone::time_zone(&a.time_zone).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

/// Free slots this booking can be moved to.
#[utoipa::path(get, path = "/v1/manage/{token}/slots", tag = "self-service", security(()),
    params(("token" = String, Path, description = "Manage token"), ManageSlotParams),
    responses((status = 200, description = "Available slots", body = SlotsResponse),
        (status = 410, description = "Cancelled, rejected or over (`gone`), or a short-lived link past its expiry (`link_expired`)", body = crate::error::Problem)))]
pub async fn manage_slots(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    ApiQuery(params): ApiQuery<ManageSlotParams>,
) -> Result<Json<SlotsResponse>, ApiError> {
    let mut errors = Vec::new();
    let window = query_window(params.start, params.end, &mut errors);
    let zone = display_zone(params.time_zone.as_deref(), &mut errors);
    ApiError::check(errors)?;
    let booking = open_booking(&state, &token).await?;
    let zone = zone.unwrap_or_else(|| attendee_zone(&booking));
    let event_type = booking::event_type_of(&state, &booking).await?;
    Ok(Json(slots_for_booking(&state, &booking, event_type, window.expect("checked"), &zone).await?))
}

/// `POST /v1/manage/{token}/reschedule` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManageReschedule {
    /// The new start, from the manage slots.
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::extract::instant")]
    start: Timestamp,
    /// Why (required when the event type says so).
    reason: Option<String>,
}

/// `POST /v1/manage/{token}/cancel` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManageCancel {
    /// Why.
    reason: Option<String>,
}

/// Runs an attendee's command on the booking a token opens.
pub async fn attendee_command(
    state: &AppState,
    token: &str,
    headers: &HeaderMap,
    raw: &serde_json::Value,
    input: ChangeInput,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    validate::reason(&input.reason, &mut errors);
    ApiError::check(errors)?;
    let booking = open_booking(state, token).await?;
    let route = format!("POST /v1/bookings/{}/{}", booking.id, input.action.as_str());
    let scope = format!("manage:{}", booking.id);
    let idempotency = Idempotency::from_headers(headers, &route, raw)?.map(|i| i.scoped(&scope));
    let org = booking.organization_id;
    idempotency::run(&state.store, org, idempotency, StatusCode::OK, |request| async move {
        Ok(booking::change(state, org, booking.id, input, request).await?.view_json(state))
    })
    .await
}

/// Move the booking to another free start.
#[utoipa::path(post, path = "/v1/manage/{token}/reschedule", tag = "self-service", security(()),
    request_body = ManageReschedule,
    params(("token" = String, Path, description = "Manage token")),
    responses((status = 200, description = "Rescheduled", body = BookingView),
        (status = 409, description = "The slot was taken (with alternatives)", body = crate::error::Problem),
        (status = 410, description = "Cancelled, rejected or over (`gone`), or a short-lived link past its expiry (`link_expired`)", body = crate::error::Problem)))]
pub async fn manage_reschedule(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    ApiJsonValue(body, raw): ApiJsonValue<ManageReschedule>,
) -> Result<Response, ApiError> {
    let input = ChangeInput {
        action: BookingAction::Reschedule,
        by: Actor::Attendee,
        reason: body.reason,
        start: Some(body.start),
        link_token: Some(token.clone()),
    };
    attendee_command(&state, &token, &headers, &raw, input).await
}

/// Cancel the booking.
#[utoipa::path(post, path = "/v1/manage/{token}/cancel", tag = "self-service", security(()),
    request_body = ManageCancel,
    params(("token" = String, Path, description = "Manage token")),
    responses((status = 200, description = "Cancelled", body = BookingView),
        (status = 410, description = "Cancelled, rejected or over (`gone`), or a short-lived link past its expiry (`link_expired`)", body = crate::error::Problem)))]
pub async fn manage_cancel(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    ApiJsonValue(body, raw): ApiJsonValue<ManageCancel>,
) -> Result<Response, ApiError> {
    let input = ChangeInput {
        action: BookingAction::Cancel,
        by: Actor::Attendee,
        reason: body.reason,
        start: None,
        link_token: Some(token.clone()),
    };
    attendee_command(&state, &token, &headers, &raw, input).await
}

/// The booking as an iCalendar file (`{token}.ics`), also once cancelled (`METHOD:CANCEL`).
#[utoipa::path(get, path = "/b/{file}", tag = "self-service", security(()),
    params(("file" = String, Path, description = "`<manage token>.ics`")),
    responses((status = 200, description = "iCalendar file", content_type = "text/calendar", body = String)))]
pub async fn ics_by_token(State(state): State<AppState>, ApiPath(file): ApiPath<String>) -> Result<Response, ApiError> {
    let token = file.strip_suffix(".ics").ok_or_else(|| ApiError::NotFound("no such calendar file".into()))?;
    let booking = booking_for_token(&state, token).await?;
    let context = booking::context(&state, booking).await?.with_link_token(token);
    Ok(super::bookings::ics_response(context.ics(&state), &context.booking.human_id))
}
