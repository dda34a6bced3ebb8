//! `serve --demo`: one organization with a host in Europe/London (Monday–Friday 09:00–17:00)
//! and a 30-minute event type, so a newcomer gets slots from the first curl.

use jiff::{SignedDuration, Timestamp};
use slotd_core::availability::{Availability, WallRange, WallTime, WeeklyHours};
use slotd_core::slots::Assignment;
use slotd_store::{EventTypeSettings, NewEventType, NewHost, Plan, Store, StoreError};
use uuid::Uuid;

use crate::api::{event_type_event, host_event};

/// What the demo created.
pub struct Demo {
    /// A working API key.
    pub api_key: String,
    /// The 30-minute event type.
    pub event_type_id: Uuid,
}

/// Creates the demo organization, key, host and event type.
pub async fn seed(store: &Store) -> Result<Demo, StoreError> {
    let org = store.create_organization("Demo", Plan::Growth).await?;
    let api_key = crate::keys::create_api_key(store, org.id).await?;
    let office =
        WallRange { start: WallTime::parse("09:00").expect("valid"), end: WallTime::parse("17:00").expect("valid") };
    let weekly = WeeklyHours {
        monday: vec![office],
        tuesday: vec![office],
        wednesday: vec![office],
        thursday: vec![office],
        friday: vec![office],
        ..WeeklyHours::default()
    };
    let host = NewHost {
        name: "Ada Demo".into(),
        email: "ada@example.com".into(),
        time_zone: "Europe/London".into(),
        availability: Availability { weekly, overrides: Vec::new() },
    };
    let host = store.create_host(org.id, host, host_event).await?;
    let event_type = NewEventType {
        slug: "intro-call".into(),
        title: "Intro call".into(),
        description: Some("A 30-minute introduction.".into()),
        settings: EventTypeSettings {
            duration_minutes: 30,
            slot_interval_minutes: 30,
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            min_notice_minutes: 60,
            booking_window_days: 60,
            reschedule_cutoff_minutes: 0,
            cancel_cutoff_minutes: 0,
            requires_confirmation: false,
            pending_blocks: true,
            reschedule_reason_required: false,
            seats: 1,
            assignment: Assignment::Single,
            questions: Vec::new(),
        },
        host_ids: vec![host.id],
    };
    let event_type = store.create_event_type(org.id, event_type, event_type_event).await?;
    Ok(Demo { api_key, event_type_id: event_type.id })
}

impl Demo {
    /// The lines `serve --demo` prints: the key, the event type and a ready curl line for the
    /// next seven days of slots.
    pub fn instructions(&self, public_url: &str) -> String {
        let start = Timestamp::now().round(jiff::Unit::Second).expect("rounding to seconds cannot overflow");
        let end = start + SignedDuration::from_hours(24 * 7);
        format!(
            "API key: {key}\nEvent type: {event_type}\nTry:\n  curl -s -H 'Authorization: Bearer {key}' \
             '{public_url}/v1/slots?event_type_id={event_type}&start={start}&end={end}'",
            key = self.api_key,
            event_type = self.event_type_id,
        )
    }
}
