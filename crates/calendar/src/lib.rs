//! slotd-calendar: the calendars people already keep, as slotd sees them. Each kind of calendar
//! (an ICS feed, a CalDAV server, Google Calendar) is a busy-time source behind [`BusySource`],
//! and those that can take events are also an [`EventSink`] for write-back. The slot engine and
//! `slotd-core` only ever see busy [`Interval`]s; the server wires sources in (its SSRF-guarded
//! HTTP client is handed to them, so every calendar target passes the same guard as webhooks).
//!
//! This crate never imports the server, and does no caching or scheduling of its own: the server
//! decides when to read (its busy-time cache) and when to write (its outbox worker).

use std::future::Future;

pub mod caldav;
pub mod google;
mod http;
pub mod ics;

pub use slotd_core::interval::Interval;

/// Why a calendar could not be read or written, in words a connection's `last_error` can show.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The calendar did not answer (connection refused, time-out, TLS, DNS, SSRF guard).
    #[error("the calendar could not be reached: {0}")]
    Unreachable(String),
    /// The calendar answered with an error status (bad credentials, not found, rate limited…).
    #[error("the calendar answered {status}: {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// What it said, cut short.
        detail: String,
    },
    /// The calendar's answer could not be understood (not iCalendar, not the XML expected…).
    #[error("the calendar's answer could not be read: {0}")]
    Invalid(String),
    /// The answer was larger than slotd reads.
    #[error("the calendar's answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// A source of busy time.
pub trait BusySource {
    /// The busy intervals that overlap `range` (sorted or not, possibly overlapping; the caller
    /// merges). Transparent and cancelled events are not busy.
    fn busy(&self, range: Interval) -> impl Future<Output = Result<Vec<Interval>, CalendarError>> + Send;
}

/// An event slotd writes into a calendar for a booking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarEvent {
    /// Stable per booking (derived from its id), so a retried write never makes a second event.
    pub uid: String,
    /// The booking's version: later writes carry higher sequences.
    pub sequence: u32,
    /// The meeting's time.
    pub interval: Interval,
    /// Title.
    pub summary: String,
    /// Free text (never the attendee's manage link).
    pub description: String,
}

/// A calendar that takes slotd's events (write-back).
pub trait EventSink {
    /// Creates the event, or replaces the one with the same UID.
    fn put_event(&self, event: &CalendarEvent) -> impl Future<Output = Result<(), CalendarError>> + Send;
    /// Deletes the event with this UID; deleting one that is not there is not an error.
    fn delete_event(&self, uid: &str) -> impl Future<Output = Result<(), CalendarError>> + Send;
}
