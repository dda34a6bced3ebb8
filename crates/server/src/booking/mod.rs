//! Booking commands shared by the API-key routes and the self-service (manage link) routes:
//! create a booking and change it (confirm, reject, cancel, reschedule).
//!
//! Each command follows one path: load the booking and its event type, let the core decide
//! (is the transition allowed, is the start on the rules' grid, is it still free in the
//! [`Schedule`]), pick the hosts, then let the store commit the change with its event. The
//! store re-checks at commit (the database constraint on PostgreSQL, the write lock on SQLite);
//! a slot taken in between answers `409 slot_taken` with fresh alternatives.

pub mod validate;
pub mod view;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use slotd_core::booking::{BookingAction, BookingStatus};
use slotd_core::slots::{Assignment, Slot};
use slotd_store::{
    Actor, Attendee, Booking, BookingChange, ChangeOutputs, EventType, Host, IdempotentRequest, NewBooking, OrgId,
    Placement, StoreError,
};
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, FieldError};
use crate::schedule::{CalendarRead, Schedule, minutes, slot_taken};
pub use view::{BookingContext, BookingView};

/// How many times a command is retried when a concurrent change got in first.
const ATTEMPTS: usize = 3;

/// A validated booking request (answers are checked against the event type in [`create`]).
pub struct CreateInput {
    /// What to book.
    pub event_type_id: Uuid,
    /// The start asked for.
    pub start: Timestamp,
    /// Who attends.
    pub attendee: Attendee,
    /// Answers to the event type's questions.
    pub answers: serde_json::Map<String, Value>,
    /// Caller metadata.
    pub metadata: serde_json::Map<String, Value>,
}

/// A lifecycle command.
pub struct ChangeInput {
    /// What to do.
    pub action: BookingAction,
    /// Who does it.
    pub by: Actor,
    /// Why.
    pub reason: Option<String>,
    /// The new start (reschedule only).
    pub start: Option<Timestamp>,
    /// The manage token the request came with (self-service): the answer, also when stored for
    /// an idempotent replay, carries its links and no longer-lived ones.
    pub link_token: Option<String>,
}

/// Finds a booking by id or human id in the organization; anything else is a 404.
pub async fn find(state: &AppState, org: OrgId, reference: &str) -> Result<Booking, ApiError> {
    let found = match Uuid::parse_str(reference) {
        Ok(id) => state.store.booking(org, id).await?,
        Err(_) if reference.len() == 9 && reference.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("BK-")) => {
            state.store.booking_by_human_id(org, reference).await?
        }
        Err(_) => None,
    };
    found.ok_or_else(|| ApiError::NotFound(format!("no booking '{reference}'")))
}

/// The event type a booking was made of (even if deleted since).
pub async fn event_type_of(state: &AppState, booking: &Booking) -> Result<EventType, ApiError> {
    state
        .store
        .event_type_of_booking(booking.organization_id, booking.event_type_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("booking {} has no event type", booking.id)))
}

/// The booking with its event type and hosts.
pub async fn context(state: &AppState, booking: Booking) -> Result<BookingContext, ApiError> {
    let org = booking.organization_id;
    let event_type = event_type_of(state, &booking).await?;
    let mut hosts = state.store.hosts_of_bookings(org, &booking.host_ids).await?;
    hosts.sort_by_key(|h| booking.host_ids.iter().position(|id| *id == h.id));
    Ok(BookingContext { booking, event_type, hosts, link_token: None })
}

/// A booking with the event type and hosts already at hand (no further queries).
fn context_of(booking: Booking, event_type: &EventType, hosts: &[Host]) -> BookingContext {
    let mut ordered: Vec<Host> =
        booking.host_ids.iter().filter_map(|id| hosts.iter().find(|h| h.id == *id).cloned()).collect();
    ordered.dedup_by_key(|h| h.id);
    BookingContext { booking, event_type: event_type.clone(), hosts: ordered, link_token: None }
}

/// The event and stored answer of a change, built from the committed booking.
fn outputs(
    state: &AppState,
    event_type: &EventType,
    hosts: &[Host],
    event: &'static str,
    link_token: Option<String>,
) -> impl FnOnce(&Booking) -> ChangeOutputs + Send {
    let state = state.clone();
    let event_type = event_type.clone();
    let hosts = hosts.to_vec();
    move |booking: &Booking| {
        let mut context = context_of(booking.clone(), &event_type, &hosts);
        let event_data = context.event_data(&state);
        context.link_token = link_token;
        ChangeOutputs { event_type: event, event_data, answer: context.view_json(&state) }
    }
}

/// The 422 for a start the rules never allow.
fn start_rejected(e: slotd_core::booking::StartRejection) -> ApiError {
    ApiError::field("/start", e.to_string())
}

/// Where a booking at `slot` goes: its hosts (chosen for round robin), block and seat group.
async fn placement(
    state: &AppState,
    org: OrgId,
    schedule: &Schedule,
    slot: &Slot,
    keep_host: Option<Uuid>,
    skip: &[Uuid],
) -> Result<Placement, ApiError> {
    let settings = &schedule.event_type.settings;
    let (interval, block) = schedule.placement_times(slot.start);
    let free: Vec<Uuid> = slot.hosts.iter().map(|&i| schedule.hosts[i].id).collect();
    let seated = settings.seats > 1;
    // A seated slot is one group per start (and, for round robin, per host: each host runs
    // their own group session, as the slot engine counts seats per host).
    let group_of = |host: Option<Uuid>| {
        let base = format!("{}@{}", schedule.event_type.id, slot.start.as_microsecond());
        match host {
            Some(host) => format!("{base}@{host}"),
            None => base,
        }
    };
    let host_ids = match settings.assignment {
        Assignment::Single | Assignment::Collective => {
            if seated {
                // Later seats join the hosts the first seat was given.
                let joined = state.store.seat_group_hosts(org, &group_of(None)).await?;
                if !joined.is_empty() {
                    let seat_group = Some(group_of(None));
                    return Ok(Placement { interval, block, host_ids: joined, seat_group, seats: settings.seats });
                }
            }
            free
        }
        Assignment::RoundRobin => {
            let candidates: Vec<Uuid> = free.iter().copied().filter(|id| !skip.contains(id)).collect();
            let mut chosen = keep_host.filter(|h| candidates.contains(h));
            if chosen.is_none() && seated {
                // Fill a group session that has already started before opening another.
                let started = state.store.seated_hosts_at(org, schedule.event_type.id, slot.start).await?;
                chosen = candidates.iter().copied().find(|h| started.contains(h));
            }
            match chosen {
                Some(host) => vec![host],
                None => {
                    // Fewest upcoming bookings first, then the one booked longest ago (never
                    // booked counts as longest ago), then the event type's order.
                    let loads = state.store.host_loads(org, &candidates, Timestamp::now()).await?;
                    let best = loads
                        .iter()
                        .enumerate()
                        .min_by_key(|(position, load)| (load.upcoming, load.last_booked, *position))
                        .map(|(_, load)| load.host_id);
                    best.into_iter().collect()
                }
            }
        }
    };
    let seat_group = seated.then(|| match settings.assignment {
        Assignment::RoundRobin => group_of(host_ids.first().copied()),
        Assignment::Single | Assignment::Collective => group_of(None),
    });
    Ok(Placement { interval, block, host_ids, seat_group, seats: settings.seats.max(1) })
}

/// Books `input` if its start is free now; round robin tries the next free host when another
/// request took the chosen one meanwhile.
pub async fn create(
    state: &AppState,
    org: OrgId,
    input: CreateInput,
    idempotency: Option<IdempotentRequest>,
) -> Result<BookingContext, ApiError> {
    let (event_type, hosts) = state.store.event_type_with_hosts(org, input.event_type_id).await?.ok_or_else(|| {
        ApiError::field("/event_type_id", format!("no event type with id {} in this organization", input.event_type_id))
    })?;
    let answers = validate::answers(&event_type.settings.questions, input.answers)?;
    let now = Timestamp::now();
    let window = slotd_core::Interval { start: input.start, end: input.start + SignedDuration::from_secs(1) };
    let mut skip = Vec::new();
    for _ in 0..ATTEMPTS {
        let schedule =
            Schedule::with_hosts(state, org, event_type.clone(), hosts.clone(), window, None, CalendarRead::Live)
                .await?;
        schedule.check_start(input.start, now, false).map_err(start_rejected)?;
        let Some(slot) = schedule.slot_at(input.start, now, false).filter(|s| !s.hosts.is_empty()) else {
            if let Some(unavailable) = schedule.calendar_unavailable() {
                return Err(unavailable);
            }
            return Err(slot_taken(state, org, &event_type, input.start, None, now).await);
        };
        let placement = placement(state, org, &schedule, &slot, None, &skip).await?;
        if placement.host_ids.is_empty() {
            break;
        }
        let settings = &event_type.settings;
        let status = if settings.requires_confirmation { BookingStatus::Pending } else { BookingStatus::Confirmed };
        let event = if status == BookingStatus::Pending { "booking.requested" } else { "booking.confirmed" };
        let new = NewBooking {
            event_type_id: event_type.id,
            status,
            blocking: status.is_blocking(settings.pending_blocks),
            placement: placement.clone(),
            attendees: vec![input.attendee.clone()],
            answers: Value::Object(answers.clone()),
            metadata: Value::Object(input.metadata.clone()),
        };
        let result = state
            .store
            .create_booking(org, new, idempotency.as_ref(), outputs(state, &event_type, &schedule.hosts, event, None))
            .await;
        match result {
            Ok(booking) => return Ok(context_of(booking, &event_type, &hosts)),
            Err(StoreError::SlotTaken) if settings.assignment == Assignment::RoundRobin => {
                skip.extend(placement.host_ids);
            }
            Err(StoreError::SlotTaken) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Err(slot_taken(state, org, &event_type, input.start, None, now).await)
}

/// The event a change writes.
fn event_of(action: BookingAction) -> &'static str {
    match action {
        BookingAction::Confirm => "booking.confirmed",
        BookingAction::Reject => "booking.rejected",
        BookingAction::Cancel => "booking.cancelled",
        BookingAction::Reschedule => "booking.rescheduled",
    }
}

/// Whether the event type's cut-off still allows `action` by `by` (hosts are exempt).
pub fn cutoff_allows(
    event_type: &EventType,
    booking: &Booking,
    action: BookingAction,
    by: Actor,
    now: Timestamp,
) -> Result<(), ApiError> {
    if by == Actor::Host {
        return Ok(());
    }
    let cutoff = match action {
        BookingAction::Cancel => event_type.settings.cancel_cutoff_minutes,
        BookingAction::Reschedule => event_type.settings.reschedule_cutoff_minutes,
        BookingAction::Confirm | BookingAction::Reject => return Ok(()),
    };
    if now + minutes(cutoff) > booking.interval.start {
        let detail = if now >= booking.interval.start {
            format!("the booking has already started; it can no longer be {}", action.past_tense())
        } else {
            format!(
                "changes close {cutoff} minutes before the start; the booking can no longer be {}",
                action.past_tense()
            )
        };
        let pointer = if by == Actor::Api { "/override_notice" } else { "" };
        return Err(ApiError::Validation(vec![FieldError::new(pointer, detail)]));
    }
    Ok(())
}

/// Applies a lifecycle command to booking `id`, retrying when a concurrent change got in first.
pub async fn change(
    state: &AppState,
    org: OrgId,
    id: Uuid,
    input: ChangeInput,
    idempotency: Option<IdempotentRequest>,
) -> Result<BookingContext, ApiError> {
    for attempt in 0..ATTEMPTS {
        let booking =
            state.store.booking(org, id).await?.ok_or_else(|| ApiError::NotFound(format!("no booking {id}")))?;
        let status = booking.status.apply(input.action).map_err(|e| ApiError::InvalidTransition(e.to_string()))?;
        let event_type = event_type_of(state, &booking).await?;
        let now = Timestamp::now();
        cutoff_allows(&event_type, &booking, input.action, input.by, now)?;
        let settings = &event_type.settings;
        let reason = input.reason.clone().filter(|r| !r.trim().is_empty());
        if input.action == BookingAction::Reschedule && settings.reschedule_reason_required && reason.is_none() {
            return Err(ApiError::field("/reason", "this event type asks for a reason to reschedule"));
        }
        let mut hosts = state.store.hosts_of_bookings(org, &booking.host_ids).await?;
        let placement = match (input.action, input.start) {
            (BookingAction::Reschedule, Some(start)) if start == booking.interval.start => {
                // Not a change: no event, no message to anyone.
                return Err(ApiError::field("/start", "the booking already starts at this time; pick another start"));
            }
            (BookingAction::Reschedule, Some(start)) => {
                let window = slotd_core::Interval { start, end: start + SignedDuration::from_secs(1) };
                let schedule =
                    Schedule::load(state, org, event_type.clone(), window, Some(id), CalendarRead::Live).await?;
                let ignore_notice = input.by == Actor::Host;
                schedule.check_start(start, now, ignore_notice).map_err(start_rejected)?;
                let Some(slot) = schedule.slot_at(start, now, ignore_notice).filter(|s| !s.hosts.is_empty()) else {
                    if let Some(unavailable) = schedule.calendar_unavailable() {
                        return Err(unavailable);
                    }
                    return Err(
                        slot_taken(state, org, &event_type, start, Some((id, booking.interval.start)), now).await
                    );
                };
                let keep = booking.host_ids.first().copied();
                let placement = placement(state, org, &schedule, &slot, keep, &[]).await?;
                hosts.extend(schedule.hosts.iter().cloned());
                Some(placement)
            }
            (BookingAction::Reschedule, None) => return Err(ApiError::field("/start", "a new start is required")),
            _ => None,
        };
        let change = BookingChange {
            expected_version: booking.version,
            action: input.action,
            status,
            blocking: status.is_blocking(settings.pending_blocks),
            placement,
            seats: settings.seats,
            by: input.by,
            reason,
        };
        let result = state
            .store
            .change_booking(
                org,
                id,
                change,
                idempotency.as_ref(),
                outputs(state, &event_type, &hosts, event_of(input.action), input.link_token.clone()),
            )
            .await;
        match result {
            Ok(Some(booking)) => {
                let mut context = context_of(booking, &event_type, &hosts);
                context.link_token = input.link_token;
                return Ok(context);
            }
            Ok(None) => return Err(ApiError::NotFound(format!("no booking {id}"))),
            Err(StoreError::Conflict(_)) if attempt + 1 < ATTEMPTS => continue,
            Err(StoreError::SlotTaken) => {
                let start = input.start.unwrap_or(booking.interval.start);
                return Err(slot_taken(state, org, &event_type, start, Some((id, booking.interval.start)), now).await);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("the booking kept changing under this request; read it again and retry".into()))
}
