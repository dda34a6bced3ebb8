//! Half-open spans of real time (`[start, end)`) and the sort-and-merge that turns a
//! pile of them into disjoint, ordered spans.
//!
//! Every interval in slotd is half-open, so two intervals that merely touch do not overlap:
//! a booking ending at 10:00 and one starting at 10:00 can coexist. The slot engine works on
//! whole seconds internally (the `pub(crate)` helpers at the bottom); the public type keeps
//! jiff's nanosecond [`Timestamp`] so callers never lose precision.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Half-open `[start, end)` span of real time.
///
/// [`Interval::new`] and deserialization guarantee `start < end`; the fields are public for
/// convenience, and code that receives intervals from elsewhere treats an empty or inverted
/// one as covering nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "UncheckedInterval")]
pub struct Interval {
    /// First instant inside the interval.
    pub start: Timestamp,
    /// First instant after the interval.
    pub end: Timestamp,
}

impl Interval {
    /// Builds `[start, end)`; `None` unless `start < end`.
    pub fn new(start: Timestamp, end: Timestamp) -> Option<Interval> {
        (start < end).then_some(Interval { start, end })
    }

    /// Whether the two intervals share an instant (touching is not overlapping).
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `t` lies in `[start, end)`.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }

    /// Length of the interval (zero for an inverted one).
    pub fn duration(&self) -> SignedDuration {
        self.start.duration_until(self.end).max(SignedDuration::ZERO)
    }
}

/// Serde's view of an interval before `start < end` is checked.
#[derive(Deserialize)]
struct UncheckedInterval {
    start: Timestamp,
    end: Timestamp,
}

impl TryFrom<UncheckedInterval> for Interval {
    type Error = String;

    fn try_from(raw: UncheckedInterval) -> Result<Self, Self::Error> {
        Interval::new(raw.start, raw.end)
            .ok_or_else(|| format!("end ({}) must be after start ({})", raw.end, raw.start))
    }
}

/// Sorts `intervals` and merges touching or overlapping ones, in place.
///
/// Empty or inverted intervals (possible only through the public fields) are dropped, as
/// they cover no time.
pub fn merge(intervals: &mut Vec<Interval>) {
    intervals.retain(|iv| iv.start < iv.end);
    intervals.sort_unstable();
    let mut kept = 0;
    for i in 0..intervals.len() {
        let next = intervals[i];
        if kept > 0 && next.start <= intervals[kept - 1].end {
            let last = &mut intervals[kept - 1];
            last.end = last.end.max(next.end);
        } else {
            intervals[kept] = next;
            kept += 1;
        }
    }
    intervals.truncate(kept);
}

/// A span in whole Unix seconds, `(start, end)`, half-open. The engine's working currency:
/// comparing two `i64`s is much cheaper than comparing two `Timestamp`s.
pub(crate) type RawSpan = (i64, i64);

/// Sorts and merges touching or overlapping raw spans in place, dropping empty ones.
pub(crate) fn merge_raw(spans: &mut Vec<RawSpan>) {
    // Sorting by start alone is enough: the merge below takes the max of the ends.
    spans.sort_unstable_by_key(|&(start, _)| start);
    let mut kept = 0;
    for i in 0..spans.len() {
        let (start, end) = spans[i];
        if start >= end {
            continue;
        }
        if kept > 0 && start <= spans[kept - 1].1 {
            let last = &mut spans[kept - 1];
            last.1 = last.1.max(end);
        } else {
            spans[kept] = (start, end);
            kept += 1;
        }
    }
    spans.truncate(kept);
}

/// Largest whole second `<= t`.
///
/// Rounding busy starts down and ends up keeps overlap tests exact against whole-second
/// candidates: for an integer `x`, `floor(t) < x ⇔ t < x` and `x < ceil(t) ⇔ x < t`.
pub(crate) fn floor_second(t: Timestamp) -> i64 {
    // jiff truncates towards zero and gives the nanoseconds the sign of the seconds.
    t.as_second() - i64::from(t.subsec_nanosecond() < 0)
}

/// Smallest whole second `>= t`.
pub(crate) fn ceil_second(t: Timestamp) -> i64 {
    t.as_second() + i64::from(t.subsec_nanosecond() > 0)
}

/// The timestamp `second` seconds after the Unix epoch, clamped to jiff's supported range.
pub(crate) fn timestamp_at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap_or(if second < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn iv(a: &str, b: &str) -> Interval {
        Interval::new(ts(a), ts(b)).unwrap()
    }

    #[test]
    fn an_interval_needs_its_start_before_its_end() {
        let t = ts("2026-01-01T10:00:00Z");
        assert!(Interval::new(t, t).is_none());
        assert!(Interval::new(ts("2026-01-01T11:00:00Z"), t).is_none());
    }

    #[test]
    fn touching_intervals_do_not_overlap() {
        let a = iv("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z");
        let b = iv("2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z");
        assert!(!a.overlaps(&b) && !b.overlaps(&a));
        assert!(a.overlaps(&iv("2026-01-01T10:59:59Z", "2026-01-01T13:00:00Z")));
        assert!(a.contains(a.start) && !a.contains(a.end));
    }

    #[test]
    fn merge_joins_touching_and_overlapping_intervals_and_sorts() {
        let mut v = vec![
            iv("2026-01-01T12:00:00Z", "2026-01-01T13:00:00Z"),
            iv("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z"),
            iv("2026-01-01T11:00:00Z", "2026-01-01T11:30:00Z"),
            iv("2026-01-01T10:15:00Z", "2026-01-01T10:45:00Z"),
        ];
        merge(&mut v);
        assert_eq!(
            v,
            vec![
                iv("2026-01-01T10:00:00Z", "2026-01-01T11:30:00Z"),
                iv("2026-01-01T12:00:00Z", "2026-01-01T13:00:00Z"),
            ]
        );
    }

    #[test]
    fn deserializing_an_inverted_interval_is_an_error() {
        let ok: Interval =
            serde_json::from_str(r#"{"start":"2026-01-01T10:00:00Z","end":"2026-01-01T11:00:00Z"}"#).unwrap();
        assert_eq!(ok, iv("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z"));
        let err = serde_json::from_str::<Interval>(r#"{"start":"2026-01-01T10:00:00Z","end":"2026-01-01T10:00:00Z"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("must be after start"), "{err}");
    }

    #[test]
    fn sub_second_instants_round_outwards_to_whole_seconds() {
        let pos = Timestamp::new(5, 250_000_000).unwrap();
        let neg = Timestamp::new(-5, -250_000_000).unwrap();
        assert_eq!((floor_second(pos), ceil_second(pos)), (5, 6));
        assert_eq!((floor_second(neg), ceil_second(neg)), (-6, -5));
        let whole = Timestamp::from_second(7).unwrap();
        assert_eq!((floor_second(whole), ceil_second(whole)), (7, 7));
    }
}
