//! How a booking is shown: the API answer ([`BookingView`]), the `booking.*` webhook payload
//! ([`booking_event`]), its self-service links and its iCalendar file. All of them are built
//! from a [`BookingContext`]: the booking with its event type and hosts.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use slotd_core::booking::{BookingAction, BookingStatus};
use slotd_core::ics::{self, IcsEvent, IcsMethod, IcsPerson, IcsStatus};
use slotd_core::slots::Assignment;
use slotd_store::{Attendee, Booking, EventType, HistoryEntry, Host};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;

/// A booking with what it is shown with.
pub struct BookingContext {
    /// The booking.
    pub booking: Booking,
    /// Its event type (possibly deleted since).
    pub event_type: EventType,
    /// Its hosts, in the booking's order.
    pub hosts: Vec<Host>,
    /// The manage token the answer's links carry, when the request came with one (an attendee's
    /// possibly short-lived link): an answer never hands out a longer-lived credential than the
    /// one it was asked with. `None`: the booking's permanent token (API-key callers, webhooks).
    pub link_token: Option<String>,
}

/// The self-service links of a booking; the manage token is their credential.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Links {
    /// Hosted page to see, reschedule or cancel the booking.
    pub manage: String,
    /// The same page, at its "pick a new time" form.
    pub reschedule: String,
    /// The same page, at its cancel form.
    pub cancel: String,
    /// The booking as an iCalendar file.
    pub ics: String,
}

/// A booking's host.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HostRef {
    id: Uuid,
    name: String,
    email: String,
}

/// An attendee.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AttendeeView {
    name: String,
    email: String,
    time_zone: String,
}

/// One change in a booking's history.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HistoryView {
    #[schema(value_type = String, format = DateTime)]
    at: Timestamp,
    /// `confirmed`, `rejected`, `cancelled` or `rescheduled`.
    action: &'static str,
    /// `attendee`, `host` or `api`.
    by: &'static str,
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    previous_starts_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    previous_ends_at: Option<Timestamp>,
}

impl From<&HistoryEntry> for HistoryView {
    fn from(h: &HistoryEntry) -> HistoryView {
        HistoryView {
            at: h.at,
            action: h.action.past_tense(),
            by: h.by.as_str(),
            reason: h.reason.clone(),
            previous_starts_at: h.previous.map(|p| p.start),
            previous_ends_at: h.previous.map(|p| p.end),
        }
    }
}

/// A booking as the API answers it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BookingView {
    id: Uuid,
    /// Short reference for people, e.g. `BK-7Q4M2X`.
    human_id: String,
    /// `pending`, `confirmed`, `rejected` or `cancelled`.
    status: &'static str,
    /// Increases on every change.
    version: i64,
    event_type_id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    starts_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    ends_at: Timestamp,
    duration_minutes: i64,
    hosts: Vec<HostRef>,
    attendees: Vec<AttendeeView>,
    #[schema(value_type = Object)]
    answers: Value,
    #[schema(value_type = Object)]
    metadata: Value,
    links: Links,
    /// Changes since creation, oldest first.
    history: Vec<HistoryView>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

fn attendee_view(a: &Attendee) -> AttendeeView {
    AttendeeView { name: a.name.clone(), email: a.email.clone(), time_zone: a.time_zone.clone() }
}

/// The links of a booking at its current token generation.
pub fn links(state: &AppState, booking: &Booking) -> Links {
    links_with(state, &state.manage_key.token(*booking.id.as_bytes(), booking.token_generation as u64))
}

/// The links that carry `token`.
fn links_with(state: &AppState, token: &str) -> Links {
    let base = &state.public_url;
    Links {
        manage: format!("{base}/manage/{token}"),
        reschedule: format!("{base}/manage/{token}#reschedule"),
        cancel: format!("{base}/manage/{token}#cancel"),
        ics: format!("{base}/b/{token}.ics"),
    }
}

/// The event type's kind as webhook receivers know it.
fn kind(event_type: &EventType) -> &'static str {
    if event_type.settings.seats > 1 {
        return "group";
    }
    match event_type.settings.assignment {
        Assignment::Single => "solo",
        Assignment::RoundRobin => "round_robin",
        Assignment::Collective => "collective",
    }
}

impl BookingContext {
    /// The links this answer hands out: the presented token's, else the permanent ones.
    fn links(&self, state: &AppState) -> Links {
        match &self.link_token {
            Some(token) => links_with(state, token),
            None => links(state, &self.booking),
        }
    }

    /// The same context, answering with the links of the token the request came with.
    pub fn with_link_token(mut self, token: &str) -> BookingContext {
        self.link_token = Some(token.to_owned());
        self
    }

    fn host_refs(&self) -> Vec<HostRef> {
        self.hosts.iter().map(|h| HostRef { id: h.id, name: h.name.clone(), email: h.email.clone() }).collect()
    }

    fn duration_minutes(&self) -> i64 {
        self.booking.interval.end.duration_since(self.booking.interval.start).as_mins()
    }

    /// The API answer.
    pub fn view(&self, state: &AppState) -> BookingView {
        let b = &self.booking;
        BookingView {
            id: b.id,
            human_id: b.human_id.clone(),
            status: b.status.as_str(),
            version: b.version,
            event_type_id: b.event_type_id,
            starts_at: b.interval.start,
            ends_at: b.interval.end,
            duration_minutes: self.duration_minutes(),
            hosts: self.host_refs(),
            attendees: b.attendees.iter().map(attendee_view).collect(),
            answers: b.answers.clone(),
            metadata: b.metadata.clone(),
            links: self.links(state),
            history: b.history.iter().map(HistoryView::from).collect(),
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }

    /// The API answer as JSON.
    pub fn view_json(&self, state: &AppState) -> Value {
        serde_json::to_value(self.view(state)).expect("booking views serialise")
    }

    /// The `booking.*` webhook payload (PRODUCT.md, "Webhooks").
    pub fn event_data(&self, state: &AppState) -> Value {
        let b = &self.booking;
        let mut data = serde_json::json!({
            "id": b.id,
            "human_id": b.human_id,
            "status": b.status.as_str(),
            "version": b.version,
            "event_type": {
                "id": self.event_type.id,
                "slug": self.event_type.slug,
                "title": self.event_type.title,
                "kind": kind(&self.event_type),
            },
            "starts_at": b.interval.start,
            "ends_at": b.interval.end,
            "duration_minutes": self.duration_minutes(),
            "time_zone": b.attendees.first().map(|a| a.time_zone.as_str()).unwrap_or("UTC"),
            "hosts": self.host_refs(),
            "attendees": b.attendees.iter().map(attendee_view).collect::<Vec<_>>(),
            "answers": b.answers,
            "metadata": b.metadata,
            "links": links(state, b),
            "created_at": b.created_at,
            "updated_at": b.updated_at,
        });
        let object = data.as_object_mut().expect("a JSON object");
        if b.status == BookingStatus::Cancelled
            && let Some(h) = b.last(BookingAction::Cancel)
        {
            object.insert("cancellation".into(), serde_json::json!({ "at": h.at, "reason": h.reason, "by": h.by }));
        }
        if b.status == BookingStatus::Rejected
            && let Some(h) = b.last(BookingAction::Reject)
        {
            object.insert("rejection".into(), serde_json::json!({ "at": h.at, "reason": h.reason }));
        }
        if let Some(h) = b.last(BookingAction::Reschedule) {
            object.insert(
                "reschedule".into(),
                serde_json::json!({
                    "at": h.at, "reason": h.reason, "by": h.by,
                    "previous_starts_at": h.previous.map(|p| p.start),
                    "previous_ends_at": h.previous.map(|p| p.end),
                }),
            );
        }
        data
    }

    /// The booking as an RFC 5545 calendar: UID stable per booking, SEQUENCE = version,
    /// METHOD:CANCEL once it is cancelled or rejected.
    pub fn ics(&self, state: &AppState) -> String {
        let b = &self.booking;
        let (method, status) = match b.status {
            BookingStatus::Pending => (IcsMethod::Request, IcsStatus::Tentative),
            BookingStatus::Confirmed => (IcsMethod::Request, IcsStatus::Confirmed),
            BookingStatus::Rejected | BookingStatus::Cancelled => (IcsMethod::Cancel, IcsStatus::Cancelled),
        };
        let uid = format!("{}@slotd", b.id);
        let links = self.links(state);
        let mut people: Vec<IcsPerson<'_>> =
            b.attendees.iter().map(|a| IcsPerson { name: &a.name, email: &a.email }).collect();
        people.extend(self.hosts.iter().skip(1).map(|h| IcsPerson { name: &h.name, email: &h.email }));
        let description = format!("{} ({})\nManage: {}", self.event_type.title, b.human_id, links.manage);
        ics::render(&IcsEvent {
            uid: &uid,
            sequence: u32::try_from(b.version).unwrap_or(u32::MAX),
            method,
            status,
            start: b.interval.start,
            end: b.interval.end,
            stamp: b.updated_at,
            summary: &self.event_type.title,
            description: Some(&description),
            url: Some(&links.manage),
            organizer: self.hosts.first().map(|h| IcsPerson { name: &h.name, email: &h.email }),
            attendees: &people,
        })
    }
}
