//! `POST /v1/reschedule-requests`: the operator's portal route. A customer clicks "manage my
//! appointment" on the operator's own site; the portal asks slotd, with its API key, for the
//! booking (by id or human id), the times it can move to over the next days, and a short-lived
//! manage link to hand the customer. The customer's choice is then committed through the manage
//! routes (or the hosted page), which re-check it at commit like every booking change.
//!
//! Nothing is written: the link is a signed token whose expiry is inside it (see
//! [`slotd_core::manage_token`]), so a request costs one booking read and one slot computation.

use axum::Json;
use axum::extract::State;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use slotd_core::booking::BookingStatus;
use slotd_core::interval::Interval;
use utoipa::ToSchema;

use super::manage::{attendee_zone, manage_view, slots_for_booking};
use super::slots::{SlotView, display_zone};
use crate::app::AppState;
use crate::booking::{self, BookingView};
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJson, Caller};

/// Days of slots answered when `days` is left out.
const DEFAULT_DAYS: u32 = 14;
/// Most days of slots one request may ask for.
const MAX_DAYS: u32 = 31;
/// Lifetime of the manage link when `expires_in_minutes` is left out.
const DEFAULT_EXPIRES_MINUTES: u32 = 60;
/// Bounds of `expires_in_minutes`.
const EXPIRES_MINUTES: std::ops::RangeInclusive<u32> = 5..=1440;

/// `POST /v1/reschedule-requests` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    /// The booking: its id or its human id (`BK-…`).
    #[schema(example = "BK-7Q4M2X")]
    booking_ref: String,
    /// Days of slots to answer, from now (1–31, default 14).
    #[schema(minimum = 1, maximum = 31)]
    days: Option<u32>,
    /// Lifetime of `manage_url` in minutes (5–1440, default 60).
    #[schema(minimum = 5, maximum = 1440)]
    expires_in_minutes: Option<u32>,
    /// IANA zone for the slots' `local_start` (default: the attendee's zone).
    #[schema(example = "Europe/Paris")]
    time_zone: Option<String>,
}

/// What the portal shows the customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RescheduleRequestAnswer {
    booking: BookingView,
    /// Free starts the booking can move to, sorted, from the earliest the notice allows until
    /// `days` from now; the booking's own time is left out, and its own block does not count as busy.
    slots: Vec<SlotView>,
    /// A link to the hosted manage page for the customer; it stops working at `expires_at`
    /// (then `410 link_expired`). The same token works on `/v1/manage/{token}/…`.
    manage_url: String,
    /// When `manage_url` stops working (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
    /// Whether the customer may still reschedule (false inside the event type's cut-off; then
    /// `slots` is empty).
    can_reschedule: bool,
    /// Whether the customer may still cancel.
    can_cancel: bool,
    /// Whether a reschedule must give a reason.
    reschedule_reason_required: bool,
}

/// Slots and a short-lived manage link for a booking, for the operator's own portal.
#[utoipa::path(post, path = "/v1/reschedule-requests", tag = "self-service", request_body = RescheduleRequest,
    responses((status = 200, description = "The booking, its free slots and a short-lived manage link", body = RescheduleRequestAnswer),
        (status = 409, description = "Cancelled or rejected: it cannot be rescheduled", body = crate::error::Problem),
        (status = 410, description = "The booking is over", body = crate::error::Problem)))]
pub async fn create_reschedule_request(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiJson(body): ApiJson<RescheduleRequest>,
) -> Result<Json<RescheduleRequestAnswer>, ApiError> {
    let mut errors = Vec::new();
    let days = body.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        errors.push(FieldError::new("/days", format!("must be between 1 and {MAX_DAYS}")));
    }
    let expires_minutes = body.expires_in_minutes.unwrap_or(DEFAULT_EXPIRES_MINUTES);
    if !EXPIRES_MINUTES.contains(&expires_minutes) {
        errors.push(FieldError::new(
            "/expires_in_minutes",
            format!("must be between {} and {}", EXPIRES_MINUTES.start(), EXPIRES_MINUTES.end()),
        ));
    }
    let zone = display_zone(body.time_zone.as_deref(), &mut errors);
    if body.booking_ref.trim().is_empty() {
        errors.push(FieldError::new("/booking_ref", "a booking id or human id is required"));
    }
    ApiError::check(errors)?;

    let found = booking::find(&state, org, body.booking_ref.trim()).await?;
    let now = Timestamp::now();
    match found.status {
        BookingStatus::Cancelled | BookingStatus::Rejected => {
            return Err(ApiError::InvalidTransition(format!(
                "booking {} was {}; it cannot be rescheduled",
                found.human_id,
                found.status.as_str()
            )));
        }
        _ if found.interval.end <= now => {
            return Err(ApiError::Gone(format!("booking {} is over; it cannot be rescheduled", found.human_id)));
        }
        _ => {}
    }
    let zone = zone.unwrap_or_else(|| attendee_zone(&found));
    let context = booking::context(&state, found).await?;
    let view = manage_view(&state, &context);
    let slots = if view.can_reschedule {
        let window = Interval { start: now, end: now + SignedDuration::from_hours(24 * i64::from(days)) };
        slots_for_booking(&state, &context.booking, context.event_type.clone(), window, &zone).await?.slots
    } else {
        Vec::new()
    };
    let expires_at = Timestamp::from_second(now.as_second() + i64::from(expires_minutes) * 60)
        .map_err(|e| ApiError::Internal(format!("link expiry: {e}")))?;
    let token = state.manage_key.expiring_token(
        *context.booking.id.as_bytes(),
        context.booking.token_generation as u64,
        expires_at.as_second(),
    );
    Ok(Json(RescheduleRequestAnswer {
        slots,
        manage_url: format!("{}/manage/{token}", state.public_url),
        expires_at,
        can_reschedule: view.can_reschedule,
        can_cancel: view.can_cancel,
        reschedule_reason_required: view.reschedule_reason_required,
        booking: view.booking,
    }))
}
