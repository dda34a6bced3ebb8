//! Booking API tests: create, read, list, the lifecycle (confirm, reject, cancel, reschedule),
//! cut-offs, `Idempotency-Key`, team assignment, seats, the iCalendar file, manage links and
//! tenant isolation. The real router over a real loopback socket, on SQLite and on PostgreSQL
//! (`sqlite::…` / `postgres::…`), a fresh database each. Every expectation is PRODUCT.md's
//! ("Booking", "Guarantees", "Slot rules", "HTTP API", "Exact shapes").
//!
//! The iCalendar file is also read by an independent parser, Python's `icalendar` (pinned in
//! `scripts/requirements-test.txt`, installed into `.venv` by `scripts/test`, found through
//! `SLOTD_TEST_PYTHON`). Without it the test fails; it never skips.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use common::{Backend, TestApp, expect_problem, read, spawn_app};
use reqwest::{Method, Response};
use serde_json::{Value, json};

on_both_backends!(
    a_booking_is_created_with_the_documented_shape_and_its_block_leaves_the_slots,
    a_booking_that_requires_confirmation_is_pending_until_confirmed_or_rejected,
    a_pending_booking_that_does_not_block_leaves_its_slot_open_and_cannot_be_confirmed_once_taken,
    illegal_transitions_answer_409_invalid_transition_and_change_nothing,
    bad_booking_input_answers_4xx_naming_the_field_and_writes_nothing,
    bad_lifecycle_input_answers_4xx_naming_the_field_and_changes_nothing,
    a_reschedule_keeps_the_booking_moves_its_times_and_records_history,
    changes_inside_the_cut_off_need_override_notice_and_are_then_made_as_the_host,
    an_idempotency_key_replays_the_first_answer_and_refuses_a_different_request,
    an_idempotency_key_reused_on_another_booking_is_a_different_request,
    concurrent_requests_with_one_idempotency_key_make_exactly_one_booking,
    round_robin_gives_each_booking_one_free_host_and_balances_the_load,
    collective_bookings_take_every_host_and_need_all_of_them_free,
    seats_let_several_attendees_share_a_start_until_it_is_full,
    the_ics_file_follows_the_booking_and_an_independent_parser_reads_it,
    rotating_the_manage_token_replaces_every_link,
    another_organization_gets_404_for_a_booking_as_if_it_did_not_exist,
    bookings_are_listed_with_filters_and_cursor_pages,
);

/// A Monday far enough ahead for any notice. Hosts in Europe/London work 09:00–17:00 UTC then
/// (no summer time in January), so a 30-minute event type has 16 slots, 09:00 to 16:30.
const DAY: &str = "2027-01-04";

/// `HH:MM` on [`DAY`] as an RFC 3339 UTC instant.
fn at(time: &str) -> String {
    format!("{DAY}T{time}:00Z")
}

/// Whole hours from now, as an RFC 3339 UTC instant on the hour.
fn hours_from_now(hours: i64) -> String {
    let hour = jiff::Timestamp::now().as_second() / 3600 + hours;
    jiff::Timestamp::from_second(hour * 3600).unwrap().to_string()
}

/// A 30-minute event type on a 30-minute grid, bookable ten years ahead.
fn event_type(slug: &str, hosts: &[&str]) -> Value {
    json!({ "slug": slug, "title": "Intro call", "duration_minutes": 30, "slot_interval_minutes": 30,
            "booking_window_days": 3650, "hosts": hosts })
}

/// `body` with the fields of `extra` set.
fn with(mut body: Value, extra: Value) -> Value {
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

async fn create_event_type(app: &TestApp, body: Value) -> String {
    let created = app.expect(Method::POST, "/v1/event-types", Some(body), 201).await;
    created["id"].as_str().unwrap().to_owned()
}

/// A host in UTC whose every day is open around the clock (for starts relative to now).
async fn open_host(app: &TestApp, name: &str) -> String {
    let days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    let weekly: serde_json::Map<String, Value> =
        days.iter().map(|d| ((*d).to_owned(), json!([{ "start": "00:00", "end": "24:00" }]))).collect();
    let host = app
        .expect(
            Method::POST,
            "/v1/hosts",
            Some(json!({ "name": name, "email": format!("{}@example.com", name.to_lowercase()), "time_zone": "UTC",
                         "availability": { "weekly": weekly } })),
            201,
        )
        .await;
    host["id"].as_str().unwrap().to_owned()
}

fn booking_request(event_type: &str, start: &str) -> Value {
    json!({ "event_type_id": event_type, "start": start,
            "attendee": { "name": "Grace", "email": "grace@example.com", "time_zone": "America/New_York" } })
}

async fn book(app: &TestApp, event_type: &str, start: &str) -> Value {
    app.expect(Method::POST, "/v1/bookings", Some(booking_request(event_type, start)), 201).await
}

fn id(value: &Value) -> &str {
    value["id"].as_str().unwrap_or_else(|| panic!("no id in {value}"))
}

/// `/v1/bookings/{id}` plus `suffix`.
fn path(booking: &Value, suffix: &str) -> String {
    format!("/v1/bookings/{}{suffix}", id(booking))
}

async fn get_booking(app: &TestApp, booking: &Value) -> Value {
    app.expect(Method::GET, &path(booking, ""), None, 200).await
}

async fn slot_list(app: &TestApp, event_type: &str, start: &str, end: &str) -> Vec<Value> {
    let path = format!("/v1/slots?event_type_id={event_type}&start={start}&end={end}");
    app.expect(Method::GET, &path, None, 200).await["slots"].as_array().unwrap().clone()
}

fn starts(slots: &[Value]) -> Vec<String> {
    slots.iter().map(|s| s["start"].as_str().unwrap().to_owned()).collect()
}

/// The starts listed on [`DAY`].
async fn day_starts(app: &TestApp, event_type: &str) -> Vec<String> {
    starts(&slot_list(app, event_type, &at("00:00"), &at("23:59")).await)
}

/// Every item of a list endpoint, following `next_cursor`; `path` already has a query.
async fn all_pages(app: &TestApp, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut next = path.to_owned();
    for _ in 0..1000 {
        let page = app.expect(Method::GET, &next, None, 200).await;
        items.extend(page["data"].as_array().unwrap_or_else(|| panic!("no data in {page}")).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => next = format!("{path}&cursor={cursor}"),
            None => return items,
        }
    }
    panic!("{path} never ended");
}

async fn events(app: &TestApp) -> Vec<Value> {
    all_pages(app, "/v1/events?limit=100").await
}

async fn events_of(app: &TestApp, event_type: &str) -> Vec<Value> {
    all_pages(app, &format!("/v1/events?limit=100&type={event_type}")).await
}

async fn bookings(app: &TestApp) -> Vec<Value> {
    all_pages(app, "/v1/bookings?limit=100").await
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter().map(|v| id(v).to_owned()).collect()
}

fn content_type(response: &Response) -> Option<String> {
    response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn is_human_id(s: &str) -> bool {
    s.len() == 9 && s.starts_with("BK-") && s[3..].bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

fn is_utc_instant(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.ends_with('Z') && s.parse::<jiff::Timestamp>().is_ok())
}

/// A POST with a raw JSON body and an `Idempotency-Key`.
async fn post_with_key(app: &TestApp, path: &str, key: &str, body: impl Into<reqwest::Body>) -> Response {
    app.client
        .post(format!("{}{path}", app.base))
        .bearer_auth(&app.key)
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn replayed(response: &Response) -> Option<String> {
    response.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Asserts a lifecycle POST answers 409 `invalid_transition` and leaves the booking and the
/// event log as they were.
async fn refused(app: &TestApp, booking: &Value, action: &str, body: Value) {
    let before = get_booking(app, booking).await;
    let events_before = events(app).await;
    let response = app.call(Method::POST, &path(booking, &format!("/{action}")), Some(body)).await;
    let problem = expect_problem(response, 409, "invalid_transition", None).await;
    assert!(problem.get("alternatives").is_none(), "{problem}");
    assert_eq!(get_booking(app, booking).await, before, "{action} of a {} booking changed it", before["status"]);
    assert_eq!(events(app).await, events_before, "{action} of a {} booking wrote an event", before["status"]);
}

async fn a_booking_is_created_with_the_documented_shape_and_its_block_leaves_the_slots(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let body = with(
        event_type("intro-call", &[&host]),
        json!({ "buffer_after_minutes": 10,
                "questions": [ { "key": "company", "label": "Company", "type": "text", "required": false } ] }),
    );
    let event_type_id = create_event_type(app, body).await;
    let before = day_starts(app, &event_type_id).await;
    assert_eq!(before.len(), 16, "{before:?}");

    let request = json!({ "event_type_id": event_type_id, "start": at("10:00"),
        "attendee": { "name": "Grace", "email": "grace@example.com", "time_zone": "America/New_York" },
        "answers": { "company": "Navy" }, "metadata": { "crm_id": "42" } });
    let response = app.call(Method::POST, "/v1/bookings", Some(request)).await;
    assert!(content_type(&response).is_some_and(|c| c.starts_with("application/json")), "{response:?}");
    let booking = read(response, 201, "POST /v1/bookings").await;

    let keys: BTreeSet<&str> = booking.as_object().unwrap().keys().map(String::as_str).collect();
    let expected = [
        "id",
        "human_id",
        "status",
        "version",
        "event_type_id",
        "starts_at",
        "ends_at",
        "duration_minutes",
        "hosts",
        "attendees",
        "answers",
        "metadata",
        "links",
        "history",
        "created_at",
        "updated_at",
    ];
    assert_eq!(keys, BTreeSet::from(expected), "{booking}");
    let uuid = uuid::Uuid::parse_str(id(&booking)).unwrap();
    assert_eq!(uuid.get_version_num(), 7, "booking ids are UUIDv7: {booking}");
    let human_id = booking["human_id"].as_str().unwrap();
    assert!(is_human_id(human_id), "human_id {human_id} must match ^BK-[0-9A-Z]{{6}}$");
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["version"], 1);
    assert_eq!(booking["event_type_id"], event_type_id.as_str());
    assert_eq!(booking["starts_at"], at("10:00"));
    assert_eq!(booking["ends_at"], at("10:30"), "the buffer is not part of the meeting");
    assert_eq!(booking["duration_minutes"], 30);
    assert_eq!(booking["hosts"], json!([{ "id": host, "name": "Ada", "email": "ada@example.com" }]));
    assert_eq!(
        booking["attendees"],
        json!([{ "name": "Grace", "email": "grace@example.com", "time_zone": "America/New_York" }])
    );
    assert_eq!(booking["answers"], json!({ "company": "Navy" }));
    assert_eq!(booking["metadata"], json!({ "crm_id": "42" }));
    let links = booking["links"].as_object().unwrap();
    let link_keys: BTreeSet<&str> = links.keys().map(String::as_str).collect();
    assert_eq!(link_keys, BTreeSet::from(["manage", "reschedule", "cancel", "ics"]));
    for (name, link) in links {
        assert!(link.as_str().unwrap().starts_with(&format!("{}/", app.base)), "links.{name} = {link}");
    }
    assert!(links["manage"].as_str().unwrap().starts_with(&format!("{}/manage/", app.base)), "{booking}");
    assert_eq!(booking["history"], json!([]));
    assert!(is_utc_instant(&booking["created_at"]) && is_utc_instant(&booking["updated_at"]), "{booking}");
    assert_eq!(booking["created_at"], booking["updated_at"]);

    // By id, by human id and by the human id in lower case: the same booking.
    assert_eq!(get_booking(app, &booking).await, booking);
    let by_human = app.expect(Method::GET, &format!("/v1/bookings/{human_id}"), None, 200).await;
    assert_eq!(by_human, booking);
    let lower = human_id.to_lowercase();
    assert_eq!(app.expect(Method::GET, &format!("/v1/bookings/{lower}"), None, 200).await, booking);

    // Its block [10:00, 10:40) takes 10:00, the 09:30 slot (whose block ends 10:10) and the
    // 10:30 slot; 09:00 and 11:00 only touch it.
    let after = day_starts(app, &event_type_id).await;
    let taken: Vec<String> = ["09:30", "10:00", "10:30"].iter().map(|t| at(t)).collect();
    let expected_after: Vec<String> = before.iter().filter(|s| !taken.contains(s)).cloned().collect();
    assert_eq!(after, expected_after);
    // The block, buffer included, holds the host for every event type.
    let other_type = create_event_type(app, event_type("other", &[&host])).await;
    let other_starts = day_starts(app, &other_type).await;
    assert!(!other_starts.contains(&at("10:30")), "10:30–11:00 meets the buffer until 10:40: {other_starts:?}");
    assert!(other_starts.contains(&at("11:00")) && other_starts.contains(&at("09:30")), "{other_starts:?}");

    // The same start again: 409 with at most 5 alternatives, each free per /v1/slots.
    let events_before = events(app).await;
    let again = app.call(Method::POST, "/v1/bookings", Some(booking_request(&event_type_id, &at("10:00")))).await;
    let problem = expect_problem(again, 409, "slot_taken", None).await;
    let alternatives = problem["alternatives"].as_array().unwrap_or_else(|| panic!("no alternatives: {problem}"));
    assert!(!alternatives.is_empty() && alternatives.len() <= 5, "{problem}");
    let listed = slot_list(app, &event_type_id, &at("00:00"), &at("23:59")).await;
    for alternative in alternatives {
        let keys: BTreeSet<&str> = alternative.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["start", "end"]), "{alternative}");
        assert!(
            listed.iter().any(|s| s["start"] == alternative["start"] && s["end"] == alternative["end"]),
            "alternative {alternative} is not free per /v1/slots"
        );
    }
    assert_eq!(events(app).await, events_before, "the refused booking wrote no event");
    assert_eq!(bookings(app).await.len(), 1);

    let confirmed = events_of(app, "booking.confirmed").await;
    assert_eq!(confirmed.len(), 1, "{confirmed:?}");
    let event = &confirmed[0];
    assert!(event["id"].as_str().unwrap().starts_with("evt_"), "{event}");
    assert_eq!(event["type"], "booking.confirmed");
    assert!(is_utc_instant(&event["created_at"]), "{event}");
    let data = &event["data"];
    for field in [
        "id",
        "human_id",
        "status",
        "version",
        "starts_at",
        "ends_at",
        "duration_minutes",
        "hosts",
        "attendees",
        "answers",
        "metadata",
        "links",
    ] {
        assert_eq!(data[field], booking[field], "event data.{field}: {data}");
    }
    assert_eq!(
        data["event_type"],
        json!({ "id": event_type_id, "slug": "intro-call", "title": "Intro call", "kind": "solo" })
    );
    let zone = data["time_zone"].as_str().unwrap_or_else(|| panic!("no time_zone in {data}"));
    assert!(["America/New_York", "Europe/London"].contains(&zone), "{data}");
    for absent in ["cancellation", "rejection", "reschedule"] {
        assert!(data.get(absent).is_none(), "a new booking has no {absent}: {data}");
    }
}

async fn a_booking_that_requires_confirmation_is_pending_until_confirmed_or_rejected(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let body = with(event_type("approval", &[&host]), json!({ "requires_confirmation": true }));
    let event_type_id = create_event_type(app, body).await;

    let first = book(app, &event_type_id, &at("09:00")).await;
    assert_eq!(first["status"], "pending");
    assert_eq!(first["version"], 1);
    assert_eq!(first["history"], json!([]));
    let requested = events_of(app, "booking.requested").await;
    assert_eq!(requested.len(), 1, "{requested:?}");
    assert_eq!(requested[0]["data"]["id"], first["id"]);
    assert_eq!(requested[0]["data"]["status"], "pending");
    assert!(events_of(app, "booking.confirmed").await.is_empty(), "nothing is confirmed yet");
    assert!(
        !day_starts(app, &event_type_id).await.contains(&at("09:00")),
        "pending bookings block by default (pending_blocks: true)"
    );

    let confirmed = app.expect(Method::POST, &path(&first, "/confirm"), Some(json!({})), 200).await;
    assert_eq!(confirmed["id"], first["id"]);
    assert_eq!(confirmed["status"], "confirmed");
    assert_eq!(confirmed["version"], 2);
    let history = confirmed["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{confirmed}");
    assert_eq!(history[0]["action"], "confirmed");
    assert_eq!(history[0]["by"], "api");
    assert_eq!(history[0]["reason"], Value::Null);
    assert!(is_utc_instant(&history[0]["at"]), "{confirmed}");
    assert!(history[0].get("previous_starts_at").is_none(), "previous times only on reschedules: {confirmed}");
    assert_eq!(get_booking(app, &first).await, confirmed);
    let confirmed_events = events_of(app, "booking.confirmed").await;
    assert_eq!(confirmed_events.len(), 1, "{confirmed_events:?}");
    assert_eq!(confirmed_events[0]["data"]["id"], first["id"]);
    assert_eq!(confirmed_events[0]["data"]["status"], "confirmed");
    assert_eq!(confirmed_events[0]["data"]["version"], 2);

    let second = book(app, &event_type_id, &at("11:00")).await;
    assert_eq!(second["status"], "pending");
    let rejected =
        app.expect(Method::POST, &path(&second, "/reject"), Some(json!({ "reason": "Not enough credits" })), 200).await;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["version"], 2);
    assert_eq!(rejected["history"][0]["action"], "rejected");
    assert_eq!(rejected["history"][0]["by"], "api");
    assert_eq!(rejected["history"][0]["reason"], "Not enough credits");
    let rejected_events = events_of(app, "booking.rejected").await;
    assert_eq!(rejected_events.len(), 1, "{rejected_events:?}");
    let data = &rejected_events[0]["data"];
    assert_eq!(data["id"], second["id"]);
    assert_eq!(data["status"], "rejected");
    assert_eq!(data["rejection"]["reason"], "Not enough credits", "{data}");
    assert!(is_utc_instant(&data["rejection"]["at"]), "{data}");
    assert!(day_starts(app, &event_type_id).await.contains(&at("11:00")), "a rejected booking frees its slot");
    assert_eq!(events_of(app, "booking.confirmed").await.len(), 1, "rejecting confirms nothing");
}

async fn a_pending_booking_that_does_not_block_leaves_its_slot_open_and_cannot_be_confirmed_once_taken(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let body =
        with(event_type("approval", &[&host]), json!({ "requires_confirmation": true, "pending_blocks": false }));
    let event_type_id = create_event_type(app, body).await;

    let first = book(app, &event_type_id, &at("09:00")).await;
    assert_eq!(first["status"], "pending");
    assert!(day_starts(app, &event_type_id).await.contains(&at("09:00")), "a non-blocking pending booking");
    let second = book(app, &event_type_id, &at("09:00")).await;
    assert_eq!(second["status"], "pending");
    assert_ne!(second["id"], first["id"]);

    let confirmed = app.expect(Method::POST, &path(&second, "/confirm"), Some(json!({})), 200).await;
    assert_eq!(confirmed["status"], "confirmed");
    assert!(!day_starts(app, &event_type_id).await.contains(&at("09:00")), "a confirmed booking blocks");

    let before = get_booking(app, &first).await;
    let events_before = events(app).await;
    let response = app.call(Method::POST, &path(&first, "/confirm"), Some(json!({}))).await;
    let problem = expect_problem(response, 409, "slot_taken", None).await;
    assert!(problem["alternatives"].is_array(), "{problem}");
    let after = get_booking(app, &first).await;
    assert_eq!(after, before, "the refused confirm changed nothing");
    assert_eq!(after["status"], "pending");
    assert_eq!(after["version"], 1);
    assert_eq!(events(app).await, events_before, "the refused confirm wrote no event");
}

async fn illegal_transitions_answer_409_invalid_transition_and_change_nothing(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let plain = create_event_type(app, event_type("intro", &[&host])).await;
    let approval =
        create_event_type(app, with(event_type("approval", &[&host]), json!({ "requires_confirmation": true }))).await;

    let confirmed = book(app, &plain, &at("09:00")).await;
    refused(app, &confirmed, "confirm", json!({})).await;
    refused(app, &confirmed, "reject", json!({ "reason": "no" })).await;

    let cancelled = book(app, &plain, &at("10:00")).await;
    app.expect(Method::POST, &path(&cancelled, "/cancel"), Some(json!({ "reason": "ill" })), 200).await;
    refused(app, &cancelled, "confirm", json!({})).await;
    refused(app, &cancelled, "reject", json!({ "reason": "no" })).await;
    refused(app, &cancelled, "cancel", json!({})).await;
    refused(app, &cancelled, "reschedule", json!({ "start": at("14:00") })).await;

    let rejected = book(app, &approval, &at("11:00")).await;
    app.expect(Method::POST, &path(&rejected, "/reject"), Some(json!({ "reason": "no" })), 200).await;
    refused(app, &rejected, "reschedule", json!({ "start": at("13:00") })).await;
    refused(app, &rejected, "confirm", json!({})).await;
    refused(app, &rejected, "cancel", json!({})).await;
    assert!(day_starts(app, &plain).await.contains(&at("13:00")), "the refused reschedule took nothing");
}

async fn bad_booking_input_answers_4xx_naming_the_field_and_writes_nothing(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let plain = create_event_type(app, event_type("intro", &[&host])).await;
    let questions = json!([
        { "key": "company", "label": "Company", "type": "text", "required": true },
        { "key": "size", "label": "Size", "type": "select", "required": false, "options": ["S", "M"] },
        { "key": "team_size", "label": "Team size", "type": "number", "required": false },
        { "key": "agree", "label": "Agree", "type": "checkbox", "required": false }
    ]);
    let asking = create_event_type(app, with(event_type("asking", &[&host]), json!({ "questions": questions }))).await;
    let short_window =
        create_event_type(app, with(event_type("soon-only", &[&host]), json!({ "booking_window_days": 1 }))).await;
    let always = open_host(app, "Olga").await;
    let open = create_event_type(app, event_type("open", &[&always])).await;
    let notice =
        create_event_type(app, with(event_type("notice", &[&always]), json!({ "min_notice_minutes": 43200 }))).await;
    let other = app.other_org_key().await;
    let foreign_host = read(
        app.call_as(
            &other,
            Method::POST,
            "/v1/hosts",
            Some(json!({ "name": "Eve", "email": "eve@example.com", "time_zone": "UTC" })),
        )
        .await,
        201,
        "other org's host",
    )
    .await;
    let foreign = read(
        app.call_as(&other, Method::POST, "/v1/event-types", Some(event_type("theirs", &[id(&foreign_host)]))).await,
        201,
        "other org's event type",
    )
    .await;

    // Controls: these starts are fine for an event type without the rule that refuses them.
    let soon = hours_from_now(48);
    let soon_end = jiff::Timestamp::from_second(soon.parse::<jiff::Timestamp>().unwrap().as_second() + 1).unwrap();
    assert_eq!(starts(&slot_list(app, &open, &soon, &soon_end.to_string()).await), [soon.as_str()]);
    assert!(day_starts(app, &plain).await.contains(&at("10:00")));

    let bookings_before = bookings(app).await;
    let events_before = events(app).await;
    let valid = booking_request(&plain, &at("10:00"));
    let attendee = |field: &str, value: Value| {
        let mut body = valid.clone();
        body["attendee"][field] = value;
        body
    };
    let answering = |answers: Value| with(booking_request(&asking, &at("10:00")), json!({ "answers": answers }));
    let cases: Vec<(&str, Value, &str)> = vec![
        ("off the grid", booking_request(&plain, &at("09:10")), "/start"),
        ("after hours", booking_request(&plain, &at("17:00")), "/start"),
        ("running past the end of hours", booking_request(&plain, &at("16:45")), "/start"),
        ("on a closed day", booking_request(&plain, "2027-01-02T10:00:00Z"), "/start"),
        ("in the past", booking_request(&plain, "2020-01-06T10:00:00Z"), "/start"),
        ("inside the minimum notice", booking_request(&notice, &soon), "/start"),
        ("beyond the booking window", booking_request(&short_window, &at("10:00")), "/start"),
        ("not an instant", with(valid.clone(), json!({ "start": "tomorrow at ten" })), "/start"),
        (
            "an unknown event type",
            booking_request("01934f3e-0000-7000-8000-000000000000", &at("10:00")),
            "/event_type_id",
        ),
        ("another organization's event type", booking_request(id(&foreign), &at("10:00")), "/event_type_id"),
        ("an event type id that is no UUID", booking_request("intro", &at("10:00")), "/event_type_id"),
        ("a missing required answer", answering(json!({})), "/answers/company"),
        ("a blank required answer", answering(json!({ "company": "  " })), "/answers/company"),
        ("a number for a text answer", answering(json!({ "company": 42 })), "/answers/company"),
        ("text for a number answer", answering(json!({ "company": "Navy", "team_size": "two" })), "/answers/team_size"),
        ("an option that is not offered", answering(json!({ "company": "Navy", "size": "XL" })), "/answers/size"),
        ("a string for a checkbox", answering(json!({ "company": "Navy", "agree": "yes" })), "/answers/agree"),
        ("an unknown answer key", answering(json!({ "company": "Navy", "colour": "red" })), "/answers/colour"),
        ("an invalid email", attendee("email", json!("grace-at-example.com")), "/attendee/email"),
        ("an unknown time zone", attendee("time_zone", json!("Mars/Olympus")), "/attendee/time_zone"),
        ("a blank name", attendee("name", json!("   ")), "/attendee/name"),
        ("a name that is not a string", attendee("name", json!(7)), "/attendee/name"),
        ("an unknown attendee field", attendee("phone", json!("+1 555")), "/attendee/phone"),
        (
            "metadata over 16 KB",
            with(valid.clone(), json!({ "metadata": { "blob": "x".repeat(17 * 1024) } })),
            "/metadata",
        ),
        ("metadata that is not an object", with(valid.clone(), json!({ "metadata": [1, 2] })), "/metadata"),
        ("an unknown field", with(valid.clone(), json!({ "colour": "red" })), "/colour"),
    ];
    for (what, body, pointer) in cases {
        let response = app.call(Method::POST, "/v1/bookings", Some(body.clone())).await;
        let got = response.status().as_u16();
        assert_eq!(got, 422, "{what}: {body} answered {got}");
        expect_problem(response, 422, "validation_failed", Some(pointer)).await;
        assert_eq!(events(app).await.len(), events_before.len(), "{what} wrote an event");
    }
    for (what, body) in [
        ("a missing attendee", json!({ "event_type_id": plain, "start": at("10:00") })),
        ("no start", json!({ "event_type_id": plain, "attendee": valid["attendee"] })),
    ] {
        let response = app.call(Method::POST, "/v1/bookings", Some(body)).await;
        let got = response.status().as_u16();
        assert_eq!(got, 422, "{what} answered {got}");
        expect_problem(response, 422, "validation_failed", None).await;
    }
    let malformed = app.call_raw(Method::POST, "/v1/bookings", "{\"event_type_id\": ").await;
    expect_problem(malformed, 400, "malformed_request", None).await;
    let not_an_object = app.call_raw(Method::POST, "/v1/bookings", "[1, 2, 3]").await;
    assert!(not_an_object.status().is_client_error(), "{not_an_object:?}");

    assert_eq!(bookings(app).await, bookings_before, "no booking was written");
    assert_eq!(events(app).await, events_before, "no event was written");
    assert!(day_starts(app, &plain).await.contains(&at("10:00")), "the slot is still free");
    // The valid request the cases were made from does book, with metadata just under the limit.
    let roomy = with(valid.clone(), json!({ "metadata": { "blob": "x".repeat(15 * 1024) } }));
    let booked = app.expect(Method::POST, "/v1/bookings", Some(roomy.clone()), 201).await;
    assert_eq!(booked["metadata"], roomy["metadata"]);
}

async fn bad_lifecycle_input_answers_4xx_naming_the_field_and_changes_nothing(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let plain = create_event_type(app, event_type("intro", &[&host])).await;
    let booking = book(app, &plain, &at("10:00")).await;
    let before = get_booking(app, &booking).await;
    let events_before = events(app).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/reschedule", json!({ "start": at("09:10") }), "/start"),
        ("/reschedule", json!({ "start": at("17:30") }), "/start"),
        ("/reschedule", json!({ "start": "2020-01-06T10:00:00Z" }), "/start"),
        ("/reschedule", json!({ "start": "soon" }), "/start"),
        ("/reschedule", json!({ "start": at("11:00"), "when": "now" }), "/when"),
        ("/reschedule", json!({ "start": at("11:00"), "reason": "x".repeat(5000) }), "/reason"),
        ("/cancel", json!({ "reason": "x".repeat(5000) }), "/reason"),
        ("/cancel", json!({ "reason": 7 }), "/reason"),
        ("/cancel", json!({ "why": "ill" }), "/why"),
        ("/confirm", json!({ "now": true }), "/now"),
    ];
    for (action, body, pointer) in cases {
        let response = app.call(Method::POST, &path(&booking, action), Some(body.clone())).await;
        let got = response.status().as_u16();
        assert_eq!(got, 422, "{action} {body} answered {got}");
        expect_problem(response, 422, "validation_failed", Some(pointer)).await;
    }
    let response = app.call(Method::POST, &path(&booking, "/reschedule"), Some(json!({}))).await;
    expect_problem(response, 422, "validation_failed", None).await;
    let malformed = app.call_raw(Method::POST, &path(&booking, "/cancel"), "{\"reason\": ").await;
    expect_problem(malformed, 400, "malformed_request", None).await;
    for unknown in ["/v1/bookings/01934f3e-0000-7000-8000-000000000000/cancel", "/v1/bookings/BK-000000/cancel"] {
        expect_problem(app.call(Method::POST, unknown, Some(json!({}))).await, 404, "not_found", None).await;
    }
    expect_problem(app.call(Method::GET, "/v1/bookings/not-a-booking", None).await, 404, "not_found", None).await;
    // References of nine bytes that are no human id, some with a character across byte 3:
    // 404 like any unknown reference, never a crash or a 5xx.
    for reference in
        ["ab%E2%82%ACcdef", "%C3%A9%C3%A9%C3%A9%C3%A9x", "BK%E2%82%AC1234", "XX-123456", "bk-%21%21%21%21%21%21"]
    {
        for (method, suffix, body) in [
            (Method::GET, "", None),
            (Method::GET, "/ics", None),
            (Method::POST, "/cancel", Some(json!({}))),
            (Method::POST, "/rotate-manage-token", None),
        ] {
            let path = format!("/v1/bookings/{reference}{suffix}");
            let response = app.client.request(method.clone(), format!("{}{path}", app.base)).bearer_auth(&app.key);
            let response = match body {
                Some(body) => response.json(&body),
                None => response,
            };
            let response = response.send().await.unwrap_or_else(|e| panic!("{method} {path} got no answer: {e}"));
            let got = response.status().as_u16();
            assert_eq!(got, 404, "{method} {path} answered {got}");
            expect_problem(response, 404, "not_found", None).await;
        }
    }
    assert_eq!(get_booking(app, &booking).await, before);
    assert_eq!(events(app).await, events_before);
}

async fn a_reschedule_keeps_the_booking_moves_its_times_and_records_history(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    // An hour long on a half-hour grid: starts 09:00 to 16:00.
    let hour_long = create_event_type(app, with(event_type("hour", &[&host]), json!({ "duration_minutes": 60 }))).await;
    let moving = book(app, &hour_long, &at("09:00")).await;
    let other = book(app, &hour_long, &at("15:00")).await;

    // Into the other booking's time: 409 with the nearest free starts, and nothing moves.
    let before = get_booking(app, &moving).await;
    let events_before = events(app).await;
    let response = app.call(Method::POST, &path(&moving, "/reschedule"), Some(json!({ "start": at("15:00") }))).await;
    let problem = expect_problem(response, 409, "slot_taken", None).await;
    let alternatives = problem["alternatives"].as_array().unwrap_or_else(|| panic!("no alternatives: {problem}"));
    assert!(!alternatives.is_empty() && alternatives.len() <= 5, "{problem}");
    let free = starts(&slot_list(app, &hour_long, &at("00:00"), &at("23:59")).await);
    for alternative in alternatives {
        let keys: BTreeSet<&str> = alternative.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["start", "end"]), "{alternative}");
        let start = alternative["start"].as_str().unwrap();
        assert!(free.iter().any(|s| s == start), "alternative {start} is not free per /v1/slots: {free:?}");
        let (s, e): (jiff::Timestamp, jiff::Timestamp) =
            (start.parse().unwrap(), alternative["end"].as_str().unwrap().parse().unwrap());
        assert_eq!(e.duration_since(s).as_mins(), 60, "{alternative}");
        assert_ne!(start, at("15:00"));
    }
    assert_eq!(get_booking(app, &moving).await, before, "the refused reschedule changed nothing");
    assert_eq!(events(app).await, events_before, "the refused reschedule wrote no event");

    let moved = app
        .expect(
            Method::POST,
            &path(&moving, "/reschedule"),
            Some(json!({ "start": at("11:00"), "reason": "Flight delayed" })),
            200,
        )
        .await;
    assert_eq!(moved["id"], moving["id"], "a reschedule keeps the booking");
    assert_eq!(moved["human_id"], moving["human_id"]);
    assert_eq!(moved["created_at"], moving["created_at"]);
    let (created, updated): (jiff::Timestamp, jiff::Timestamp) = (
        moved["created_at"].as_str().unwrap().parse().unwrap(),
        moved["updated_at"].as_str().unwrap().parse().unwrap(),
    );
    assert!(updated > created, "updated_at moves on a change: {moved}");
    assert_eq!(moved["status"], "confirmed");
    assert_eq!(moved["version"], 2);
    assert_eq!(moved["starts_at"], at("11:00"));
    assert_eq!(moved["ends_at"], at("12:00"));
    assert_eq!(moved["duration_minutes"], 60);
    assert_eq!(moved["hosts"], moving["hosts"]);
    let history = moved["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{moved}");
    assert_eq!(history[0]["action"], "rescheduled");
    assert_eq!(history[0]["by"], "api");
    assert_eq!(history[0]["reason"], "Flight delayed");
    assert_eq!(history[0]["previous_starts_at"], at("09:00"));
    assert_eq!(history[0]["previous_ends_at"], at("10:00"));
    assert!(is_utc_instant(&history[0]["at"]), "{moved}");
    assert_eq!(get_booking(app, &moving).await, moved);
    let slots = day_starts(app, &hour_long).await;
    assert!(slots.contains(&at("09:00")), "the old time is free again: {slots:?}");
    assert!(!slots.contains(&at("11:00")), "the new time is taken: {slots:?}");
    let rescheduled = events_of(app, "booking.rescheduled").await;
    assert_eq!(rescheduled.len(), 1, "{rescheduled:?}");
    let data = &rescheduled[0]["data"];
    assert_eq!(data["id"], moving["id"]);
    assert_eq!(data["version"], 2);
    assert_eq!(data["starts_at"], at("11:00"));
    assert_eq!(data["reschedule"]["reason"], "Flight delayed", "{data}");
    assert_eq!(data["reschedule"]["by"], "api", "{data}");
    assert_eq!(data["reschedule"]["previous_starts_at"], at("09:00"), "{data}");
    assert_eq!(data["reschedule"]["previous_ends_at"], at("10:00"), "{data}");
    assert!(is_utc_instant(&data["reschedule"]["at"]), "{data}");

    // Half an hour later overlaps only its own old time: allowed (here by lower-case human id).
    let by_human = format!("/v1/bookings/{}/reschedule", moving["human_id"].as_str().unwrap().to_lowercase());
    let nudged = app.expect(Method::POST, &by_human, Some(json!({ "start": at("11:30") })), 200).await;
    assert_eq!(nudged["version"], 3);
    assert_eq!(nudged["starts_at"], at("11:30"));
    assert_eq!(nudged["ends_at"], at("12:30"));
    assert_eq!(nudged["history"].as_array().unwrap().len(), 2);
    assert_eq!(nudged["history"][1]["previous_starts_at"], at("11:00"));
    assert_eq!(nudged["history"][1]["reason"], Value::Null);
    assert!(!day_starts(app, &hour_long).await.contains(&at("11:00")), "11:00 now overlaps 11:30–12:30");

    // The other booking never moved.
    let untouched = get_booking(app, &other).await;
    assert_eq!(untouched, other);

    // An event type that asks for a reason refuses a reschedule without one.
    let asking =
        create_event_type(app, with(event_type("asking", &[&host]), json!({ "reschedule_reason_required": true })))
            .await;
    let strict = book(app, &asking, &at("14:00")).await;
    let response = app.call(Method::POST, &path(&strict, "/reschedule"), Some(json!({ "start": at("16:00") }))).await;
    expect_problem(response, 422, "validation_failed", Some("/reason")).await;
    assert_eq!(get_booking(app, &strict).await, strict);
    let moved = app
        .expect(
            Method::POST,
            &path(&strict, "/reschedule"),
            Some(json!({ "start": at("16:00"), "reason": "Clash" })),
            200,
        )
        .await;
    assert_eq!(moved["starts_at"], at("16:00"));
}

async fn changes_inside_the_cut_off_need_override_notice_and_are_then_made_as_the_host(app: &TestApp) {
    let host = open_host(app, "Olga").await;
    let body = with(
        event_type("strict", &[&host]),
        json!({ "reschedule_cutoff_minutes": 1440, "cancel_cutoff_minutes": 1440 }),
    );
    let strict = create_event_type(app, body).await;
    let soon = book(app, &strict, &hours_from_now(6)).await;

    let before = get_booking(app, &soon).await;
    let events_before = events(app).await;
    let later = hours_from_now(8);
    let response = app.call(Method::POST, &path(&soon, "/reschedule"), Some(json!({ "start": later }))).await;
    expect_problem(response, 422, "validation_failed", None).await;
    let response = app.call(Method::POST, &path(&soon, "/cancel"), Some(json!({ "reason": "ill" }))).await;
    expect_problem(response, 422, "validation_failed", None).await;
    assert_eq!(get_booking(app, &soon).await, before, "refused changes inside the cut-off change nothing");
    assert_eq!(events(app).await, events_before);

    let moved = app
        .expect(
            Method::POST,
            &path(&soon, "/reschedule"),
            Some(json!({ "start": later, "reason": "Host is travelling", "override_notice": true })),
            200,
        )
        .await;
    assert_eq!(moved["starts_at"], later);
    assert_eq!(moved["version"], 2);
    assert_eq!(moved["history"][0]["action"], "rescheduled");
    assert_eq!(moved["history"][0]["by"], "host", "overriding the notice acts as the host: {moved}");
    assert_eq!(moved["history"][0]["previous_starts_at"], before["starts_at"]);

    let cancelled = app
        .expect(
            Method::POST,
            &path(&soon, "/cancel"),
            Some(json!({ "reason": "Host is ill", "override_notice": true })),
            200,
        )
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["version"], 3);
    assert_eq!(cancelled["history"][1]["action"], "cancelled");
    assert_eq!(cancelled["history"][1]["by"], "host");
    assert_eq!(cancelled["history"][1]["reason"], "Host is ill");
    let cancellations = events_of(app, "booking.cancelled").await;
    assert_eq!(cancellations.len(), 1, "{cancellations:?}");
    let data = &cancellations[0]["data"];
    assert_eq!(data["status"], "cancelled");
    assert_eq!(data["cancellation"]["reason"], "Host is ill", "{data}");
    assert_eq!(data["cancellation"]["by"], "host", "{data}");
    assert!(is_utc_instant(&data["cancellation"]["at"]), "{data}");

    // Outside the cut-off the API changes a booking without overriding anything.
    let far = book(app, &strict, &at("10:00")).await;
    let moved = app.expect(Method::POST, &path(&far, "/reschedule"), Some(json!({ "start": at("11:00") })), 200).await;
    assert_eq!(moved["history"][0]["by"], "api");
    let cancelled = app.expect(Method::POST, &path(&far, "/cancel"), Some(json!({})), 200).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["history"][1]["by"], "api");
    assert_eq!(cancelled["history"][1]["reason"], Value::Null);
}

async fn an_idempotency_key_replays_the_first_answer_and_refuses_a_different_request(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let plain = create_event_type(app, event_type("intro", &[&host])).await;
    let start = at("10:00");
    let body = format!(
        r#"{{"event_type_id":"{plain}","start":"{start}","attendee":{{"name":"Grace","email":"grace@example.com","time_zone":"UTC"}},"metadata":{{"a":1,"b":{{"c":2,"d":3}}}}}}"#
    );
    let reordered = format!(
        r#"{{"metadata":{{"b":{{"d":3,"c":2}},"a":1}},"attendee":{{"time_zone":"UTC","email":"grace@example.com","name":"Grace"}},"start":"{start}","event_type_id":"{plain}"}}"#
    );

    let first = post_with_key(app, "/v1/bookings", "create-1", body.clone()).await;
    assert_eq!(replayed(&first), None, "the first answer is not a replay");
    let first = read(first, 201, "first").await;
    let second = post_with_key(app, "/v1/bookings", "create-1", body.clone()).await;
    assert_eq!(replayed(&second).as_deref(), Some("true"));
    assert!(content_type(&second).is_some_and(|c| c.starts_with("application/json")), "{second:?}");
    let second = read(second, 201, "second").await;
    assert_eq!(second, first, "the same key and body answer the first answer");
    let third = post_with_key(app, "/v1/bookings", "create-1", reordered).await;
    assert_eq!(replayed(&third).as_deref(), Some("true"), "key order does not make a different request");
    assert_eq!(read(third, 201, "reordered").await, first);
    assert_eq!(ids(&bookings(app).await), [id(&first)], "one booking");
    assert_eq!(events_of(app, "booking.confirmed").await.len(), 1, "one event");

    // The same key with another body is refused, and books nothing.
    let events_before = events(app).await;
    let other_body = body.replace(&start, &at("11:00"));
    let response = post_with_key(app, "/v1/bookings", "create-1", other_body.clone()).await;
    expect_problem(response, 422, "validation_failed", None).await;
    assert_eq!(ids(&bookings(app).await), [id(&first)]);
    assert!(day_starts(app, &plain).await.contains(&at("11:00")));
    // The same body with a new key is a new request: the slot is taken now.
    let response = post_with_key(app, "/v1/bookings", "create-2", body.clone()).await;
    expect_problem(response, 409, "slot_taken", None).await;
    assert_eq!(events(app).await, events_before);

    // Lifecycle POSTs replay too: a retried cancel answers the cancel, not a 409.
    let cancel = path(&first, "/cancel");
    let cancelled = post_with_key(app, &cancel, "cancel-1", r#"{"reason":"ill"}"#).await;
    assert_eq!(replayed(&cancelled), None);
    let cancelled = read(cancelled, 200, "cancel").await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["version"], 2);
    let again = post_with_key(app, &cancel, "cancel-1", r#"{ "reason": "ill" }"#).await;
    assert_eq!(replayed(&again).as_deref(), Some("true"));
    assert_eq!(read(again, 200, "cancel again").await, cancelled);
    assert_eq!(events_of(app, "booking.cancelled").await.len(), 1, "one cancel happened");
    let different = post_with_key(app, &cancel, "cancel-1", r#"{"reason":"bored"}"#).await;
    expect_problem(different, 422, "validation_failed", None).await;
    let elsewhere = post_with_key(app, "/v1/bookings", "cancel-1", other_body).await;
    expect_problem(elsewhere, 422, "validation_failed", None).await;
    let without_key = app.call(Method::POST, &cancel, Some(json!({ "reason": "ill" }))).await;
    expect_problem(without_key, 409, "invalid_transition", None).await;
    assert_eq!(get_booking(app, &first).await["version"], 2);

    // Keys belong to one organization: another organization's identical key replays nothing.
    let other = app.other_org_key().await;
    let theirs = app
        .client
        .post(format!("{}/v1/bookings", app.base))
        .bearer_auth(&other)
        .header("idempotency-key", "create-1")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(replayed(&theirs), None, "another organization's key replayed this organization's answer");
    expect_problem(theirs, 422, "validation_failed", Some("/event_type_id")).await;
}

async fn an_idempotency_key_reused_on_another_booking_is_a_different_request(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let plain = create_event_type(app, event_type("intro", &[&host])).await;
    let first = book(app, &plain, &at("10:00")).await;
    let second = book(app, &plain, &at("14:00")).await;
    let cancelled = post_with_key(app, &path(&first, "/cancel"), "cancel-1", r#"{"reason":"ill"}"#).await;
    assert_eq!(read(cancelled, 200, "cancel booking 1").await["status"], "cancelled");

    // Same key, same body, another booking: not the same request, so never booking 1's answer.
    let events_before = events(app).await;
    for reference in [id(&second).to_owned(), second["human_id"].as_str().unwrap().to_owned()] {
        let path = format!("/v1/bookings/{reference}/cancel");
        let reused = post_with_key(app, &path, "cancel-1", r#"{"reason":"ill"}"#).await;
        let status = reused.status().as_u16();
        let answer = reused.text().await.unwrap();
        assert_eq!(status, 422, "booking 1's cancel key reused on {path} answered {status}: {answer}");
    }
    assert_eq!(get_booking(app, &second).await, second, "booking 2 is untouched");
    assert_eq!(events(app).await, events_before);
}

async fn concurrent_requests_with_one_idempotency_key_make_exactly_one_booking(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let plain = create_event_type(app, event_type("intro", &[&host])).await;
    let body = booking_request(&plain, &at("10:00"));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let request = app
                .client
                .post(format!("{}/v1/bookings", app.base))
                .bearer_auth(&app.key)
                .header("idempotency-key", "one-key-for-all")
                .json(&body);
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let replayed = replayed(&response);
                let text = response.text().await.unwrap();
                (status, replayed, text)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let mut booking_ids = BTreeSet::new();
    for (status, _, text) in &answers {
        assert_eq!(*status, 201, "every request answers the one booking: {text}");
        let answer: Value = serde_json::from_str(text).unwrap();
        booking_ids.insert(id(&answer).to_owned());
    }
    assert_eq!(booking_ids.len(), 1, "all answer the same id: {answers:?}");
    let originals = answers.iter().filter(|(_, replayed, _)| replayed.is_none()).count();
    assert_eq!(originals, 1, "exactly one answer is the original, the rest are replays: {answers:?}");
    let all = bookings(app).await;
    assert_eq!(ids(&all), booking_ids.into_iter().collect::<Vec<_>>(), "exactly one booking exists");
    assert_eq!(events_of(app, "booking.confirmed").await.len(), 1, "exactly one event");
}

async fn round_robin_gives_each_booking_one_free_host_and_balances_the_load(app: &TestApp) {
    let ada = app.office_host("Ada", "Europe/London").await;
    let bob = app.office_host("Bob", "Europe/London").await;
    let round_robin =
        create_event_type(app, with(event_type("rr", &[&ada, &bob]), json!({ "assignment": "round_robin" }))).await;
    let ada_only = create_event_type(app, event_type("ada-only", &[&ada])).await;
    let host_of = |booking: &Value| {
        let hosts = booking["hosts"].as_array().unwrap();
        assert_eq!(hosts.len(), 1, "round robin takes one host: {booking}");
        hosts[0]["id"].as_str().unwrap().to_owned()
    };

    // Ada has one upcoming booking, Bob none: Bob gets the next one, then they alternate.
    book(app, &ada_only, &at("14:00")).await;
    assert_eq!(host_of(&book(app, &round_robin, &at("10:00")).await), bob, "fewest upcoming bookings first");
    assert_eq!(host_of(&book(app, &round_robin, &at("11:00")).await), ada, "even load: least recently booked");
    assert_eq!(host_of(&book(app, &round_robin, &at("12:00")).await), bob, "fewest upcoming bookings first");

    // Two bookings at one start go to different hosts; a third finds nobody free.
    let first = book(app, &round_robin, &at("15:00")).await;
    let listed = slot_list(app, &round_robin, &at("15:00"), &at("15:30")).await;
    assert_eq!(listed.len(), 1, "one host is still free at 15:00");
    let second = book(app, &round_robin, &at("15:00")).await;
    let pair: BTreeSet<String> = [host_of(&first), host_of(&second)].into();
    assert_eq!(pair, BTreeSet::from([ada.clone(), bob.clone()]));
    assert!(!day_starts(app, &round_robin).await.contains(&at("15:00")));
    let events_before = events(app).await;
    let third = app.call(Method::POST, "/v1/bookings", Some(booking_request(&round_robin, &at("15:00")))).await;
    expect_problem(third, 409, "slot_taken", None).await;
    assert_eq!(events(app).await, events_before);

    let all = bookings(app).await;
    let count = |host: &str| all.iter().filter(|b| b["hosts"][0]["id"] == host).count();
    assert_eq!((count(&ada), count(&bob)), (3, 3), "the load is balanced");

    // A reschedule moves the booking's times, not its host, when that host is free.
    let moved =
        app.expect(Method::POST, &path(&first, "/reschedule"), Some(json!({ "start": at("16:00") })), 200).await;
    assert_eq!(host_of(&moved), host_of(&first), "{moved}");
    let data = &events_of(app, "booking.confirmed").await[1]["data"];
    assert_eq!(data["event_type"]["kind"], "round_robin", "{data}");
}

async fn collective_bookings_take_every_host_and_need_all_of_them_free(app: &TestApp) {
    let ada = app.office_host("Ada", "Europe/London").await;
    let bob = app.office_host("Bob", "Europe/London").await;
    let team =
        create_event_type(app, with(event_type("team", &[&ada, &bob]), json!({ "assignment": "collective" }))).await;
    let ada_only = create_event_type(app, event_type("ada-only", &[&ada])).await;

    let booking = book(app, &team, &at("10:00")).await;
    assert_eq!(
        booking["hosts"],
        json!([{ "id": ada, "name": "Ada", "email": "ada@example.com" },
               { "id": bob, "name": "Bob", "email": "bob@example.com" }])
    );
    assert!(!day_starts(app, &ada_only).await.contains(&at("10:00")), "the booking holds Ada's time too");
    let data = &events_of(app, "booking.confirmed").await[0]["data"];
    assert_eq!(data["hosts"], booking["hosts"]);
    assert_eq!(data["event_type"]["kind"], "collective", "{data}");

    app.expect(
        Method::POST,
        &format!("/v1/hosts/{bob}/busy"),
        Some(json!({ "start": at("12:00"), "end": at("13:00"), "title": "Dentist" })),
        201,
    )
    .await;
    assert!(day_starts(app, &ada_only).await.contains(&at("12:00")), "Ada alone is free at 12:00");
    assert!(!day_starts(app, &team).await.contains(&at("12:00")));
    let events_before = events(app).await;
    let response = app.call(Method::POST, "/v1/bookings", Some(booking_request(&team, &at("12:00")))).await;
    expect_problem(response, 409, "slot_taken", None).await;
    assert_eq!(events(app).await, events_before);
    assert_eq!(bookings(app).await.len(), 1);
}

async fn seats_let_several_attendees_share_a_start_until_it_is_full(app: &TestApp) {
    let ada = app.office_host("Ada", "Europe/London").await;
    let group = create_event_type(app, with(event_type("workshop", &[&ada]), json!({ "seats": 3 }))).await;
    let solo = create_event_type(app, event_type("solo", &[&ada])).await;
    let seats_left =
        |slots: Vec<Value>| slots.iter().find(|s| s["start"] == at("10:00")).map(|s| s["seats_left"].clone());

    assert_eq!(seats_left(slot_list(app, &group, &at("10:00"), &at("10:30")).await), Some(json!(3)));
    let mut taken = Vec::new();
    for left in [2, 1] {
        taken.push(book(app, &group, &at("10:00")).await);
        assert_eq!(seats_left(slot_list(app, &group, &at("10:00"), &at("10:30")).await), Some(json!(left)));
    }
    taken.push(book(app, &group, &at("10:00")).await);
    assert_eq!(seats_left(slot_list(app, &group, &at("10:00"), &at("10:30")).await), None, "a full slot is not listed");
    for booking in &taken {
        assert_eq!(booking["status"], "confirmed");
        assert_eq!(booking["hosts"], taken[0]["hosts"]);
        assert_eq!(booking["starts_at"], at("10:00"));
    }
    assert_eq!(ids(&taken).into_iter().collect::<BTreeSet<_>>().len(), 3, "three bookings");

    let events_before = events(app).await;
    let fourth = app.call(Method::POST, "/v1/bookings", Some(booking_request(&group, &at("10:00")))).await;
    expect_problem(fourth, 409, "slot_taken", None).await;
    let other_type = app.call(Method::POST, "/v1/bookings", Some(booking_request(&solo, &at("10:00")))).await;
    expect_problem(other_type, 409, "slot_taken", None).await;
    assert_eq!(events(app).await, events_before);
    assert_eq!(bookings(app).await.len(), 3);
    assert!(day_starts(app, &group).await.contains(&at("10:30")), "the next slot only touches the group");

    app.expect(Method::POST, &path(&taken[1], "/cancel"), Some(json!({})), 200).await;
    assert_eq!(seats_left(slot_list(app, &group, &at("10:00"), &at("10:30")).await), Some(json!(1)));
    let seat_at = |time: &'static str| {
        let group = group.clone();
        async move {
            let slots = slot_list(app, &group, &at(time), &at("16:59")).await;
            slots.iter().find(|s| s["start"] == at(time)).map(|s| s["seats_left"].clone())
        }
    };
    let moved =
        app.expect(Method::POST, &path(&taken[2], "/reschedule"), Some(json!({ "start": at("11:00") })), 200).await;
    assert_eq!(moved["starts_at"], at("11:00"));
    assert_eq!(seat_at("10:00").await, Some(json!(2)), "the moved seat is free again");
    assert_eq!(seat_at("11:00").await, Some(json!(2)), "and taken at its new start");
    let data = &events_of(app, "booking.confirmed").await[0]["data"];
    assert_eq!(data["event_type"]["kind"], "group", "{data}");
}

/// Reads an iCalendar file with Python's `icalendar` and answers what it found: METHOD, UID,
/// SEQUENCE, STATUS and DTSTART/DTEND as UTC instants.
const ICS_READER: &str = r#"
import datetime, json, sys
try:
    import icalendar
except ImportError as e:
    sys.exit(f"the Python module icalendar is missing ({e}): run scripts/test, which installs scripts/requirements-test.txt into .venv")
with open(sys.argv[1], "rb") as f:
    calendar = icalendar.Calendar.from_ical(f.read())
assert not calendar.errors, calendar.errors
events = list(calendar.walk("VEVENT"))
assert len(events) == 1, f"{len(events)} VEVENTs"
event = events[0]
assert not event.errors, event.errors
def utc(name):
    value = event.decoded(name)
    assert isinstance(value, datetime.datetime) and value.tzinfo is not None, f"{name} is not an instant: {value!r}"
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({
    "method": str(calendar["METHOD"]), "uid": str(event["UID"]), "sequence": int(event["SEQUENCE"]),
    "status": str(event["STATUS"]), "dtstart": utc("DTSTART"), "dtend": utc("DTEND"),
}))
"#;

/// The Python that has `icalendar`: `$SLOTD_TEST_PYTHON`, else the workspace's `.venv`.
fn test_python() -> String {
    std::env::var("SLOTD_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").to_owned())
}

async fn parse_with_icalendar(ics: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("booking.ics");
    std::fs::write(&file, ics).unwrap();
    let python = test_python();
    let output =
        tokio::process::Command::new(&python).arg("-c").arg(ICS_READER).arg(&file).output().await.unwrap_or_else(|e| {
            panic!(
                "cannot run {python} ({e}); the iCalendar check needs Python with icalendar: run scripts/test \
                 (it creates .venv from scripts/requirements-test.txt) or set SLOTD_TEST_PYTHON"
            )
        });
    assert!(
        output.status.success(),
        "icalendar could not read the file (run scripts/test if the module is missing): {}\n{ics}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The ICS of a booking: checks the answer's type and its content lines, then has Python's
/// `icalendar` read it; answers its UID.
async fn check_ics(app: &TestApp, booking: &Value, method: &str, status: &str) -> String {
    let response = app.call(Method::GET, &path(booking, "/ics"), None).await;
    assert_eq!(response.status(), 200);
    let kind = content_type(&response).unwrap_or_default();
    assert!(kind.starts_with("text/calendar"), "content-type {kind}");
    let ics = response.text().await.unwrap();
    let unfolded = ics.replace("\r\n ", "");
    let compact = |field: &str| booking[field].as_str().unwrap().replace(['-', ':'], "");
    let version = booking["version"].as_i64().unwrap();
    for line in [
        format!("METHOD:{method}"),
        format!("SEQUENCE:{version}"),
        format!("STATUS:{status}"),
        format!("DTSTART:{}", compact("starts_at")),
        format!("DTEND:{}", compact("ends_at")),
    ] {
        assert!(unfolded.contains(&format!("\r\n{line}\r\n")), "no {line} in\n{ics}");
    }
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.ends_with("END:VCALENDAR\r\n"), "{ics}");
    let uid = unfolded
        .split("\r\n")
        .find_map(|l| l.strip_prefix("UID:"))
        .unwrap_or_else(|| panic!("no UID in\n{ics}"))
        .to_owned();
    let parsed = parse_with_icalendar(&ics).await;
    assert_eq!(
        parsed,
        json!({ "method": method, "uid": uid, "sequence": version, "status": status,
                "dtstart": booking["starts_at"], "dtend": booking["ends_at"] }),
        "what icalendar read from\n{ics}"
    );
    uid
}

async fn the_ics_file_follows_the_booking_and_an_independent_parser_reads_it(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let plain = create_event_type(app, event_type("intro", &[&host])).await;
    let booking = book(app, &plain, &at("10:00")).await;
    let uid = check_ics(app, &booking, "REQUEST", "CONFIRMED").await;
    let by_human = format!("/v1/bookings/{}/ics", booking["human_id"].as_str().unwrap().to_lowercase());
    let by_human = app.call(Method::GET, &by_human, None).await;
    assert_eq!(by_human.status(), 200, "the ICS is found by human id too");
    assert!(by_human.text().await.unwrap().contains(&format!("\r\nUID:{uid}\r\n")));
    // links.ics serves the same file to whoever holds the link, without an API key.
    let with_key = app.call(Method::GET, &path(&booking, "/ics"), None).await.text().await.unwrap();
    let link = app.client.get(booking["links"]["ics"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(link.status(), 200);
    assert!(content_type(&link).is_some_and(|c| c.starts_with("text/calendar")), "{link:?}");
    assert_eq!(link.text().await.unwrap(), with_key, "links.ics is the booking's calendar file");

    let moved =
        app.expect(Method::POST, &path(&booking, "/reschedule"), Some(json!({ "start": at("11:00") })), 200).await;
    assert_eq!(moved["version"], 2);
    assert_eq!(check_ics(app, &moved, "REQUEST", "CONFIRMED").await, uid, "the UID is stable");

    let cancelled = app.expect(Method::POST, &path(&booking, "/cancel"), Some(json!({ "reason": "ill" })), 200).await;
    assert_eq!(cancelled["version"], 3);
    assert_eq!(check_ics(app, &cancelled, "CANCEL", "CANCELLED").await, uid);

    let approval =
        create_event_type(app, with(event_type("approval", &[&host]), json!({ "requires_confirmation": true }))).await;
    let pending = book(app, &approval, &at("13:00")).await;
    let other_uid = check_ics(app, &pending, "REQUEST", "TENTATIVE").await;
    assert_ne!(other_uid, uid, "every booking has its own UID");
}

async fn rotating_the_manage_token_replaces_every_link(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let plain = create_event_type(app, event_type("intro", &[&host])).await;
    let booking = book(app, &plain, &at("10:00")).await;
    assert_eq!(get_booking(app, &booking).await["links"], booking["links"], "links are stable until rotated");

    let rotated = app.expect(Method::POST, &path(&booking, "/rotate-manage-token"), None, 200).await;
    assert_eq!(rotated["id"], booking["id"]);
    assert_eq!(rotated["status"], "confirmed");
    assert_eq!(rotated["starts_at"], booking["starts_at"]);
    for link in ["manage", "reschedule", "cancel", "ics"] {
        let (old, new) = (booking["links"][link].as_str().unwrap(), rotated["links"][link].as_str().unwrap());
        assert_ne!(old, new, "links.{link} changed");
        assert!(new.starts_with(&format!("{}/", app.base)), "links.{link} = {new}");
    }
    assert_eq!(get_booking(app, &booking).await["links"], rotated["links"], "reads show the new links");
    let again = app.expect(Method::POST, &path(&booking, "/rotate-manage-token"), Some(json!({})), 200).await;
    assert_ne!(again["links"]["manage"], rotated["links"]["manage"]);
    assert_ne!(again["links"]["manage"], booking["links"]["manage"]);
    let human = format!("/v1/bookings/{}/rotate-manage-token", booking["human_id"].as_str().unwrap());
    let latest = app.expect(Method::POST, &human, None, 200).await;

    // Only the latest links work; every older one answers 404 as if it never existed.
    let unauthenticated = |url: String| app.client.get(url).send();
    for old in [&booking, &rotated, &again] {
        for link in ["manage", "ics"] {
            let url = old["links"][link].as_str().unwrap().to_owned();
            let response = unauthenticated(url.clone()).await.unwrap();
            assert_eq!(response.status(), 404, "old links.{link} {url} still works");
        }
        let api = format!("{}/v1/manage/{}", app.base, manage_token(old));
        assert_eq!(unauthenticated(api.clone()).await.unwrap().status(), 404, "{api} still works");
    }
    let api = format!("{}/v1/manage/{}", app.base, manage_token(&latest));
    let current = read(unauthenticated(api).await.unwrap(), 200, "the latest manage token").await;
    assert_eq!(current["booking"]["id"], booking["id"], "{current}");
    let ics = unauthenticated(latest["links"]["ics"].as_str().unwrap().to_owned()).await.unwrap();
    assert_eq!(ics.status(), 200, "the latest links.ics works");
}

/// The manage token of a booking: the last path segment of `links.manage`.
fn manage_token(booking: &Value) -> String {
    let manage = booking["links"]["manage"].as_str().unwrap();
    manage.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned()
}

async fn another_organization_gets_404_for_a_booking_as_if_it_did_not_exist(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let approval =
        create_event_type(app, with(event_type("approval", &[&host]), json!({ "requires_confirmation": true }))).await;
    let booking = book(app, &approval, &at("10:00")).await;
    let human_id = booking["human_id"].as_str().unwrap();
    let other = app.other_org_key().await;
    let events_before = events(app).await;
    let by_id = path(&booking, "");
    let by_human = format!("/v1/bookings/{human_id}");
    let attempts = [
        (Method::GET, by_id.clone(), None),
        (Method::GET, by_human.clone(), None),
        (Method::GET, format!("{by_id}/ics"), None),
        (Method::GET, format!("{by_human}/ics"), None),
        (Method::POST, format!("{by_id}/cancel"), Some(json!({ "reason": "mine now" }))),
        (Method::POST, format!("{by_human}/cancel"), Some(json!({}))),
        (Method::POST, format!("{by_id}/confirm"), Some(json!({}))),
        (Method::POST, format!("{by_id}/reject"), Some(json!({ "reason": "mine now" }))),
        (Method::POST, format!("{by_id}/reschedule"), Some(json!({ "start": at("11:00") }))),
        (Method::POST, format!("{by_id}/rotate-manage-token"), None),
    ];
    for (method, path, body) in attempts {
        let response = app.call_as(&other, method.clone(), &path, body).await;
        let got = response.status().as_u16();
        assert_eq!(got, 404, "{method} {path} by another organization answered {got}");
        expect_problem(response, 404, "not_found", None).await;
    }
    let listed = read(app.call_as(&other, Method::GET, "/v1/bookings", None).await, 200, "other list").await;
    assert_eq!(listed["data"], json!([]));
    let their_events = read(app.call_as(&other, Method::GET, "/v1/events", None).await, 200, "other events").await;
    assert_eq!(their_events["data"], json!([]));

    assert_eq!(get_booking(app, &booking).await, booking, "the owner's booking is untouched");
    assert_eq!(events(app).await, events_before);
}

async fn bookings_are_listed_with_filters_and_cursor_pages(app: &TestApp) {
    let ada = app.office_host("Ada", "Europe/London").await;
    let bob = app.office_host("Bob", "Europe/London").await;
    let with_ada = create_event_type(app, event_type("ada", &[&ada])).await;
    let with_bob = create_event_type(app, event_type("bob", &[&bob])).await;
    let approval =
        create_event_type(app, with(event_type("approval", &[&ada]), json!({ "requires_confirmation": true }))).await;
    let b1 = book(app, &with_ada, &at("09:00")).await;
    let b2 = book(app, &with_bob, &at("10:00")).await;
    let b3 = book(app, &approval, &at("11:00")).await;
    let b4 = book(app, &with_ada, "2027-01-05T09:00:00Z").await;
    app.expect(Method::POST, &path(&b4, "/cancel"), Some(json!({})), 200).await;
    let b5 = book(app, &approval, &at("13:00")).await;
    app.expect(Method::POST, &path(&b5, "/reject"), Some(json!({ "reason": "full" })), 200).await;
    let all: Vec<String> = [&b1, &b2, &b3, &b4, &b5].iter().map(|b| id(b).to_owned()).collect();
    let pick = |which: &[usize]| which.iter().map(|&i| all[i - 1].clone()).collect::<Vec<_>>();

    let listed = bookings(app).await;
    assert_eq!(ids(&listed), all, "oldest first");
    assert_eq!(listed[0], get_booking(app, &b1).await, "list items are whole bookings");
    let filtered = |query: String| async move { ids(&all_pages(app, &format!("/v1/bookings?{query}")).await) };
    assert_eq!(filtered("status=confirmed".into()).await, pick(&[1, 2]));
    assert_eq!(filtered("status=pending".into()).await, pick(&[3]));
    assert_eq!(filtered("status=cancelled".into()).await, pick(&[4]));
    assert_eq!(filtered("status=rejected".into()).await, pick(&[5]));
    assert_eq!(filtered(format!("host_id={ada}")).await, pick(&[1, 3, 4, 5]));
    assert_eq!(filtered(format!("host_id={bob}")).await, pick(&[2]));
    assert_eq!(filtered(format!("host_id={ada}&status=confirmed")).await, pick(&[1]));
    assert_eq!(filtered(format!("from={}", at("10:00"))).await, pick(&[2, 3, 4, 5]), "from is inclusive");
    assert_eq!(filtered(format!("to={}", at("10:00"))).await, pick(&[1]), "to is exclusive");
    assert_eq!(filtered(format!("from={}&to=2027-01-05T00:00:00Z", at("10:00"))).await, pick(&[2, 3, 5]));
    assert_eq!(filtered("host_id=01934f3e-0000-7000-8000-000000000000".into()).await, pick(&[]));

    // limit=1 walks every booking one page at a time, and filters hold across pages.
    let mut seen = Vec::new();
    let mut next = "/v1/bookings?limit=1".to_owned();
    loop {
        let page = app.expect(Method::GET, &next, None, 200).await;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 1, "{page}");
        seen.extend(ids(data));
        match page["next_cursor"].as_str() {
            Some(cursor) => next = format!("/v1/bookings?limit=1&cursor={cursor}"),
            None => break,
        }
        assert!(seen.len() <= all.len(), "the walk does not end: {seen:?}");
    }
    assert_eq!(seen, all);
    assert_eq!(filtered(format!("limit=1&host_id={ada}")).await, pick(&[1, 3, 4, 5]));

    let bad = [
        ("status=done", "/status"),
        ("status=CONFIRMED", "/status"),
        ("host_id=nobody", "/host_id"),
        ("from=yesterday", "/from"),
        ("to=2027-13-01T00:00:00Z", "/to"),
        ("limit=0", "/limit"),
        ("limit=101", "/limit"),
        ("from=2027-01-05T00:00:00Z&to=2027-01-04T00:00:00Z", "/to"),
    ];
    for (query, pointer) in bad {
        let response = app.call(Method::GET, &format!("/v1/bookings?{query}"), None).await;
        let got = response.status().as_u16();
        assert_eq!(got, 422, "{query} answered {got}");
        expect_problem(response, 422, "validation_failed", Some(pointer)).await;
    }
}
