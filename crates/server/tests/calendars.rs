//! Calendar connections end to end against a real CalDAV server (Radicale, from PyPI, started per
//! test on a free loopback port with temporary storage) and an ICS feed served on loopback:
//! busy time removes slots, bookings are written back (created, moved, deleted), a slot made busy
//! after it was listed answers 409 at commit and writes nothing, a calendar that is down turns
//! into a listing warning and a 503 at commit (unless set to be ignored), concurrent commits
//! still book a start once, and bad input answers 422 and stores nothing. Every test runs on
//! SQLite and on PostgreSQL.

#[macro_use]
mod common;
#[path = "../../calendar/tests/common/radicale.rs"]
mod radicale;

use std::time::{Duration, Instant};

use common::receiver::{Receiver, Reply};
use common::{AppOptions, Backend, TestApp, WorkerOptions, expect_problem, spawn_app, spawn_app_with};
use radicale::{PASSWORD, Radicale, USER};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    spawn = live_app;
    a_busy_event_in_radicale_removes_its_slots_and_bookings_are_written_back_moved_and_deleted,
    with_radicale_stopped_listing_warns_and_commit_answers_503_unless_the_connection_is_ignored,
    concurrent_commits_with_a_live_calendar_check_book_a_start_once,
    an_ics_feed_connection_blocks_its_busy_times_and_masks_its_url,
    connections_are_listed_read_and_deleted_within_their_host_and_organization,
    bad_connection_input_answers_422_naming_the_field_and_stores_nothing,
    round_robin_books_the_host_whose_calendar_can_be_read_when_another_ones_cannot,
    deleting_a_host_deletes_its_connections_and_their_credentials,
    failing_write_backs_show_on_the_connection_and_are_never_disabled,
    a_connections_write_back_and_on_error_are_changed_with_patch,
);

mod cached {
    use super::*;

    on_both_backends!(
        spawn = cached_app;
        a_slot_listed_free_then_made_busy_in_radicale_answers_409_at_commit_and_writes_nothing,
        a_slow_calendar_makes_a_listing_warn_after_5_s_and_its_late_answer_serves_the_next_listings,
    );
}

mod refreshed {
    use super::*;

    async fn two_second_app(backend: Backend) -> TestApp {
        app_with_ttl(backend, Duration::from_secs(2)).await
    }

    on_both_backends!(
        spawn = two_second_app;
        past_its_ttl_a_listing_is_served_the_previous_copy_while_a_background_read_refreshes_it,
    );
}

mod restarted {
    use super::*;

    on_both_backends!(
        spawn = app_without_worker;
        a_booking_committed_while_no_worker_runs_is_written_back_when_one_starts,
    );
}

mod guarded {
    use super::*;

    on_both_backends!(calendar_targets_on_private_addresses_are_refused_before_any_connection,);
}

/// A Monday far ahead: hosts in UTC work 09:00–17:00.
const DAY: &str = "2027-03-01";
const WAIT: Duration = Duration::from_secs(15);

/// Loopback calendars allowed, a worker for write-back, and no busy-time cache (every listing
/// reads the calendars), so a test sees each change at once.
async fn live_app(backend: Backend) -> TestApp {
    app_with_ttl(backend, Duration::ZERO).await
}

/// As [`live_app`], with slotd's default cache of 60 s.
async fn cached_app(backend: Backend) -> TestApp {
    app_with_ttl(backend, Duration::from_secs(60)).await
}

async fn app_with_ttl(backend: Backend, ttl: Duration) -> TestApp {
    spawn_app_with(
        backend,
        AppOptions {
            allow_private_webhooks: true,
            worker: Some(WorkerOptions::loopback("0,100ms,200ms")),
            calendars: Some(slotd::calendars::CalendarSettings { cache_ttl: ttl, ..Default::default() }),
            ..Default::default()
        },
    )
    .await
}

/// As [`live_app`], with no delivery worker in the app's process (the test starts one).
async fn app_without_worker(backend: Backend) -> TestApp {
    spawn_app_with(
        backend,
        AppOptions {
            allow_private_webhooks: true,
            calendars: Some(slotd::calendars::CalendarSettings { cache_ttl: Duration::ZERO, ..Default::default() }),
            ..Default::default()
        },
    )
    .await
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("no id in {value}")).to_owned()
}

fn at(time: &str) -> String {
    format!("{DAY}T{time}:00Z")
}

/// A UTC office host and a 60-minute event type on a 30-minute grid; answers (host, event type).
async fn bookable(app: &TestApp, name: &str) -> (String, String) {
    let host = app.office_host(name, "UTC").await;
    let event_type = app
        .expect(
            Method::POST,
            "/v1/event-types",
            Some(json!({ "slug": format!("meet-{}", name.to_lowercase()), "title": "Meeting", "duration_minutes": 60,
                         "slot_interval_minutes": 30, "booking_window_days": 3650, "hosts": [host] })),
            201,
        )
        .await;
    (host, id(&event_type))
}

async fn slots(app: &TestApp, event_type: &str) -> Value {
    let path = format!("/v1/slots?event_type_id={event_type}&start={DAY}T00:00:00Z&end={DAY}T23:59:59Z");
    app.expect(Method::GET, &path, None, 200).await
}

/// The day's listed starts as `HH:MM`.
async fn starts(app: &TestApp, event_type: &str) -> Vec<String> {
    let listed = slots(app, event_type).await;
    assert_eq!(listed["warnings"], json!([]), "{listed}");
    times(&listed)
}

fn times(listed: &Value) -> Vec<String> {
    listed["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap()[11..16].to_owned()).collect()
}

/// Every start from 09:00 to 16:00 except `except`.
fn day_except(except: &[&str]) -> Vec<String> {
    (0..15).map(|n| format!("{:02}:{:02}", 9 + n / 2, 30 * (n % 2))).filter(|t| !except.contains(&t.as_str())).collect()
}

fn booking_body(event_type: &str, time: &str) -> Value {
    json!({ "event_type_id": event_type, "start": at(time),
            "attendee": { "name": "Grace Hopper", "email": "grace@example.com", "time_zone": "UTC" } })
}

/// A raw request to Radicale as the test user (the test's own hands, not slotd's).
async fn dav(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .basic_auth(USER, Some(PASSWORD));
    if method == "PROPFIND" {
        request = request.header("Depth", "1");
    }
    if let Some(body) = body {
        let kind = if method == "MKCALENDAR" { "application/xml" } else { "text/calendar; charset=utf-8" };
        request = request.header("Content-Type", kind).body(body.to_owned());
    }
    let response = request.send().await.expect("Radicale answers");
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Makes the test user's calendar `name` in Radicale; answers its URL.
async fn calendar(radicale: &Radicale, name: &str) -> String {
    assert_eq!(dav("PROPFIND", &format!("{}{USER}/", radicale.url()), None).await.0, 207);
    let url = format!("{}{USER}/{name}/", radicale.url());
    let body = r#"<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop><C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set></D:prop></D:set>
</C:mkcalendar>"#;
    assert_eq!(dav("MKCALENDAR", &url, Some(body)).await.0, 201);
    url
}

/// An event made by someone else in the calendar (busy unless `transparent`).
async fn put_busy(calendar: &str, uid: &str, from: &str, to: &str) {
    let compact = |t: &str| format!("{}T{}00Z", DAY.replace('-', ""), t.replace(':', ""));
    let ics = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20270101T000000Z\r\n\
         DTSTART:{}\r\nDTEND:{}\r\nSUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        compact(from),
        compact(to)
    );
    let (status, _) = dav("PUT", &format!("{calendar}{uid}.ics"), Some(&ics)).await;
    assert!(status == 201 || status == 204, "PUT busy event: {status}");
}

/// Connects Radicale's calendar to `host` from the server's root address (discovery finds it).
async fn connect_caldav(app: &TestApp, host: &str, radicale: &Radicale, extra: Value) -> Value {
    let mut body = json!({ "kind": "caldav", "url": radicale.url(), "username": USER, "password": PASSWORD });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    app.expect(Method::POST, &format!("/v1/hosts/{host}/calendars"), Some(body), 201).await
}

/// How many events slotd wrote are in a PROPFIND listing (hrefs may encode the `@`).
fn slotd_events(listing: &str) -> usize {
    listing.matches("@slotd.ics").count() + listing.matches("%40slotd.ics").count()
}

/// The event slotd wrote for `booking`, or None once it is gone.
async fn written_event(calendar: &str, booking: &str) -> Option<String> {
    let (status, body) = dav("GET", &format!("{calendar}{booking}@slotd.ics"), None).await;
    match status {
        200 => Some(body),
        404 => None,
        other => panic!("GET event: {other} {body}"),
    }
}

/// Waits until `check` holds for the event slotd wrote for `booking`.
async fn wait_for_event(
    calendar: &str,
    booking: &str,
    what: &str,
    check: impl Fn(Option<&str>) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let event = written_event(calendar, booking).await;
        if check(event.as_deref()) {
            return event;
        }
        assert!(Instant::now() < deadline, "{what}; the calendar holds {event:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_busy_event_in_radicale_removes_its_slots_and_bookings_are_written_back_moved_and_deleted(app: &TestApp) {
    let Some(radicale) = Radicale::start() else { return };
    let work = calendar(&radicale, "work").await;
    let (host, event_type) = bookable(app, "Ada").await;
    let connection = connect_caldav(app, &host, &radicale, json!({ "write_back": true })).await;
    assert_eq!(connection["kind"], "caldav");
    assert_eq!(connection["url"], work, "the calendar is discovered from the server's root");
    assert_eq!(connection["status"], "ok");
    assert_eq!(connection["write_back"], true);
    assert_eq!(connection["on_error"], "fail");
    assert!(connection["last_synced_at"].is_string() && connection["last_error"].is_null(), "{connection}");
    assert!(!connection.to_string().contains(PASSWORD), "the password is never shown: {connection}");
    assert_eq!(starts(app, &event_type).await, day_except(&[]));

    // Someone else's event 10:00–11:00: starts whose hour overlaps it are gone.
    put_busy(&work, "dentist", "10:00", "11:00").await;
    assert_eq!(starts(app, &event_type).await, day_except(&["09:30", "10:00", "10:30"]));

    // A booking at 14:00 is written into the calendar under its stable UID.
    let booking = app.expect(Method::POST, "/v1/bookings", Some(booking_body(&event_type, "14:00")), 201).await;
    let booking_id = id(&booking);
    let event =
        wait_for_event(&work, &booking_id, "the booking's event was not written", |e| e.is_some()).await.unwrap();
    assert!(event.contains(&format!("UID:{booking_id}@slotd")), "{event}");
    assert!(event.contains("DTSTART:20270301T140000Z") && event.contains("DTEND:20270301T150000Z"), "{event}");
    assert!(event.contains("Grace Hopper"), "{event}");
    assert!(!event.contains("/manage/"), "no manage link in the calendar: {event}");
    // slotd's own event is not busy time a second time: only the booking's hour is gone.
    assert_eq!(starts(app, &event_type).await, day_except(&["09:30", "10:00", "10:30", "13:30", "14:00", "14:30"]));

    // Moving it half an hour overlaps its own event, which never blocks it; the event follows.
    let path = format!("/v1/bookings/{booking_id}/reschedule");
    app.expect(Method::POST, &path, Some(json!({ "start": at("14:30") })), 200).await;
    wait_for_event(&work, &booking_id, "the event did not move", |e| {
        e.is_some_and(|e| e.contains("DTSTART:20270301T143000Z"))
    })
    .await;
    let (status, listing) = dav("PROPFIND", &work, None).await;
    assert_eq!(status, 207);
    assert_eq!(slotd_events(&listing), 1, "one event per booking, however often it is written");

    // A cancel deletes it.
    app.expect(Method::POST, &format!("/v1/bookings/{booking_id}/cancel"), Some(json!({})), 200).await;
    wait_for_event(&work, &booking_id, "the event was not deleted", |e| e.is_none()).await;
    assert_eq!(starts(app, &event_type).await, day_except(&["09:30", "10:00", "10:30"]));

    // Every write is in the connection's attempt log, succeeded.
    let cid = id(&connection);
    let log =
        app.expect(Method::GET, &format!("/v1/hosts/{host}/calendars/{cid}/deliveries?limit=100"), None, 200).await;
    let attempts = log["data"].as_array().unwrap();
    assert!(attempts.len() >= 3, "{log}");
    assert!(attempts.iter().all(|a| a["status"] == "succeeded"), "{log}");
}

async fn a_slot_listed_free_then_made_busy_in_radicale_answers_409_at_commit_and_writes_nothing(app: &TestApp) {
    let Some(radicale) = Radicale::start() else { return };
    let work = calendar(&radicale, "work").await;
    let (host, event_type) = bookable(app, "Ada").await;
    connect_caldav(app, &host, &radicale, json!({ "write_back": true })).await;
    assert!(starts(app, &event_type).await.contains(&"10:00".to_owned()));

    // Busy in the calendar now; the listing still comes from the cache (60 s) …
    put_busy(&work, "meeting", "10:00", "11:00").await;
    assert!(starts(app, &event_type).await.contains(&"10:00".to_owned()), "listings read the cache");

    // … but the commit reads the calendar live: 409 with alternatives, nothing written.
    let response = app.call(Method::POST, "/v1/bookings", Some(booking_body(&event_type, "10:00"))).await;
    let problem = expect_problem(response, 409, "slot_taken", None).await;
    let alternatives: Vec<&str> =
        problem["alternatives"].as_array().unwrap().iter().map(|a| a["start"].as_str().unwrap()).collect();
    assert!(!alternatives.is_empty(), "{problem}");
    for busy in [at("09:30"), at("10:00"), at("10:30")] {
        assert!(!alternatives.contains(&busy.as_str()), "{busy} is busy in the calendar: {problem}");
    }
    let bookings = app.expect(Method::GET, "/v1/bookings", None, 200).await;
    assert_eq!(bookings["data"], json!([]), "nothing was booked");
    let events = app.expect(Method::GET, "/v1/events", None, 200).await;
    assert!(events["data"].as_array().unwrap().iter().all(|e| !e["type"].as_str().unwrap().starts_with("booking.")));
    let (_, listing) = dav("PROPFIND", &work, None).await;
    assert_eq!(slotd_events(&listing), 0, "no event was written: {listing}");
    // The live read disagreed with the cache, so the cache was dropped: the next listing is right.
    assert_eq!(starts(app, &event_type).await, day_except(&["09:30", "10:00", "10:30"]));
}

async fn with_radicale_stopped_listing_warns_and_commit_answers_503_unless_the_connection_is_ignored(app: &TestApp) {
    let Some(mut radicale) = Radicale::start() else { return };
    calendar(&radicale, "work").await;
    let (strict_host, strict_type) = bookable(app, "Ada").await;
    let (lenient_host, lenient_type) = bookable(app, "Bob").await;
    let strict = connect_caldav(app, &strict_host, &radicale, json!({})).await;
    let lenient = connect_caldav(app, &lenient_host, &radicale, json!({ "on_error": "ignore" })).await;
    assert_eq!(lenient["on_error"], "ignore");
    let booked = app.expect(Method::POST, "/v1/bookings", Some(booking_body(&strict_type, "15:00")), 201).await;
    let manage_url = booked["links"]["manage"].as_str().unwrap().to_owned();
    let token = manage_url.rsplit('/').next().unwrap().to_owned();
    radicale.stop();

    // The listing goes on without the calendar and names it.
    let listed = slots(app, &strict_type).await;
    assert_eq!(times(&listed), day_except(&["14:30", "15:00", "15:30"]), "only the booking blocks");
    let warnings = listed["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{listed}");
    assert_eq!(warnings[0]["calendar_id"], strict["id"]);
    assert!(warnings[0]["detail"].as_str().unwrap().contains("could not be reached"), "{listed}");

    // The commit cannot confirm the time: 503 calendar_unavailable, with Retry-After, nothing written.
    let response = app.call(Method::POST, "/v1/bookings", Some(booking_body(&strict_type, "10:00"))).await;
    assert!(response.headers().get("retry-after").is_some(), "a 503 says when to try again");
    let problem = expect_problem(response, 503, "calendar_unavailable", None).await;
    assert_eq!(problem["calendar_id"], strict["id"]);
    let bookings = app.expect(Method::GET, "/v1/bookings", None, 200).await;
    assert_eq!(bookings["data"].as_array().unwrap().len(), 1, "only the booking made before: {bookings}");

    // The attendee's own routes too: the manage API and the hosted page refuse to move it.
    let response = app
        .client
        .post(format!("{}/v1/manage/{token}/reschedule", app.base))
        .json(&json!({ "start": at("11:00") }))
        .send()
        .await
        .unwrap();
    expect_problem(response, 503, "calendar_unavailable", None).await;
    let response = app
        .client
        .post(format!("{}/manage/{token}/reschedule", app.base))
        .form(&[("start", at("11:00"))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let page = response.text().await.unwrap();
    assert!(page.contains("calendar could not be checked"), "{page}");
    let unchanged = app.expect(Method::GET, &format!("/v1/bookings/{}", id(&booked)), None, 200).await;
    assert_eq!(unchanged["starts_at"], at("15:00"), "{unchanged}");

    // The connection shows what happened (recorded beside the request, so it may take a moment).
    let path = format!("/v1/hosts/{strict_host}/calendars/{}", id(&strict));
    let deadline = Instant::now() + WAIT;
    let shown = loop {
        let shown = app.expect(Method::GET, &path, None, 200).await;
        if shown["status"] == "error" || Instant::now() > deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(shown["status"], "error", "{shown}");
    assert!(shown["last_error"].as_str().is_some_and(|e| e.contains("could not be reached")), "{shown}");
    assert!(shown["last_synced_at"].is_string(), "the last good read is kept: {shown}");

    // A connection set to be ignored lets the commit go on (and its listing still warns).
    assert_eq!(slots(app, &lenient_type).await["warnings"][0]["calendar_id"], lenient["id"]);
    app.expect(Method::POST, "/v1/bookings", Some(booking_body(&lenient_type, "10:00")), 201).await;
}

async fn concurrent_commits_with_a_live_calendar_check_book_a_start_once(app: &TestApp) {
    let Some(radicale) = Radicale::start() else { return };
    calendar(&radicale, "work").await;
    let (host, event_type) = bookable(app, "Ada").await;
    connect_caldav(app, &host, &radicale, json!({ "write_back": true })).await;
    let attempts = (0..8).map(|_| app.call(Method::POST, "/v1/bookings", Some(booking_body(&event_type, "11:00"))));
    let statuses: Vec<u16> =
        futures_util::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    let bookings = app.expect(Method::GET, "/v1/bookings", None, 200).await;
    assert_eq!(bookings["data"].as_array().unwrap().len(), 1);
}

const FEED: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VEVENT\r\nUID:standup\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270222T090000Z\r\nDTEND:20270222T093000Z\r\n\
RRULE:FREQ=WEEKLY;BYDAY=MO\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:lunch\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270301T120000Z\r\nDTEND:20270301T130000Z\r\n\
TRANSP:TRANSPARENT\r\nSUMMARY:Lunch (free)\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

async fn an_ics_feed_connection_blocks_its_busy_times_and_masks_its_url(app: &TestApp) {
    let feed = Receiver::scripted(|_| Reply {
        status: 200,
        headers: vec![("content-type", "text/calendar".to_owned())],
        body: FEED.to_owned(),
        delay: Duration::ZERO,
    })
    .await;
    let (host, event_type) = bookable(app, "Ada").await;
    let url = format!("http://127.0.0.1:{}/private-7f3a9c2e51/basic.ics", feed.port);
    let connection = app
        .expect(Method::POST, &format!("/v1/hosts/{host}/calendars"), Some(json!({ "kind": "ics", "url": url })), 201)
        .await;
    assert_eq!(connection["kind"], "ics");
    assert!(!connection.to_string().contains("7f3a9c2e51"), "a feed's secret address is masked: {connection}");
    // The weekly 09:00 standup blocks 09:00 (and 08:30, outside hours); the transparent lunch does not.
    assert_eq!(starts(app, &event_type).await, day_except(&["09:00"]));
}

async fn connections_are_listed_read_and_deleted_within_their_host_and_organization(app: &TestApp) {
    let Some(radicale) = Radicale::start() else { return };
    let work = calendar(&radicale, "work").await;
    let (host, event_type) = bookable(app, "Ada").await;
    let (other_host, _) = bookable(app, "Bob").await;
    let connection = connect_caldav(app, &host, &radicale, json!({})).await;
    let cid = id(&connection);
    put_busy(&work, "busy", "10:00", "11:00").await;

    let list = app.expect(Method::GET, &format!("/v1/hosts/{host}/calendars"), None, 200).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], connection["id"]);
    assert_eq!(
        app.expect(Method::GET, &format!("/v1/hosts/{other_host}/calendars"), None, 200).await["data"],
        json!([])
    );
    // Another host's path, another organization, a bad id: 404 as if it did not exist.
    let response = app.call(Method::GET, &format!("/v1/hosts/{other_host}/calendars/{cid}"), None).await;
    expect_problem(response, 404, "not_found", None).await;
    let stranger = app.other_org_key().await;
    for (method, path) in [
        (Method::GET, format!("/v1/hosts/{host}/calendars")),
        (Method::GET, format!("/v1/hosts/{host}/calendars/{cid}")),
        (Method::DELETE, format!("/v1/hosts/{host}/calendars/{cid}")),
        (Method::POST, format!("/v1/hosts/{host}/calendars")),
    ] {
        let body = (method == Method::POST).then(|| json!({ "kind": "ics", "url": "http://127.0.0.1:9/x.ics" }));
        let response = app.call_as(&stranger, method.clone(), &path, body).await;
        expect_problem(response, 404, "not_found", None).await;
    }
    let response = app.call(Method::GET, &format!("/v1/hosts/{host}/calendars/not-a-uuid"), None).await;
    expect_problem(response, 404, "not_found", None).await;
    assert_eq!(starts(app, &event_type).await, day_except(&["09:30", "10:00", "10:30"]));

    // Deleted: its busy time stops counting at once.
    app.expect(Method::DELETE, &format!("/v1/hosts/{host}/calendars/{cid}"), None, 204).await;
    assert_eq!(starts(app, &event_type).await, day_except(&[]));
    let response = app.call(Method::DELETE, &format!("/v1/hosts/{host}/calendars/{cid}"), None).await;
    expect_problem(response, 404, "not_found", None).await;
    assert_eq!(app.expect(Method::GET, &format!("/v1/hosts/{host}/calendars"), None, 200).await["data"], json!([]));
}

async fn bad_connection_input_answers_422_naming_the_field_and_stores_nothing(app: &TestApp) {
    let Some(radicale) = Radicale::start() else { return };
    calendar(&radicale, "work").await;
    let (host, _) = bookable(app, "Ada").await;
    let path = format!("/v1/hosts/{host}/calendars");
    let root = radicale.url();
    let cases = [
        (json!({ "url": root }), "/kind"),
        (json!({ "kind": "exchange", "url": root }), "/kind"),
        (json!({ "kind": "caldav", "url": root, "password": PASSWORD }), "/username"),
        (json!({ "kind": "caldav", "url": root, "username": USER }), "/password"),
        (json!({ "kind": "caldav", "username": USER, "password": PASSWORD }), "/url"),
        (json!({ "kind": "caldav", "url": "ftp://127.0.0.1/x", "username": USER, "password": PASSWORD }), "/url"),
        (json!({ "kind": "caldav", "url": "not a url", "username": USER, "password": PASSWORD }), "/url"),
        (json!({ "kind": "caldav", "url": root, "username": USER, "password": "wrong" }), "/url"),
        (
            json!({ "kind": "caldav", "url": root, "username": USER, "password": PASSWORD, "on_error": "retry" }),
            "/on_error",
        ),
        (
            json!({ "kind": "caldav", "url": root, "username": USER, "password": PASSWORD, "refresh_token": "x" }),
            "/refresh_token",
        ),
        (json!({ "kind": "ics", "url": "http://127.0.0.1:9/feed.ics", "write_back": true }), "/write_back"),
        (json!({ "kind": "ics", "url": "" }), "/url"),
        (json!({ "kind": "ics", "url": "http://127.0.0.1:9/feed.ics" }), "/url"),
        (json!({ "kind": "google", "refresh_token": "x", "client_id": "id" }), "/client_secret"),
        (json!({ "kind": "google", "refresh_token": "x", "url": root }), "/url"),
    ];
    for (body, pointer) in cases {
        let response = app.call(Method::POST, &path, Some(body.clone())).await;
        let problem = expect_problem(response, 422, "validation_failed", Some(pointer)).await;
        assert!(!problem.to_string().contains(PASSWORD), "{problem}");
    }
    // Unknown fields, wrong types and non-JSON are refused too.
    let response =
        app.call(Method::POST, &path, Some(json!({ "kind": "ics", "url": "http://127.0.0.1:9/a", "colour": 1 }))).await;
    assert_eq!(response.status().as_u16(), 422);
    let response = app.call(Method::POST, &path, Some(json!({ "kind": "caldav", "write_back": "yes" }))).await;
    assert_eq!(response.status().as_u16(), 422);
    let response = app.call_raw(Method::POST, &path, "{ not json").await;
    assert_eq!(response.status().as_u16(), 400);
    // An unknown host: 404.
    let response = app
        .call(
            Method::POST,
            "/v1/hosts/00000000-0000-7000-8000-000000000000/calendars",
            Some(json!({ "kind": "ics", "url": root })),
        )
        .await;
    expect_problem(response, 404, "not_found", None).await;

    assert_eq!(app.expect(Method::GET, &path, None, 200).await["data"], json!([]), "nothing was stored");
}

/// An app that refuses private targets (the SSRF guard on), without a worker.
async fn calendar_targets_on_private_addresses_are_refused_before_any_connection(app: &TestApp) {
    let (host, _) = bookable(app, "Ada").await;
    let path = format!("/v1/hosts/{host}/calendars");
    // The tests' resolver maps these names to loopback, private and metadata addresses; the guard
    // refuses on the resolved address, before any connection (nothing listens there anyway).
    for url in [
        "http://127.0.0.1:9/dav/",
        "http://loopback.example.com/dav/",
        "http://internal.example.com/dav/",
        "http://metadata.example.com/latest/",
        "http://[::1]:9/dav/",
        "http://10.0.0.1/dav/",
    ] {
        for body in [
            json!({ "kind": "caldav", "url": url, "username": USER, "password": PASSWORD }),
            json!({ "kind": "ics", "url": url }),
        ] {
            let response = app.call(Method::POST, &path, Some(body)).await;
            let problem = expect_problem(response, 422, "validation_failed", Some("/url")).await;
            let detail = problem["errors"][0]["detail"].as_str().unwrap();
            assert!(detail.contains("SSRF guard") || detail.contains("not a public"), "{url}: {problem}");
        }
    }
    assert_eq!(app.expect(Method::GET, &path, None, 200).await["data"], json!([]));
}

async fn a_booking_committed_while_no_worker_runs_is_written_back_when_one_starts(app: &TestApp) {
    let Some(radicale) = Radicale::start() else { return };
    let work = calendar(&radicale, "work").await;
    let (host, event_type) = bookable(app, "Ada").await;
    connect_caldav(app, &host, &radicale, json!({ "write_back": true })).await;
    let booking = app.expect(Method::POST, "/v1/bookings", Some(booking_body(&event_type, "09:00")), 201).await;
    let booking_id = id(&booking);
    // No worker: the write is queued with the booking (the outbox), not lost, not made.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(written_event(&work, &booking_id).await, None);

    // A worker started later (as after a crash) finds it and writes the event once.
    let options = WorkerOptions::loopback("0,100ms");
    let sealer = std::sync::Arc::new(slotd::sealing::Sealer::derive(b"test secret of at least 32 chars!"));
    let calendars = std::sync::Arc::new(slotd::calendars::Calendars::new(
        slotd::calendars::CalendarSettings::default(),
        options.resolver.clone(),
        true,
        sealer.clone(),
    ));
    let sender = slotd::delivery::Sender::new(options.resolver, true, options.config.timeout);
    let worker =
        slotd::delivery::Worker::new(app.db.store.clone(), sealer, sender, options.config).with_calendars(calendars);
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.run(async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    let event = wait_for_event(&work, &booking_id, "the queued write was not made", |e| e.is_some()).await.unwrap();
    assert!(event.contains("DTSTART:20270301T090000Z"), "{event}");
    let _ = stop.send(true);
    running.await.unwrap();
    let (_, listing) = dav("PROPFIND", &work, None).await;
    assert_eq!(slotd_events(&listing), 1);
}

async fn a_slow_calendar_makes_a_listing_warn_after_5_s_and_its_late_answer_serves_the_next_listings(app: &TestApp) {
    // The feed answers at once when it is connected, then takes 8 s once, then answers at once.
    let feed = Receiver::scripted(|n| Reply {
        status: 200,
        headers: vec![("content-type", "text/calendar".to_owned())],
        body: FEED.to_owned(),
        delay: if n == 1 { Duration::from_secs(8) } else { Duration::ZERO },
    })
    .await;
    let (host, event_type) = bookable(app, "Ada").await;
    let url = format!("http://127.0.0.1:{}/feed.ics", feed.port);
    let connection = app
        .expect(Method::POST, &format!("/v1/hosts/{host}/calendars"), Some(json!({ "kind": "ics", "url": url })), 201)
        .await;

    let asked = Instant::now();
    let listed = slots(app, &event_type).await;
    let took = asked.elapsed();
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(8), "answered after {took:?}");
    assert_eq!(listed["warnings"][0]["calendar_id"], connection["id"], "{listed}");
    assert!(listed["warnings"][0]["detail"].as_str().unwrap().contains("did not answer within 5 s"), "{listed}");
    assert_eq!(times(&listed), day_except(&[]), "nothing is known of the calendar yet");

    // The read went on; once it is in, listings use it (from the cache, without asking again).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(starts(app, &event_type).await, day_except(&["09:00"]));
    assert_eq!(starts(app, &event_type).await, day_except(&["09:00"]));
    assert_eq!(feed.received().len(), 2, "one read at creation, one for the listings");
}

async fn round_robin_books_the_host_whose_calendar_can_be_read_when_another_ones_cannot(app: &TestApp) {
    let Some(mut radicale) = Radicale::start() else { return };
    calendar(&radicale, "work").await;
    let ada = app.office_host("Ada", "UTC").await;
    let bob = app.office_host("Bob", "UTC").await;
    let team = app
        .expect(
            Method::POST,
            "/v1/event-types",
            Some(json!({ "slug": "team", "title": "Team call", "duration_minutes": 60, "slot_interval_minutes": 30,
                         "booking_window_days": 3650, "assignment": "round_robin", "hosts": [ada, bob] })),
            201,
        )
        .await;
    connect_caldav(app, &ada, &radicale, json!({})).await;
    radicale.stop();
    // Ada's calendar cannot be read, so she cannot be confirmed free: Bob takes each booking.
    for time in ["09:00", "10:00"] {
        let booking = app.expect(Method::POST, "/v1/bookings", Some(booking_body(&id(&team), time)), 201).await;
        assert_eq!(booking["hosts"][0]["id"], bob.as_str(), "{booking}");
    }
    // With Bob busy at 09:00, nobody can be confirmed: 503, not a 409 and not a booking for Ada.
    let response = app.call(Method::POST, "/v1/bookings", Some(booking_body(&id(&team), "09:00"))).await;
    expect_problem(response, 503, "calendar_unavailable", None).await;
}

async fn deleting_a_host_deletes_its_connections_and_their_credentials(app: &TestApp) {
    let Some(radicale) = Radicale::start() else { return };
    calendar(&radicale, "work").await;
    let host = app.office_host("Ada", "UTC").await;
    let connection = connect_caldav(app, &host, &radicale, json!({ "write_back": true })).await;
    let cid: uuid::Uuid = id(&connection).parse().unwrap();
    assert!(app.db.store.calendar_connection(app.org, cid).await.unwrap().is_some());
    app.expect(Method::DELETE, &format!("/v1/hosts/{host}"), None, 204).await;
    assert_eq!(app.db.store.calendar_connection(app.org, cid).await.unwrap(), None, "the credentials are gone too");
}

async fn failing_write_backs_show_on_the_connection_and_are_never_disabled(app: &TestApp) {
    let Some(mut radicale) = Radicale::start() else { return };
    calendar(&radicale, "work").await;
    let (host, event_type) = bookable(app, "Ada").await;
    let connection = connect_caldav(app, &host, &radicale, json!({ "write_back": true, "on_error": "ignore" })).await;
    assert!(connection["write_back_failing_since"].is_null());
    radicale.stop();
    app.expect(Method::POST, "/v1/bookings", Some(booking_body(&event_type, "09:00")), 201).await;
    // The worker's retries (0, 100 ms, 200 ms) all fail: the connection says since when.
    let path = format!("/v1/hosts/{host}/calendars/{}", id(&connection));
    let deadline = Instant::now() + WAIT;
    loop {
        let shown = app.expect(Method::GET, &path, None, 200).await;
        if shown["write_back_failing_since"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "write-back failures are not shown: {shown}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = app.expect(Method::GET, &format!("{path}/deliveries?limit=100"), None, 200).await;
    assert!(log["data"].as_array().unwrap().iter().any(|a| a["status"] == "failed"), "{log}");
    // The next booking change is still queued to the calendar (the sink was not disabled).
    app.expect(Method::POST, "/v1/bookings", Some(booking_body(&event_type, "11:00")), 201).await;
    let log = app.expect(Method::GET, &format!("{path}/deliveries?limit=100"), None, 200).await;
    let events: std::collections::HashSet<&str> =
        log["data"].as_array().unwrap().iter().map(|a| a["event_id"].as_str().unwrap()).collect();
    assert_eq!(events.len(), 2, "{log}");
}

async fn a_connections_write_back_and_on_error_are_changed_with_patch(app: &TestApp) {
    let Some(mut radicale) = Radicale::start() else { return };
    let work = calendar(&radicale, "work").await;
    let (host, event_type) = bookable(app, "Ada").await;
    let connection = connect_caldav(app, &host, &radicale, json!({})).await;
    let path = format!("/v1/hosts/{host}/calendars/{}", id(&connection));

    // Write-back off: a booking is not written. On: the next one is; off again: no more.
    let first = app.expect(Method::POST, "/v1/bookings", Some(booking_body(&event_type, "09:00")), 201).await;
    let patched = app.expect(Method::PATCH, &path, Some(json!({ "write_back": true })), 200).await;
    assert_eq!(patched["write_back"], true);
    assert_eq!(patched["on_error"], "fail", "left as it was");
    let second = app.expect(Method::POST, "/v1/bookings", Some(booking_body(&event_type, "11:00")), 201).await;
    wait_for_event(&work, &id(&second), "the booking was not written after write_back was turned on", |e| e.is_some())
        .await;
    assert_eq!(written_event(&work, &id(&first)).await, None, "bookings from before are not written");
    app.expect(Method::PATCH, &path, Some(json!({ "write_back": false })), 200).await;
    let third = app.expect(Method::POST, "/v1/bookings", Some(booking_body(&event_type, "13:00")), 201).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(written_event(&work, &id(&third)).await, None);
    // Back on: the sink comes back with its attempt log.
    app.expect(Method::PATCH, &path, Some(json!({ "write_back": true })), 200).await;
    let log = app.expect(Method::GET, &format!("{path}/deliveries?limit=100"), None, 200).await;
    assert!(!log["data"].as_array().unwrap().is_empty(), "{log}");

    // on_error: with the calendar down, fail answers 503; ignore lets the booking through at once.
    radicale.stop();
    let response = app.call(Method::POST, "/v1/bookings", Some(booking_body(&event_type, "15:00"))).await;
    expect_problem(response, 503, "calendar_unavailable", None).await;
    let patched = app.expect(Method::PATCH, &path, Some(json!({ "on_error": "ignore" })), 200).await;
    assert_eq!(patched["on_error"], "ignore");
    app.expect(Method::POST, "/v1/bookings", Some(booking_body(&event_type, "15:00")), 201).await;

    // Bad input changes nothing.
    for (body, pointer) in [
        (json!({ "on_error": "sometimes" }), Some("/on_error")),
        (json!({ "url": "http://127.0.0.1:9/" }), None),
        (json!({ "write_back": "yes" }), None),
    ] {
        let response = app.call(Method::PATCH, &path, Some(body)).await;
        expect_problem(response, 422, "validation_failed", pointer).await;
    }
    let shown = app.expect(Method::GET, &path, None, 200).await;
    assert_eq!((shown["write_back"].clone(), shown["on_error"].clone()), (json!(true), json!("ignore")));
    let stranger = app.other_org_key().await;
    let response = app.call_as(&stranger, Method::PATCH, &path, Some(json!({ "on_error": "fail" }))).await;
    expect_problem(response, 404, "not_found", None).await;
}

async fn past_its_ttl_a_listing_is_served_the_previous_copy_while_a_background_read_refreshes_it(app: &TestApp) {
    let Some(radicale) = Radicale::start() else { return };
    let work = calendar(&radicale, "work").await;
    let (host, event_type) = bookable(app, "Ada").await;
    connect_caldav(app, &host, &radicale, json!({})).await;
    assert_eq!(starts(app, &event_type).await, day_except(&[]), "the first listing fills the cache");
    put_busy(&work, "late", "12:00", "13:00").await;
    // Within the TTL (2 s): the cached copy.
    assert_eq!(starts(app, &event_type).await, day_except(&[]));
    // Past it (but within twice it): still the previous copy, answered at once, while one
    // background read brings the new busy time for the listings after it.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(starts(app, &event_type).await, day_except(&[]), "served stale, not waited for");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = starts(app, &event_type).await;
        if now == day_except(&["11:30", "12:00", "12:30"]) {
            break;
        }
        assert!(Instant::now() < deadline, "the background read did not land within the TTL: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
