//! The slot engine: from hosts' working hours, busy time and an event type's rules to the
//! list of bookable start times (PRODUCT.md, "Slot rules").
//!
//! [`compute_slots`] follows the rules in order. Per host it lays out **working spans**
//! (rule 1) for a few local dates around the query, walks the candidate grid of each span
//! (rule 2) in one forward sweep against the host's merged busy time (rule 3), keeping only
//! bookable (rule 4) free starts; the hosts' sorted lists are then combined by assignment
//! mode (rule 5) with a k-way merge or intersection. Seats (rule 6) ride along in the sweep.
//!
//! Internally everything is whole Unix seconds (`i64`): every candidate is a whole second
//! (wall-clock minutes minus an offset in seconds, plus whole minutes), so busy intervals
//! are rounded outwards to whole seconds without changing any overlap answer. The tz
//! database is consulted once per date boundary at most, never per candidate.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use jiff::{Timestamp, civil, tz::TimeZone};
use serde::{Deserialize, Serialize};

use crate::availability::Availability;
use crate::interval::{Interval, RawSpan, ceil_second, floor_second, merge_raw, timestamp_at};
use crate::zone::{DAY_SECONDS, WallClock, day_number, local_day, weekday_index};

/// Longest meeting an event type may have, in minutes (the API enforces it).
pub const MAX_DURATION_MINUTES: u32 = 1_440;
/// Longest buffer before or after a meeting, in minutes (the API enforces it).
pub const MAX_BUFFER_MINUTES: u32 = 43_200;

/// How an event type's hosts share its slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignment {
    /// Exactly one host; its free starts.
    #[default]
    Single,
    /// Any one free host takes the booking; a start is listed if at least one host is free.
    RoundRobin,
    /// Every host attends; a start is listed only if all hosts are free.
    Collective,
}

/// An event type's slot rules, in the units of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotRules {
    /// Length of a booking (`d`); 0 yields no slots.
    pub duration_minutes: u32,
    /// Step of the start grid (`i`); 0 means "same as the duration", the API's default.
    pub interval_minutes: u32,
    /// Time kept free before a booking (`bb`).
    pub buffer_before_minutes: u32,
    /// Time kept free after a booking (`ba`).
    pub buffer_after_minutes: u32,
    /// Minimum time between `now` and a start (`n`).
    pub min_notice_minutes: u32,
    /// Starts must be earlier than `now` plus this many 24-hour days (`w`).
    pub booking_window_days: u32,
    /// Bookings per start (group events); 0 is treated as 1.
    pub seats: u32,
    /// How the hosts share the slots.
    pub assignment: Assignment,
}

/// An existing blocking booking of THIS event type on the host (used for seats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SameTypeBooking {
    /// The booking's start (seats are counted per exact start).
    pub start: Timestamp,
    /// The booking's block, buffers included.
    pub block: Interval,
}

/// Everything the engine needs to know about one host.
#[derive(Clone, Copy, Debug)]
pub struct HostSchedule<'a> {
    /// The host's zone; its wall clock reads the availability.
    pub time_zone: &'a TimeZone,
    /// Weekly hours and overrides.
    pub availability: &'a Availability,
    /// Unsorted, may overlap: manual busy, calendar busy, other bookings' blocks.
    pub busy: &'a [Interval],
    /// Blocking bookings of this event type, for seat counting.
    pub same_type_bookings: &'a [SameTypeBooking],
}

/// What is asked: starts within `window`, as seen at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotQuery {
    /// List slots whose start is in this window.
    pub window: Interval,
    /// The request time notice and booking window count from.
    pub now: Timestamp,
}

/// One bookable start.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    /// Start of the booking.
    pub start: Timestamp,
    /// End of the booking (start + duration; buffers not included).
    pub end: Timestamp,
    /// Indices into the `hosts` slice, ascending: the free hosts (all of them for collective).
    pub hosts: Vec<usize>,
    /// Bookings that still fit at this start.
    pub seats_left: u32,
}

/// Every bookable start for `hosts` under `rules`, sorted by start, no duplicates.
///
/// `Single` uses `hosts[0]` (the API guarantees exactly one host); an empty `hosts` gives
/// no slots.
pub fn compute_slots(rules: &SlotRules, hosts: &[HostSchedule<'_>], query: &SlotQuery) -> Vec<Slot> {
    let Some(grid) = Grid::from_rules(rules) else { return Vec::new() };
    let Some((lo, hi)) = bookable_starts(rules, query) else { return Vec::new() };
    let hosts = match rules.assignment {
        Assignment::Single => &hosts[..hosts.len().min(1)],
        Assignment::RoundRobin | Assignment::Collective => hosts,
    };
    if hosts.is_empty() {
        return Vec::new();
    }

    // One flat list of free starts, host after host; `bounds[h]..bounds[h + 1]` is host h's.
    let mut work = HostWork::default();
    let mut free: Vec<FreeStart> = Vec::new();
    let mut bounds = Vec::with_capacity(hosts.len() + 1);
    bounds.push(0);
    for host in hosts {
        work.prepare(host, &grid, lo, hi);
        work.sweep(&grid, lo, hi, &mut free);
        bounds.push(free.len());
        if rules.assignment == Assignment::Collective && free.len() == bounds[bounds.len() - 2] {
            return Vec::new(); // one host with no free start: nothing is collective-free
        }
    }
    let lists: Vec<&[FreeStart]> = bounds.windows(2).map(|w| &free[w[0]..w[1]]).collect();
    match rules.assignment {
        Assignment::Single => {
            lists[0].iter().map(|&(start, seats_left)| grid.slot(start, vec![0], seats_left)).collect()
        }
        Assignment::RoundRobin => any_free(&lists, &grid),
        Assignment::Collective => all_free(&lists, &grid),
    }
}

/// Working spans (rule 1) of local dates `first_date..=last_date` in `zone`, merged.
///
/// Ranges are converted with "compatible" disambiguation; touching or overlapping ranges
/// merge, across midnight too. Spans are cut where the computed dates end: a span that
/// continues from `first_date − 1` starts at `first_date`'s first range.
pub fn working_spans(
    zone: &TimeZone,
    availability: &Availability,
    first_date: civil::Date,
    last_date: civil::Date,
) -> Vec<Interval> {
    let mut spans = Vec::new();
    let mut day_starts = Vec::new();
    lay_out_days(
        &mut WallClock::new(zone),
        availability,
        day_number(first_date),
        day_number(last_date),
        &mut spans,
        &mut day_starts,
    );
    spans.into_iter().filter_map(|(start, end)| Interval::new(timestamp_at(start), timestamp_at(end))).collect()
}

/// A free, bookable start of one host: `(start second, seats left)`.
type FreeStart = (i64, u32);

/// The rules in seconds, normalised.
struct Grid {
    duration: i64,
    step: i64,
    before: i64,
    after: i64,
    seats: u32,
}

impl Grid {
    fn from_rules(rules: &SlotRules) -> Option<Grid> {
        if rules.duration_minutes == 0 {
            return None;
        }
        let interval = if rules.interval_minutes == 0 { rules.duration_minutes } else { rules.interval_minutes };
        Some(Grid {
            duration: i64::from(rules.duration_minutes) * 60,
            step: i64::from(interval) * 60,
            before: i64::from(rules.buffer_before_minutes) * 60,
            after: i64::from(rules.buffer_after_minutes) * 60,
            seats: rules.seats.max(1),
        })
    }

    fn slot(&self, start: i64, hosts: Vec<usize>, seats_left: u32) -> Slot {
        Slot { start: timestamp_at(start), end: timestamp_at(start + self.duration), hosts, seats_left }
    }

    /// The first point of the grid anchored at `anchor` that is `>= at`.
    fn first_at_or_after(&self, anchor: i64, at: i64) -> i64 {
        if at <= anchor { anchor } else { anchor + (at - anchor + self.step - 1) / self.step * self.step }
    }
}

/// Rule 4 as a half-open range of start seconds `[lo, hi)`, or `None` when it is empty.
///
/// Candidates are whole seconds, so each bound rounds up: for an integer `s`,
/// `s >= t ⇔ s >= ceil(t)` and `s < t ⇔ s < ceil(t)`.
fn bookable_starts(rules: &SlotRules, query: &SlotQuery) -> Option<(i64, i64)> {
    let now = ceil_second(query.now);
    let lo = ceil_second(query.window.start).max(now + i64::from(rules.min_notice_minutes) * 60);
    let hi = ceil_second(query.window.end).min(now + i64::from(rules.booking_window_days) * DAY_SECONDS);
    (lo < hi).then_some((lo, hi))
}

/// Rule 1 for local days `first_day..=last_day` (days since 1970-01-01): merged spans into
/// `spans`, and the first instant of each day `first_day..=last_day + 1` into `day_starts`.
fn lay_out_days(
    clock: &mut WallClock<'_>,
    availability: &Availability,
    first_day: i64,
    last_day: i64,
    spans: &mut Vec<RawSpan>,
    day_starts: &mut Vec<i64>,
) {
    spans.clear();
    day_starts.clear();
    // Overrides on the laid-out days, by day; on a duplicated date the first one wins
    // (validation rejects duplicates, the stable sort keeps document order).
    let mut overrides: Vec<(i64, &[crate::availability::WallRange])> = availability
        .overrides
        .iter()
        .map(|o| (day_number(o.date), o.ranges.as_slice()))
        .filter(|&(day, _)| first_day <= day && day <= last_day)
        .collect();
    overrides.sort_by_key(|&(day, _)| day);
    let mut next_override = overrides.iter().peekable();

    for day in first_day..=last_day {
        let midnight = day * DAY_SECONDS; // local seconds
        // The first instant of the day: its 00:00 converted like any wall time, which is
        // what jiff's `start_of_day` does too.
        day_starts.push(clock.instant(midnight));
        while next_override.next_if(|&&(d, _)| d < day).is_some() {}
        let ranges = match next_override.peek() {
            Some(&&(d, ranges)) if d == day => ranges,
            _ => availability.weekly.by_index(weekday_index(day)),
        };
        for r in ranges {
            // "24:00" is 1440 minutes: the next day's 00:00, as the rule says.
            let start = clock.instant(midnight + i64::from(r.start.minutes()) * 60);
            let end = clock.instant(midnight + i64::from(r.end.minutes()) * 60);
            if start < end {
                spans.push((start, end));
            }
        }
    }
    day_starts.push(clock.instant((last_day + 1) * DAY_SECONDS));
    merge_raw(spans);
}

/// One host's prepared inputs; the buffers are reused from host to host.
#[derive(Default)]
struct HostWork {
    spans: Vec<RawSpan>,
    day_starts: Vec<i64>,
    /// Merged busy time plus every same-type booking's block.
    blocked: Vec<RawSpan>,
    /// Same-type booking starts that can match a candidate, with their counts, by start.
    starts: Vec<(i64, u32)>,
    /// Only when seats > 1 and there are same-type bookings: what an exempt start (one that
    /// already holds `1..seats` bookings) must still avoid.
    exempt: Option<ExemptCheck>,
}

/// Busy time seen by a start whose own same-type bookings do not block it (rule 6).
#[derive(Default)]
struct ExemptCheck {
    /// Merged busy time without same-type bookings.
    busy: Vec<RawSpan>,
    /// Same-type blocks `(block start, block end, booking start)` by block start.
    bookings: Vec<(i64, i64, Option<i64>)>,
    /// Longest same-type block, to bound the backwards search.
    longest: i64,
}

impl ExemptCheck {
    /// Whether start `s` with block `[from, to)` is free of busy time and of same-type
    /// bookings at other starts.
    fn is_free(&self, s: i64, from: i64, to: i64) -> bool {
        let i = self.busy.partition_point(|&(_, end)| end <= from);
        if self.busy.get(i).is_some_and(|&(start, _)| start < to) {
            return false;
        }
        let first = self.bookings.partition_point(|&(start, _, _)| start <= from - self.longest);
        !self.bookings[first..]
            .iter()
            .take_while(|&&(start, _, _)| start < to)
            .any(|&(_, end, at)| end > from && at != Some(s))
    }
}

impl HostWork {
    /// Lays out the spans and busy time that candidates in `[lo, hi)` can meet.
    fn prepare(&mut self, host: &HostSchedule<'_>, grid: &Grid, lo: i64, hi: i64) {
        let zone = host.time_zone;
        // Dates to lay out. A span cut at the first date's start still has an anchor there
        // (that instant is a local date's first), so one spare date before the date of `lo`
        // covers every zone. At the end, a candidate before `hi` needs its span to reach
        // `hi + d`; one spare date after that point's date guarantees the cut lies beyond.
        let first_day = local_day(zone, lo) - 1;
        let last_day = local_day(zone, hi - 1 + grid.duration) + 1;
        lay_out_days(
            &mut WallClock::new(zone),
            host.availability,
            first_day,
            last_day,
            &mut self.spans,
            &mut self.day_starts,
        );

        // Only busy time that some candidate block [lo − bb, hi − 1 + d + ba) can touch.
        let (reach_from, reach_to) = (lo - grid.before, hi - 1 + grid.duration + grid.after);
        let relevant = |iv: &Interval| {
            let span = (floor_second(iv.start), ceil_second(iv.end));
            (span.0 < span.1 && span.1 > reach_from && span.0 < reach_to).then_some(span)
        };
        self.blocked.clear();
        self.blocked.extend(host.busy.iter().filter_map(relevant));

        self.starts.clear();
        self.exempt = None;
        let bookings = host.same_type_bookings;
        if bookings.is_empty() {
            merge_raw(&mut self.blocked);
            return;
        }
        // A booking start with sub-second digits can never equal a candidate: it only blocks.
        self.starts
            .extend(bookings.iter().filter(|b| b.start.subsec_nanosecond() == 0).map(|b| (b.start.as_second(), 1)));
        self.starts.sort_unstable();
        self.starts.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            kept.1 += u32::from(same);
            same
        });
        if grid.seats > 1 && !self.starts.is_empty() {
            let mut check = ExemptCheck { busy: self.blocked.clone(), ..ExemptCheck::default() };
            merge_raw(&mut check.busy);
            check.bookings.extend(bookings.iter().filter_map(|b| {
                let (start, end) = relevant(&b.block)?;
                Some((start, end, (b.start.subsec_nanosecond() == 0).then(|| b.start.as_second())))
            }));
            check.bookings.sort_unstable();
            check.longest = check.bookings.iter().map(|&(s, e, _)| e - s).max().unwrap_or(0);
            self.exempt = Some(check);
        }
        self.blocked.extend(bookings.iter().filter_map(|b| relevant(&b.block)));
        merge_raw(&mut self.blocked);
    }

    /// Rules 2–4 and 6: appends the free, bookable starts in `[lo, hi)` to `out`, ascending.
    fn sweep(&self, grid: &Grid, lo: i64, hi: i64, out: &mut Vec<FreeStart>) {
        let (spans, day_starts, blocked, starts) = (&self.spans, &self.day_starts, &self.blocked, &self.starts);
        // Candidates only ever increase, so each pointer below moves forwards only.
        let (mut b, mut d, mut c) = (0, 0, 0);
        for &(span_start, span_end) in spans {
            let last_start = span_end - grid.duration;
            if last_start < lo {
                continue;
            }
            if span_start >= hi {
                break;
            }
            // Anchors: the span's start, then each local date's first instant strictly inside.
            while day_starts.get(d).is_some_and(|&t| t <= span_start) {
                d += 1;
            }
            let mut anchor = span_start;
            loop {
                let next_anchor = match day_starts.get(d) {
                    Some(&t) if t < span_end => t,
                    _ => span_end,
                };
                let limit = next_anchor.min(hi).min(last_start + 1);
                let mut s = grid.first_at_or_after(anchor, lo);
                while s < limit {
                    let (from, to) = (s - grid.before, s + grid.duration + grid.after);
                    while blocked.get(b).is_some_and(|&(_, end)| end <= from) {
                        b += 1;
                    }
                    let hit = blocked.get(b).is_some_and(|&(start, _)| start < to);
                    while starts.get(c).is_some_and(|&(at, _)| at < s) {
                        c += 1;
                    }
                    let booked = match starts.get(c) {
                        Some(&(at, count)) if at == s => count,
                        _ => 0,
                    };
                    let free = booked < grid.seats
                        && (!hit || (booked > 0 && self.exempt.as_ref().is_some_and(|e| e.is_free(s, from, to))));
                    if free {
                        out.push((s, grid.seats - booked));
                    } else if hit && self.exempt.is_none() {
                        // Every start whose block still meets this busy interval is taken:
                        // jump to the first one whose block begins at its end (always past
                        // `s`, as the interval ends after `from`). Not done with seats > 1:
                        // a start holding bookings may be exempt from the very block that
                        // stops its neighbours.
                        s = grid.first_at_or_after(anchor, blocked[b].1 + grid.before);
                        continue;
                    }
                    s += grid.step;
                }
                if next_anchor >= span_end || next_anchor >= hi {
                    break;
                }
                anchor = next_anchor;
                d += 1;
            }
        }
    }
}

/// Round robin: every start at least one host has, with the free hosts (k-way merge).
fn any_free(lists: &[&[FreeStart]], grid: &Grid) -> Vec<Slot> {
    let mut next = vec![0usize; lists.len()];
    let mut heads: BinaryHeap<Reverse<(i64, usize)>> =
        lists.iter().enumerate().filter_map(|(h, l)| l.first().map(|&(s, _)| Reverse((s, h)))).collect();
    let mut out = Vec::with_capacity(lists.iter().map(|l| l.len()).max().unwrap_or(0));
    let mut advance = |h: usize, heads: &mut BinaryHeap<_>| {
        next[h] += 1;
        if let Some(&(s, _)) = lists[h].get(next[h]) {
            heads.push(Reverse((s, h)));
        }
        lists[h][next[h] - 1].1
    };
    while let Some(Reverse((start, h))) = heads.pop() {
        // Ties pop in host order, so `hosts` comes out ascending.
        let mut hosts = vec![h];
        let mut seats_left = advance(h, &mut heads);
        while let Some(&Reverse((s, other))) = heads.peek() {
            if s != start {
                break;
            }
            heads.pop();
            hosts.push(other);
            seats_left = seats_left.max(advance(other, &mut heads));
        }
        out.push(grid.slot(start, hosts, seats_left));
    }
    out
}

/// Collective: the starts every host has, with all hosts (intersection of sorted lists).
fn all_free(lists: &[&[FreeStart]], grid: &Grid) -> Vec<Slot> {
    let (first, others) = lists.split_first().expect("at least one host");
    let mut next = vec![0usize; others.len()];
    let mut out = Vec::new();
    'starts: for &(start, seats) in first.iter() {
        let mut seats_left = seats;
        for (list, i) in others.iter().zip(next.iter_mut()) {
            while list.get(*i).is_some_and(|&(s, _)| s < start) {
                *i += 1;
            }
            match list.get(*i) {
                Some(&(s, seats)) if s == start => seats_left = seats_left.min(seats),
                Some(_) => continue 'starts,
                None => break 'starts,
            }
        }
        out.push(grid.slot(start, (0..lists.len()).collect(), seats_left));
    }
    out
}

#[cfg(test)]
mod tests;
