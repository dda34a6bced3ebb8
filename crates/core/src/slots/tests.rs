//! Unit tests of the slot rules, one behaviour each, with hand-checked instants.

use jiff::civil::{Date, date};
use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use super::*;
use crate::availability::{DateOverride, WallRange, WallTime, WeeklyHours};
use crate::zone::time_zone;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn iv(a: &str, b: &str) -> Interval {
    Interval::new(ts(a), ts(b)).unwrap()
}

fn r(a: &str, b: &str) -> WallRange {
    WallRange { start: WallTime::parse(a).unwrap(), end: WallTime::parse(b).unwrap() }
}

fn weekdays(ranges: &[WallRange]) -> Availability {
    let mut weekly = WeeklyHours::every_day(ranges);
    weekly.saturday.clear();
    weekly.sunday.clear();
    Availability { weekly, overrides: vec![] }
}

fn all_week(ranges: &[WallRange]) -> Availability {
    Availability { weekly: WeeklyHours::every_day(ranges), overrides: vec![] }
}

fn rules(duration: u32, interval: u32) -> SlotRules {
    SlotRules {
        duration_minutes: duration,
        interval_minutes: interval,
        buffer_before_minutes: 0,
        buffer_after_minutes: 0,
        min_notice_minutes: 0,
        booking_window_days: 3650,
        seats: 1,
        assignment: Assignment::Single,
    }
}

/// A host that owns its data, lending it as a [`HostSchedule`].
struct Host {
    zone: TimeZone,
    availability: Availability,
    busy: Vec<Interval>,
    same_type: Vec<SameTypeBooking>,
}

impl Host {
    fn new(zone: &str, availability: Availability) -> Host {
        Host { zone: time_zone(zone).unwrap(), availability, busy: vec![], same_type: vec![] }
    }

    fn busy(mut self, intervals: &[Interval]) -> Host {
        self.busy.extend_from_slice(intervals);
        self
    }

    fn schedule(&self) -> HostSchedule<'_> {
        HostSchedule {
            time_zone: &self.zone,
            availability: &self.availability,
            busy: &self.busy,
            same_type_bookings: &self.same_type,
        }
    }
}

fn slots(rules: &SlotRules, hosts: &[&Host], from: &str, to: &str) -> Vec<Slot> {
    let schedules: Vec<_> = hosts.iter().map(|h| h.schedule()).collect();
    let query = SlotQuery { window: iv(from, to), now: ts(from) };
    compute_slots(rules, &schedules, &query)
}

fn starts(slots: &[Slot]) -> Vec<String> {
    slots.iter().map(|s| s.start.to_string()).collect()
}

fn spans(zone: &str, availability: &Availability, first: Date, last: Date) -> Vec<Interval> {
    working_spans(&time_zone(zone).unwrap(), availability, first, last)
}

fn hours(span: &Interval) -> f64 {
    span.duration().as_secs_f64() / 3600.0
}

#[test]
fn a_range_across_spring_forward_covers_real_time_between_its_ends() {
    // New York, Sunday 2026-03-08: 02:00 EST jumps to 03:00 EDT.
    let a = all_week(&[r("01:00", "03:30")]);
    let got = spans("America/New_York", &a, date(2026, 3, 8), date(2026, 3, 8));
    assert_eq!(got, vec![iv("2026-03-08T06:00:00Z", "2026-03-08T07:30:00Z")]);
    assert_eq!(hours(&got[0]), 1.5);
}

#[test]
fn a_range_across_fall_back_covers_the_repeated_hour() {
    // New York, Sunday 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:00 is ambiguous
    // and takes the earlier instant (EDT).
    let a = all_week(&[r("01:00", "03:00")]);
    let got = spans("America/New_York", &a, date(2026, 11, 1), date(2026, 11, 1));
    assert_eq!(got, vec![iv("2026-11-01T05:00:00Z", "2026-11-01T08:00:00Z")]);
    // A range entirely inside the fold is its first pass.
    let a = all_week(&[r("01:15", "01:45")]);
    let got = spans("America/New_York", &a, date(2026, 11, 1), date(2026, 11, 1));
    assert_eq!(got, vec![iv("2026-11-01T05:15:00Z", "2026-11-01T05:45:00Z")]);
}

#[test]
fn a_range_over_the_fall_back_fold_offers_both_passes_of_the_repeated_hour() {
    // New York 2026-11-01, 00:00–03:00 covers four real hours (04:00Z–08:00Z); 01:00 and
    // 01:30 happen twice and both instants are real, bookable starts.
    let mut a = Availability::default();
    a.weekly.sunday = vec![r("00:00", "03:00")];
    let host = Host::new("America/New_York", a);
    let got = slots(&rules(30, 30), &[&host], "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z");
    assert_eq!(got.len(), 8);
    let zone = time_zone("America/New_York").unwrap();
    let local: Vec<String> =
        got.iter().map(|s| s.start.to_zoned(zone.clone()).strftime("%H:%M%:z").to_string()).collect();
    assert_eq!(
        local,
        [
            "00:00-04:00",
            "00:30-04:00",
            "01:00-04:00",
            "01:30-04:00",
            "01:00-05:00",
            "01:30-05:00",
            "02:00-05:00",
            "02:30-05:00"
        ]
    );
}

#[test]
fn times_inside_a_gap_move_forward_by_the_gap_and_an_emptied_range_covers_nothing() {
    let ny = "America/New_York";
    let day = date(2026, 3, 8);
    let a = all_week(&[r("02:15", "02:45")]);
    assert_eq!(spans(ny, &a, day, day), vec![iv("2026-03-08T07:15:00Z", "2026-03-08T07:45:00Z")]);
    let a = all_week(&[r("02:30", "04:00")]);
    assert_eq!(spans(ny, &a, day, day), vec![iv("2026-03-08T07:30:00Z", "2026-03-08T08:00:00Z")]);
    // 02:00 becomes 03:00 EDT, the same instant as the end: the range covers nothing.
    let mut a = Availability::default();
    a.weekly.sunday = vec![r("02:00", "03:00")];
    assert_eq!(spans(ny, &a, day, day), vec![]);
    let rules = rules(15, 15);
    let host = Host::new(ny, a);
    assert_eq!(slots(&rules, &[&host], "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z"), vec![]);
}

#[test]
fn london_days_are_23_and_25_hours_long_on_its_dst_nights() {
    let london = "Europe/London";
    let a = all_week(&[r("00:00", "24:00")]);
    let spring = spans(london, &a, date(2026, 3, 29), date(2026, 3, 29));
    assert_eq!(spring, vec![iv("2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z")]);
    let autumn = spans(london, &a, date(2026, 10, 25), date(2026, 10, 25));
    assert_eq!(autumn, vec![iv("2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z")]);
    assert_eq!((hours(&spring[0]), hours(&autumn[0])), (23.0, 25.0));
    // A range across London's gap (01:00 GMT → 02:00 BST) is 30 minutes long.
    let a = all_week(&[r("00:30", "02:00")]);
    let got = spans(london, &a, date(2026, 3, 29), date(2026, 3, 29));
    assert_eq!(got, vec![iv("2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z")]);
}

#[test]
fn a_24_00_end_merges_with_the_next_days_00_00_start_and_the_grid_re_anchors_at_midnight() {
    let mut a = Availability::default();
    a.weekly.monday = vec![r("20:00", "24:00")];
    a.weekly.tuesday = vec![r("00:00", "04:00")];
    let got = spans("Europe/London", &a, date(2027, 1, 4), date(2027, 1, 5));
    assert_eq!(got, vec![iv("2027-01-04T20:00:00Z", "2027-01-05T04:00:00Z")]);

    let host = Host::new("Europe/London", a);
    let got = slots(&rules(60, 45), &[&host], "2027-01-04T00:00:00Z", "2027-01-06T00:00:00Z");
    assert_eq!(
        starts(&got),
        [
            // Monday's grid from 20:00 runs until the next anchor, Tuesday's 00:00; its last
            // start crosses midnight, which the continuing span allows.
            "2027-01-04T20:00:00Z",
            "2027-01-04T20:45:00Z",
            "2027-01-04T21:30:00Z",
            "2027-01-04T22:15:00Z",
            "2027-01-04T23:00:00Z",
            "2027-01-04T23:45:00Z",
            "2027-01-05T00:00:00Z",
            "2027-01-05T00:45:00Z",
            "2027-01-05T01:30:00Z",
            "2027-01-05T02:15:00Z",
            "2027-01-05T03:00:00Z",
        ]
    );
}

#[test]
fn a_24_7_week_gives_one_grid_per_local_day_from_its_midnight() {
    // 25-minute steps do not divide a day, so each midnight visibly restarts the grid.
    // The week holds London's 23-hour day, Sunday 2026-03-29.
    let zone = time_zone("Europe/London").unwrap();
    let host = Host::new("Europe/London", all_week(&[r("00:00", "24:00")]));
    let got = slots(&rules(25, 25), &[&host], "2026-03-26T00:00:00Z", "2026-04-01T23:00:00Z");
    let mut per_day: std::collections::BTreeMap<Date, Vec<jiff::civil::Time>> = Default::default();
    for s in &got {
        let local = s.start.to_zoned(zone.clone());
        per_day.entry(local.date()).or_default().push(local.time());
    }
    assert_eq!(per_day.len(), 7);
    for (day, times) in &per_day {
        assert_eq!(times[0], jiff::civil::time(0, 0, 0, 0), "{day}");
        if *day == date(2026, 3, 29) {
            // 23 real hours: 56 starts, 25 real minutes apart across the gap.
            assert_eq!(times.len(), 56, "{day}");
            assert_eq!(times[2], jiff::civil::time(0, 50, 0, 0));
            assert_eq!(times[3], jiff::civil::time(2, 15, 0, 0));
            assert_eq!(*times.last().unwrap(), jiff::civil::time(23, 55, 0, 0));
        } else {
            assert_eq!(times.len(), 58, "{day}");
            assert_eq!(*times.last().unwrap(), jiff::civil::time(23, 45, 0, 0), "{day}");
        }
    }
    for pair in got.windows(2) {
        assert!(pair[0].start < pair[1].start);
    }
}

#[test]
fn an_override_closes_a_day_or_replaces_its_hours() {
    let mut a = weekdays(&[r("09:00", "11:00")]);
    a.overrides = vec![
        DateOverride { date: date(2027, 1, 5), ranges: vec![] },
        DateOverride { date: date(2027, 1, 6), ranges: vec![r("14:00", "15:00")] },
        // Saturday is closed weekly but open by override.
        DateOverride { date: date(2027, 1, 9), ranges: vec![r("10:00", "11:00")] },
    ];
    let host = Host::new("Europe/London", a);
    let got = slots(&rules(60, 60), &[&host], "2027-01-04T00:00:00Z", "2027-01-11T00:00:00Z");
    assert_eq!(
        starts(&got),
        [
            "2027-01-04T09:00:00Z",
            "2027-01-04T10:00:00Z",
            "2027-01-06T14:00:00Z",
            "2027-01-07T09:00:00Z",
            "2027-01-07T10:00:00Z",
            "2027-01-08T09:00:00Z",
            "2027-01-08T10:00:00Z",
            "2027-01-09T10:00:00Z",
        ]
    );
}

#[test]
fn buffers_keep_time_free_around_busy_time() {
    let host = Host::new("Europe/London", weekdays(&[r("09:00", "13:00")]))
        .busy(&[iv("2027-01-04T10:00:00Z", "2027-01-04T11:00:00Z")]);
    let mut rules = rules(30, 15);
    rules.buffer_before_minutes = 15;
    rules.buffer_after_minutes = 15;
    let got = slots(&rules, &[&host], "2027-01-04T00:00:00Z", "2027-01-05T00:00:00Z");
    assert_eq!(
        starts(&got),
        [
            // 09:15's block [09:00, 10:00) touches the busy hour: still free.
            "2027-01-04T09:00:00Z",
            "2027-01-04T09:15:00Z",
            // 11:15's block [11:00, 12:00) touches it from the other side.
            "2027-01-04T11:15:00Z",
            "2027-01-04T11:30:00Z",
            "2027-01-04T11:45:00Z",
            "2027-01-04T12:00:00Z",
            "2027-01-04T12:15:00Z",
            "2027-01-04T12:30:00Z",
        ]
    );
}

#[test]
fn touching_busy_time_does_not_block() {
    let host = Host::new("Europe/London", weekdays(&[r("09:00", "11:00")])).busy(&[
        iv("2027-01-04T08:00:00Z", "2027-01-04T09:00:00Z"),
        iv("2027-01-04T09:30:00Z", "2027-01-04T10:00:00Z"),
        iv("2027-01-04T10:30:00Z", "2027-01-04T11:00:00Z"),
    ]);
    let got = slots(&rules(30, 30), &[&host], "2027-01-04T00:00:00Z", "2027-01-05T00:00:00Z");
    assert_eq!(starts(&got), ["2027-01-04T09:00:00Z", "2027-01-04T10:00:00Z"]);
}

#[test]
fn busy_edges_with_fractions_of_a_second_still_block_exactly() {
    let half = SignedDuration::from_millis(500);
    let host = Host::new("Europe/London", weekdays(&[r("09:00", "11:00")])).busy(&[
        // Ends half a second into 09:30: blocks the 09:30 start.
        Interval::new(ts("2027-01-04T09:15:00Z"), ts("2027-01-04T09:30:00Z") + half).unwrap(),
        // Starts half a second before 10:30: blocks the 10:00 start (ends 10:30).
        Interval::new(ts("2027-01-04T10:30:00Z") - half, ts("2027-01-04T10:45:00Z")).unwrap(),
    ]);
    let got = slots(&rules(30, 30), &[&host], "2027-01-04T00:00:00Z", "2027-01-05T00:00:00Z");
    assert_eq!(starts(&got), [] as [&str; 0]);
}

#[test]
fn minimum_notice_and_the_booking_window_bound_the_starts() {
    let host = Host::new("Europe/London", all_week(&[r("09:00", "12:00")]));
    let mut rules = rules(30, 15);
    rules.min_notice_minutes = 60;
    rules.booking_window_days = 1;
    let schedules = [host.schedule()];
    let query =
        SlotQuery { window: iv("2027-01-04T00:00:00Z", "2027-01-08T00:00:00Z"), now: ts("2027-01-04T09:07:00Z") };
    let got = compute_slots(&rules, &schedules, &query);
    let got = starts(&got);
    // Notice: the first start at or after 10:07 is 10:15. Window: starts before 09:07 the
    // next day, so Tuesday lists 09:00 only.
    assert_eq!(got.first().unwrap(), "2027-01-04T10:15:00Z");
    assert_eq!(got.last().unwrap(), "2027-01-05T09:00:00Z");
    assert_eq!(got.len(), 6 + 1);
    // A start exactly at now + notice is bookable.
    let query = SlotQuery { now: ts("2027-01-04T09:15:00Z"), ..query };
    assert_eq!(compute_slots(&rules, &schedules, &query)[0].start, ts("2027-01-04T10:15:00Z"));
}

#[test]
fn a_slot_is_listed_when_its_start_is_in_the_window() {
    let host = Host::new("Europe/London", weekdays(&[r("09:00", "12:00")]));
    // The window ends 09:31: 09:30 starts inside it and is listed although it ends later.
    let got = slots(&rules(60, 30), &[&host], "2027-01-04T09:00:00Z", "2027-01-04T09:31:00Z");
    assert_eq!(starts(&got), ["2027-01-04T09:00:00Z", "2027-01-04T09:30:00Z"]);
    assert_eq!(got[1].end, ts("2027-01-04T10:30:00Z"));
}

#[test]
fn round_robin_lists_each_start_with_the_hosts_free_for_it() {
    let a = weekdays(&[r("09:00", "11:00")]);
    let ada = Host::new("Europe/London", a.clone()).busy(&[iv("2027-01-04T09:00:00Z", "2027-01-04T10:00:00Z")]);
    let bob = Host::new("Europe/London", a.clone()).busy(&[iv("2027-01-04T10:00:00Z", "2027-01-04T11:00:00Z")]);
    let cy = Host::new("Europe/London", a).busy(&[iv("2027-01-04T09:00:00Z", "2027-01-04T11:00:00Z")]);
    let mut rules = rules(60, 30);
    rules.assignment = Assignment::RoundRobin;
    let got = slots(&rules, &[&ada, &bob, &cy], "2027-01-04T00:00:00Z", "2027-01-05T00:00:00Z");
    let summary: Vec<(String, Vec<usize>)> = got.iter().map(|s| (s.start.to_string(), s.hosts.clone())).collect();
    assert_eq!(
        summary,
        [("2027-01-04T09:00:00Z".to_string(), vec![1]), ("2027-01-04T10:00:00Z".to_string(), vec![0]),]
    );
    // Nobody is free at 09:30: it is not listed at all.
    assert!(got.iter().all(|s| s.seats_left == 1 && s.end == s.start + SignedDuration::from_hours(1)));
}

#[test]
fn collective_needs_every_host_free_across_zones() {
    // London 09:00–17:00 GMT and New York 09:00–17:00 EST (14:00–22:00 UTC) share 14:00–17:00.
    let london = Host::new("Europe/London", weekdays(&[r("09:00", "17:00")]));
    let new_york = Host::new("America/New_York", weekdays(&[r("09:00", "17:00")]))
        .busy(&[iv("2027-01-04T15:00:00Z", "2027-01-04T15:30:00Z")]);
    let mut rules = rules(30, 30);
    rules.assignment = Assignment::Collective;
    let got = slots(&rules, &[&london, &new_york], "2027-01-04T00:00:00Z", "2027-01-05T00:00:00Z");
    assert_eq!(
        starts(&got),
        [
            "2027-01-04T14:00:00Z",
            "2027-01-04T14:30:00Z",
            "2027-01-04T15:30:00Z",
            "2027-01-04T16:00:00Z",
            "2027-01-04T16:30:00Z",
        ]
    );
    assert!(got.iter().all(|s| s.hosts == [0, 1]));

    // Kolkata (+05:30) 09:00–17:00 is 03:30–11:30 UTC. Each host keeps its own grid: with
    // 30-minute steps they meet every half hour of the overlap, with 45-minute steps
    // (anchors 330 minutes apart) never.
    let kolkata = Host::new("Asia/Kolkata", weekdays(&[r("09:00", "17:00")]));
    let got = slots(&rules, &[&london, &kolkata], "2027-01-04T00:00:00Z", "2027-01-05T00:00:00Z");
    assert_eq!(
        starts(&got),
        [
            "2027-01-04T09:00:00Z",
            "2027-01-04T09:30:00Z",
            "2027-01-04T10:00:00Z",
            "2027-01-04T10:30:00Z",
            "2027-01-04T11:00:00Z",
        ]
    );
    rules.interval_minutes = 45;
    assert!(slots(&rules, &[&london, &kolkata], "2027-01-04T00:00:00Z", "2027-01-05T00:00:00Z").is_empty());
}

#[test]
fn seats_count_down_and_a_full_start_disappears() {
    let mut host = Host::new("Europe/London", weekdays(&[r("10:00", "11:00")]));
    let mut rules = rules(30, 15);
    rules.seats = 3;
    let booking = SameTypeBooking {
        start: ts("2027-01-04T10:00:00Z"),
        block: iv("2027-01-04T10:00:00Z", "2027-01-04T10:30:00Z"),
    };
    let window = ("2027-01-04T00:00:00Z", "2027-01-05T00:00:00Z");
    let seats = |host: &Host| -> Vec<(String, u32)> {
        slots(&rules, &[host], window.0, window.1).iter().map(|s| (s.start.to_string(), s.seats_left)).collect()
    };
    let t = |s: &str| s.to_string();
    assert_eq!(
        seats(&host),
        [(t("2027-01-04T10:00:00Z"), 3), (t("2027-01-04T10:15:00Z"), 3), (t("2027-01-04T10:30:00Z"), 3)]
    );
    host.same_type.push(booking);
    // The booking at 10:00 blocks 10:15 (a different start) but not its own start.
    assert_eq!(seats(&host), [(t("2027-01-04T10:00:00Z"), 2), (t("2027-01-04T10:30:00Z"), 3)]);
    host.same_type.push(booking);
    assert_eq!(seats(&host), [(t("2027-01-04T10:00:00Z"), 1), (t("2027-01-04T10:30:00Z"), 3)]);
    host.same_type.push(booking);
    assert_eq!(seats(&host), [(t("2027-01-04T10:30:00Z"), 3)]);
    // A same-type booking at another start blocks a start that has seats left.
    host.same_type.truncate(1);
    let later = SameTypeBooking {
        start: ts("2027-01-04T10:15:00Z"),
        block: iv("2027-01-04T10:15:00Z", "2027-01-04T10:45:00Z"),
    };
    host.same_type.push(later);
    assert_eq!(seats(&host), [] as [(String, u32); 0]);
    // Ordinary busy time still blocks a start that has seats left.
    host.same_type.pop();
    host.busy.push(iv("2027-01-04T10:20:00Z", "2027-01-04T10:25:00Z"));
    assert_eq!(seats(&host), [(t("2027-01-04T10:30:00Z"), 3)]);
}

#[test]
fn with_one_seat_a_same_type_booking_blocks_like_busy_time() {
    let mut host = Host::new("Europe/London", weekdays(&[r("10:00", "11:00")]));
    host.same_type.push(SameTypeBooking {
        start: ts("2027-01-04T10:00:00Z"),
        block: iv("2027-01-04T10:00:00Z", "2027-01-04T10:30:00Z"),
    });
    let got = slots(&rules(30, 15), &[&host], "2027-01-04T00:00:00Z", "2027-01-05T00:00:00Z");
    assert_eq!(starts(&got), ["2027-01-04T10:30:00Z"]);
}

#[test]
fn a_subwindow_lists_exactly_the_larger_windows_slots_that_start_in_it() {
    // The grid must not depend on the window: cut the window at awkward instants.
    let host = Host::new("America/New_York", all_week(&[r("00:00", "24:00")]))
        .busy(&[iv("2026-03-08T10:00:00Z", "2026-03-08T13:10:00Z")]);
    let rules = rules(50, 25);
    let full = slots(&rules, &[&host], "2026-03-06T00:00:00Z", "2026-03-12T00:00:00Z");
    for (from, to) in [
        ("2026-03-08T07:13:00Z", "2026-03-08T19:00:00Z"),
        ("2026-03-07T23:59:59Z", "2026-03-09T00:00:01Z"),
        ("2026-03-10T04:49:00Z", "2026-03-10T04:51:00Z"),
    ] {
        let window = iv(from, to);
        let expected: Vec<Slot> = full.iter().filter(|s| window.contains(s.start)).cloned().collect();
        assert!(!expected.is_empty());
        assert_eq!(slots(&rules, &[&host], from, to), expected, "{from}..{to}");
    }
}

#[test]
fn degenerate_inputs_give_no_slots_and_interval_zero_means_the_duration() {
    let host = Host::new("Europe/London", weekdays(&[r("09:00", "10:00")]));
    let window = ("2027-01-04T00:00:00Z", "2027-01-05T00:00:00Z");
    assert!(slots(&rules(0, 15), &[&host], window.0, window.1).is_empty());
    assert!(slots(&rules(30, 15), &[], window.0, window.1).is_empty());
    assert_eq!(
        starts(&slots(&rules(30, 0), &[&host], window.0, window.1)),
        ["2027-01-04T09:00:00Z", "2027-01-04T09:30:00Z"]
    );
    // Single takes the first host only.
    let other = Host::new("Europe/London", weekdays(&[r("15:00", "16:00")]));
    let got = slots(&rules(60, 60), &[&host, &other], window.0, window.1);
    assert_eq!(starts(&got), ["2027-01-04T09:00:00Z"]);
    assert_eq!(got[0].hosts, [0]);
}

#[test]
fn windows_at_the_ends_of_time_do_not_panic() {
    let host = Host::new("Pacific/Chatham", all_week(&[r("00:00", "24:00")]));
    let schedules = [host.schedule()];
    let mut rules = rules(1440, 1);
    rules.booking_window_days = u32::MAX;
    rules.min_notice_minutes = 0;
    let near_max = Timestamp::MAX - SignedDuration::from_hours(30);
    let query = SlotQuery { window: Interval::new(near_max, Timestamp::MAX).unwrap(), now: near_max };
    let got = compute_slots(&rules, &schedules, &query);
    assert!(got.iter().all(|s| s.start >= near_max));
    let query = SlotQuery {
        window: Interval::new(Timestamp::MIN, Timestamp::MIN + SignedDuration::from_hours(30)).unwrap(),
        now: Timestamp::MIN,
    };
    let got = compute_slots(&rules, &schedules, &query);
    assert!(got.iter().all(|s| s.start < Timestamp::MIN + SignedDuration::from_hours(30)));
}

#[test]
fn assignment_serializes_in_snake_case() {
    let json = serde_json::to_string(&[Assignment::Single, Assignment::RoundRobin, Assignment::Collective]).unwrap();
    assert_eq!(json, r#"["single","round_robin","collective"]"#);
    assert_eq!(serde_json::from_str::<Assignment>(r#""round_robin""#).unwrap(), Assignment::RoundRobin);
}
