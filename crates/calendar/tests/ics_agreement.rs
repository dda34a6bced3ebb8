//! ICS expansion agrees with Python's `recurring-ical-events` (an independent implementation,
//! installed into `.venv` from scripts/requirements-test.txt, or `SLOTD_TEST_PYTHON`): for each
//! feed and range, our busy intervals equal the instances `recurring_ical_events.of(cal)` gives,
//! with transparent and cancelled ones left out, floating times and dates in the same host zone,
//! converted to UTC. Without the module the test is skipped, except with `CI=true`, where it fails.

use std::io::Write;
use std::process::{Command, Stdio};

use jiff::tz::TimeZone;
use serde_json::{Value, json};
use slotd_calendar::Interval;
use slotd_calendar::ics::busy_intervals;

fn python() -> String {
    std::env::var("SLOTD_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").to_owned())
}

/// The reference: each case's busy intervals per `recurring_ical_events`, as sorted
/// `[start, end]` pairs of UTC RFC 3339 strings (seconds precision).
const REFERENCE: &str = r#"
import json, sys, datetime as dt
from zoneinfo import ZoneInfo
import icalendar, recurring_ical_events
UTC = dt.timezone.utc
def instant(value, zone):
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    return dt.datetime.combine(value, dt.time(0), tzinfo=zone).astimezone(UTC)
out = []
for case in json.load(sys.stdin):
    zone = ZoneInfo(case["zone"])
    a = dt.datetime.fromisoformat(case["start"])
    b = dt.datetime.fromisoformat(case["end"])
    cal = icalendar.Calendar.from_ical(case["feed"])
    # A wider window in dates, then exact overlap in UTC (floating and dates are in `zone`).
    found = set()
    for event in recurring_ical_events.of(cal).between((a - dt.timedelta(days=2)).date(), (b + dt.timedelta(days=2)).date()):
        if str(event.get("STATUS", "")).upper() == "CANCELLED" or str(event.get("TRANSP", "")).upper() == "TRANSPARENT":
            continue
        start = instant(event.start, zone)
        end = instant(event.end, zone)
        if start < end and start < b and a < end:
            found.add((start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")))
    out.append(sorted(found))
print(json.dumps(out))
"#;

struct Case {
    name: &'static str,
    feed: String,
    start: &'static str,
    end: &'static str,
    zone: &'static str,
}

fn calendar(body: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//slotd test//EN\r\n{}END:VCALENDAR\r\n",
        body.replace('\n', "\r\n")
    )
}

const NY_TZ: &str = "BEGIN:VTIMEZONE\nTZID:America/New_York\nBEGIN:DAYLIGHT\nTZOFFSETFROM:-0500\nTZOFFSETTO:-0400\nDTSTART:20070311T020000\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\nEND:DAYLIGHT\nBEGIN:STANDARD\nTZOFFSETFROM:-0400\nTZOFFSETTO:-0500\nDTSTART:20071104T020000\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\nEND:STANDARD\nEND:VTIMEZONE\n";
const LONDON_TZ: &str = "BEGIN:VTIMEZONE\nTZID:Europe/London\nBEGIN:DAYLIGHT\nTZOFFSETFROM:+0000\nTZOFFSETTO:+0100\nDTSTART:19810329T010000\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\nEND:DAYLIGHT\nBEGIN:STANDARD\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0000\nDTSTART:19961027T020000\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\nEND:STANDARD\nEND:VTIMEZONE\n";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "weekly series with an EXDATE and a RECURRENCE-ID move",
            feed: calendar(&format!(
                "{NY_TZ}BEGIN:VEVENT\nUID:weekly@test\nDTSTAMP:20250101T000000Z\nDTSTART;TZID=America/New_York:20250106T100000\nDTEND;TZID=America/New_York:20250106T110000\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE\nEXDATE;TZID=America/New_York:20250113T100000\nEND:VEVENT\n\
                 BEGIN:VEVENT\nUID:weekly@test\nDTSTAMP:20250101T000000Z\nRECURRENCE-ID;TZID=America/New_York:20250115T100000\nDTSTART;TZID=America/New_York:20250116T140000\nDTEND;TZID=America/New_York:20250116T153000\nEND:VEVENT\n"
            )),
            start: "2025-01-01T00:00:00+00:00",
            end: "2025-02-01T00:00:00+00:00",
            zone: "America/New_York",
        },
        Case {
            name: "a daily series across New York's spring and autumn DST changes",
            feed: calendar(&format!(
                "{NY_TZ}BEGIN:VEVENT\nUID:ny@test\nDTSTAMP:20250101T000000Z\nDTSTART;TZID=America/New_York:20250305T090000\nDURATION:PT45M\nRRULE:FREQ=DAILY;UNTIL=20251110T000000Z\nEND:VEVENT\n"
            )),
            start: "2025-03-05T00:00:00+00:00",
            end: "2025-03-15T00:00:00+00:00",
            zone: "Europe/Berlin",
        },
        Case {
            name: "the same series in November",
            feed: calendar(&format!(
                "{NY_TZ}BEGIN:VEVENT\nUID:ny@test\nDTSTAMP:20250101T000000Z\nDTSTART;TZID=America/New_York:20250305T090000\nDURATION:PT45M\nRRULE:FREQ=DAILY;UNTIL=20251110T000000Z\nEND:VEVENT\n"
            )),
            start: "2025-10-28T00:00:00+00:00",
            end: "2025-11-15T00:00:00+00:00",
            zone: "Europe/Berlin",
        },
        Case {
            name: "a weekly London series across both DST changes, with a cancelled instance",
            feed: calendar(&format!(
                "{LONDON_TZ}BEGIN:VEVENT\nUID:london@test\nDTSTAMP:20250101T000000Z\nDTSTART;TZID=Europe/London:20250303T083000\nDTEND;TZID=Europe/London:20250303T093000\nRRULE:FREQ=WEEKLY;COUNT=40\nEND:VEVENT\n\
                 BEGIN:VEVENT\nUID:london@test\nDTSTAMP:20250101T000000Z\nRECURRENCE-ID;TZID=Europe/London:20250407T083000\nDTSTART;TZID=Europe/London:20250407T083000\nDTEND;TZID=Europe/London:20250407T093000\nSTATUS:CANCELLED\nEND:VEVENT\n"
            )),
            start: "2025-03-01T00:00:00+00:00",
            end: "2025-12-31T00:00:00+00:00",
            zone: "Europe/London",
        },
        Case {
            name: "all-day events, single, multi-day and yearly",
            feed: calendar(
                "BEGIN:VEVENT\nUID:d1@test\nDTSTAMP:20250101T000000Z\nDTSTART;VALUE=DATE:20250704\nEND:VEVENT\n\
                 BEGIN:VEVENT\nUID:d2@test\nDTSTAMP:20250101T000000Z\nDTSTART;VALUE=DATE:20250720\nDTEND;VALUE=DATE:20250723\nEND:VEVENT\n\
                 BEGIN:VEVENT\nUID:d3@test\nDTSTAMP:20250101T000000Z\nDTSTART;VALUE=DATE:20200715\nDTEND;VALUE=DATE:20200716\nRRULE:FREQ=YEARLY\nEND:VEVENT\n",
            ),
            start: "2025-07-01T00:00:00+00:00",
            end: "2025-08-01T00:00:00+00:00",
            zone: "America/Los_Angeles",
        },
        Case {
            name: "floating times, one-off and weekly with an RDATE",
            feed: calendar(
                "BEGIN:VEVENT\nUID:f1@test\nDTSTAMP:20250101T000000Z\nDTSTART:20250115T090000\nDTEND:20250115T100000\nEND:VEVENT\n\
                 BEGIN:VEVENT\nUID:f2@test\nDTSTAMP:20250101T000000Z\nDTSTART:20250107T133000\nDTEND:20250107T140000\nRRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=6\nRDATE:20250125T110000\nEND:VEVENT\n",
            ),
            start: "2025-01-01T00:00:00+00:00",
            end: "2025-02-01T00:00:00+00:00",
            zone: "Asia/Tokyo",
        },
        Case {
            name: "cancelled and transparent events next to a busy one",
            feed: calendar(
                "BEGIN:VEVENT\nUID:c1@test\nDTSTAMP:20250101T000000Z\nDTSTART:20250201T100000Z\nDTEND:20250201T110000Z\nSTATUS:CANCELLED\nEND:VEVENT\n\
                 BEGIN:VEVENT\nUID:c2@test\nDTSTAMP:20250101T000000Z\nDTSTART:20250201T120000Z\nDTEND:20250201T130000Z\nTRANSP:TRANSPARENT\nRRULE:FREQ=DAILY;COUNT=5\nEND:VEVENT\n\
                 BEGIN:VEVENT\nUID:c3@test\nDTSTAMP:20250101T000000Z\nDTSTART:20250201T150000Z\nDTEND:20250201T160000Z\nRRULE:FREQ=DAILY;COUNT=5\nEXDATE:20250203T150000Z\nEND:VEVENT\n\
                 BEGIN:VEVENT\nUID:c3@test\nDTSTAMP:20250101T000000Z\nRECURRENCE-ID:20250204T150000Z\nDTSTART:20250204T150000Z\nDTEND:20250204T160000Z\nSTATUS:CANCELLED\nEND:VEVENT\n",
            ),
            start: "2025-02-01T00:00:00+00:00",
            end: "2025-02-10T00:00:00+00:00",
            zone: "UTC",
        },
        Case {
            name: "a range cutting through instances",
            feed: calendar(&format!(
                "{LONDON_TZ}BEGIN:VEVENT\nUID:cut@test\nDTSTAMP:20250101T000000Z\nDTSTART;TZID=Europe/London:20250601T230000\nDTEND;TZID=Europe/London:20250602T013000\nRRULE:FREQ=DAILY;INTERVAL=2\nEND:VEVENT\n"
            )),
            start: "2025-06-10T23:00:00+00:00",
            end: "2025-06-14T23:30:00+00:00",
            zone: "Europe/London",
        },
    ]
}

fn ours(case: &Case) -> Vec<Value> {
    let range = Interval::new(case.start.parse().unwrap(), case.end.parse().unwrap()).unwrap();
    let zone = TimeZone::get(case.zone).unwrap();
    let mut out: Vec<(String, String)> = busy_intervals(&case.feed, range, &zone)
        .unwrap()
        .into_iter()
        .map(|i| (i.start.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(), i.end.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
        .collect();
    out.sort();
    out.dedup();
    out.into_iter().map(|(a, b)| json!([a, b])).collect()
}

#[test]
fn busy_intervals_agree_with_recurring_ical_events() {
    let python = python();
    let probe = Command::new(&python).args(["-c", "import recurring_ical_events"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let why = match &probe {
            Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => e.to_string(),
        };
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "recurring-ical-events is not importable with {python} ({why}): run scripts/test or set SLOTD_TEST_PYTHON"
            );
        }
        eprintln!("skipped: recurring-ical-events is not importable with {python} ({why})");
        return;
    }
    let cases = cases();
    let input: Vec<Value> =
        cases.iter().map(|c| json!({ "feed": c.feed, "start": c.start, "end": c.end, "zone": c.zone })).collect();
    let mut child = Command::new(&python)
        .args(["-c", REFERENCE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(serde_json::to_string(&input).unwrap().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the reference failed: {}", String::from_utf8_lossy(&output.stderr));
    let theirs: Vec<Vec<Value>> = serde_json::from_slice(&output.stdout).unwrap();
    let mut total = 0;
    for (case, theirs) in cases.iter().zip(theirs) {
        let ours = ours(case);
        assert_eq!(ours, theirs, "{}: ours (left) and recurring-ical-events (right) disagree", case.name);
        assert!(!ours.is_empty(), "{}: an empty case proves nothing", case.name);
        total += ours.len();
    }
    assert!(total > 50, "the cases hold {total} intervals");
}
