//! Loader for the shared slot-engine workload (format `slotd-workload/1`, written by
//! `shared/bench/gen_workload.py`), turning it into `compute_slots` inputs.
//!
//! Included with `#[path]` by both the criterion bench (`benches/slots.rs`) and the test
//! that pins its slot count (`tests/workload.rs`), so the two measure exactly the same
//! inputs. `benches/data/workload-seed1.json` is `gen_workload.py --seed 1 --compact`.

// Each includer uses a different subset of this module.
#![allow(dead_code)]

use std::ops::Range;

use jiff::tz::TimeZone;
use serde::Deserialize;
use slotd_core::{
    Assignment, Availability, HostSchedule, Interval, SlotQuery, SlotRules, WallRange, WallTime, time_zone,
};

/// The seed-1 workload: 5 hosts, Europe/London, Mon–Fri 09:00–17:00, 2,000 busy intervals.
pub const SEED_1_JSON: &str = include_str!("../data/workload-seed1.json");

/// A workload ready to feed to the engine.
pub struct Workload {
    /// The event type's rules.
    pub rules: SlotRules,
    /// The 30-day window; `now` is its start.
    pub window: Interval,
    /// Per host, in `event_type.hosts` order.
    pub zones: Vec<TimeZone>,
    /// Per host, in `event_type.hosts` order.
    pub availability: Vec<Availability>,
    /// Every host's busy intervals, as given (unsorted, overlapping), host after host.
    pub busy: Vec<Interval>,
    /// `busy[host_busy[h].clone()]` is host h's busy time.
    pub host_busy: Vec<Range<usize>>,
}

#[derive(Deserialize)]
struct File {
    format: String,
    window: Window,
    event_type: EventType,
    hosts: Vec<HostRow>,
}

#[derive(Deserialize)]
struct Window {
    start: jiff::Timestamp,
    end: jiff::Timestamp,
}

#[derive(Deserialize)]
struct EventType {
    length_minutes: u32,
    slot_interval_minutes: u32,
    before_buffer_minutes: u32,
    after_buffer_minutes: u32,
    minimum_notice_minutes: u32,
    assignment: Assignment,
    hosts: Vec<String>,
}

#[derive(Deserialize)]
struct HostRow {
    id: String,
    time_zone: String,
    weekly_hours: Vec<WeeklyRow>,
    busy: Vec<Interval>,
}

#[derive(Deserialize)]
struct WeeklyRow {
    days: Vec<String>,
    start: WallTime,
    end: WallTime,
}

impl Workload {
    /// The seed-1 workload.
    pub fn seed_1() -> Workload {
        Workload::parse(SEED_1_JSON)
    }

    /// Parses a workload document; panics on anything unexpected (it is fixed test data).
    pub fn parse(json: &str) -> Workload {
        let file: File = serde_json::from_str(json).expect("workload JSON");
        assert_eq!(file.format, "slotd-workload/1");
        let et = &file.event_type;
        let rules = SlotRules {
            duration_minutes: et.length_minutes,
            interval_minutes: et.slot_interval_minutes,
            buffer_before_minutes: et.before_buffer_minutes,
            buffer_after_minutes: et.after_buffer_minutes,
            min_notice_minutes: et.minimum_notice_minutes,
            // The workload has no booking window; make it irrelevant.
            booking_window_days: 3650,
            seats: 1,
            assignment: et.assignment,
        };
        let mut workload = Workload {
            rules,
            window: Interval::new(file.window.start, file.window.end).expect("window"),
            zones: vec![],
            availability: vec![],
            busy: vec![],
            host_busy: vec![],
        };
        for id in &et.hosts {
            let host = file.hosts.iter().find(|h| &h.id == id).expect("event type host");
            workload.zones.push(time_zone(&host.time_zone).expect("zone"));
            let mut availability = Availability::default();
            for row in &host.weekly_hours {
                for day in &row.days {
                    let ranges = match day.as_str() {
                        "mon" => &mut availability.weekly.monday,
                        "tue" => &mut availability.weekly.tuesday,
                        "wed" => &mut availability.weekly.wednesday,
                        "thu" => &mut availability.weekly.thursday,
                        "fri" => &mut availability.weekly.friday,
                        "sat" => &mut availability.weekly.saturday,
                        "sun" => &mut availability.weekly.sunday,
                        other => panic!("unknown day {other}"),
                    };
                    ranges.push(WallRange { start: row.start, end: row.end });
                }
            }
            workload.availability.push(availability);
            let from = workload.busy.len();
            workload.busy.extend_from_slice(&host.busy);
            workload.host_busy.push(from..workload.busy.len());
        }
        workload
    }

    /// The hosts' schedules over `busy`, a copy of [`Workload::busy`] (the bench clones it
    /// the way its sort baseline does).
    pub fn schedules<'a>(&'a self, busy: &'a [Interval]) -> Vec<HostSchedule<'a>> {
        (0..self.zones.len())
            .map(|h| HostSchedule {
                time_zone: &self.zones[h],
                availability: &self.availability[h],
                busy: &busy[self.host_busy[h].clone()],
                same_type_bookings: &[],
            })
            .collect()
    }

    /// The whole window, asked at its start.
    pub fn query(&self) -> SlotQuery {
        SlotQuery { window: self.window, now: self.window.start }
    }
}
