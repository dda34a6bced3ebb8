//! Times, days, durations and zones in words for the hosted pages ("Tuesday 1 December 2026,
//! 10:30 – 11:00", "24 hours", "Europe/Paris (UTC+01:00)"), and the list of zones the manage
//! page offers. Pure functions, tested here.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use slotd_core::interval::Interval;

/// Common IANA zones offered by the zone selector after the booking's own zones, west to east.
pub const COMMON_ZONES: &[&str] = &[
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Phoenix",
    "America/Chicago",
    "America/Mexico_City",
    "America/New_York",
    "America/Toronto",
    "America/Bogota",
    "America/Lima",
    "America/Halifax",
    "America/Santiago",
    "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires",
    "America/St_Johns",
    "Atlantic/Reykjavik",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Africa/Lagos",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Africa/Johannesburg",
    "Africa/Cairo",
    "Europe/Athens",
    "Europe/Helsinki",
    "Europe/Kyiv",
    "Europe/Istanbul",
    "Africa/Nairobi",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Tehran",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Jakarta",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Manila",
    "Asia/Seoul",
    "Asia/Tokyo",
    "Australia/Perth",
    "Australia/Adelaide",
    "Australia/Brisbane",
    "Australia/Sydney",
    "Pacific/Auckland",
];

/// The IANA name of a zone (`UTC` for one without).
pub fn zone_name(zone: &TimeZone) -> String {
    zone.iana_name().unwrap_or("UTC").to_owned()
}

/// "Europe/Paris (UTC+01:00)", with the offset at `now`.
pub fn zone_label(name: &str, zone: &TimeZone, now: Timestamp) -> String {
    if name == "UTC" {
        return name.to_owned();
    }
    let offset = now.to_zoned(zone.clone()).strftime("%:z").to_string();
    let offset = if offset == "+00:00" { String::new() } else { offset };
    format!("{} (UTC{offset})", name.replace('_', " "))
}

/// "24 hours", "1 hour 30 minutes", "45 minutes".
pub fn duration(minutes: u32) -> String {
    let unit = |n: u32, one: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") };
    match (minutes / 60, minutes % 60) {
        (0, m) => unit(m, "minute"),
        (h, 0) => unit(h, "hour"),
        (h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
    }
}

/// "Tuesday 1 December 2026".
pub fn day_long(date: Date) -> String {
    date.strftime("%A %-d %B %Y").to_string()
}

/// "Tue 1 Dec".
pub fn day_short(date: Date) -> String {
    date.strftime("%a %-d %b").to_string()
}

/// "10:30".
pub fn clock(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned(zone.clone()).strftime("%H:%M").to_string()
}

/// "Tuesday 1 December 2026, 10:30 – 11:00" (the end's day is named when it differs).
pub fn span(interval: Interval, zone: &TimeZone) -> String {
    let start = interval.start.to_zoned(zone.clone());
    let end = interval.end.to_zoned(zone.clone());
    let end_words = if end.date() == start.date() || is_midnight_after(&start, &end) {
        end.strftime("%H:%M").to_string()
    } else {
        format!("{}, {}", day_long(end.date()), end.strftime("%H:%M"))
    };
    format!("{}, {} – {end_words}", day_long(start.date()), start.strftime("%H:%M"))
}

/// Whether `end` is the midnight that closes `start`'s day (a meeting until 24:00).
fn is_midnight_after(start: &Zoned, end: &Zoned) -> bool {
    end.time() == jiff::civil::Time::midnight() && start.date().tomorrow().ok() == Some(end.date())
}

/// "Tue 1 Dec, 10:30" (an alternative time on a button).
pub fn short_when(t: Timestamp, zone: &TimeZone) -> String {
    let local = t.to_zoned(zone.clone());
    format!("{}, {}", day_short(local.date()), local.strftime("%H:%M"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    #[test]
    fn durations_read_as_hours_and_minutes() {
        assert_eq!(duration(1440), "24 hours");
        assert_eq!(duration(60), "1 hour");
        assert_eq!(duration(90), "1 hour 30 minutes");
        assert_eq!(duration(61), "1 hour 1 minute");
        assert_eq!(duration(45), "45 minutes");
        assert_eq!(duration(1), "1 minute");
    }

    #[test]
    fn times_read_in_the_chosen_zone() {
        let start: Timestamp = "2026-12-01T09:30:00Z".parse().unwrap();
        let end: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        assert_eq!(span(Interval { start, end }, &paris()), "Tuesday 1 December 2026, 10:30 – 11:00");
        assert_eq!(span(Interval { start, end }, &TimeZone::UTC), "Tuesday 1 December 2026, 09:30 – 10:00");
        let late: Timestamp = "2026-12-01T22:30:00Z".parse().unwrap();
        let after: Timestamp = "2026-12-01T23:30:00Z".parse().unwrap();
        assert_eq!(
            span(Interval { start: late, end: after }, &paris()),
            "Tuesday 1 December 2026, 23:30 – Wednesday 2 December 2026, 00:30"
        );
        let midnight: Timestamp = "2026-12-01T23:00:00Z".parse().unwrap();
        assert_eq!(span(Interval { start: late, end: midnight }, &paris()), "Tuesday 1 December 2026, 23:30 – 00:00");
        assert_eq!(short_when(start, &paris()), "Tue 1 Dec, 10:30");
        assert_eq!(zone_label("Europe/Paris", &paris(), start), "Europe/Paris (UTC+01:00)");
        assert_eq!(zone_label("UTC", &TimeZone::UTC, start), "UTC");
        let london = TimeZone::get("Europe/London").unwrap();
        assert_eq!(zone_label("Europe/London", &london, start), "Europe/London (UTC)");
        let ny = TimeZone::get("America/New_York").unwrap();
        assert_eq!(zone_label("America/New_York", &ny, start), "America/New York (UTC-05:00)");
    }

    #[test]
    fn every_offered_zone_is_in_the_bundled_database_once() {
        for name in COMMON_ZONES {
            assert!(slotd_core::zone::time_zone(name).is_ok(), "{name}");
        }
        let unique: std::collections::BTreeSet<_> = COMMON_ZONES.iter().collect();
        assert_eq!(unique.len(), COMMON_ZONES.len());
    }
}
