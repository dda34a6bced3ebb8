//! The rows the store hands out and takes in, as typed values (never raw SQL rows).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use slotd_core::availability::Availability;
use slotd_core::interval::Interval;
use slotd_core::slots::Assignment;
use uuid::Uuid;

/// The tenant every row belongs to. Only the API-key lookup produces one for a request, so a
/// handler cannot forget to scope a query: every store method wants one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrgId(pub Uuid);

/// An organization's plan; it limits webhook endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// 2 webhook endpoints.
    Free,
    /// 10 webhook endpoints.
    Starter,
    /// Unlimited webhook endpoints.
    Growth,
}

impl Plan {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Starter => "starter",
            Plan::Growth => "growth",
        }
    }

    /// Parses `free`, `starter` or `growth`.
    pub fn parse(s: &str) -> Option<Plan> {
        match s {
            "free" => Some(Plan::Free),
            "starter" => Some(Plan::Starter),
            "growth" => Some(Plan::Growth),
            _ => None,
        }
    }
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    /// Its id.
    pub id: OrgId,
    /// Display name.
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A stored API key (only its hash and a display prefix; the key itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Its id.
    pub id: Uuid,
    /// The organization it opens.
    pub organization_id: OrgId,
    /// The first characters of the key, for telling keys apart.
    pub key_prefix: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// A bookable person or resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Its id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: String,
    /// IANA time zone name, validated against the bundled database when written.
    pub time_zone: String,
    /// Weekly hours and date overrides, in the host's wall-clock time.
    pub availability: Availability,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// What a new host is made of.
#[derive(Clone, Debug)]
pub struct NewHost {
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: String,
    /// IANA time zone name (already validated).
    pub time_zone: String,
    /// Initial availability (already validated).
    pub availability: Availability,
}

/// A partial update of a host; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct HostPatch {
    /// New name.
    pub name: Option<String>,
    /// New email.
    pub email: Option<String>,
    /// New time zone (already validated).
    pub time_zone: Option<String>,
    /// New availability (already validated).
    pub availability: Option<Availability>,
}

/// A manually entered busy period of a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusyBlock {
    /// Its id.
    pub id: Uuid,
    /// The host it blocks.
    pub host_id: Uuid,
    /// The blocked time.
    pub interval: Interval,
    /// Optional label.
    pub title: Option<String>,
    /// When it was entered.
    pub created_at: Timestamp,
}

/// The type of a booking question's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionType {
    /// One line of text.
    Text,
    /// Several lines of text.
    LongText,
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// A number.
    Number,
    /// One of `options`.
    Select,
    /// Yes or no.
    Checkbox,
}

/// A custom booking question (name and email are always asked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    /// Key of the answer in `answers`.
    pub key: String,
    /// Label shown to the attendee.
    pub label: String,
    /// Answer type.
    #[serde(rename = "type")]
    pub kind: QuestionType,
    /// Whether an answer is required.
    pub required: bool,
    /// Choices for `select`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// The rules of an event type, stored together as one JSON document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTypeSettings {
    /// Length of a booking.
    pub duration_minutes: u32,
    /// Step between slot starts.
    pub slot_interval_minutes: u32,
    /// Free time kept before a booking.
    pub buffer_before_minutes: u32,
    /// Free time kept after a booking.
    pub buffer_after_minutes: u32,
    /// How far ahead a booking must be made.
    pub min_notice_minutes: u32,
    /// How many days ahead bookings may be made.
    pub booking_window_days: u32,
    /// No attendee reschedule this close to the start.
    pub reschedule_cutoff_minutes: u32,
    /// No attendee cancel this close to the start.
    pub cancel_cutoff_minutes: u32,
    /// New bookings start `pending` and wait for confirm/reject.
    pub requires_confirmation: bool,
    /// Pending bookings block their slot.
    pub pending_blocks: bool,
    /// A reschedule must give a reason.
    pub reschedule_reason_required: bool,
    /// Attendees per slot (group events when > 1).
    pub seats: u32,
    /// How hosts are assigned.
    pub assignment: Assignment,
    /// Custom booking questions.
    pub questions: Vec<Question>,
}

/// Something that can be booked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventType {
    /// Its id.
    pub id: Uuid,
    /// URL-safe name, unique per organization.
    pub slug: String,
    /// Display title.
    pub title: String,
    /// Optional description.
    pub description: Option<String>,
    /// Its rules.
    pub settings: EventTypeSettings,
    /// Its hosts, in the order given.
    pub host_ids: Vec<Uuid>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// What a new event type is made of (validated by the caller).
#[derive(Clone, Debug)]
pub struct NewEventType {
    /// URL-safe name.
    pub slug: String,
    /// Display title.
    pub title: String,
    /// Optional description.
    pub description: Option<String>,
    /// Its rules.
    pub settings: EventTypeSettings,
    /// Its hosts.
    pub host_ids: Vec<Uuid>,
}

/// One outbox event, as stored and as sent (the `data` is the payload).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `evt_` + a time-ordered ULID-style id; stable across retries and replays.
    pub id: String,
    /// For example `host.created`.
    pub event_type: String,
    /// The payload.
    pub data: serde_json::Value,
    /// When the change happened.
    pub created_at: Timestamp,
}

/// A host with everything the slot engine needs for one query window.
#[derive(Clone, Debug)]
pub struct HostSlotInput {
    /// The host.
    pub host: Host,
    /// Busy intervals overlapping the window.
    pub busy: Vec<Interval>,
}
