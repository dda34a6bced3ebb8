//! `GET /v1/slots`: the live slot list of an event type, computed by the core engine from the
//! hosts' rules and busy time as they are in the database right now.

use axum::Json;
use axum::extract::State;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use slotd_core::interval::Interval;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiQuery, Caller};
use crate::schedule::{CalendarRead, Schedule};

/// Widest query window.
const MAX_WINDOW_DAYS: i64 = 93;

/// `GET /v1/slots` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlotParams {
    /// The event type to list slots of.
    #[param(value_type = Uuid)]
    event_type_id: String,
    /// Window start (RFC 3339 instant); slots starting at or after it are listed.
    #[param(value_type = String, format = DateTime)]
    #[serde(with = "crate::extract::instant")]
    start: Timestamp,
    /// Window end (RFC 3339 instant, exclusive); at most 93 days after `start`.
    #[param(value_type = String, format = DateTime)]
    #[serde(with = "crate::extract::instant")]
    end: Timestamp,
    /// IANA zone for the optional `local_start` of each slot.
    time_zone: Option<String>,
}

/// One bookable start.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    end: Timestamp,
    /// Hosts who would take it: the one host, every free round-robin host, or all collective hosts.
    hosts: Vec<Uuid>,
    /// Remaining capacity (1 for one-to-one event types).
    seats_left: u32,
    /// `start` in the requested `time_zone`, with its offset (only when `time_zone` is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    local_start: Option<String>,
}

/// A calendar connection whose busy time could not be read: the slots were computed without
/// it (or with what it last answered), and a commit on its host answers `503
/// calendar_unavailable` unless it is set to `on_error: ignore`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotWarning {
    /// The connection (`/v1/hosts/{id}/calendars/{calendar_id}`).
    calendar_id: Uuid,
    /// What went wrong.
    detail: String,
}

/// The slot list.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotsResponse {
    event_type_id: Uuid,
    duration_minutes: u32,
    /// Sorted by start.
    pub slots: Vec<SlotView>,
    /// Calendar connections that could not be read (empty when every one was).
    pub warnings: Vec<SlotWarning>,
}

/// The `[start, end)` of a slot query, at most 93 days long; errors name `/end`.
pub fn query_window(start: Timestamp, end: Timestamp, errors: &mut Vec<FieldError>) -> Option<Interval> {
    let window = Interval::new(start, end);
    match window {
        None => errors.push(FieldError::new("/end", "must be after start")),
        Some(w) if w.end.duration_since(w.start) > SignedDuration::from_hours(24 * MAX_WINDOW_DAYS) => {
            errors.push(FieldError::new("/end", format!("the window may span at most {MAX_WINDOW_DAYS} days")))
        }
        Some(_) => {}
    }
    window
}

/// The `time_zone` parameter as a zone; errors name `/time_zone`.
pub fn display_zone(name: Option<&str>, errors: &mut Vec<FieldError>) -> Option<TimeZone> {
    match name.map(slotd_core::zone::time_zone) {
        Some(Err(e)) => {
            errors.push(FieldError::new("/time_zone", e.to_string()));
            None
        }
        Some(Ok(zone)) => Some(zone),
        None => None,
    }
}

/// List available slots of an event type in a window.
#[utoipa::path(get, path = "/v1/slots", tag = "slots", params(SlotParams),
    responses((status = 200, description = "Available slots", body = SlotsResponse)))]
pub async fn list_slots(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiQuery(params): ApiQuery<SlotParams>,
) -> Result<Json<SlotsResponse>, ApiError> {
    let mut errors = Vec::new();
    let event_type_id = Uuid::parse_str(&params.event_type_id);
    if event_type_id.is_err() {
        errors.push(FieldError::new("/event_type_id", format!("'{}' is not an event type id", params.event_type_id)));
    }
    let window = query_window(params.start, params.end, &mut errors);
    let display_zone = display_zone(params.time_zone.as_deref(), &mut errors);
    ApiError::check(errors)?;
    let (event_type_id, window) = (event_type_id.expect("checked"), window.expect("checked"));

    let schedule = Schedule::load_by_id(&state, org, event_type_id, window, None, CalendarRead::Cached)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event type with id {event_type_id}")))?;
    Ok(Json(slots_response(&schedule, window, display_zone.as_ref())))
}

/// The slot list of a loaded schedule, with `local_start` in `display_zone` when given.
pub fn slots_response(schedule: &Schedule, window: Interval, display_zone: Option<&TimeZone>) -> SlotsResponse {
    let hosts = &schedule.hosts;
    let slots = schedule.slots(window, Timestamp::now());
    let slots = slots
        .into_iter()
        .map(|slot| SlotView {
            start: slot.start,
            end: slot.end,
            hosts: slot.hosts.iter().map(|&i| hosts[i].id).collect(),
            seats_left: slot.seats_left,
            local_start: display_zone
                .map(|zone| slot.start.to_zoned(zone.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()),
        })
        .collect();
    SlotsResponse {
        event_type_id: schedule.event_type.id,
        duration_minutes: schedule.event_type.settings.duration_minutes,
        slots,
        warnings: schedule
            .warnings
            .iter()
            .map(|w| SlotWarning { calendar_id: w.calendar_id, detail: w.detail.clone() })
            .collect(),
    }
}
