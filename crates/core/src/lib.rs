//! slotd-core: slotd's scheduling domain, with no I/O and no async.
//!
//! The crate turns a host's working hours and busy time into bookable slots, following
//! PRODUCT.md's "Slot rules" exactly, so the slot API and the commit-time re-check agree.
//! Layout, from the bottom up:
//!
//! - [`interval`]: half-open `[start, end)` spans of real time and merging them.
//! - [`zone`]: IANA zone lookup in the bundled tz database (results never depend on the
//!   machine) and the fast wall-clock → instant conversion the engine uses.
//! - [`availability`]: weekly hours and date overrides in the API's JSON shape, with
//!   validation that points at each invalid field.
//! - [`booking`]: the booking lifecycle and the commit-time checks of a start.
//! - [`slots`]: the engine, [`compute_slots`], plus [`working_spans`] for callers that need
//!   the working time itself.
//! - [`webhook`]: Standard Webhooks signing, the delivery retry schedule, and the SSRF guard's
//!   address and URL checks, so the server's outbox worker only does the sending.
//!
//! Everything is a pure function of its inputs (including `now`), which is what lets the
//! server recompute a slot at commit time and get the same answer.

pub mod availability;
pub mod booking;
pub mod ics;
pub mod interval;
pub mod manage_token;
pub mod slots;
pub mod webhook;
pub mod zone;

pub use availability::{Availability, DateOverride, FieldError, WallRange, WallTime, WeeklyHours};
pub use interval::{Interval, merge};
pub use slots::{Assignment, HostSchedule, SameTypeBooking, Slot, SlotQuery, SlotRules, compute_slots, working_spans};
pub use zone::{UnknownTimeZone, time_zone};
