//! Unit tests of ICS expansion on small hand-written feeds.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn range(a: &str, b: &str) -> Interval {
    Interval::new(ts(a), ts(b)).unwrap()
}

fn feed(events: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{}END:VCALENDAR\r\n", events.replace('\n', "\r\n"))
}

fn busy_in(feed_text: &str, r: Interval, zone: &str) -> Vec<(String, String)> {
    let zone = TimeZone::get(zone).unwrap();
    let mut out: Vec<(String, String)> = busy_intervals(feed_text, r, &zone)
        .unwrap()
        .into_iter()
        .map(|i| (i.start.to_string(), i.end.to_string()))
        .collect();
    out.sort();
    out
}

fn busy(feed_text: &str, r: Interval) -> Vec<(String, String)> {
    busy_in(feed_text, r, "Europe/Berlin")
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[test]
fn a_single_utc_event_is_busy_where_it_overlaps_the_range() {
    let f = feed("BEGIN:VEVENT\nUID:a\nDTSTART:20250310T140000Z\nDTEND:20250310T150000Z\nEND:VEVENT\n");
    assert_eq!(
        busy(&f, range("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z")),
        vec![pair("2025-03-10T14:00:00Z", "2025-03-10T15:00:00Z")]
    );
    assert!(busy(&f, range("2025-03-10T15:00:00Z", "2025-03-11T00:00:00Z")).is_empty());
}

#[test]
fn a_weekly_rule_expands_in_the_range_only() {
    let f = feed(
        "BEGIN:VEVENT\nUID:w\nDTSTART;TZID=Europe/Berlin:20250106T090000\nDTEND;TZID=Europe/Berlin:20250106T100000\nRRULE:FREQ=WEEKLY;BYDAY=MO\nEND:VEVENT\n",
    );
    assert_eq!(
        busy(&f, range("2025-02-01T00:00:00Z", "2025-02-15T00:00:00Z")),
        vec![
            pair("2025-02-03T08:00:00Z", "2025-02-03T09:00:00Z"),
            pair("2025-02-10T08:00:00Z", "2025-02-10T09:00:00Z")
        ]
    );
}

#[test]
fn a_series_keeps_its_wall_clock_time_across_a_dst_change() {
    let f = feed(
        "BEGIN:VEVENT\nUID:ny\nDTSTART;TZID=America/New_York:20250303T090000\nDURATION:PT30M\nRRULE:FREQ=WEEKLY;COUNT=3\nEND:VEVENT\n",
    );
    assert_eq!(
        busy(&f, range("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z")),
        vec![
            pair("2025-03-03T14:00:00Z", "2025-03-03T14:30:00Z"),
            pair("2025-03-10T13:00:00Z", "2025-03-10T13:30:00Z"),
            pair("2025-03-17T13:00:00Z", "2025-03-17T13:30:00Z"),
        ]
    );
}

#[test]
fn exdate_removes_an_instance_and_rdate_adds_one() {
    let f = feed(
        "BEGIN:VEVENT\nUID:x\nDTSTART:20250101T120000Z\nDTEND:20250101T130000Z\nRRULE:FREQ=DAILY;COUNT=3\nEXDATE:20250102T120000Z\nRDATE:20250110T080000Z\nEND:VEVENT\n",
    );
    assert_eq!(
        busy(&f, range("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")),
        vec![
            pair("2025-01-01T12:00:00Z", "2025-01-01T13:00:00Z"),
            pair("2025-01-03T12:00:00Z", "2025-01-03T13:00:00Z"),
            pair("2025-01-10T08:00:00Z", "2025-01-10T09:00:00Z"),
        ]
    );
}

#[test]
fn an_exdate_in_another_zone_matches_the_same_instant() {
    let f = feed(
        "BEGIN:VEVENT\nUID:x\nDTSTART;TZID=Europe/London:20250601T100000\nDTEND;TZID=Europe/London:20250601T110000\nRRULE:FREQ=DAILY;COUNT=2\nEXDATE:20250602T090000Z\nEND:VEVENT\n",
    );
    assert_eq!(
        busy(&f, range("2025-06-01T00:00:00Z", "2025-06-05T00:00:00Z")),
        vec![pair("2025-06-01T09:00:00Z", "2025-06-01T10:00:00Z")]
    );
}

#[test]
fn an_rdate_period_has_its_own_length() {
    let f = feed(
        "BEGIN:VEVENT\nUID:p\nDTSTART:20250101T120000Z\nDTEND:20250101T130000Z\nRDATE;VALUE=PERIOD:20250105T100000Z/PT3H\nEND:VEVENT\n",
    );
    assert_eq!(
        busy(&f, range("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")),
        vec![
            pair("2025-01-01T12:00:00Z", "2025-01-01T13:00:00Z"),
            pair("2025-01-05T10:00:00Z", "2025-01-05T13:00:00Z")
        ]
    );
}

#[test]
fn an_override_moves_its_instance_and_a_cancelled_override_removes_one() {
    let f = feed(
        "BEGIN:VEVENT\nUID:s\nDTSTART:20250101T120000Z\nDTEND:20250101T130000Z\nRRULE:FREQ=DAILY;COUNT=3\nEND:VEVENT\n\
         BEGIN:VEVENT\nUID:s\nRECURRENCE-ID:20250102T120000Z\nDTSTART:20250102T150000Z\nDTEND:20250102T170000Z\nEND:VEVENT\n\
         BEGIN:VEVENT\nUID:s\nRECURRENCE-ID:20250103T120000Z\nDTSTART:20250103T120000Z\nDTEND:20250103T130000Z\nSTATUS:CANCELLED\nEND:VEVENT\n",
    );
    assert_eq!(
        busy(&f, range("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")),
        vec![
            pair("2025-01-01T12:00:00Z", "2025-01-01T13:00:00Z"),
            pair("2025-01-02T15:00:00Z", "2025-01-02T17:00:00Z")
        ]
    );
}

#[test]
fn an_override_moved_into_the_range_counts_and_one_moved_out_does_not() {
    let f = feed(
        "BEGIN:VEVENT\nUID:m\nDTSTART:20250101T120000Z\nDTEND:20250101T130000Z\nRRULE:FREQ=WEEKLY;COUNT=4\nEND:VEVENT\n\
         BEGIN:VEVENT\nUID:m\nRECURRENCE-ID:20250108T120000Z\nDTSTART:20250120T120000Z\nDTEND:20250120T130000Z\nEND:VEVENT\n",
    );
    assert!(busy(&f, range("2025-01-08T00:00:00Z", "2025-01-09T00:00:00Z")).is_empty());
    assert_eq!(
        busy(&f, range("2025-01-20T00:00:00Z", "2025-01-21T00:00:00Z")),
        vec![pair("2025-01-20T12:00:00Z", "2025-01-20T13:00:00Z")]
    );
}

#[test]
fn an_all_day_event_is_busy_from_midnight_to_midnight_in_the_hosts_zone() {
    let f = feed(
        "BEGIN:VEVENT\nUID:d\nDTSTART;VALUE=DATE:20250704\nDTEND;VALUE=DATE:20250706\nEND:VEVENT\nBEGIN:VEVENT\nUID:e\nDTSTART;VALUE=DATE:20250710\nEND:VEVENT\n",
    );
    assert_eq!(
        busy_in(&f, range("2025-07-01T00:00:00Z", "2025-08-01T00:00:00Z"), "America/New_York"),
        vec![
            pair("2025-07-04T04:00:00Z", "2025-07-06T04:00:00Z"),
            pair("2025-07-10T04:00:00Z", "2025-07-11T04:00:00Z")
        ]
    );
}

#[test]
fn a_floating_time_is_in_the_hosts_zone() {
    let f = feed("BEGIN:VEVENT\nUID:f\nDTSTART:20250115T090000\nDTEND:20250115T100000\nEND:VEVENT\n");
    assert_eq!(
        busy_in(&f, range("2025-01-15T00:00:00Z", "2025-01-16T00:00:00Z"), "Asia/Tokyo"),
        vec![pair("2025-01-15T00:00:00Z", "2025-01-15T01:00:00Z")]
    );
}

#[test]
fn duration_and_no_end_give_the_length() {
    let f = feed(
        "BEGIN:VEVENT\nUID:a\nDTSTART:20250101T100000Z\nDURATION:PT1H30M\nEND:VEVENT\n\
         BEGIN:VEVENT\nUID:b\nDTSTART:20250101T120000Z\nEND:VEVENT\n",
    );
    assert_eq!(
        busy(&f, range("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")),
        vec![pair("2025-01-01T10:00:00Z", "2025-01-01T11:30:00Z")]
    );
}

#[test]
fn transparent_and_cancelled_events_are_not_busy() {
    let f = feed(
        "BEGIN:VEVENT\nUID:t\nDTSTART:20250101T100000Z\nDTEND:20250101T110000Z\nTRANSP:TRANSPARENT\nEND:VEVENT\n\
         BEGIN:VEVENT\nUID:c\nDTSTART:20250101T100000Z\nDTEND:20250101T110000Z\nSTATUS:CANCELLED\nRRULE:FREQ=DAILY\nEND:VEVENT\n\
         BEGIN:VEVENT\nUID:o\nDTSTART:20250101T120000Z\nDTEND:20250101T130000Z\nTRANSP:OPAQUE\nEND:VEVENT\n",
    );
    assert_eq!(
        busy(&f, range("2025-01-01T00:00:00Z", "2025-01-03T00:00:00Z")),
        vec![pair("2025-01-01T12:00:00Z", "2025-01-01T13:00:00Z")]
    );
}

#[test]
fn an_unknown_tzid_skips_that_event_only() {
    let f = feed(
        "BEGIN:VTIMEZONE\nTZID:Custom Zone\nBEGIN:STANDARD\nDTSTART:19700101T000000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0100\nEND:STANDARD\nEND:VTIMEZONE\n\
         BEGIN:VEVENT\nUID:u\nDTSTART;TZID=Custom Zone:20250101T100000\nDTEND;TZID=Custom Zone:20250101T110000\nEND:VEVENT\n\
         BEGIN:VEVENT\nUID:k\nDTSTART;TZID=Europe/Paris:20250101T100000\nDTEND;TZID=Europe/Paris:20250101T110000\nEND:VEVENT\n",
    );
    assert_eq!(
        busy(&f, range("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")),
        vec![pair("2025-01-01T09:00:00Z", "2025-01-01T10:00:00Z")]
    );
}

#[test]
fn until_in_utc_bounds_a_zoned_series() {
    let f = feed(
        "BEGIN:VEVENT\nUID:u\nDTSTART;TZID=America/New_York:20250101T090000\nDTEND;TZID=America/New_York:20250101T100000\nRRULE:FREQ=DAILY;UNTIL=20250103T140000Z\nEND:VEVENT\n",
    );
    assert_eq!(busy(&f, range("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")).len(), 3);
}

#[test]
fn an_endless_daily_series_is_bounded_per_event() {
    let f = feed(
        "BEGIN:VEVENT\nUID:n\nDTSTART:20000101T000000Z\nDTEND:20000101T000100Z\nRRULE:FREQ=MINUTELY\nEND:VEVENT\n",
    );
    let n = busy(&f, range("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z")).len();
    assert_eq!(n, usize::from(MAX_INSTANCES_PER_EVENT));
}

#[test]
fn a_feed_that_is_not_icalendar_is_invalid() {
    let zone = TimeZone::UTC;
    let r = range("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z");
    assert!(matches!(busy_intervals("<html>nope</html>", r, &zone), Err(CalendarError::Invalid(_))));
    assert!(busy_intervals(&feed(""), r, &zone).unwrap().is_empty());
}

#[test]
fn a_minutely_rule_from_long_ago_stops_after_a_bounded_walk() {
    let f = feed(
        "BEGIN:VEVENT\nUID:n\nDTSTART:19000101T000000Z\nDTEND:19000101T000100Z\nRRULE:FREQ=MINUTELY\nEND:VEVENT\n",
    );
    let started = std::time::Instant::now();
    assert!(busy(&f, range("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")).is_empty());
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
