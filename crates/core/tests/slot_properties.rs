//! Property tests of the slot rules on random availability, busy time, rules and windows
//! around DST transitions in zones with odd offsets and odd DST (30-minute shifts on
//! Lord Howe, +12:45/+13:45 on Chatham, none in Kolkata).
//!
//! Besides the invariants (no overlap with busy time, inside working time, order-free,
//! real instants, window-independent), every case is compared with a deliberately naive
//! re-implementation of PRODUCT.md's rules written with jiff's high-level API only.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use slotd_core::{
    Assignment, Availability, DateOverride, HostSchedule, Interval, SameTypeBooking, Slot, SlotQuery, SlotRules,
    WallRange, WallTime, WeeklyHours, compute_slots, time_zone,
};

const ZONES: [&str; 5] =
    ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham"];

/// Instants near which windows are placed: DST transitions of the zones above (2026), and
/// one quiet date.
const PIVOTS: [&str; 9] = [
    "2026-03-08T07:00:00Z", // New York springs forward
    "2026-11-01T06:00:00Z", // New York falls back
    "2026-03-29T01:00:00Z", // London springs forward
    "2026-10-25T01:00:00Z", // London falls back
    "2026-04-04T15:00:00Z", // Lord Howe falls back 30 minutes
    "2026-10-03T15:30:00Z", // Lord Howe springs forward 30 minutes
    "2026-04-04T14:00:00Z", // Chatham falls back
    "2026-09-26T14:00:00Z", // Chatham springs forward
    "2026-06-15T12:00:00Z",
];

#[derive(Clone, Debug)]
struct RawHost {
    zone: usize,
    weekly: Vec<Vec<WallRange>>,
    /// (days from the pivot's UTC date, ranges)
    overrides: Vec<(i64, Vec<WallRange>)>,
    /// (minutes from the window start, length in minutes)
    busy: Vec<(i64, i64)>,
    /// (15-minute steps from the pivot, block minutes before the start, block length,
    /// copies). The pivots are whole hours and every zone's offset a multiple of 15
    /// minutes, so these starts often sit on the grid and exercise seat counting.
    same_type: Vec<(i64, i64, i64, usize)>,
}

#[derive(Clone, Debug)]
struct Scenario {
    hosts: Vec<RawHost>,
    rules: SlotRules,
    pivot: usize,
    window_offset_minutes: i64,
    window_minutes: i64,
    now_before_minutes: i64,
    /// Same-type bookings put on starts the engine offers when there are none:
    /// (which offered slot, which of its hosts, copies, block minutes before, block length).
    seat_picks: Vec<(usize, usize, usize, i64, i64)>,
    /// Sub-window as fractions (per mille) of the window.
    sub: (i64, i64),
    shuffle_seed: u64,
}

fn minute() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => prop::sample::select(vec![0u16, 60, 90, 105, 120, 135, 150, 165, 180, 210, 225, 1380, 1425, 1440]),
        2 => 0u16..=1440,
    ]
}

fn wall_range() -> impl Strategy<Value = WallRange> {
    let wall = |m: u16| WallTime::from_minutes(m).unwrap();
    prop_oneof![
        9 => (minute(), minute()).prop_map(move |(a, b)| WallRange { start: wall(a.min(b)), end: wall(a.max(b)) }),
        // Occasionally inverted or empty: such a range must simply cover nothing.
        1 => (minute(), minute()).prop_map(move |(a, b)| WallRange { start: wall(a), end: wall(b) }),
    ]
}

fn raw_host() -> impl Strategy<Value = RawHost> {
    (
        0..ZONES.len(),
        prop::collection::vec(prop::collection::vec(wall_range(), 0..3), 7),
        prop::collection::vec((-6i64..6, prop::collection::vec(wall_range(), 0..3)), 0..3),
        prop::collection::vec((-3000i64..10000, 1i64..300), 0..25),
        prop::collection::vec((-300i64..600, 0i64..40, 5i64..120, 1usize..=3), 0..6),
    )
        .prop_map(|(zone, weekly, overrides, busy, same_type)| RawHost {
            zone,
            weekly,
            overrides,
            busy,
            same_type,
        })
}

fn rules() -> impl Strategy<Value = SlotRules> {
    (
        prop_oneof![Just(15u32), Just(25), Just(30), Just(60), Just(1440), 1u32..=240],
        prop_oneof![Just(0u32), Just(15), Just(25), Just(30), 5u32..=120],
        prop_oneof![Just(0u32), 0u32..=60],
        prop_oneof![Just(0u32), 0u32..=60],
        prop_oneof![Just(0u32), 0u32..=3000],
        1u32..=10,
        prop_oneof![Just(1u32), 2u32..=3],
        prop_oneof![Just(Assignment::Single), Just(Assignment::RoundRobin), Just(Assignment::Collective)],
    )
        .prop_map(|(duration, interval, before, after, notice, window_days, seats, assignment)| SlotRules {
            duration_minutes: duration,
            interval_minutes: interval,
            buffer_before_minutes: before,
            buffer_after_minutes: after,
            min_notice_minutes: notice,
            booking_window_days: window_days,
            seats,
            assignment,
        })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(raw_host(), 1..=3),
        rules(),
        0..PIVOTS.len(),
        -4320i64..1440,
        60i64..=7200,
        0i64..4320,
        prop::collection::vec((any::<usize>(), any::<usize>(), 1usize..=3, 0i64..40, 5i64..120), 0..4),
        (0i64..=1000, 0i64..=1000),
        any::<u64>(),
    )
        .prop_map(|(hosts, rules, pivot, off, len, now_before, seat_picks, sub, shuffle_seed)| Scenario {
            hosts,
            rules,
            pivot,
            window_offset_minutes: off,
            window_minutes: len,
            now_before_minutes: now_before,
            seat_picks,
            sub,
            shuffle_seed,
        })
}

fn minutes(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

/// A scenario's hosts as owned data.
struct Host {
    zone: TimeZone,
    availability: Availability,
    busy: Vec<Interval>,
    same_type: Vec<SameTypeBooking>,
}

impl Host {
    fn schedule(&self) -> HostSchedule<'_> {
        HostSchedule {
            time_zone: &self.zone,
            availability: &self.availability,
            busy: &self.busy,
            same_type_bookings: &self.same_type,
        }
    }
}

struct Built {
    hosts: Vec<Host>,
    query: SlotQuery,
}

fn build(s: &Scenario) -> Built {
    let pivot: Timestamp = PIVOTS[s.pivot].parse().unwrap();
    let start = pivot + minutes(s.window_offset_minutes);
    let window = Interval::new(start, start + minutes(s.window_minutes)).unwrap();
    let pivot_date = pivot.to_zoned(TimeZone::UTC).date();
    let hosts: Vec<Host> = s
        .hosts
        .iter()
        .map(|h| {
            let w = &h.weekly;
            let weekly = WeeklyHours {
                monday: w[0].clone(),
                tuesday: w[1].clone(),
                wednesday: w[2].clone(),
                thursday: w[3].clone(),
                friday: w[4].clone(),
                saturday: w[5].clone(),
                sunday: w[6].clone(),
            };
            let overrides = h
                .overrides
                .iter()
                .map(|(days, ranges)| DateOverride {
                    date: pivot_date.checked_add(jiff::Span::new().days(*days)).unwrap(),
                    ranges: ranges.clone(),
                })
                .collect();
            let busy = h
                .busy
                .iter()
                .map(|&(at, len)| Interval::new(start + minutes(at), start + minutes(at + len)).unwrap())
                .collect();
            let same_type = h
                .same_type
                .iter()
                .flat_map(|&(step, before, len, copies)| {
                    let at = pivot + minutes(step * 15);
                    let block = Interval::new(at - minutes(before), at + minutes(len)).unwrap();
                    std::iter::repeat_n(SameTypeBooking { start: at, block }, copies)
                })
                .collect();
            Host {
                zone: time_zone(ZONES[h.zone]).unwrap(),
                availability: Availability { weekly, overrides },
                busy,
                same_type,
            }
        })
        .collect();
    let query = SlotQuery { window, now: start - minutes(s.now_before_minutes) };
    let mut hosts: Vec<Host> = hosts;
    if !s.seat_picks.is_empty() {
        // Random starts rarely sit on a grid; these do, so seat counting gets exercised.
        // Offered while ignoring busy time, so a booked start can also meet busy time.
        let idle: Vec<Host> = hosts
            .iter()
            .map(|h| Host {
                zone: h.zone.clone(),
                availability: h.availability.clone(),
                busy: vec![],
                same_type: vec![],
            })
            .collect();
        let offered = run(&idle, &s.rules, &query);
        for &(which, host, copies, before, len) in &s.seat_picks {
            let Some(slot) = offered.get(which % offered.len().max(1)) else { break };
            let at = slot.start;
            let block = Interval::new(at - minutes(before), at + minutes(len)).unwrap();
            let h = slot.hosts[host % slot.hosts.len()];
            hosts[h].same_type.extend(std::iter::repeat_n(SameTypeBooking { start: at, block }, copies));
        }
    }
    Built { hosts, query }
}

fn run(hosts: &[Host], rules: &SlotRules, query: &SlotQuery) -> Vec<Slot> {
    let schedules: Vec<_> = hosts.iter().map(Host::schedule).collect();
    compute_slots(rules, &schedules, query)
}

/// The ranges a local date uses (override first, else its weekday's).
fn ranges_of(a: &Availability, date: Date) -> &[WallRange] {
    match a.overrides.iter().find(|o| o.date == date) {
        Some(o) => &o.ranges,
        None => a.weekly.day(date.weekday()),
    }
}

/// A wall time of a date as an instant, "compatible" (24:00 is the next date's 00:00).
fn instant(zone: &TimeZone, date: Date, wall: WallTime) -> Timestamp {
    let (date, m) = if wall.minutes() == 1440 { (date.tomorrow().unwrap(), 0) } else { (date, wall.minutes()) };
    let civil = date.at((m / 60) as i8, (m % 60) as i8, 0, 0);
    zone.to_ambiguous_timestamp(civil).compatible().unwrap()
}

/// Rule 1 with jiff's high-level API: each date's ranges in real time, for `first..=last`.
fn converted_ranges(zone: &TimeZone, a: &Availability, first: Date, last: Date) -> Vec<(Timestamp, Timestamp)> {
    let mut out = vec![];
    let mut date = first;
    while date <= last {
        for r in ranges_of(a, date) {
            let (s, e) = (instant(zone, date, r.start), instant(zone, date, r.end));
            if s < e {
                out.push((s, e));
            }
        }
        date = date.tomorrow().unwrap();
    }
    out
}

fn merged(mut v: Vec<(Timestamp, Timestamp)>) -> Vec<(Timestamp, Timestamp)> {
    v.sort();
    let mut out: Vec<(Timestamp, Timestamp)> = vec![];
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The rules read literally, candidate by candidate, with no attempt at speed.
fn naive_slots(rules: &SlotRules, hosts: &[Host], q: &SlotQuery) -> Vec<Slot> {
    if rules.duration_minutes == 0 {
        return vec![];
    }
    let d = minutes(rules.duration_minutes.into());
    let step = if rules.interval_minutes == 0 { d } else { minutes(rules.interval_minutes.into()) };
    let (before, after) = (minutes(rules.buffer_before_minutes.into()), minutes(rules.buffer_after_minutes.into()));
    let seats = rules.seats.max(1);
    let earliest = q.now + minutes(rules.min_notice_minutes.into());
    let latest = q.now + SignedDuration::from_hours(24 * i64::from(rules.booking_window_days));
    let hosts = if rules.assignment == Assignment::Single { &hosts[..1] } else { hosts };
    let mut per_host: Vec<BTreeMap<Timestamp, u32>> = vec![];
    for host in hosts {
        let zone = &host.zone;
        // Far wider than the engine's margins.
        let first = (q.window.start - SignedDuration::from_hours(72)).to_zoned(zone.clone()).date();
        let last = (q.window.end + d + SignedDuration::from_hours(72)).to_zoned(zone.clone()).date();
        let spans = merged(converted_ranges(zone, &host.availability, first, last));
        let mut day_starts = vec![];
        let mut date = first;
        while date <= last.tomorrow().unwrap() {
            day_starts.push(date.to_zoned(zone.clone()).unwrap().start_of_day().unwrap().timestamp());
            date = date.tomorrow().unwrap();
        }
        let mut free = BTreeMap::new();
        for &(span_start, span_end) in &spans {
            let mut anchors = vec![span_start];
            anchors.extend(day_starts.iter().copied().filter(|&t| span_start < t && t < span_end));
            for (i, &anchor) in anchors.iter().enumerate() {
                let next = anchors.get(i + 1).copied().unwrap_or(span_end);
                let mut t = anchor;
                while t < next && t + d <= span_end {
                    let block = Interval::new(t - before, t + d + after).unwrap();
                    let count = host.same_type.iter().filter(|b| b.start == t).count() as u32;
                    let is_free = count < seats
                        && host.busy.iter().all(|b| !b.overlaps(&block))
                        && host.same_type.iter().all(|b| b.start == t || !b.block.overlaps(&block));
                    if is_free && t >= earliest && t < latest && q.window.contains(t) {
                        free.insert(t, seats - count);
                    }
                    t += step;
                }
            }
        }
        per_host.push(free);
    }
    let mut out = vec![];
    let all: std::collections::BTreeSet<Timestamp> = per_host.iter().flat_map(|m| m.keys().copied()).collect();
    for t in all {
        let free: Vec<(usize, u32)> =
            per_host.iter().enumerate().filter_map(|(h, m)| m.get(&t).map(|&s| (h, s))).collect();
        let listed = match rules.assignment {
            Assignment::Collective => free.len() == per_host.len(),
            _ => true,
        };
        if listed {
            let seats_left = match rules.assignment {
                Assignment::Collective => free.iter().map(|f| f.1).min().unwrap(),
                _ => free.iter().map(|f| f.1).max().unwrap(),
            };
            out.push(Slot { start: t, end: t + d, hosts: free.iter().map(|f| f.0).collect(), seats_left });
        }
    }
    out
}

/// A deterministic shuffle (xorshift Fisher–Yates).
fn shuffled<T: Clone>(v: &[T], mut seed: u64) -> Vec<T> {
    let mut out = v.to_vec();
    seed |= 1;
    for i in (1..out.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn slots_follow_the_rules_around_dst_transitions(s in scenario()) {
        let Built { hosts, query } = build(&s);
        let rules = &s.rules;
        let got = run(&hosts, rules, &query);
        let d = minutes(rules.duration_minutes.into());

        // (d) Sorted ascending, no start twice.
        prop_assert!(got.windows(2).all(|p| p[0].start < p[1].start));

        for slot in &got {
            prop_assert_eq!(slot.end, slot.start + d);
            prop_assert!(query.window.contains(slot.start));
            prop_assert!(!slot.hosts.is_empty() && slot.hosts.windows(2).all(|p| p[0] < p[1]));
            if rules.assignment == Assignment::Collective {
                prop_assert_eq!(slot.hosts.len(), hosts.len());
            }
            let block = Interval::new(
                slot.start - minutes(rules.buffer_before_minutes.into()),
                slot.end + minutes(rules.buffer_after_minutes.into()),
            ).unwrap();
            for &h in &slot.hosts {
                let host = &hosts[h];
                // (a) The block meets no busy time, and no same-type booking at another start.
                prop_assert!(host.busy.iter().all(|b| !b.overlaps(&block)), "{slot:?} meets busy");
                prop_assert!(host.same_type.iter().all(|b| b.start == slot.start || !b.block.overlaps(&block)));
                let booked = host.same_type.iter().filter(|b| b.start == slot.start).count() as u32;
                prop_assert!(booked < rules.seats.max(1));

                // (b) Inside one working span, computed here with jiff directly...
                let local = slot.start.to_zoned(host.zone.clone());
                let day = local.date();
                let around = converted_ranges(
                    &host.zone,
                    &host.availability,
                    day.checked_sub(jiff::Span::new().days(3)).unwrap(),
                    day.checked_add(jiff::Span::new().days(3)).unwrap(),
                );
                let spans = merged(around.clone());
                prop_assert!(
                    spans.iter().any(|&(s, e)| s <= slot.start && slot.end <= e),
                    "{slot:?} outside working time of host {h}"
                );
                // ...and the start's wall clock lies in a range of its own local date or of
                // a neighbouring date merged with it.
                let own = converted_ranges(&host.zone, &host.availability, day, day);
                let neighbours = converted_ranges(
                    &host.zone,
                    &host.availability,
                    day.yesterday().unwrap(),
                    day.tomorrow().unwrap(),
                );
                prop_assert!(
                    own.iter().chain(&neighbours).any(|&(s, e)| s <= slot.start && slot.start < e),
                    "{slot:?} starts outside its date's ranges"
                );

                // (d) A real instant: its local time maps back to it (in a fold, to one of
                // the two instants that share the wall-clock time; never a gap).
                match host.zone.to_ambiguous_timestamp(local.datetime()).offset() {
                    AmbiguousOffset::Unambiguous { offset } => {
                        prop_assert_eq!(offset.to_timestamp(local.datetime()).unwrap(), slot.start);
                    }
                    AmbiguousOffset::Fold { before, after } => prop_assert!(
                        before.to_timestamp(local.datetime()).unwrap() == slot.start
                            || after.to_timestamp(local.datetime()).unwrap() == slot.start
                    ),
                    AmbiguousOffset::Gap { .. } => prop_assert!(false, "{slot:?} starts in a gap"),
                }
            }
        }

        // Equal to the literal reading of the rules.
        prop_assert_eq!(&got, &naive_slots(rules, &hosts, &query));

        // (c) The order of busy intervals and same-type bookings does not matter.
        let reordered: Vec<Host> = hosts
            .iter()
            .map(|h| Host {
                zone: h.zone.clone(),
                availability: h.availability.clone(),
                busy: shuffled(&h.busy, s.shuffle_seed),
                same_type: shuffled(&h.same_type, s.shuffle_seed.rotate_left(7)),
            })
            .collect();
        prop_assert_eq!(&run(&reordered, rules, &query), &got);

        // (e) A sub-window lists exactly the window's slots that start in it.
        let span = query.window.duration();
        let (a, b) = (s.sub.0.min(s.sub.1), s.sub.0.max(s.sub.1));
        let sub_start = query.window.start + span * a as i32 / 1000;
        let sub_end = query.window.start + span * b as i32 / 1000;
        if let Some(sub) = Interval::new(sub_start, sub_end) {
            let expected: Vec<Slot> = got.iter().filter(|x| sub.contains(x.start)).cloned().collect();
            prop_assert_eq!(run(&hosts, rules, &SlotQuery { window: sub, ..query }), expected);
        }
    }
}
