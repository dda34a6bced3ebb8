//! One event type's hosts as the slot engine sees them right now: rules, working hours, busy
//! blocks and other bookings' blocks, loaded from the store for a window. The slot list, the
//! booking commit and the reschedule all go through [`Schedule`], so what a client is shown is
//! exactly what it can book (PRODUCT.md, Guarantee 2).

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use slotd_core::booking::{StartRejection, check_start};
use slotd_core::interval::Interval;
use slotd_core::slots::{HostSchedule, SameTypeBooking, Slot, SlotQuery, SlotRules, compute_slots};
use slotd_store::{EventType, Host, OrgId};
use uuid::Uuid;

use crate::app::AppState;
use crate::calendars::{CalendarWarning, Unavailable, subtract};
use crate::error::{Alternative, ApiError};

/// How calendar connections' busy time is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendarRead {
    /// From the process's cache (slot listings): a calendar that cannot be read becomes a
    /// warning.
    Cached,
    /// Live (commits): a calendar that cannot be read refuses the commit unless it is set to be
    /// ignored.
    Live,
}

/// How far around a taken start alternatives are looked for.
const ALTERNATIVES_REACH_DAYS: i64 = 14;

/// An event type with its hosts' rules and busy time over one window.
pub struct Schedule {
    /// The event type.
    pub event_type: EventType,
    /// Its live hosts, in the event type's order.
    pub hosts: Vec<Host>,
    zones: Vec<TimeZone>,
    busy: Vec<Vec<Interval>>,
    same_type: Vec<Vec<SameTypeBooking>>,
    /// Calendar connections that could not be read (cached reads only).
    pub warnings: Vec<CalendarWarning>,
    /// Calendar connections a live read could not read: their hosts take nothing in this
    /// schedule (a commit that finds no host answers `503 calendar_unavailable`).
    unreadable: Vec<Unavailable>,
}

/// Minutes as a signed duration.
pub fn minutes(m: u32) -> SignedDuration {
    SignedDuration::from_mins(i64::from(m))
}

impl Schedule {
    /// Loads what candidates starting in `window` can meet. `exclude_booking` leaves one
    /// booking's own blocks out (a booking being moved does not collide with itself).
    pub async fn load(
        state: &AppState,
        org: OrgId,
        event_type: EventType,
        window: Interval,
        exclude_booking: Option<Uuid>,
        read: CalendarRead,
    ) -> Result<Schedule, ApiError> {
        let hosts = state.store.hosts_by_ids(org, &event_type.host_ids).await?;
        Schedule::with_hosts(state, org, event_type, hosts, window, exclude_booking, read).await
    }

    /// Loads a live event type, its hosts and their busy time (two queries); `None` if there is
    /// no such event type.
    pub async fn load_by_id(
        state: &AppState,
        org: OrgId,
        event_type_id: Uuid,
        window: Interval,
        exclude_booking: Option<Uuid>,
        read: CalendarRead,
    ) -> Result<Option<Schedule>, ApiError> {
        let Some((event_type, hosts)) = state.store.event_type_with_hosts(org, event_type_id).await? else {
            return Ok(None);
        };
        Ok(Some(Schedule::with_hosts(state, org, event_type, hosts, window, exclude_booking, read).await?))
    }

    /// Loads the busy time of hosts already read with their event type (one query, plus their
    /// calendar connections' busy time, read as `read` says).
    pub async fn with_hosts(
        state: &AppState,
        org: OrgId,
        event_type: EventType,
        hosts: Vec<Host>,
        window: Interval,
        exclude_booking: Option<Uuid>,
        read: CalendarRead,
    ) -> Result<Schedule, ApiError> {
        let zones = hosts
            .iter()
            .map(|h| slotd_core::zone::time_zone(&h.time_zone))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::Internal(format!("stored host zone: {e}")))?;
        // Busy time matters where a candidate's block can reach: the window widened by the
        // buffers and the duration.
        let s = &event_type.settings;
        let reach = Interval {
            start: window.start - minutes(s.buffer_before_minutes),
            end: window.end + minutes(s.duration_minutes + s.buffer_after_minutes),
        };
        let slotd_store::BusyTime { blocks, held, mut calendars } =
            state.store.busy_time(org, &event_type.host_ids, reach).await?;
        let mut busy = vec![Vec::new(); hosts.len()];
        let mut same_type = vec![Vec::new(); hosts.len()];
        let index_of = |id: Uuid| hosts.iter().position(|h| h.id == id);
        for (host_id, interval) in blocks {
            if let Some(i) = index_of(host_id) {
                busy[i].push(interval);
            }
        }
        calendars.retain(|c| index_of(c.host_id).is_some());
        let mut warnings = Vec::new();
        let mut unreadable = Vec::new();
        if !calendars.is_empty() {
            let zone_of = |id: Uuid| index_of(id).map_or(TimeZone::UTC, |i| zones[i].clone());
            let calendar_busy = match read {
                CalendarRead::Cached => {
                    let (busy, found) = state.calendars.cached_busy(&state.store, &calendars, zone_of, reach).await;
                    warnings = found;
                    busy
                }
                CalendarRead::Live => {
                    let (busy, failed) = state.calendars.live_busy(&state.store, &calendars, zone_of, reach).await;
                    unreadable = failed;
                    busy
                }
            };
            // A host whose calendar cannot be read cannot be confirmed free at any time.
            for failed in &unreadable {
                if let Some(i) = index_of(failed.host_id) {
                    busy[i].push(reach);
                }
            }
            // slotd's own bookings are in the database with their buffers; the events it wrote
            // for them are not busy time a second time (and a booking's own event never blocks
            // the booking itself, e.g. when it moves next to where it is).
            for (i, host) in hosts.iter().enumerate() {
                let intervals: Vec<Interval> =
                    calendar_busy.iter().filter(|(h, _)| *h == host.id).map(|(_, iv)| *iv).collect();
                if intervals.is_empty() {
                    continue;
                }
                // A booking of this event type gives its meeting time (its seats may share the
                // start; the booking being moved may overlap it); others their whole block,
                // which is busy anyway.
                let duration = minutes(s.duration_minutes);
                let own: Vec<Interval> = held
                    .iter()
                    .filter(|b| b.host_id == host.id)
                    .map(|b| match b.event_type_id == event_type.id {
                        true => Interval { start: b.start, end: b.start + duration },
                        false => b.block,
                    })
                    .collect();
                busy[i].extend(subtract(&intervals, &own));
            }
        }
        for block in held {
            if Some(block.booking_id) == exclude_booking {
                continue;
            }
            let Some(i) = index_of(block.host_id) else { continue };
            if block.event_type_id == event_type.id {
                same_type[i].push(SameTypeBooking { start: block.start, block: block.block });
            } else {
                busy[i].push(block.block);
            }
        }
        Ok(Schedule { event_type, hosts, zones, busy, same_type, warnings, unreadable })
    }

    /// The `503 calendar_unavailable` of a commit that found no free host while some host's
    /// calendar could not be read (`None`: every calendar was read, so the time is taken).
    pub fn calendar_unavailable(&self) -> Option<ApiError> {
        self.unreadable.first().map(|failed| {
            tracing::warn!(calendar = %failed.calendar_id, detail = %failed.detail, "a commit could not read a calendar");
            ApiError::CalendarUnavailable {
                calendar_id: failed.calendar_id,
                detail: "a calendar of the host could not be read, so this time cannot be confirmed free; try again \
                         shortly (the connection's last_error says why)"
                    .to_owned(),
            }
        })
    }

    /// The event type's rules in the engine's terms.
    pub fn rules(&self) -> SlotRules {
        let s = &self.event_type.settings;
        SlotRules {
            duration_minutes: s.duration_minutes,
            interval_minutes: s.slot_interval_minutes,
            buffer_before_minutes: s.buffer_before_minutes,
            buffer_after_minutes: s.buffer_after_minutes,
            min_notice_minutes: s.min_notice_minutes,
            booking_window_days: s.booking_window_days,
            seats: s.seats,
            assignment: s.assignment,
        }
    }

    fn host_schedules(&self) -> Vec<HostSchedule<'_>> {
        (0..self.hosts.len())
            .map(|i| HostSchedule {
                time_zone: &self.zones[i],
                availability: &self.hosts[i].availability,
                busy: &self.busy[i],
                same_type_bookings: &self.same_type[i],
            })
            .collect()
    }

    /// Free, bookable slots starting in `window` (which must lie within the loaded window).
    pub fn slots(&self, window: Interval, now: Timestamp) -> Vec<Slot> {
        self.slots_with(self.rules(), window, now)
    }

    fn slots_with(&self, rules: SlotRules, window: Interval, now: Timestamp) -> Vec<Slot> {
        compute_slots(&rules, &self.host_schedules(), &SlotQuery { window, now })
    }

    /// Whether `start` is allowed by the rules at all (ignoring busy time).
    pub fn check_start(&self, start: Timestamp, now: Timestamp, ignore_notice: bool) -> Result<(), StartRejection> {
        check_start(&self.rules(), &self.host_schedules(), start, now, ignore_notice)
    }

    /// The free slot at exactly `start`, if there is one. `ignore_notice` lifts the minimum
    /// notice (a host's own change).
    pub fn slot_at(&self, start: Timestamp, now: Timestamp, ignore_notice: bool) -> Option<Slot> {
        let mut rules = self.rules();
        if ignore_notice {
            rules.min_notice_minutes = 0;
        }
        let window = Interval { start, end: start + SignedDuration::from_secs(1) };
        self.slots_with(rules, window, now).into_iter().find(|s| s.start == start)
    }

    /// The meeting and block of a booking starting at `start`.
    pub fn placement_times(&self, start: Timestamp) -> (Interval, Interval) {
        let s = &self.event_type.settings;
        let end = start + minutes(s.duration_minutes);
        (
            Interval { start, end },
            Interval { start: start - minutes(s.buffer_before_minutes), end: end + minutes(s.buffer_after_minutes) },
        )
    }
}

/// A `409 slot_taken` for `start` with up to 5 free alternatives nearest to it. A booking being
/// moved (`exclude_booking`: its id and current start) does not block them and is not offered
/// its own current start.
pub async fn slot_taken(
    state: &AppState,
    org: OrgId,
    event_type: &EventType,
    start: Timestamp,
    exclude_booking: Option<(Uuid, Timestamp)>,
    now: Timestamp,
) -> ApiError {
    let current_start = exclude_booking.map(|(_, start)| start);
    let exclude_booking = exclude_booking.map(|(id, _)| id);
    let reach = SignedDuration::from_hours(24 * ALTERNATIVES_REACH_DAYS);
    let window = Interval { start: (start - reach).max(now), end: start + reach };
    let alternatives = match Interval::new(window.start, window.end) {
        Some(window) => {
            match Schedule::load(state, org, event_type.clone(), window, exclude_booking, CalendarRead::Cached).await {
                Ok(schedule) => {
                    let mut slots = schedule.slots(window, now);
                    // A booking being moved is offered other times, not the one it already has.
                    slots.retain(|s| Some(s.start) != current_start);
                    slots.sort_by_key(|s| (s.start.duration_since(start).abs(), s.start));
                    slots.truncate(5);
                    slots.sort_by_key(|s| s.start);
                    slots.into_iter().map(|s| Alternative { start: s.start, end: s.end }).collect()
                }
                Err(e) => return e,
            }
        }
        None => Vec::new(),
    };
    ApiError::SlotTaken {
        detail: format!("{start} is no longer available; see alternatives for the nearest free slots"),
        alternatives,
    }
}
