//! Time zones: looking up IANA names in the tz database bundled into the binary, and the
//! engine's fast wall-clock → instant conversion.
//!
//! Results never depend on the machine: the crate is built with jiff's
//! `tzdb-bundle-always`, so [`jiff::tz::db`] is the bundled copy. The converter
//! (`WallClock`, crate-private) gives exactly jiff's "compatible" answer (a time in a gap
//! moves forward by the gap's length, a time in a fold takes the earlier instant) but asks
//! the tz database only near transitions; everywhere else a cached offset is enough.

use jiff::{Timestamp, tz::TimeZone};

/// A time zone name that the bundled tz database does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone '{name}'")]
pub struct UnknownTimeZone {
    /// The name as given.
    pub name: String,
}

/// Looks up an IANA time zone name (e.g. `Europe/London`) in the bundled tz database.
pub fn time_zone(name: &str) -> Result<TimeZone, UnknownTimeZone> {
    if name.trim().is_empty() {
        return Err(UnknownTimeZone { name: name.to_owned() });
    }
    jiff::tz::db().get(name).map_err(|_| UnknownTimeZone { name: name.to_owned() })
}

/// Seconds in a civil day.
pub(crate) const DAY_SECONDS: i64 = 86_400;

/// How far from a transition a cached offset is trusted. UTC offsets lie within ±26 h, so
/// two offsets differ by less than 52 h: if `local − offset` lands at least this far inside
/// a stretch of constant `offset`, no other offset can map `local` to a real instant, which
/// means the time is neither in a gap nor in a fold.
const TRUST_MARGIN_SECONDS: i64 = 3 * DAY_SECONDS;

/// Converts local wall-clock times of one zone to instants with "compatible"
/// disambiguation, caching the offset of the current stretch between transitions.
///
/// Wall-clock times are given as "local seconds": the civil date-time read as if it were
/// UTC, in seconds since 1970-01-01T00:00. Callers walk forwards through a few weeks, so
/// nearly every call is a subtraction and two comparisons.
pub(crate) struct WallClock<'z> {
    zone: &'z TimeZone,
    offset: i64,
    /// Instants in `[trusted_from, trusted_until)` convert with `offset` alone.
    trusted_from: i64,
    trusted_until: i64,
}

impl<'z> WallClock<'z> {
    /// A converter for `zone` with nothing cached yet.
    pub(crate) fn new(zone: &'z TimeZone) -> Self {
        WallClock { zone, offset: 0, trusted_from: 1, trusted_until: 0 }
    }

    /// The instant (Unix seconds) of a local wall-clock time, "compatible" disambiguation.
    pub(crate) fn instant(&mut self, local: i64) -> i64 {
        let guess = local - self.offset;
        if self.trusted_from <= guess && guess < self.trusted_until {
            return guess;
        }
        self.instant_near_transition(local)
    }

    #[cold]
    fn instant_near_transition(&mut self, local: i64) -> i64 {
        let Ok(as_utc) = Timestamp::from_second(local) else {
            // Beyond jiff's range (years ±9999): no transitions there worth resolving.
            return local - self.offset;
        };
        let civil = TimeZone::UTC.to_datetime(as_utc);
        let Ok(instant) = self.zone.to_ambiguous_timestamp(civil).compatible() else {
            return local - self.offset;
        };
        self.offset = i64::from(self.zone.to_offset(instant).seconds());
        // The stretch of constant offset around `instant`: from the last transition at or
        // before it to the next one after it.
        let just_after = instant.checked_add(jiff::SignedDuration::from_nanos(1)).unwrap_or(instant);
        let previous = self.zone.preceding(just_after).next().map(|t| t.timestamp().as_second());
        let next = self.zone.following(instant).next().map(|t| t.timestamp().as_second());
        self.trusted_from = previous.map_or(i64::MIN, |p| p.saturating_add(TRUST_MARGIN_SECONDS));
        self.trusted_until = next.map_or(i64::MAX, |n| n.saturating_sub(TRUST_MARGIN_SECONDS));
        instant.as_second()
    }
}

/// The local date of an instant, as days since 1970-01-01 in `zone`.
pub(crate) fn local_day(zone: &TimeZone, instant: i64) -> i64 {
    let t = crate::interval::timestamp_at(instant);
    let offset = i64::from(zone.to_offset(t).seconds());
    (t.as_second() + offset).div_euclid(DAY_SECONDS)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; Howard Hinnant's algorithm).
///
/// Plain arithmetic, so per-date work in the engine never goes through date types.
pub(crate) fn day_number(date: jiff::civil::Date) -> i64 {
    let (y, m, d) = (i64::from(date.year()), i64::from(date.month()), i64::from(date.day()));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Monday-zero weekday index (0 = Monday … 6 = Sunday) of a day number.
pub(crate) fn weekday_index(day: i64) -> usize {
    // 1970-01-01 was a Thursday (index 3).
    (day + 3).rem_euclid(7) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn known_zones_are_found_and_unknown_ones_are_named_in_the_error() {
        assert!(time_zone("Europe/London").is_ok());
        assert!(time_zone("Pacific/Chatham").is_ok());
        let err = time_zone("Mars/Olympus").unwrap_err();
        assert_eq!(err.to_string(), "unknown time zone 'Mars/Olympus'");
        assert_eq!(time_zone("").unwrap_err().to_string(), "unknown time zone ''");
        assert!(time_zone("+05:00").is_err());
    }

    #[test]
    fn day_numbers_match_jiff_across_eras() {
        for d in [
            date(1970, 1, 1),
            date(1969, 12, 31),
            date(2000, 2, 29),
            date(2026, 3, 8),
            date(1600, 3, 1),
            date(-9999, 1, 3),
            date(9999, 12, 30),
        ] {
            let expected = d.to_zoned(TimeZone::UTC).unwrap().timestamp().as_second() / DAY_SECONDS;
            assert_eq!(day_number(d), expected, "{d}");
            assert_eq!(weekday_index(day_number(d)), d.weekday().to_monday_zero_offset() as usize, "{d}");
        }
    }

    #[test]
    fn the_wall_clock_agrees_with_jiff_compatible_every_quarter_hour_for_two_years() {
        for name in ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham"] {
            let zone = time_zone(name).unwrap();
            let mut clock = WallClock::new(&zone);
            let first = day_number(date(2025, 12, 20));
            for quarter in 0..(2 * 366 * 96) {
                let local = first * DAY_SECONDS + quarter * 900;
                let civil = TimeZone::UTC.to_datetime(Timestamp::from_second(local).unwrap());
                let expected = zone.to_ambiguous_timestamp(civil).compatible().unwrap();
                assert_eq!(clock.instant(local), expected.as_second(), "{name} {civil}");
            }
        }
    }
}
