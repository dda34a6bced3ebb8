//! ICS feeds (RFC 5545 iCalendar published at a URL) as a busy-time source: [`busy_intervals`]
//! expands a feed's events into the busy [`Interval`]s that overlap a range, and [`IcsFeed`]
//! fetches a feed over HTTP (through the client the server hands in, with its SSRF guard) with a
//! time limit and a size limit.
//!
//! Parsing is `icalendar`'s parser and recurrence is the `rrule` crate; this module only maps
//! iCalendar's times to instants and applies the rules around the recurrence set. It handles:
//!
//! - `RRULE` (several are a union), `RDATE` (date, date-time or `PERIOD` values) and `EXDATE`;
//!   `DTSTART` is always the first instance, as RFC 5545 says, even when the rule does not match it;
//! - `RECURRENCE-ID` overrides: the override's own times, status and transparency replace the
//!   instance it names (a cancelled override removes it). `RANGE=THISANDFUTURE` is not applied
//!   (only the named instance is replaced). An override without its master is an event of its own;
//! - times: UTC (`Z`), `TZID=` (looked up as an IANA name in jiff's bundled database; a TZID that
//!   is not one, even with a `VTIMEZONE` in the feed, makes that event unreadable and it is
//!   skipped: feeds from Google, Apple, Fastmail and Nextcloud use IANA names), and floating times
//!   (no zone), which are in `floating_zone`, the host's zone;
//! - all-day events (`VALUE=DATE`): busy from midnight to midnight in `floating_zone`, the host's
//!   zone (an all-day event has no zone of its own; the host's day is what makes them busy);
//! - the length from `DTEND` (the wall-clock difference from `DTSTART`, kept by every instance),
//!   or `DURATION` (days are calendar days, hours exact), or neither: one day for a date, and no
//!   length for a date-time, which then is not busy (an empty interval holds no instant);
//! - `TRANSP:TRANSPARENT` and `STATUS:CANCELLED` are not busy.
//!
//! Rules are expanded in wall-clock time and each instance's wall-clock start becomes an instant
//! in its zone (a time skipped by a DST change moves forward by the gap, a repeated one is its
//! first occurrence). The work is bounded: at most [`MAX_INSTANCES_PER_EVENT`] instances per
//! event, never past the end of the range asked for, and at most [`MAX_RULE_STEPS`] steps of a
//! rule from its DTSTART (a minutely rule started years ago yields nothing past that).
//!
//! Not handled: `EXRULE` (deprecated), `VTIMEZONE` definitions for non-IANA TZIDs, `VTODO`,
//! `VFREEBUSY` and `VALARM` (only `VEVENT`s are busy).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use icalendar::parser::{Component, Property};
use jiff::civil::{self, Date};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};

use crate::{BusySource, CalendarError, Interval};

/// At most this many instances of one event are expanded in one range.
pub const MAX_INSTANCES_PER_EVENT: u16 = 10_000;

/// At most this many steps of one recurrence rule are walked, before and in the range.
pub const MAX_RULE_STEPS: usize = 1_000_000;

/// The time an [`IcsFeed`] waits for a whole answer.
pub const FETCH_TIME_LIMIT: Duration = Duration::from_secs(10);

/// The largest feed an [`IcsFeed`] reads (5 MiB).
pub const FETCH_SIZE_LIMIT: usize = 5 * 1024 * 1024;

/// A calendar published as an ICS feed at a URL.
#[derive(Clone, Debug)]
pub struct IcsFeed {
    client: reqwest::Client,
    url: String,
    floating_zone: TimeZone,
    time_limit: Duration,
    size_limit: usize,
}

impl IcsFeed {
    /// A feed at `url`, fetched with `client` (the server's SSRF-guarded client); floating times
    /// and all-day events are in `floating_zone` (the host's zone).
    pub fn new(client: reqwest::Client, url: impl Into<String>, floating_zone: TimeZone) -> IcsFeed {
        IcsFeed { client, url: url.into(), floating_zone, time_limit: FETCH_TIME_LIMIT, size_limit: FETCH_SIZE_LIMIT }
    }

    /// The same feed with another time limit for the whole answer.
    pub fn with_time_limit(mut self, limit: Duration) -> IcsFeed {
        self.time_limit = limit;
        self
    }

    /// The same feed with another size limit, in bytes.
    pub fn with_size_limit(mut self, limit: usize) -> IcsFeed {
        self.size_limit = limit;
        self
    }

    /// Fetches the feed's text, within the time and size limits.
    pub async fn fetch(&self) -> Result<String, CalendarError> {
        let unreachable = |e: reqwest::Error| {
            if e.is_timeout() {
                CalendarError::Unreachable(format!("no complete answer within {} s", self.time_limit.as_secs_f64()))
            } else {
                CalendarError::Unreachable(e.without_url().to_string())
            }
        };
        let mut response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "text/calendar, */*;q=0.5")
            .timeout(self.time_limit)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let mut detail = String::new();
            // A little of the answer says why; an error page is not read whole.
            if let Ok(Some(chunk)) = response.chunk().await {
                detail = String::from_utf8_lossy(&chunk[..chunk.len().min(200)]).into_owned();
            }
            return Err(CalendarError::Refused { status: status.as_u16(), detail });
        }
        let body = crate::http::read_capped(&mut response, self.size_limit, unreachable).await?;
        String::from_utf8(body).map_err(|_| CalendarError::Invalid("the feed is not UTF-8".into()))
    }
}

impl BusySource for IcsFeed {
    async fn busy(&self, range: Interval) -> Result<Vec<Interval>, CalendarError> {
        let feed = self.fetch().await?;
        busy_intervals(&feed, range, &self.floating_zone)
    }
}

/// Every busy instance of every `VEVENT` in `feed` that overlaps `range`, in no particular order.
/// Floating times and all-day dates are in `floating_zone`. An event that cannot be read (an
/// unknown TZID, a bad date, a rule `rrule` refuses) is skipped; a feed that is not iCalendar at
/// all is [`CalendarError::Invalid`].
pub fn busy_intervals(feed: &str, range: Interval, floating_zone: &TimeZone) -> Result<Vec<Interval>, CalendarError> {
    let unfolded = icalendar::parser::unfold(feed);
    let calendar = icalendar::parser::read_calendar(&unfolded)
        .map_err(|e| CalendarError::Invalid(e.lines().next().unwrap_or("not iCalendar").to_owned()))?;
    if calendar.properties.is_empty() && !calendar.components.iter().any(|c| c.name == "VEVENT") {
        return Err(CalendarError::Invalid("no VCALENDAR in the feed".into()));
    }
    let events: Vec<Event> = calendar
        .components
        .iter()
        .filter(|c| c.name == "VEVENT")
        .filter_map(|c| Event::read(c, floating_zone).ok())
        .collect();

    // Overrides by UID, each under the instant of the instance it replaces.
    let mut overridden: HashMap<&str, HashSet<Timestamp>> = HashMap::new();
    for event in &events {
        if let Some(recurrence_id) = event.recurrence_id {
            overridden.entry(event.uid.as_str()).or_default().insert(recurrence_id);
        }
    }

    let mut busy = Vec::new();
    for event in &events {
        if !event.busy {
            continue;
        }
        if event.recurrence_id.is_some() {
            // An override is one instance at its own times.
            if let Some(interval) = event.instance(event.start)
                && interval.overlaps(&range)
            {
                busy.push(interval);
            }
            continue;
        }
        let skip = overridden.get(event.uid.as_str());
        for start in event.starts(range) {
            let Some(interval) = event.instance_with(start, event.length_at(start)) else { continue };
            if !interval.overlaps(&range) || skip.is_some_and(|s| s.contains(&interval.start)) {
                continue;
            }
            busy.push(interval);
        }
    }
    Ok(busy)
}

/// A time as iCalendar writes it, before a zone makes it an instant.
#[derive(Clone, Debug)]
enum IcalTime {
    Date(Date),
    Utc(Timestamp),
    Local(civil::DateTime, TimeZone),
}

/// One `VEVENT`, read.
struct Event {
    uid: String,
    /// Whether its instances are busy (not transparent, not cancelled).
    busy: bool,
    /// The zone its wall-clock times are in (UTC for UTC times; `floating_zone` for dates).
    zone: TimeZone,
    /// DTSTART in wall-clock time.
    start: civil::DateTime,
    length: Length,
    recurrence_id: Option<Timestamp>,
    rrules: Vec<String>,
    rdates: Vec<(civil::DateTime, Option<Length>)>,
    exdates: HashSet<Timestamp>,
    exdate_days: HashSet<Date>,
}

/// How long each instance lasts.
#[derive(Clone, Copy, Debug)]
enum Length {
    /// Wall-clock difference (DTEND − DTSTART, or a date's day).
    Wall(SignedDuration),
    /// A `DURATION` (days nominal, hours exact).
    Span(Span),
}

fn param<'a>(property: &'a Property<'_>, key: &str) -> Option<&'a str> {
    property
        .params
        .iter()
        .find(|p| p.key.as_str().eq_ignore_ascii_case(key))
        .and_then(|p| p.val.as_ref())
        .map(|v| v.as_str().trim_matches('"'))
}

fn props<'a, 'b>(component: &'a Component<'b>, name: &'a str) -> impl Iterator<Item = &'a Property<'b>> + 'a {
    component.properties.iter().filter(move |p| p.name.as_str().eq_ignore_ascii_case(name))
}

fn zone_named(tzid: &str) -> Result<TimeZone, String> {
    // Some producers write "/Europe/London" or a quoted name.
    let name = tzid.trim().trim_start_matches('/');
    jiff::tz::db().get(name).map_err(|_| format!("unknown TZID {tzid:?}"))
}

/// Reads one value of a DATE or DATE-TIME property, with the property's TZID if any.
fn read_time(value: &str, tzid: Option<&str>, floating_zone: &TimeZone) -> Result<IcalTime, String> {
    let value = value.trim();
    if value.len() == 8 {
        let date = Date::strptime("%Y%m%d", value).map_err(|e| format!("bad date {value:?}: {e}"))?;
        return Ok(IcalTime::Date(date));
    }
    let (civil_part, utc) = match value.strip_suffix('Z').or_else(|| value.strip_suffix('z')) {
        Some(rest) => (rest, true),
        None => (value, false),
    };
    let datetime =
        civil::DateTime::strptime("%Y%m%dT%H%M%S", civil_part).map_err(|e| format!("bad date-time {value:?}: {e}"))?;
    if utc {
        let ts = TimeZone::UTC.to_timestamp(datetime).map_err(|e| e.to_string())?;
        return Ok(IcalTime::Utc(ts));
    }
    match tzid {
        Some(tzid) => Ok(IcalTime::Local(datetime, zone_named(tzid)?)),
        None => Ok(IcalTime::Local(datetime, floating_zone.clone())),
    }
}

fn read_prop_time(property: &Property<'_>, floating_zone: &TimeZone) -> Result<IcalTime, String> {
    read_time(property.val.as_str(), param(property, "TZID"), floating_zone)
}

/// An instant from a wall-clock time in a zone (gaps move forward, folds take the first).
fn instant(zone: &TimeZone, datetime: civil::DateTime) -> Option<Timestamp> {
    zone.to_ambiguous_timestamp(datetime).compatible().ok()
}

impl IcalTime {
    /// The wall-clock time in `zone`.
    fn civil_in(&self, zone: &TimeZone) -> civil::DateTime {
        match self {
            IcalTime::Date(date) => date.to_datetime(civil::Time::midnight()),
            IcalTime::Utc(ts) => zone.to_datetime(*ts),
            IcalTime::Local(datetime, own) => {
                if own == zone {
                    *datetime
                } else {
                    instant(own, *datetime).map_or(*datetime, |ts| zone.to_datetime(ts))
                }
            }
        }
    }
}

fn parse_duration(value: &str) -> Result<Span, String> {
    value.trim().parse::<Span>().map_err(|e| format!("bad DURATION {value:?}: {e}"))
}

impl Event {
    fn read(component: &Component<'_>, floating_zone: &TimeZone) -> Result<Event, String> {
        fn one_of<'a, 'b>(component: &'a Component<'b>, name: &'a str) -> Option<&'a Property<'b>> {
            props(component, name).next()
        }
        let one = |name: &'static str| one_of(component, name);
        let uid = one("UID").map(|p| p.val.as_str().to_owned()).unwrap_or_default();
        let transparent = one("TRANSP").is_some_and(|p| p.val.as_str().trim().eq_ignore_ascii_case("TRANSPARENT"));
        let cancelled = one("STATUS").is_some_and(|p| p.val.as_str().trim().eq_ignore_ascii_case("CANCELLED"));
        let dtstart = read_prop_time(one("DTSTART").ok_or("no DTSTART")?, floating_zone)?;
        let (zone, all_day) = match &dtstart {
            IcalTime::Date(_) => (floating_zone.clone(), true),
            IcalTime::Utc(_) => (TimeZone::UTC, false),
            IcalTime::Local(_, zone) => (zone.clone(), false),
        };
        let start = dtstart.civil_in(&zone);
        let length = if let Some(dtend) = one("DTEND") {
            let end = read_prop_time(dtend, floating_zone)?.civil_in(&zone);
            Length::Wall(start.duration_until(end))
        } else if let Some(duration) = one("DURATION") {
            Length::Span(parse_duration(duration.val.as_str())?)
        } else if all_day {
            Length::Wall(SignedDuration::from_hours(24))
        } else {
            Length::Wall(SignedDuration::ZERO)
        };
        let recurrence_id = match one("RECURRENCE-ID") {
            Some(p) => {
                let civil = read_prop_time(p, floating_zone)?.civil_in(&zone);
                Some(instant(&zone, civil).ok_or("RECURRENCE-ID out of range")?)
            }
            None => None,
        };
        let rrules = props(component, "RRULE").map(|p| p.val.as_str().trim().to_owned()).collect();
        let mut rdates = Vec::new();
        for p in props(component, "RDATE") {
            let period = param(p, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("PERIOD"));
            for value in p.val.as_str().split(',') {
                let (begin, rest) = match value.split_once('/') {
                    Some((begin, rest)) if period => (begin, Some(rest)),
                    _ => (value, None),
                };
                let at = read_time(begin, param(p, "TZID"), floating_zone)?.civil_in(&zone);
                let own_length = match rest {
                    Some(rest) if rest.trim_start().starts_with(['P', '+', '-']) => {
                        Some(Length::Span(parse_duration(rest)?))
                    }
                    Some(rest) => {
                        let end = read_time(rest, param(p, "TZID"), floating_zone)?.civil_in(&zone);
                        Some(Length::Wall(at.duration_until(end)))
                    }
                    None => None,
                };
                rdates.push((at, own_length));
            }
        }
        let mut exdates = HashSet::new();
        let mut exdate_days = HashSet::new();
        for p in props(component, "EXDATE") {
            for value in p.val.as_str().split(',') {
                match read_time(value, param(p, "TZID"), floating_zone)? {
                    IcalTime::Date(date) => {
                        exdate_days.insert(date);
                    }
                    time => {
                        if let Some(ts) = instant(&zone, time.civil_in(&zone)) {
                            exdates.insert(ts);
                        }
                    }
                }
            }
        }
        Ok(Event {
            uid,
            busy: !transparent && !cancelled,
            zone,
            start,
            length,
            recurrence_id,
            rrules,
            rdates,
            exdates,
            exdate_days,
        })
    }

    /// The busy interval of the instance starting at `start` (wall-clock), with the event's
    /// length; `None` when it is empty.
    fn instance(&self, start: civil::DateTime) -> Option<Interval> {
        self.instance_with(start, self.length)
    }

    fn instance_with(&self, start: civil::DateTime, length: Length) -> Option<Interval> {
        let begin = instant(&self.zone, start)?;
        let end = match length {
            Length::Wall(d) => instant(&self.zone, start.checked_add(d).ok()?)?,
            Length::Span(span) => begin.to_zoned(self.zone.clone()).checked_add(span).ok()?.timestamp(),
        };
        Interval::new(begin, end)
    }

    /// Wall-clock starts of the instances that may overlap `range` (a little wider: the caller
    /// checks overlap), without EXDATEs; RDATE periods come through [`Event::starts`]'s caller.
    fn starts(&self, range: Interval) -> Vec<civil::DateTime> {
        // Instances starting this long before the range may still reach into it.
        let reach = match self.length {
            Length::Wall(d) => d.max(SignedDuration::ZERO),
            Length::Span(span) => {
                span.to_duration(civil::date(2000, 1, 1)).unwrap_or(SignedDuration::ZERO).max(SignedDuration::ZERO)
            }
        };
        let slack = SignedDuration::from_hours(48);
        let window_start = self.zone.to_datetime(range.start).saturating_sub(reach).saturating_sub(slack);
        let window_end = self.zone.to_datetime(range.end).saturating_add(slack);

        let mut starts: Vec<civil::DateTime> = Vec::new();
        let mut seen = HashSet::new();
        let mut push = |at: civil::DateTime| {
            if at >= window_start && at <= window_end && seen.insert(at) {
                starts.push(at);
            }
        };
        push(self.start);
        for (at, _) in &self.rdates {
            push(*at);
        }
        for rule in &self.rrules {
            for at in expand_rule(rule, self.start, &self.zone, window_start, window_end) {
                push(at);
            }
        }
        starts.retain(|at| {
            let excluded_day = self.exdate_days.contains(&at.date());
            let excluded_time = instant(&self.zone, *at).is_some_and(|ts| self.exdates.contains(&ts));
            !excluded_day && !excluded_time
        });
        starts.truncate(usize::from(MAX_INSTANCES_PER_EVENT));
        starts
    }
}

impl Event {
    /// The length of the instance at `start`: its RDATE period's, or the event's.
    fn length_at(&self, start: civil::DateTime) -> Length {
        self.rdates.iter().find(|(at, _)| *at == start).and_then(|(_, l)| *l).unwrap_or(self.length)
    }
}

fn to_chrono(datetime: civil::DateTime) -> Option<chrono::DateTime<rrule::Tz>> {
    let ts = TimeZone::UTC.to_timestamp(datetime).ok()?;
    Some(chrono::DateTime::from_timestamp(ts.as_second(), 0)?.with_timezone(&rrule::Tz::UTC))
}

fn from_chrono(datetime: &chrono::DateTime<rrule::Tz>) -> Option<civil::DateTime> {
    let ts = Timestamp::from_second(datetime.timestamp()).ok()?;
    Some(TimeZone::UTC.to_datetime(ts))
}

/// Expands one RRULE in wall-clock time (as if in UTC, so no zone's DST moves an instance's
/// wall-clock time), between `window_start` and `window_end`.
fn expand_rule(
    rule: &str,
    dtstart: civil::DateTime,
    zone: &TimeZone,
    window_start: civil::DateTime,
    window_end: civil::DateTime,
) -> Vec<civil::DateTime> {
    // UNTIL is read here (it may be UTC while DTSTART is wall-clock) and given to rrule as
    // wall-clock time like DTSTART.
    let mut until = None;
    let parts: Vec<&str> = rule
        .split(';')
        .filter(|part| match part.split_once('=') {
            Some((key, value)) if key.trim().eq_ignore_ascii_case("UNTIL") => {
                until = Some(value.trim().to_owned());
                false
            }
            _ => !part.trim().is_empty(),
        })
        .collect();
    let Ok(unvalidated) = parts.join(";").parse::<rrule::RRule<rrule::Unvalidated>>() else {
        return Vec::new();
    };
    let mut unvalidated = unvalidated;
    if let Some(until) = until {
        let until = match read_time(&until, None, zone) {
            // A date UNTIL includes that whole day.
            Ok(IcalTime::Date(date)) => date.to_datetime(civil::time(23, 59, 59, 0)),
            Ok(time) => time.civil_in(zone),
            Err(_) => return Vec::new(),
        };
        if until < dtstart {
            return Vec::new();
        }
        let Some(until) = to_chrono(until) else { return Vec::new() };
        unvalidated = unvalidated.until(until);
    }
    let (Some(start), Some(after), Some(before)) = (to_chrono(dtstart), to_chrono(window_start), to_chrono(window_end))
    else {
        return Vec::new();
    };
    let Ok(set) = unvalidated.build(start) else { return Vec::new() };
    // Walked by hand rather than with `all`, so the steps before the window count too: a
    // minutely rule from years ago stops after MAX_RULE_STEPS instead of walking to today.
    let mut found = Vec::new();
    for at in (&set).into_iter().take(MAX_RULE_STEPS) {
        if at > before || found.len() >= usize::from(MAX_INSTANCES_PER_EVENT) {
            break;
        }
        if at >= after
            && let Some(at) = from_chrono(&at)
        {
            found.push(at);
        }
    }
    found
}

#[cfg(test)]
mod tests;
