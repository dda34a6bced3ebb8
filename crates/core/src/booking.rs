//! A booking's lifecycle and the commit-time rules for its start.
//!
//! [`BookingStatus::apply`] is the whole state machine (PRODUCT.md, "Booking"): a booking is
//! requested `pending` or created `confirmed`; `pending` becomes `confirmed` or `rejected`;
//! `pending` and `confirmed` bookings can be cancelled or rescheduled; `rejected` and
//! `cancelled` are final. [`check_start`] tells why a start cannot be booked whatever the
//! hosts' busy time is (off the grid, outside hours, inside notice, beyond the window): those
//! are the caller's mistakes (422), unlike a start that is merely taken (409).

use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::interval::Interval;
use crate::slots::{HostSchedule, SlotQuery, SlotRules, compute_slots, working_spans};

/// Where a booking is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// Awaiting the host's confirm or reject.
    Pending,
    /// Booked.
    Confirmed,
    /// Turned down by the host (final).
    Rejected,
    /// Called off (final).
    Cancelled,
}

/// A change asked of a booking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingAction {
    /// Accept a pending booking.
    Confirm,
    /// Turn down a pending booking.
    Reject,
    /// Call off a pending or confirmed booking.
    Cancel,
    /// Move a pending or confirmed booking to another start.
    Reschedule,
}

impl BookingAction {
    /// The verb as written in history entries and errors (`confirmed`, …).
    pub fn past_tense(self) -> &'static str {
        match self {
            BookingAction::Confirm => "confirmed",
            BookingAction::Reject => "rejected",
            BookingAction::Cancel => "cancelled",
            BookingAction::Reschedule => "rescheduled",
        }
    }

    /// The verb in the imperative (`confirm`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            BookingAction::Confirm => "confirm",
            BookingAction::Reject => "reject",
            BookingAction::Cancel => "cancel",
            BookingAction::Reschedule => "reschedule",
        }
    }
}

/// An action the booking's status does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {} booking cannot be {}", .from.as_str(), .action.past_tense())]
pub struct InvalidTransition {
    /// The booking's status.
    pub from: BookingStatus,
    /// What was asked.
    pub action: BookingAction,
}

impl BookingStatus {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Pending => "pending",
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Rejected => "rejected",
            BookingStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<BookingStatus> {
        match s {
            "pending" => Some(BookingStatus::Pending),
            "confirmed" => Some(BookingStatus::Confirmed),
            "rejected" => Some(BookingStatus::Rejected),
            "cancelled" => Some(BookingStatus::Cancelled),
            _ => None,
        }
    }

    /// The status after `action`, or why it is not allowed.
    pub fn apply(self, action: BookingAction) -> Result<BookingStatus, InvalidTransition> {
        use BookingAction as A;
        use BookingStatus as S;
        match (self, action) {
            (S::Pending, A::Confirm) => Ok(S::Confirmed),
            (S::Pending, A::Reject) => Ok(S::Rejected),
            (S::Pending | S::Confirmed, A::Cancel) => Ok(S::Cancelled),
            (S::Pending | S::Confirmed, A::Reschedule) => Ok(self),
            (from, action) => Err(InvalidTransition { from, action }),
        }
    }

    /// Whether a booking in this status holds its hosts' time (`pending` only when the event
    /// type says pending bookings block).
    pub fn is_blocking(self, pending_blocks: bool) -> bool {
        match self {
            BookingStatus::Confirmed => true,
            BookingStatus::Pending => pending_blocks,
            BookingStatus::Rejected | BookingStatus::Cancelled => false,
        }
    }
}

/// Why a start can never be booked, whatever is busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartRejection {
    /// Before now.
    #[error("the start is in the past")]
    InThePast,
    /// Closer to now than the minimum notice.
    #[error("the start is inside the event type's minimum notice of {0} minutes")]
    InsideNotice(u32),
    /// At or beyond the booking window.
    #[error("the start is beyond the event type's booking window of {0} days")]
    BeyondWindow(u32),
    /// The booking would not lie inside the host's working hours.
    #[error("the start is outside the host's working hours")]
    OutsideHours,
    /// Inside working hours but not one of the slot grid's starts.
    #[error("the start is not on the slot grid (slots start every {0} minutes from the start of working hours)")]
    NotOnGrid(u32),
}

/// Checks that `start` is a slot the rules allow for `hosts` when nothing is busy (busy and
/// same-type bookings in `hosts` are ignored). `ignore_notice` lifts the minimum notice (a
/// host's own change); a past start and the booking window still apply.
pub fn check_start(
    rules: &SlotRules,
    hosts: &[HostSchedule<'_>],
    start: Timestamp,
    now: Timestamp,
    ignore_notice: bool,
) -> Result<(), StartRejection> {
    if start < now {
        return Err(StartRejection::InThePast);
    }
    let notice = SignedDuration::from_mins(i64::from(rules.min_notice_minutes));
    if !ignore_notice && start < now + notice {
        return Err(StartRejection::InsideNotice(rules.min_notice_minutes));
    }
    let window = SignedDuration::from_hours(24 * i64::from(rules.booking_window_days));
    if start >= now + window {
        return Err(StartRejection::BeyondWindow(rules.booking_window_days));
    }
    let idle: Vec<HostSchedule<'_>> =
        hosts.iter().map(|h| HostSchedule { busy: &[], same_type_bookings: &[], ..*h }).collect();
    let one_second = Interval { start, end: start + SignedDuration::from_secs(1) };
    // Notice was checked above (or is lifted for a host's own change).
    let rules = SlotRules { min_notice_minutes: 0, ..*rules };
    if !compute_slots(&rules, &idle, &SlotQuery { window: one_second, now }).is_empty() {
        return Ok(());
    }
    let duration = SignedDuration::from_mins(i64::from(rules.duration_minutes));
    let meeting = Interval { start, end: start + duration };
    let inside = |h: &HostSchedule<'_>| {
        let date = start.to_zoned(h.time_zone.clone()).date();
        let (first, last) = (date.saturating_sub(1.day()), date.saturating_add(2.days()));
        working_spans(h.time_zone, h.availability, first, last)
            .iter()
            .any(|span| span.start <= meeting.start && meeting.end <= span.end)
    };
    let within_hours = match rules.assignment {
        crate::slots::Assignment::Single => hosts.first().is_some_and(inside),
        crate::slots::Assignment::RoundRobin => hosts.iter().any(inside),
        crate::slots::Assignment::Collective => !hosts.is_empty() && hosts.iter().all(inside),
    };
    if within_hours {
        let interval = if rules.interval_minutes == 0 { rules.duration_minutes } else { rules.interval_minutes };
        Err(StartRejection::NotOnGrid(interval))
    } else {
        Err(StartRejection::OutsideHours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::Availability;
    use crate::slots::Assignment;

    #[test]
    fn the_lifecycle_allows_exactly_the_documented_transitions() {
        use BookingAction as A;
        use BookingStatus as S;
        let all_actions = [A::Confirm, A::Reject, A::Cancel, A::Reschedule];
        let allowed = |s: S, a: A| s.apply(a).ok();
        assert_eq!(allowed(S::Pending, A::Confirm), Some(S::Confirmed));
        assert_eq!(allowed(S::Pending, A::Reject), Some(S::Rejected));
        assert_eq!(allowed(S::Pending, A::Cancel), Some(S::Cancelled));
        assert_eq!(allowed(S::Pending, A::Reschedule), Some(S::Pending));
        assert_eq!(allowed(S::Confirmed, A::Cancel), Some(S::Cancelled));
        assert_eq!(allowed(S::Confirmed, A::Reschedule), Some(S::Confirmed));
        assert_eq!(allowed(S::Confirmed, A::Confirm), None);
        assert_eq!(allowed(S::Confirmed, A::Reject), None);
        for a in all_actions {
            assert_eq!(allowed(S::Rejected, a), None, "{a:?}");
            assert_eq!(allowed(S::Cancelled, a), None, "{a:?}");
        }
        let err = S::Cancelled.apply(A::Confirm).unwrap_err();
        assert_eq!(err.to_string(), "a cancelled booking cannot be confirmed");
    }

    fn office_hours() -> Availability {
        serde_json::from_value(serde_json::json!({
            "weekly": { "tuesday": [ { "start": "09:00", "end": "17:00" } ] }
        }))
        .unwrap()
    }

    fn rules() -> SlotRules {
        SlotRules {
            duration_minutes: 30,
            interval_minutes: 15,
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            min_notice_minutes: 120,
            booking_window_days: 60,
            seats: 1,
            assignment: Assignment::Single,
        }
    }

    #[test]
    fn check_start_names_the_rule_a_start_breaks() {
        let zone = crate::zone::time_zone("Europe/London").unwrap();
        let availability = office_hours();
        let busy =
            [Interval::new("2026-12-01T00:00:00Z".parse().unwrap(), "2026-12-02T00:00:00Z".parse().unwrap()).unwrap()];
        let hosts =
            [HostSchedule { time_zone: &zone, availability: &availability, busy: &busy, same_type_bookings: &[] }];
        let now: Timestamp = "2026-11-30T08:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        // Busy time does not matter here: that is a 409, decided elsewhere.
        assert_eq!(check_start(&rules(), &hosts, at("2026-12-01T09:15:00Z"), now, false), Ok(()));
        assert_eq!(
            check_start(&rules(), &hosts, at("2026-12-01T09:10:00Z"), now, false),
            Err(StartRejection::NotOnGrid(15))
        );
        assert_eq!(
            check_start(&rules(), &hosts, at("2026-12-01T16:45:00Z"), now, false),
            Err(StartRejection::OutsideHours)
        );
        assert_eq!(
            check_start(&rules(), &hosts, at("2026-12-02T09:00:00Z"), now, false),
            Err(StartRejection::OutsideHours)
        );
        let close = at("2026-12-01T09:00:00Z");
        let late_now = at("2026-12-01T08:00:00Z");
        assert_eq!(check_start(&rules(), &hosts, close, late_now, false), Err(StartRejection::InsideNotice(120)));
        assert_eq!(check_start(&rules(), &hosts, close, late_now, true), Ok(()));
        assert_eq!(
            check_start(&rules(), &hosts, close, at("2026-12-01T09:05:00Z"), true),
            Err(StartRejection::InThePast)
        );
        assert_eq!(
            check_start(&rules(), &hosts, at("2027-02-02T09:00:00Z"), now, false),
            Err(StartRejection::BeyondWindow(60))
        );
    }
}
