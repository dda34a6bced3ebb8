//! The hosted manage page, `/manage/{token}`: where an attendee sees the booking, picks a new
//! time among live slots, or cancels, without an account and without JavaScript.
//!
//! Everything the page shows is chosen by links and GET forms, so it stays in the URL:
//! `?tz=` the zone times are shown in (default: the attendee's), `?from=` the first of the 14
//! days on screen (never before today), `?day=` the day whose times are listed. The booking's
//! own time is marked as current and never offered. The two forms post to
//! `/manage/{token}/reschedule` and `/manage/{token}/cancel`, which run the same commands as the
//! self-service API and answer with a redirect to `?done=rescheduled|cancelled` (post/redirect/
//! get) or the page again with the outcome in words: a taken time with the nearest free ones as
//! one-click buttons, a cut-off, a missing reason. Invalid, expired, cancelled, declined and
//! finished bookings each get a page of their own. Query values are read leniently: an unknown
//! zone or a bad date falls back with a note, never an error page.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use maud::{Markup, html};
use serde::Deserialize;
use slotd_core::booking::{BookingAction, BookingStatus};
use slotd_core::interval::Interval;
use slotd_store::{Actor, Booking};

use super::layout::page;
use super::words;
use crate::api::manage::{attendee_zone, booking_for_token, manage_view, slots_for_booking};
use crate::app::AppState;
use crate::booking::{self, BookingContext, ChangeInput, cutoff_allows};
use crate::error::{Alternative, ApiError};
use crate::extract::ApiPath;

/// Days shown per page of the day grid.
const PAGE_DAYS: i64 = 14;

/// How far ahead "Later dates" goes at most (the event type's booking window may stop it sooner).
const MAX_AHEAD_DAYS: i64 = 366;

/// Longest echo of an unknown `tz` value in the page's note.
const ECHO_MAX_CHARS: usize = 60;

/// The page's query, read leniently: every value is optional and a bad one is ignored.
#[derive(Debug, Default)]
struct PageQuery {
    tz: Option<String>,
    from: Option<String>,
    day: Option<String>,
    done: Option<String>,
}

impl PageQuery {
    /// Reads a raw query string (the first of repeated keys wins; undecodable bytes are replaced).
    fn parse(raw: Option<&str>) -> PageQuery {
        let mut query = PageQuery::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let slot = match key.as_ref() {
                "tz" => &mut query.tz,
                "from" => &mut query.from,
                "day" => &mut query.day,
                "done" => &mut query.done,
                _ => continue,
            };
            if slot.is_none() && !value.trim().is_empty() {
                *slot = Some(value.trim().to_owned());
            }
        }
        query
    }
}

/// The zone times are shown in, and a note when the asked-for one was unknown.
struct Zone {
    tz: TimeZone,
    name: String,
    unknown: Option<String>,
}

impl Zone {
    fn choose(asked: Option<&str>, booking: &Booking) -> Zone {
        let default = attendee_zone(booking);
        match asked {
            None => Zone { name: words::zone_name(&default), tz: default, unknown: None },
            Some(name) => match slotd_core::zone::time_zone(name) {
                Ok(tz) => Zone { name: words::zone_name(&tz), tz, unknown: None },
                Err(_) => Zone {
                    name: words::zone_name(&default),
                    tz: default,
                    unknown: Some(name.chars().take(ECHO_MAX_CHARS).collect()),
                },
            },
        }
    }
}

/// Builds the page's own URLs; every one carries the chosen zone.
struct Urls<'a> {
    token: &'a str,
    zone: &'a str,
}

impl Urls<'_> {
    fn page(&self, extra: &[(&str, &str)]) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("tz", self.zone);
        for (key, value) in extra {
            query.append_pair(key, value);
        }
        format!("/manage/{}?{}", self.token, query.finish())
    }

    fn base(&self) -> String {
        format!("/manage/{}", self.token)
    }

    fn action(&self, action: BookingAction) -> String {
        format!("/manage/{}/{}", self.token, action.as_str())
    }

    fn ics(&self) -> String {
        format!("/b/{}.ics", self.token)
    }
}

/// What a failed form submission left to say on top of the page, and what it had filled in
/// (the picked time stays selected and its day on screen, the reason stays typed).
struct Notice {
    what: Outcome,
    picked: Option<Timestamp>,
    reason: Option<String>,
}

/// Why the form did not go through.
enum Outcome {
    /// A message in words.
    Error(String),
    /// The picked time was taken meanwhile: the nearest free ones.
    Taken(Vec<Alternative>),
}

/// `GET /manage/{token}`.
pub async fn manage_page(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = PageQuery::parse(raw.as_deref());
    render(&state, &token, &query, None, StatusCode::OK).await
}

/// Loads the booking and renders the page for its state; `notice` comes from a failed form.
async fn render(
    state: &AppState,
    token: &str,
    query: &PageQuery,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let booking = match booking_for_token(state, token).await {
        Ok(booking) => booking,
        Err(e) => return link_problem(&e),
    };
    let context = match booking::context(state, booking).await {
        Ok(context) => context,
        Err(e) => return link_problem(&e),
    };
    let zone = Zone::choose(query.tz.as_deref(), &context.booking);
    let urls = Urls { token, zone: &zone.name };
    let booking = &context.booking;
    let over = booking.interval.end <= Timestamp::now();
    match (booking.status, query.done.as_deref()) {
        (BookingStatus::Cancelled, done) => cancelled_page(&context, &zone, &urls, done == Some("cancelled")),
        (BookingStatus::Rejected, _) => gone_page(
            &context,
            &zone,
            "This booking was declined",
            "The host could not take this booking, so there is nothing to change. You are welcome to book another time.",
        ),
        (_, Some("rescheduled")) if notice.is_none() && !over => rescheduled_page(&context, &zone, &urls),
        _ if over => gone_page(
            &context,
            &zone,
            "This booking is over",
            "It took place already, so it can no longer be changed. To meet again, please book a new time.",
        ),
        _ => manage(state, &context, query, &zone, &urls, notice, status).await,
    }
}

/// The page for a link that opens nothing: invalid, expired, or the database unreachable.
fn link_problem(e: &ApiError) -> Response {
    match e {
        ApiError::NotFound(_) => page(
            StatusCode::NOT_FOUND,
            "This link does not work",
            html! {
                p { "This link does not open a booking. It may have been replaced by a newer link, or copied only in part." }
                p { "Please use the link in the most recent message you received about your booking." }
            },
        ),
        ApiError::LinkExpired(_) => page(
            StatusCode::GONE,
            "This link has expired",
            html! {
                p { "For your security, this link to change your booking worked only for a limited time, and that time is up." }
                p { "Your booking itself is unchanged. Please ask for a new link where you got this one." }
            },
        ),
        ApiError::Unavailable(_) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again in a moment",
            html! { p { "Your booking could not be loaded just now. Nothing was changed. Please reload this page in a moment." } },
        ),
        other => {
            if let ApiError::Internal(cause) = other {
                tracing::error!(%cause, "internal error on the manage page");
            }
            page(
                e.status(),
                "Something went wrong",
                html! { p { "Your booking could not be shown because of a problem on our side. Nothing was changed. Please try again later, or contact your host." } },
            )
        }
    }
}

/// Who the booking is with: "Intro call with Ada and Grace".
fn what(context: &BookingContext) -> String {
    let names: Vec<&str> = context.hosts.iter().map(|h| h.name.as_str()).collect();
    match names.as_slice() {
        [] => context.event_type.title.clone(),
        [one] => format!("{} with {one}", context.event_type.title),
        [rest @ .., last] => format!("{} with {} and {last}", context.event_type.title, rest.join(", ")),
    }
}

/// The booking in a box: what, when (in the chosen zone), the reference.
fn summary(context: &BookingContext, zone: &Zone, heading: &str) -> Markup {
    let booking = &context.booking;
    html! {
        section.card.summary aria-labelledby="summary-heading" {
            h2 #summary-heading { (heading) }
            p { (what(context)) }
            p.when { (words::span(booking.interval, &zone.tz)) }
            p.muted { "Times in " (words::zone_label(&zone.name, &zone.tz, Timestamp::now())) }
            @if booking.status == BookingStatus::Pending {
                p { "Waiting for the host to confirm." }
            }
            p.muted {
                @if let Some(attendee) = booking.attendees.first() { "Booked for " (attendee.name) " · " }
                "Reference " (booking.human_id)
            }
        }
    }
}

/// A final page for a booking that can no longer be changed (declined, over).
fn gone_page(context: &BookingContext, zone: &Zone, title: &str, text: &str) -> Response {
    page(StatusCode::GONE, title, html! { p { (text) } (summary(context, zone, "The booking")) })
}

/// A cancelled booking: "has been cancelled" right after the attendee did it, else "was cancelled".
fn cancelled_page(context: &BookingContext, zone: &Zone, urls: &Urls, just_now: bool) -> Response {
    let (status, title) = match just_now {
        true => (StatusCode::OK, "Your booking has been cancelled"),
        false => (StatusCode::GONE, "This booking was cancelled"),
    };
    page(
        status,
        title,
        html! {
            @if just_now {
                div.notice.ok role="status" { strong { "Done." } "Nothing else is needed from you." }
            } @else {
                p { "It can no longer be changed. To meet after all, please book a new time." }
            }
            (summary(context, zone, "The cancelled booking"))
            p.links { a href=(urls.ics()) { "Remove it from your calendar (.ics)" } }
        },
    )
}

/// After a reschedule: the new time in words in the chosen zone, and the calendar file.
fn rescheduled_page(context: &BookingContext, zone: &Zone, urls: &Urls) -> Response {
    page(
        StatusCode::OK,
        "Your booking has been moved",
        html! {
            div.notice.ok role="status" {
                strong { "Done: the new time is " (words::span(context.booking.interval, &zone.tz)) "." }
                "Times in " (words::zone_label(&zone.name, &zone.tz, Timestamp::now())) "."
            }
            (summary(context, zone, "Your new time"))
            p.links {
                a.button href=(urls.ics()) { "Add the new time to your calendar (.ics)" }
                a href=(urls.page(&[])) { "Back to your booking" }
            }
        },
    )
}

/// Why an attendee may not make `action` now, in words (`None`: allowed).
fn closed_because(context: &BookingContext, action: BookingAction, now: Timestamp) -> Option<String> {
    let booking = &context.booking;
    if booking.status.apply(action).is_err() {
        return Some("This booking can no longer be changed here. Please contact your host.".to_owned());
    }
    cutoff_allows(&context.event_type, booking, action, Actor::Attendee, now).err()?;
    if now >= booking.interval.start {
        return Some("This booking has already started, so it can no longer be changed here.".to_owned());
    }
    let settings = &context.event_type.settings;
    let (reschedule, cancel) = (settings.reschedule_cutoff_minutes, settings.cancel_cutoff_minutes);
    let both_closed = now + SignedDuration::from_mins(i64::from(reschedule.min(cancel))) > booking.interval.start;
    Some(match action {
        _ if both_closed && reschedule == cancel => format!(
            "Changes are closed within {} of the start. To change it now, please contact your host.",
            words::duration(reschedule)
        ),
        BookingAction::Cancel => {
            format!("Cancelling is closed within {} of the start. Please contact your host.", words::duration(cancel))
        }
        _ => format!(
            "Moving the booking is closed within {} of the start. Please contact your host.",
            words::duration(reschedule)
        ),
    })
}

/// The page of a booking that is still open: summary, zone, times, cancel.
async fn manage(
    state: &AppState,
    context: &BookingContext,
    query: &PageQuery,
    zone: &Zone,
    urls: &Urls<'_>,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let now = Timestamp::now();
    let view = manage_view(state, context);
    let reschedule_closed = closed_because(context, BookingAction::Reschedule, now);
    let cancel_closed = closed_because(context, BookingAction::Cancel, now);
    let picked = notice.as_ref().and_then(|n| n.picked);
    let reason = notice.as_ref().and_then(|n| n.reason.clone());
    let times = match (&reschedule_closed, view.can_reschedule) {
        (None, true) => Some(
            times_section(state, context, query, zone, urls, picked, reason, view.reschedule_reason_required).await,
        ),
        _ => None,
    };
    let body = html! {
        @if let Some(asked) = &zone.unknown {
            div.notice.info role="status" {
                "“" (asked) "” is not a time zone we know, so times are shown in " (zone.name) "."
            }
        }
        @if let Some(notice) = &notice {
            @match &notice.what {
                Outcome::Error(text) => div.notice.error role="alert" { (text) },
                Outcome::Taken(alternatives) => (taken_notice(zone, urls, alternatives, notice.picked, notice.reason.as_deref())),
            }
        }
        div.top {
            (summary(context, zone, "Your current time"))
            section.card aria-labelledby="zone-heading" {
                h2 #zone-heading { "Time zone" }
                (zone_form(context, zone, urls, query))
            }
        }
        @if let Some(closed) = &reschedule_closed {
            div.notice.info role="status" { (closed) }
        }
        @if let Some(times) = times { (times) }
        @if let Some(closed) = cancel_closed.as_ref().filter(|c| Some(*c) != reschedule_closed.as_ref()) {
            div.notice.info role="status" { (closed) }
        }
        @if cancel_closed.is_none() && view.can_cancel {
            section.card #cancel aria-label="Cancel" {
                details {
                    summary { "Cancel this booking" }
                    form method="post" action=(urls.action(BookingAction::Cancel)) {
                        input type="hidden" name="tz" value=(zone.name);
                        div.field {
                            label for="cancel-reason" { "Reason (optional)" }
                            textarea #cancel-reason name="reason" rows="2" maxlength="1000" {}
                        }
                        button.danger type="submit" { "Cancel booking" }
                    }
                }
            }
        }
        p.links { a href=(urls.ics()) { "Add to calendar (.ics)" } }
    };
    page(status, "Your booking", body)
}

/// The zone selector: a GET form that keeps the day on screen.
fn zone_form(context: &BookingContext, zone: &Zone, urls: &Urls, query: &PageQuery) -> Markup {
    let now = Timestamp::now();
    let mut suggested: Vec<String> = vec![words::zone_name(&attendee_zone(&context.booking))];
    for host in &context.hosts {
        suggested.push(host.time_zone.clone());
    }
    suggested.push("UTC".to_owned());
    if !suggested.contains(&zone.name) {
        suggested.insert(0, zone.name.clone());
    }
    let mut seen = std::collections::HashSet::new();
    suggested.retain(|name| seen.insert(name.clone()));
    let others: Vec<&str> = words::COMMON_ZONES.iter().copied().filter(|name| !seen.contains(*name)).collect();
    let label = |name: &str| match slotd_core::zone::time_zone(name) {
        Ok(tz) => words::zone_label(name, &tz, now),
        Err(_) => name.to_owned(),
    };
    html! {
        form.zone method="get" action=(urls.base()) {
            label for="tz" { "Show times in" }
            select #tz name="tz" {
                optgroup label="For this booking" {
                    @for name in &suggested {
                        option value=(name) selected[*name == zone.name] { (label(name)) }
                    }
                }
                optgroup label="Other time zones" {
                    @for name in &others {
                        option value=(name) selected[*name == zone.name] { (label(name)) }
                    }
                }
            }
            @if let Some(from) = &query.from { input type="hidden" name="from" value=(from); }
            @if let Some(day) = &query.day { input type="hidden" name="day" value=(day); }
            button.quiet type="submit" { "Show times" }
        }
    }
}

/// "That time was just taken" and the nearest free times as one-click buttons.
fn taken_notice(
    zone: &Zone,
    urls: &Urls,
    offered: &[Alternative],
    picked: Option<Timestamp>,
    reason: Option<&str>,
) -> Markup {
    // `slot_taken` never offers the booking's own start as an alternative.
    html! {
        div.notice.error role="alert" {
            strong { "That time was just taken" }
            @if let Some(picked) = picked {
                "Someone booked " (words::short_when(picked, &zone.tz)) " a moment before you. Your booking is unchanged."
            } @else {
                "Someone booked it a moment before you. Your booking is unchanged."
            }
            @if offered.is_empty() {
                p { "Please pick another time below." }
            } @else {
                p { "The nearest free times (" (zone.name) "), one click moves your booking:" }
                ul.alternatives {
                    @for alternative in offered {
                        li {
                            form method="post" action=(urls.action(BookingAction::Reschedule)) {
                                input type="hidden" name="start" value=(alternative.start.to_string());
                                input type="hidden" name="tz" value=(zone.name);
                                @if let Some(reason) = reason { input type="hidden" name="reason" value=(reason); }
                                button type="submit" { "Move to " (words::short_when(alternative.start, &zone.tz)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The 14 days on screen, the chosen day and the free times per local day.
struct Calendar {
    today: Date,
    from: Date,
    day: Option<Date>,
    by_day: BTreeMap<Date, Vec<Timestamp>>,
}

fn parse_date(value: Option<&str>) -> Option<Date> {
    value.and_then(|v| v.parse::<Date>().ok())
}

fn add_days(date: Date, days: i64) -> Date {
    date.checked_add(days.days()).unwrap_or(date)
}

/// Start of `date` in `zone` (the first instant of the day, DST included).
fn start_of(date: Date, zone: &TimeZone) -> Option<Timestamp> {
    date.to_zoned(zone.clone()).ok().map(|z| z.timestamp())
}

/// The new-time picker: day grid with paging, the chosen day's times, the reason, the button.
#[allow(clippy::too_many_arguments)]
async fn times_section(
    state: &AppState,
    context: &BookingContext,
    query: &PageQuery,
    zone: &Zone,
    urls: &Urls<'_>,
    picked: Option<Timestamp>,
    reason: Option<String>,
    reason_required: bool,
) -> Markup {
    let now = Timestamp::now();
    let booking = &context.booking;
    let today = now.to_zoned(zone.tz.clone()).date();
    let last = add_days(today, MAX_AHEAD_DAYS.min(i64::from(context.event_type.settings.booking_window_days)));
    let asked_day = parse_date(query.day.as_deref()).or(picked.map(|t| t.to_zoned(zone.tz.clone()).date()));
    let asked_day = asked_day.filter(|d| (today..=last).contains(d));
    let mut from = parse_date(query.from.as_deref()).unwrap_or(today).clamp(today, last.max(today));
    if let Some(day) = asked_day
        && !(from..add_days(from, PAGE_DAYS)).contains(&day)
    {
        from = day;
    }
    let until = add_days(from, PAGE_DAYS);
    let window = match (start_of(from, &zone.tz), start_of(until, &zone.tz)) {
        (Some(start), Some(end)) => Interval::new(start.max(now), end),
        _ => None,
    };
    let slots = match window {
        Some(window) => {
            slots_for_booking(state, booking, context.event_type.clone(), window, &zone.tz).await.map(|s| s.slots)
        }
        None => Ok(Vec::new()),
    };
    let slots = match slots {
        Ok(slots) => slots,
        Err(_) => {
            return html! {
                div.notice.error role="alert" { "The free times could not be loaded just now. Please reload this page in a moment." }
            };
        }
    };
    let mut by_day: BTreeMap<Date, Vec<Timestamp>> = BTreeMap::new();
    // `slots_for_booking` never offers the booking's own start; it is drawn as "current" below.
    for slot in &slots {
        by_day.entry(slot.start.to_zoned(zone.tz.clone()).date()).or_default().push(slot.start);
    }
    let current_day = booking.interval.start.to_zoned(zone.tz.clone()).date();
    let on_page = |d: &Date| (from..until).contains(d);
    let day = asked_day
        .filter(on_page)
        .or(Some(current_day).filter(|d| on_page(d) && by_day.contains_key(d)))
        .or(by_day.keys().next().copied());
    let calendar = Calendar { today, from, day, by_day };
    let earlier = (from > today).then(|| add_days(from, -PAGE_DAYS).max(today));
    let later = (until <= last).then_some(until);
    let range = format!("{} – {}", words::day_short(from), words::day_short(add_days(until, -1)));
    html! {
        section.card #reschedule aria-labelledby="reschedule-heading" {
            h2 #reschedule-heading { "Pick a new time" }
            nav.pager aria-label="Dates" {
                @if let Some(earlier) = earlier {
                    a href=(urls.page(&[("from", &earlier.to_string())])) { "← Earlier dates" }
                } @else { span {} }
                span.range { (range) }
                @if let Some(later) = later {
                    a href=(urls.page(&[("from", &later.to_string())])) { "Later dates →" }
                } @else { span {} }
            }
            div.picker {
                (day_grid(&calendar, urls))
                (time_form(&calendar, booking, zone, urls, picked, reason.as_deref(), reason_required))
            }
        }
    }
}

/// The 14 days as buttons with their number of free times; days without times are disabled.
fn day_grid(calendar: &Calendar, urls: &Urls) -> Markup {
    let from = calendar.from.to_string();
    html! {
        nav aria-label="Days" {
            ul.days {
                @for offset in 0..PAGE_DAYS {
                    @let date = add_days(calendar.from, offset);
                    @let count = calendar.by_day.get(&date).map_or(0, Vec::len);
                    @let chosen = calendar.day == Some(date);
                    li {
                        @if count > 0 {
                            a.day href=(urls.page(&[("from", &from), ("day", &date.to_string())]))
                                aria-current=[chosen.then_some("date")]
                                aria-label=(format!("{}, {} free {}", words::day_long(date), count, if count == 1 { "time" } else { "times" })) {
                                span.dow { (date.strftime("%a")) }
                                span.date { (date.strftime("%-d %b")) }
                                span.count { (count) (if count == 1 { " time" } else { " times" }) }
                            }
                        } @else {
                            span.day.off aria-disabled="true" aria-label=(format!("{}, no free times", words::day_long(date))) {
                                span.dow { (date.strftime("%a")) }
                                span.date { (date.strftime("%-d %b")) }
                                span.count { @if date == calendar.today { "today: none" } @else { "none" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The chosen day's times as radio chips (the current time marked, not offered), the reason and
/// the submit button.
fn time_form(
    calendar: &Calendar,
    booking: &Booking,
    zone: &Zone,
    urls: &Urls,
    picked: Option<Timestamp>,
    reason: Option<&str>,
    reason_required: bool,
) -> Markup {
    let Some(day) = calendar.day else {
        return html! {
            div { p { "No free times on these dates." } p.muted { "Try later dates, or another time zone." } }
        };
    };
    let times = calendar.by_day.get(&day).cloned().unwrap_or_default();
    let current = booking.interval.start;
    let current_here = current.to_zoned(zone.tz.clone()).date() == day;
    let mut chips: Vec<(Timestamp, bool)> = times.iter().map(|t| (*t, false)).collect();
    if current_here {
        chips.push((current, true));
        chips.sort();
    }
    let first = times.first().copied();
    html! {
        form method="post" action=(urls.action(BookingAction::Reschedule)) {
            input type="hidden" name="tz" value=(zone.name);
            fieldset {
                legend { "Times on " (words::day_long(day)) " (" (zone.name) ")" }
                @if times.is_empty() {
                    p { "No free times on this day. Please pick another day." }
                }
                div.chips {
                    @for (start, is_current) in &chips {
                        @if *is_current {
                            div.chip.current title="Your booking's current time" {
                                span { (words::clock(*start, &zone.tz)) small { "your current time" } }
                            }
                        } @else {
                            label.chip {
                                input type="radio" name="start" value=(start.to_string()) required
                                    checked[picked == Some(*start)];
                                span { (words::clock(*start, &zone.tz)) }
                            }
                        }
                    }
                }
            }
            @if first.is_some() {
                div.field {
                    label for="reason" {
                        "Reason " @if reason_required { "(required)" } @else { "(optional)" }
                    }
                    input #reason type="text" name="reason" maxlength="1000" required[reason_required] value=[reason];
                }
                button type="submit" { "Move my booking to this time" }
            }
        }
    }
}

/// The fields of both forms (`tz` only carries the zone through to the next page).
#[derive(Debug, Default, Deserialize)]
struct FormFields {
    start: Option<String>,
    reason: Option<String>,
    tz: Option<String>,
}

/// Words for an attendee instead of a problem code.
fn in_words(e: &ApiError) -> String {
    match e {
        ApiError::Validation(errors) => {
            let details: Vec<String> = errors.iter().map(|e| sentence(&e.detail)).collect();
            details.join(" ")
        }
        ApiError::InvalidTransition(_) | ApiError::Gone(_) => "This booking can no longer be changed.".to_owned(),
        ApiError::Conflict(_) => "The booking changed at the same moment. Please try again.".to_owned(),
        ApiError::CalendarUnavailable { .. } => "The host's calendar could not be checked just now, so this time \
            could not be confirmed. Nothing was changed. Please try again in a moment."
            .to_owned(),
        _ => "Something went wrong on our side, and nothing was changed. Please try again in a moment.".to_owned(),
    }
}

/// "the slot is free" → "The slot is free."
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let Some(first) = chars.next() else { return String::new() };
    let mut sentence: String = first.to_uppercase().chain(chars).collect();
    if !sentence.ends_with('.') {
        sentence.push('.');
    }
    sentence
}

async fn form_command(state: &AppState, token: &str, body: &Bytes, action: BookingAction) -> Response {
    let fields: Option<FormFields> = serde_urlencoded::from_bytes(body).ok();
    let tz = fields.as_ref().and_then(|f| f.tz.clone()).filter(|tz| !tz.trim().is_empty());
    let query = PageQuery { tz, ..PageQuery::default() };
    let Some(fields) = fields else {
        let notice = Notice {
            what: Outcome::Error("The form could not be read. Please try again.".into()),
            picked: None,
            reason: None,
        };
        return render(state, token, &query, Some(notice), StatusCode::BAD_REQUEST).await;
    };
    let booking = match booking_for_token(state, token).await {
        Ok(booking) => booking,
        Err(e) => return link_problem(&e),
    };
    let reason = fields.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    let picked = fields.start.as_deref().and_then(crate::extract::instant::parse);
    let refused = |text: String, status: StatusCode| {
        let notice = Notice { what: Outcome::Error(text), picked, reason: reason.clone() };
        render(state, token, &query, Some(notice), status)
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let max = crate::booking::validate::REASON_MAX_CHARS;
    if reason.as_ref().is_some_and(|r| r.chars().count() > max) {
        return refused(format!("The reason is too long: please keep it to {max} characters."), unprocessable).await;
    }
    let start = match (action, picked) {
        (BookingAction::Reschedule, Some(start)) if start == booking.interval.start => {
            return refused("That is already your booking's time. Please pick another one.".into(), unprocessable)
                .await;
        }
        (BookingAction::Reschedule, None) => return refused("Please pick a new time.".into(), unprocessable).await,
        (BookingAction::Reschedule, start) => start,
        _ => None,
    };
    if action == BookingAction::Reschedule && reason.is_none() {
        let required =
            booking::event_type_of(state, &booking).await.is_ok_and(|e| e.settings.reschedule_reason_required);
        if required {
            let text = "Please give a reason for moving the booking: the host asks for one.";
            return refused(text.into(), unprocessable).await;
        }
    }
    let input =
        ChangeInput { action, by: Actor::Attendee, reason: reason.clone(), start, link_token: Some(token.to_owned()) };
    match booking::change(state, booking.organization_id, booking.id, input, None).await {
        Ok(_) => {
            let mut done = form_urlencoded::Serializer::new(String::new());
            done.append_pair("done", action.past_tense());
            if let Some(tz) = &query.tz {
                done.append_pair("tz", tz);
            }
            Redirect::to(&format!("/manage/{token}?{}", done.finish())).into_response()
        }
        Err(ApiError::SlotTaken { alternatives, .. }) => {
            let notice = Notice { what: Outcome::Taken(alternatives), picked, reason: reason.clone() };
            render(state, token, &query, Some(notice), StatusCode::CONFLICT).await
        }
        Err(e @ ApiError::LinkExpired(_)) => link_problem(&e),
        Err(e) => refused(in_words(&e), e.status()).await,
    }
}

/// `POST /manage/{token}/reschedule` (form: `start`, `reason`, `tz`).
pub async fn reschedule_form(State(state): State<AppState>, ApiPath(token): ApiPath<String>, body: Bytes) -> Response {
    form_command(&state, &token, &body, BookingAction::Reschedule).await
}

/// `POST /manage/{token}/cancel` (form: `reason`, `tz`).
pub async fn cancel_form(State(state): State<AppState>, ApiPath(token): ApiPath<String>, body: Bytes) -> Response {
    form_command(&state, &token, &body, BookingAction::Cancel).await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn text_of(response: Response) -> (StatusCode, String) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn an_expired_link_says_so_in_words_with_410_and_an_invalid_one_with_404() {
        let (status, html) = text_of(link_problem(&ApiError::LinkExpired("expired at …".into()))).await;
        assert_eq!(status, StatusCode::GONE);
        assert!(html.contains("<title>This link has expired</title>") && html.contains("ask for a new link"), "{html}");
        assert!(!html.contains("link_expired") && !html.contains("expired at"), "words, not codes: {html}");
        let (status, html) = text_of(link_problem(&ApiError::NotFound("no".into()))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(html.contains("This link does not work"), "{html}");
        let (status, html) = text_of(link_problem(&ApiError::Unavailable("pool timed out".into()))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(html.contains("Nothing was changed") && !html.contains("pool timed out"), "{html}");
    }

    #[test]
    fn the_page_query_is_read_leniently() {
        let query = PageQuery::parse(Some("tz=Europe%2FParis&day=2027-01-05&tz=UTC&from=&x=1&done=rescheduled"));
        assert_eq!(query.tz.as_deref(), Some("Europe/Paris"), "the first value wins");
        assert_eq!(query.day.as_deref(), Some("2027-01-05"));
        assert_eq!(query.from, None, "an empty value is no value");
        assert_eq!(query.done.as_deref(), Some("rescheduled"));
        let query = PageQuery::parse(Some("%FF%FE=%&tz=%E2%28"));
        assert!(query.tz.is_some(), "undecodable bytes do not fail the page");
        assert!(PageQuery::parse(None).tz.is_none());
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(sentence("the start is not free"), "The start is not free.");
        assert_eq!(sentence("Done."), "Done.");
        assert_eq!(sentence(""), "");
    }
}
