//! A host's working hours: weekly wall-clock ranges per weekday plus per-date overrides,
//! in the exact JSON shape of `PUT /v1/hosts/{id}/availability`.
//!
//! Times are wall-clock `HH:MM` in the host's zone ([`WallTime`]); turning them into real
//! time (and what DST does to them) is the slot engine's job ([`crate::slots`]). Parsing is
//! strict about shape (serde rejects unknown fields and malformed times);
//! [`Availability::validate`] then reports every rule a well-formed document can still
//! break, each with a JSON pointer so the API can answer `422` with one error per field.

use std::fmt;

use jiff::civil::{Date, Weekday};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most ranges one day (weekly or override) may have; more is absurd input.
pub const MAX_RANGES_PER_DAY: usize = 48;
/// Most date overrides one availability may have; more is absurd input.
pub const MAX_OVERRIDES: usize = 1000;

/// Minutes after local midnight, 0..=1440; serde as `"HH:MM"` (`"24:00"` allowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallTime(u16);

impl WallTime {
    /// Local midnight at the start of the day, `00:00`.
    pub const MIDNIGHT: WallTime = WallTime(0);
    /// The end of the day, `24:00` (the next date's `00:00`).
    pub const END_OF_DAY: WallTime = WallTime(1440);

    /// Parses `HH:MM`: two digits each, `00:00` to `24:00`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let two_digits = |pair: &[u8]| match pair {
            [tens @ b'0'..=b'9', ones @ b'0'..=b'9'] => Some(u16::from(tens - b'0') * 10 + u16::from(ones - b'0')),
            _ => None,
        };
        let bytes = s.as_bytes();
        let (Some(hour), Some(minute)) = (match bytes {
            [_, _, b':', _, _] => (two_digits(&bytes[..2]), two_digits(&bytes[3..])),
            _ => (None, None),
        }) else {
            return Err(format!("expected a wall-clock time as HH:MM (e.g. 09:30), got '{s}'"));
        };
        if minute > 59 {
            return Err(format!("minutes must be 00 to 59, got '{s}'"));
        }
        if hour > 24 || (hour == 24 && minute > 0) {
            return Err(format!("time must be 00:00 to 24:00, got '{s}'"));
        }
        Ok(WallTime(hour * 60 + minute))
    }

    /// Builds from minutes after midnight; `None` above 1440.
    pub fn from_minutes(minutes: u16) -> Option<Self> {
        (minutes <= 1440).then_some(WallTime(minutes))
    }

    /// Minutes after local midnight, 0..=1440.
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl std::str::FromStr for WallTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WallTime::parse(s)
    }
}

impl Serialize for WallTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WallTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        WallTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One wall-clock range `[start, end)` of a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WallRange {
    /// Local time the range opens.
    pub start: WallTime,
    /// Local time the range closes; `24:00` is the next date's midnight.
    pub end: WallTime,
}

/// Ranges for each weekday; a day left out (or empty) is closed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the field names say it
pub struct WeeklyHours {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monday: Vec<WallRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tuesday: Vec<WallRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wednesday: Vec<WallRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thursday: Vec<WallRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub friday: Vec<WallRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saturday: Vec<WallRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sunday: Vec<WallRange>,
}

/// JSON names of the weekdays, Monday first (the order of [`WeeklyHours::by_index`]).
const DAY_NAMES: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

impl WeeklyHours {
    /// The ranges of one weekday.
    pub fn day(&self, weekday: Weekday) -> &[WallRange] {
        self.by_index(weekday.to_monday_zero_offset() as usize)
    }

    /// The ranges of a Monday-zero weekday index (0 = Monday … 6 = Sunday).
    pub(crate) fn by_index(&self, index: usize) -> &[WallRange] {
        match index {
            0 => &self.monday,
            1 => &self.tuesday,
            2 => &self.wednesday,
            3 => &self.thursday,
            4 => &self.friday,
            5 => &self.saturday,
            _ => &self.sunday,
        }
    }

    /// The same hours every day of the week (handy for tests and demos).
    pub fn every_day(ranges: &[WallRange]) -> Self {
        let r = ranges.to_vec();
        WeeklyHours {
            monday: r.clone(),
            tuesday: r.clone(),
            wednesday: r.clone(),
            thursday: r.clone(),
            friday: r.clone(),
            saturday: r.clone(),
            sunday: r,
        }
    }
}

/// Different hours (or none: a closed day) on one local date.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateOverride {
    /// The local date in the host's zone.
    pub date: Date,
    /// That date's ranges, replacing the weekday's; empty means closed.
    pub ranges: Vec<WallRange>,
}

/// A host's working hours: weekly ranges, replaced on specific dates by overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    /// Ranges per weekday.
    #[serde(default)]
    pub weekly: WeeklyHours,
    /// Dates whose ranges replace the weekday's.
    #[serde(default)]
    pub overrides: Vec<DateOverride>,
}

/// One invalid field: where (a JSON pointer relative to the availability document) and why.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON pointer, e.g. `/weekly/monday/0/end`.
    pub pointer: String,
    /// Human-readable reason.
    pub detail: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.detail)
    }
}

impl Availability {
    /// Every rule this document breaks, in document order; empty means valid.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (index, name) in DAY_NAMES.iter().enumerate() {
            validate_day(&format!("/weekly/{name}"), self.weekly.by_index(index), &mut errors);
        }
        if self.overrides.len() > MAX_OVERRIDES {
            // Checking a flood element by element would only produce a flood of errors.
            errors.push(FieldError {
                pointer: "/overrides".into(),
                detail: format!("at most {MAX_OVERRIDES} overrides, got {}", self.overrides.len()),
            });
            return errors;
        }
        let mut seen: std::collections::HashMap<Date, usize> = Default::default();
        for (i, o) in self.overrides.iter().enumerate() {
            if let Some(first) = seen.insert(o.date, i) {
                seen.insert(o.date, first);
                errors.push(FieldError {
                    pointer: format!("/overrides/{i}/date"),
                    detail: format!("{} already has an override (/overrides/{first})", o.date),
                });
            }
            validate_day(&format!("/overrides/{i}/ranges"), &o.ranges, &mut errors);
        }
        errors
    }
}

/// Checks one day's ranges; `base` is the pointer of the ranges array.
fn validate_day(base: &str, ranges: &[WallRange], errors: &mut Vec<FieldError>) {
    if ranges.len() > MAX_RANGES_PER_DAY {
        errors.push(FieldError {
            pointer: base.to_owned(),
            detail: format!("at most {MAX_RANGES_PER_DAY} ranges per day, got {}", ranges.len()),
        });
        return;
    }
    let mut well_formed: Vec<(WallRange, usize)> = Vec::with_capacity(ranges.len());
    for (i, r) in ranges.iter().enumerate() {
        if r.start == WallTime::END_OF_DAY {
            errors.push(FieldError {
                pointer: format!("{base}/{i}/start"),
                detail: "a range cannot start at 24:00".into(),
            });
        } else if r.start >= r.end {
            errors.push(FieldError {
                pointer: format!("{base}/{i}/end"),
                detail: format!("end must be after start ({})", r.start),
            });
        } else {
            well_formed.push((*r, i));
        }
    }
    // Sorted by start, a range overlaps an earlier one iff it starts before the furthest
    // end seen so far (touching is fine: ranges are half-open).
    well_formed.sort_by_key(|&(r, i)| (r.start, r.end, i));
    let mut furthest: Option<(WallTime, usize)> = None;
    let mut reported: Vec<(usize, String)> = Vec::new();
    for &(r, i) in &well_formed {
        match furthest {
            Some((end, earlier)) if r.start < end => {
                reported.push((i, format!("ranges of one day must not overlap ({base}/{earlier} ends at {end})")))
            }
            _ => {}
        }
        if furthest.is_none_or(|(end, _)| r.end > end) {
            furthest = Some((r.end, i));
        }
    }
    // Report in document order, like the other errors.
    reported.sort_by_key(|&(i, _)| i);
    errors.extend(reported.into_iter().map(|(i, detail)| FieldError { pointer: format!("{base}/{i}"), detail }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wt(s: &str) -> WallTime {
        WallTime::parse(s).unwrap()
    }

    fn range(a: &str, b: &str) -> WallRange {
        WallRange { start: wt(a), end: wt(b) }
    }

    #[test]
    fn wall_times_parse_from_strict_hh_mm() {
        assert_eq!(wt("00:00").minutes(), 0);
        assert_eq!(wt("09:30").minutes(), 570);
        assert_eq!(wt("23:59").minutes(), 1439);
        assert_eq!(wt("24:00").minutes(), 1440);
        assert_eq!(wt("24:00").to_string(), "24:00");
        assert_eq!(wt("07:05").to_string(), "07:05");
    }

    #[test]
    fn malformed_wall_times_are_rejected_with_a_clear_message() {
        for (bad, says) in [
            ("24:01", "00:00 to 24:00"),
            ("25:00", "00:00 to 24:00"),
            ("9:00", "HH:MM"),
            ("09:60", "minutes must be 00 to 59"),
            ("aa", "HH:MM"),
            ("", "HH:MM"),
            ("09:00:00", "HH:MM"),
            ("09-00", "HH:MM"),
            ("+9:00", "HH:MM"),
            ("０9:00", "HH:MM"),
        ] {
            let err = WallTime::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
            assert!(err.contains(bad), "{bad:?} should be quoted in: {err}");
        }
    }

    #[test]
    fn availability_json_round_trips_in_the_product_shape() {
        let json = r#"{ "weekly": { "monday": [ { "start": "09:00", "end": "12:00" }, { "start": "13:00", "end": "17:00" } ],
              "tuesday": [ { "start": "09:00", "end": "17:00" } ] },
  "overrides": [ { "date": "2026-12-24", "ranges": [ { "start": "09:00", "end": "12:00" } ] },
                 { "date": "2026-12-25", "ranges": [] } ] }"#;
        let a: Availability = serde_json::from_str(json).unwrap();
        assert_eq!(a.weekly.monday, vec![range("09:00", "12:00"), range("13:00", "17:00")]);
        assert_eq!(a.weekly.day(Weekday::Tuesday), &[range("09:00", "17:00")]);
        assert!(a.weekly.day(Weekday::Sunday).is_empty());
        assert_eq!(a.overrides[1].date, jiff::civil::date(2026, 12, 25));
        assert!(a.validate().is_empty());
        let back = serde_json::to_value(&a).unwrap();
        assert_eq!(back, serde_json::from_str::<serde_json::Value>(json).unwrap());
        assert_eq!(serde_json::from_str::<Availability>("{}").unwrap(), Availability::default());
    }

    #[test]
    fn unknown_fields_and_bad_times_fail_to_parse() {
        for bad in [
            r#"{"weekly":{"mon":[]}}"#,
            r#"{"weekly":{},"extra":1}"#,
            r#"{"weekly":{"monday":[{"start":"09:00","end":"17:00","x":1}]}}"#,
            r#"{"weekly":{"monday":[{"start":"9:00","end":"17:00"}]}}"#,
            r#"{"overrides":[{"date":"2026-13-01","ranges":[]}]}"#,
            r#"{"overrides":[{"date":"2026-12-01"}]}"#,
        ] {
            assert!(serde_json::from_str::<Availability>(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<Availability>(r#"{"weekly":{"monday":[{"start":"09:60","end":"17:00"}]}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("minutes must be 00 to 59, got '09:60'"), "{err}");
    }

    #[test]
    fn validate_points_at_each_broken_range() {
        let mut a = Availability::default();
        a.weekly.monday = vec![range("17:00", "09:00")];
        a.weekly.tuesday = vec![range("24:00", "24:00"), range("10:00", "10:00")];
        a.weekly.friday = vec![range("13:00", "17:00"), range("09:00", "12:00"), range("11:00", "12:30")];
        let errors = a.validate();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/weekly/monday/0/end", "/weekly/tuesday/0/start", "/weekly/tuesday/1/end", "/weekly/friday/2"]
        );
        assert!(errors[0].detail.contains("end must be after start"));
        assert!(errors[1].detail.contains("cannot start at 24:00"));
        assert!(errors[3].detail.contains("ranges of one day must not overlap"), "{}", errors[3]);
    }

    #[test]
    fn touching_ranges_and_a_24_00_end_are_valid() {
        let mut a = Availability::default();
        a.weekly.monday = vec![range("12:00", "24:00"), range("00:00", "12:00")];
        a.weekly.sunday = vec![range("00:00", "24:00")];
        assert_eq!(a.validate(), vec![]);
    }

    #[test]
    fn a_date_in_two_overrides_is_reported_at_the_second() {
        let d = |s: &str| s.parse::<Date>().unwrap();
        let a = Availability {
            weekly: WeeklyHours::default(),
            overrides: vec![
                DateOverride { date: d("2026-12-24"), ranges: vec![] },
                DateOverride { date: d("2026-12-25"), ranges: vec![] },
                DateOverride { date: d("2026-12-31"), ranges: vec![range("10:00", "09:00")] },
                DateOverride { date: d("2026-12-24"), ranges: vec![] },
            ],
        };
        let errors = a.validate();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].pointer, "/overrides/2/ranges/0/end");
        assert_eq!(errors[1].pointer, "/overrides/3/date");
        assert!(errors[1].detail.contains("/overrides/0"), "{}", errors[1]);
    }

    #[test]
    fn absurd_amounts_of_ranges_or_overrides_are_rejected() {
        let mut a = Availability::default();
        a.weekly.wednesday = (0..49).map(|i| range("00:00", "00:01").with_start(i)).collect();
        let errors = a.validate();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].pointer, "/weekly/wednesday");
        let first = jiff::civil::date(2026, 1, 1);
        a.weekly.wednesday.clear();
        a.overrides = (0..1001)
            .map(|i| DateOverride { date: first.checked_add(jiff::Span::new().days(i)).unwrap(), ranges: vec![] })
            .collect();
        let errors = a.validate();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].pointer, "/overrides");
        a.overrides.truncate(1000);
        assert!(a.validate().is_empty());
    }

    impl WallRange {
        /// A one-minute range starting `i` minutes after midnight (test helper).
        fn with_start(self, i: u16) -> WallRange {
            WallRange { start: WallTime(i), end: WallTime(i + 1) }
        }
    }
}
