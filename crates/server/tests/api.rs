//! API tests: the real router over a real loopback socket, on SQLite and on PostgreSQL
//! (`sqlite::…` / `postgres::…`), a fresh database each.

#[macro_use]
mod common;

use common::{Backend, TestApp, expect_problem, read, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    requests_without_a_valid_key_answer_401_and_never_say_whether_a_key_exists,
    a_host_round_trips_and_every_change_is_in_the_event_log,
    bad_host_input_answers_4xx_naming_the_field_and_writes_nothing,
    bad_event_type_input_answers_422_naming_the_field_and_writes_nothing,
    bad_slot_queries_answer_422_naming_the_parameter,
    a_two_megabyte_body_answers_413_and_writes_nothing,
    another_organizations_ids_answer_404_as_if_they_did_not_exist,
    event_types_are_created_patched_listed_and_deleted,
    slots_follow_working_hours_notice_and_busy_blocks,
    round_robin_lists_any_free_host_and_collective_needs_all,
    list_endpoints_page_with_cursors,
    a_host_in_use_cannot_be_deleted_and_a_slug_cannot_be_taken_twice,
    operations_endpoints_answer,
    unknown_routes_and_methods_answer_problem_json,
    a_booking_is_made_listed_rescheduled_and_cancelled,
    attendees_manage_their_booking_with_the_link_alone,
    instants_near_the_ends_of_time_answer_422_never_5xx,
    seats_are_counted_when_pending_seats_are_confirmed_and_per_host_for_round_robin,
);

const WEEKDAY: &str = "2027-01-04"; // a Monday, far enough ahead for any notice

fn event_type_body(slug: &str, hosts: &[&str], assignment: &str) -> Value {
    json!({ "slug": slug, "title": "Intro call", "duration_minutes": 30, "slot_interval_minutes": 30,
            "booking_window_days": 3650, "hosts": hosts, "assignment": assignment })
}

async fn create_event_type(app: &TestApp, body: Value) -> String {
    let created = app.expect(Method::POST, "/v1/event-types", Some(body), 201).await;
    created["id"].as_str().unwrap().to_owned()
}

async fn slots(app: &TestApp, event_type: &str, start: &str, end: &str) -> Vec<Value> {
    let path = format!("/v1/slots?event_type_id={event_type}&start={start}&end={end}");
    let body = app.expect(Method::GET, &path, None, 200).await;
    body["slots"].as_array().unwrap().clone()
}

fn starts(slots: &[Value]) -> Vec<&str> {
    slots.iter().map(|s| s["start"].as_str().unwrap()).collect()
}

async fn event_count(app: &TestApp) -> usize {
    let events = app.expect(Method::GET, "/v1/events?limit=100", None, 200).await;
    events["data"].as_array().unwrap().len()
}

async fn requests_without_a_valid_key_answer_401_and_never_say_whether_a_key_exists(app: &TestApp) {
    let no_key = app.client.get(format!("{}/v1/hosts", app.base)).send().await.unwrap();
    let body = expect_problem(no_key, 401, "unauthorized", None).await;
    for key in ["nonsense", "sk_live_unknown", &app.key[..app.key.len() - 1]] {
        let other =
            expect_problem(app.call_as(key, Method::GET, "/v1/hosts", None).await, 401, "unauthorized", None).await;
        assert_eq!(other, body, "every bad key gets the same answer");
    }
    let basic = app
        .client
        .get(format!("{}/v1/hosts", app.base))
        .header("authorization", format!("Basic {}", app.key))
        .send()
        .await
        .unwrap();
    expect_problem(basic, 401, "unauthorized", None).await;

    app.expect(Method::GET, "/v1/hosts", None, 200).await;
    let hash = slotd::extract::hash_api_key(&app.key);
    assert!(app.db.store.revoke_api_key(&hash).await.unwrap());
    let revoked = app.call(Method::GET, "/v1/hosts", None).await;
    assert_eq!(expect_problem(revoked, 401, "unauthorized", None).await, body);
}

async fn a_host_round_trips_and_every_change_is_in_the_event_log(app: &TestApp) {
    let created = app
        .expect(
            Method::POST,
            "/v1/hosts",
            Some(json!({ "name": "Ada", "email": "ada@example.com", "time_zone": "Europe/London" })),
            201,
        )
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["name"], "Ada");
    assert_eq!(created["time_zone"], "Europe/London");
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(app.expect(Method::GET, &format!("/v1/hosts/{id}"), None, 200).await, created);

    let availability = json!({
        "weekly": { "monday": [ { "start": "09:00", "end": "12:00" }, { "start": "13:00", "end": "17:00" } ],
                    "tuesday": [ { "start": "09:00", "end": "24:00" } ] },
        "overrides": [ { "date": "2026-12-24", "ranges": [ { "start": "09:00", "end": "12:00" } ] },
                       { "date": "2026-12-25", "ranges": [] } ] });
    let updated =
        app.expect(Method::PUT, &format!("/v1/hosts/{id}/availability"), Some(availability.clone()), 200).await;
    assert_eq!(updated["availability"], availability, "availability reads back as written");
    let patched =
        app.expect(Method::PATCH, &format!("/v1/hosts/{id}"), Some(json!({ "name": "Ada Lovelace" })), 200).await;
    assert_eq!(patched["name"], "Ada Lovelace");
    assert_eq!(patched["email"], "ada@example.com");
    assert_eq!(patched["availability"], availability);

    app.expect(Method::DELETE, &format!("/v1/hosts/{id}"), None, 204).await;
    expect_problem(app.call(Method::GET, &format!("/v1/hosts/{id}"), None).await, 404, "not_found", None).await;

    let events = app.expect(Method::GET, "/v1/events", None, 200).await;
    let events = events["data"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["host.created", "host.updated", "host.updated", "host.deleted"]);
    assert!(events.iter().all(|e| e["id"].as_str().unwrap().starts_with("evt_")));
    assert_eq!(events[0]["data"], created, "the payload is the resource as the API shows it");
    assert_eq!(events[2]["data"]["name"], "Ada Lovelace");
    let filtered = app.expect(Method::GET, "/v1/events?type=host.deleted", None, 200).await;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1);
}

async fn bad_host_input_answers_4xx_naming_the_field_and_writes_nothing(app: &TestApp) {
    let malformed = app.call_raw(Method::POST, "/v1/hosts", "{\"name\": ").await;
    expect_problem(malformed, 400, "malformed_request", None).await;
    let cases = [
        (json!({ "name": 7, "email": "a@example.com", "time_zone": "UTC" }), "/name"),
        (json!({ "name": "A", "email": "a@example.com", "time_zone": "Mars/Olympus" }), "/time_zone"),
        (json!({ "name": "A", "email": "not-an-email", "time_zone": "UTC" }), "/email"),
        (json!({ "name": "  ", "email": "a@example.com", "time_zone": "UTC" }), "/name"),
        (json!({ "name": "A", "email": "a@example.com", "time_zone": "UTC", "colour": "red" }), "/colour"),
        (json!({ "email": "a@example.com", "time_zone": "UTC" }), ""),
        (
            json!({ "name": "A", "email": "a@example.com", "time_zone": "UTC",
                    "availability": { "weekly": { "monday": [ { "start": "09:00", "end": "25:00" } ] } } }),
            "/availability/weekly/monday/0/end",
        ),
        (
            json!({ "name": "A", "email": "a@example.com", "time_zone": "UTC",
                    "availability": { "weekly": { "monday": [ { "start": "12:00", "end": "09:00" } ] } } }),
            "/availability/weekly/monday/0/end",
        ),
        (
            json!({ "name": "A", "email": "a@example.com", "time_zone": "UTC",
                    "availability": { "weekly": { "monday": [ { "start": "09:00", "end": "12:00" },
                                                             { "start": "11:00", "end": "13:00" } ] } } }),
            "/availability/weekly/monday/1",
        ),
        (
            json!({ "name": "A", "email": "a@example.com", "time_zone": "UTC",
                    "availability": { "weekly": { "funday": [] } } }),
            "/availability/weekly/funday",
        ),
    ];
    for (body, pointer) in cases {
        let response = app.call(Method::POST, "/v1/hosts", Some(body.clone())).await;
        let problem = expect_problem(response, 422, "validation_failed", None).await;
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["pointer"].as_str().unwrap().starts_with(pointer)),
            "{body} should name {pointer}: {problem}"
        );
    }

    let host = app.office_host("Ada", "Europe/London").await;
    let busy = format!("/v1/hosts/{host}/busy");
    let bad_busy = [
        (json!({ "start": "2026-12-01T11:00:00Z", "end": "2026-12-01T10:00:00Z" }), "/end"),
        (json!({ "start": "yesterday", "end": "2026-12-01T10:00:00Z" }), "/start"),
        (json!({ "start": "2026-12-01T10:00:00Z", "end": "2036-12-01T10:00:00Z" }), "/end"),
    ];
    for (body, pointer) in bad_busy {
        let response = app.call(Method::POST, &busy, Some(body)).await;
        expect_problem(response, 422, "validation_failed", Some(pointer)).await;
    }
    let bad_patch =
        app.call(Method::PATCH, &format!("/v1/hosts/{host}"), Some(json!({ "time_zone": "Mars/Olympus" }))).await;
    let problem = expect_problem(bad_patch, 422, "validation_failed", Some("/time_zone")).await;
    assert_eq!(problem["errors"][0]["detail"], "unknown time zone 'Mars/Olympus'");

    let hosts = app.expect(Method::GET, "/v1/hosts", None, 200).await;
    assert_eq!(hosts["data"].as_array().unwrap().len(), 1, "only the valid host exists");
    assert_eq!(hosts["data"][0]["time_zone"], "Europe/London");
    assert_eq!(app.expect(Method::GET, &busy, None, 200).await["data"], json!([]));
    assert_eq!(event_count(app).await, 1, "only the valid host wrote an event");
}

async fn bad_event_type_input_answers_422_naming_the_field_and_writes_nothing(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let base = event_type_body("intro", &[&host], "single");
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("duration_minutes", json!(-30)), "/duration_minutes"),
        (with("duration_minutes", json!(30.5)), "/duration_minutes"),
        (with("duration_minutes", json!(0)), "/duration_minutes"),
        (with("duration_minutes", json!(1441)), "/duration_minutes"),
        (with("duration_minutes", json!("30")), "/duration_minutes"),
        (with("slot_interval_minutes", json!(0)), "/slot_interval_minutes"),
        (with("buffer_after_minutes", json!(-1)), "/buffer_after_minutes"),
        (with("booking_window_days", json!(3651)), "/booking_window_days"),
        (with("seats", json!(0)), "/seats"),
        (with("slug", json!("Not A Slug")), "/slug"),
        (with("hosts", json!(["not-a-uuid"])), "/hosts/0"),
        (with("hosts", json!(["01934f3e-0000-7000-8000-000000000000"])), "/hosts/0"),
        (with("hosts", json!([])), "/hosts"),
        (with("hosts", json!([host, host])), "/hosts"),
        (with("assignment", json!("everyone")), "/assignment"),
        (with("questions", json!([{ "key": "email", "label": "E", "type": "text" }])), "/questions/0/key"),
        (with("questions", json!([{ "key": "size", "label": "Size", "type": "select" }])), "/questions/0/options"),
        (with("questions", json!([{ "key": "size", "label": "Size", "type": "colour" }])), "/questions/0/type"),
    ];
    for (body, pointer) in cases {
        let response = app.call(Method::POST, "/v1/event-types", Some(body.clone())).await;
        let problem = expect_problem(response, 422, "validation_failed", None).await;
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["pointer"].as_str().unwrap().starts_with(pointer)),
            "{body} should name {pointer}: {problem}"
        );
    }
    assert_eq!(app.expect(Method::GET, "/v1/event-types", None, 200).await["data"], json!([]));
    assert_eq!(event_count(app).await, 1, "only the host wrote an event");

    let id = create_event_type(app, base.clone()).await;
    let response =
        app.call(Method::PATCH, &format!("/v1/event-types/{id}"), Some(json!({ "duration_minutes": -5 }))).await;
    expect_problem(response, 422, "validation_failed", Some("/duration_minutes")).await;
    let stored = app.expect(Method::GET, &format!("/v1/event-types/{id}"), None, 200).await;
    assert_eq!(stored["duration_minutes"], 30, "a refused patch changes nothing");
}

async fn bad_slot_queries_answer_422_naming_the_parameter(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let id = create_event_type(app, event_type_body("intro", &[&host], "single")).await;
    let cases = [
        (format!("event_type_id={id}&start=2027-01-05T00:00:00Z&end=2027-01-04T00:00:00Z"), "/end"),
        (format!("event_type_id={id}&start=2027-01-04T00:00:00Z&end=2037-01-04T00:00:00Z"), "/end"),
        (format!("event_type_id={id}&start=2027-01-04T00:00:00Z&end=2027-04-07T00:00:01Z"), "/end"),
        (format!("event_type_id={id}&start=tomorrow&end=2027-01-04T00:00:00Z"), "/start"),
        ("event_type_id=nope&start=2027-01-04T00:00:00Z&end=2027-01-05T00:00:00Z".to_owned(), "/event_type_id"),
        (
            format!("event_type_id={id}&start=2027-01-04T00:00:00Z&end=2027-01-05T00:00:00Z&time_zone=Mars/Olympus"),
            "/time_zone",
        ),
        (format!("event_type_id={id}&end=2027-01-05T00:00:00Z"), ""),
    ];
    for (query, pointer) in cases {
        let response = app.call(Method::GET, &format!("/v1/slots?{query}"), None).await;
        let problem = expect_problem(response, 422, "validation_failed", None).await;
        assert!(
            problem["errors"].as_array().unwrap().iter().any(|e| e["pointer"].as_str().unwrap().starts_with(pointer)),
            "{query} should name {pointer}: {problem}"
        );
    }
    let exactly_93_days = format!("/v1/slots?event_type_id={id}&start=2027-01-04T00:00:00Z&end=2027-04-07T00:00:00Z");
    app.expect(Method::GET, &exactly_93_days, None, 200).await;
    let unknown = "/v1/slots?event_type_id=01934f3e-0000-7000-8000-000000000000&start=2027-01-04T00:00:00Z&end=2027-01-05T00:00:00Z";
    expect_problem(app.call(Method::GET, unknown, None).await, 404, "not_found", None).await;
}

async fn a_two_megabyte_body_answers_413_and_writes_nothing(app: &TestApp) {
    let huge =
        format!("{{\"name\": \"{}\", \"email\": \"a@example.com\", \"time_zone\": \"UTC\"}}", "x".repeat(2 << 20));
    let response = app.call_raw(Method::POST, "/v1/hosts", huge).await;
    expect_problem(response, 413, "payload_too_large", None).await;
    assert_eq!(app.expect(Method::GET, "/v1/hosts", None, 200).await["data"], json!([]));
    assert_eq!(event_count(app).await, 0);
}

async fn another_organizations_ids_answer_404_as_if_they_did_not_exist(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let event_type = create_event_type(app, event_type_body("intro", &[&host], "single")).await;
    let other = app.other_org_key().await;
    let slots = format!("/v1/slots?event_type_id={event_type}&start=2027-01-04T00:00:00Z&end=2027-01-05T00:00:00Z");
    let attempts = [
        (Method::GET, format!("/v1/hosts/{host}"), None),
        (Method::PATCH, format!("/v1/hosts/{host}"), Some(json!({ "name": "Mine now" }))),
        (Method::DELETE, format!("/v1/hosts/{host}"), None),
        (Method::PUT, format!("/v1/hosts/{host}/availability"), Some(json!({}))),
        (
            Method::POST,
            format!("/v1/hosts/{host}/busy"),
            Some(json!({ "start": "2027-01-04T10:00:00Z", "end": "2027-01-04T11:00:00Z" })),
        ),
        (Method::GET, format!("/v1/hosts/{host}/busy"), None),
        (Method::GET, format!("/v1/event-types/{event_type}"), None),
        (Method::PATCH, format!("/v1/event-types/{event_type}"), Some(json!({ "title": "Mine now" }))),
        (Method::DELETE, format!("/v1/event-types/{event_type}"), None),
        (Method::GET, slots.clone(), None),
    ];
    for (method, path, body) in attempts {
        let response = app.call_as(&other, method.clone(), &path, body).await;
        expect_problem(response, 404, "not_found", None).await;
    }
    let hosts_of_other = read(app.call_as(&other, Method::GET, "/v1/hosts", None).await, 200, "list").await;
    assert_eq!(hosts_of_other["data"], json!([]));
    let events_of_other = read(app.call_as(&other, Method::GET, "/v1/events", None).await, 200, "events").await;
    assert_eq!(events_of_other["data"], json!([]));
    let busy = json!({ "start": "2027-01-04T10:00:00Z", "end": "2027-01-04T11:00:00Z" });
    let with_foreign_host = event_type_body("theirs", &[&host], "single");
    let response = app.call_as(&other, Method::POST, "/v1/event-types", Some(with_foreign_host)).await;
    expect_problem(response, 422, "validation_failed", Some("/hosts/0")).await;
    let _ = busy;

    // The owner still has everything, unchanged.
    let mine = app.expect(Method::GET, &format!("/v1/hosts/{host}"), None, 200).await;
    assert_eq!(mine["name"], "Ada");
    assert_eq!(mine["availability"]["weekly"]["monday"][0]["start"], "09:00");
    assert_eq!(app.expect(Method::GET, &format!("/v1/hosts/{host}/busy"), None, 200).await["data"], json!([]));
    app.expect(Method::GET, &slots, None, 200).await;
}

async fn event_types_are_created_patched_listed_and_deleted(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let body = json!({ "slug": "intro-call", "title": "Intro call", "duration_minutes": 30,
        "slot_interval_minutes": 15, "buffer_before_minutes": 0, "buffer_after_minutes": 10,
        "min_notice_minutes": 120, "booking_window_days": 60, "reschedule_cutoff_minutes": 1440,
        "cancel_cutoff_minutes": 1440, "requires_confirmation": false, "pending_blocks": true,
        "reschedule_reason_required": false, "seats": 1, "hosts": [host], "assignment": "single",
        "questions": [ { "key": "company", "label": "Company", "type": "text", "required": false } ] });
    let created = app.expect(Method::POST, "/v1/event-types", Some(body.clone()), 201).await;
    for (field, value) in body.as_object().unwrap() {
        assert_eq!(&created[field], value, "{field} reads back as written");
    }
    let id = created["id"].as_str().unwrap();

    let minimal = app
        .expect(
            Method::POST,
            "/v1/event-types",
            Some(json!({ "slug": "quick", "title": "Quick", "duration_minutes": 20, "hosts": [host] })),
            201,
        )
        .await;
    assert_eq!(minimal["slot_interval_minutes"], 20, "interval defaults to the duration");
    assert_eq!(minimal["booking_window_days"], 60);
    assert_eq!(minimal["seats"], 1);
    assert_eq!(minimal["assignment"], "single");
    assert_eq!(minimal["pending_blocks"], true);
    assert_eq!(minimal["questions"], json!([]));

    let patched = app
        .expect(Method::PATCH, &format!("/v1/event-types/{id}"), Some(json!({ "title": "Intro", "seats": 5 })), 200)
        .await;
    assert_eq!(patched["title"], "Intro");
    assert_eq!(patched["seats"], 5);
    assert_eq!(patched["buffer_after_minutes"], 10, "fields left out stay");
    assert_eq!(patched["questions"], body["questions"]);

    let listed = app.expect(Method::GET, "/v1/event-types", None, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    assert_eq!(listed["data"][0], patched);
    app.expect(Method::DELETE, &format!("/v1/event-types/{id}"), None, 204).await;
    expect_problem(app.call(Method::GET, &format!("/v1/event-types/{id}"), None).await, 404, "not_found", None).await;
    let types: Vec<String> = app.expect(Method::GET, "/v1/events?limit=100", None, 200).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        ["host.created", "event_type.created", "event_type.created", "event_type.updated", "event_type.deleted"]
    );
}

async fn slots_follow_working_hours_notice_and_busy_blocks(app: &TestApp) {
    let host = app.office_host("Ada", "America/New_York").await;
    let id = create_event_type(app, event_type_body("intro", &[&host], "single")).await;
    let day = |t: &str| format!("{WEEKDAY}T{t}Z");
    // 09:00–17:00 New York in January is 14:00–22:00 UTC: 16 half-hour slots.
    let all = slots(app, &id, &day("00:00:00"), &day("23:59:59")).await;
    assert_eq!(all.len(), 16);
    assert_eq!(all[0]["start"], day("14:00:00"));
    assert_eq!(all[0]["end"], day("14:30:00"));
    assert_eq!(all[15]["start"], day("21:30:00"));
    assert_eq!(all[0]["hosts"], json!([host]));
    assert_eq!(all[0]["seats_left"], 1);
    assert!(all[0].get("local_start").is_none());

    app.expect(
        Method::POST,
        &format!("/v1/hosts/{host}/busy"),
        Some(json!({ "start": day("15:10:00"), "end": day("16:00:00"), "title": "Dentist" })),
        201,
    )
    .await;
    let after = slots(app, &id, &day("14:00:00"), &day("17:00:00")).await;
    assert_eq!(starts(&after), [day("14:00:00"), day("14:30:00"), day("16:00:00"), day("16:30:00")]);

    let path = format!(
        "/v1/slots?event_type_id={id}&start={}&end={}&time_zone=Asia/Kolkata",
        day("14:00:00"),
        day("14:30:00")
    );
    let local = app.expect(Method::GET, &path, None, 200).await;
    assert_eq!(local["slots"][0]["local_start"], "2027-01-04T19:30:00+05:30");
    assert_eq!(local["duration_minutes"], 30);
    assert_eq!(local["event_type_id"], id);

    // Weekends are closed; the past is never offered (notice counts from now).
    assert!(slots(app, &id, "2027-01-02T00:00:00Z", "2027-01-04T00:00:00Z").await.is_empty());
    assert!(slots(app, &id, "2020-01-06T00:00:00Z", "2020-01-07T00:00:00Z").await.is_empty());
}

async fn round_robin_lists_any_free_host_and_collective_needs_all(app: &TestApp) {
    let ada = app.office_host("Ada", "Europe/London").await;
    let bob = app.office_host("Bob", "Europe/London").await;
    let day = |t: &str| format!("{WEEKDAY}T{t}Z");
    app.expect(
        Method::POST,
        &format!("/v1/hosts/{ada}/busy"),
        Some(json!({ "start": day("09:00:00"), "end": day("10:00:00") })),
        201,
    )
    .await;
    let round_robin = create_event_type(app, event_type_body("rr", &[&ada, &bob], "round_robin")).await;
    let collective = create_event_type(app, event_type_body("team", &[&ada, &bob], "collective")).await;

    let rr = slots(app, &round_robin, &day("09:00:00"), &day("11:00:00")).await;
    assert_eq!(starts(&rr), [day("09:00:00"), day("09:30:00"), day("10:00:00"), day("10:30:00")]);
    assert_eq!(rr[0]["hosts"], json!([bob]), "only Bob is free at 09:00");
    assert_eq!(rr[2]["hosts"].as_array().unwrap().len(), 2, "both are free at 10:00");

    let team = slots(app, &collective, &day("09:00:00"), &day("11:00:00")).await;
    assert_eq!(starts(&team), [day("10:00:00"), day("10:30:00")]);
    assert_eq!(team[0]["hosts"].as_array().unwrap().len(), 2);
}

async fn list_endpoints_page_with_cursors(app: &TestApp) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.office_host(&format!("Host{i}"), "UTC").await);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/hosts?limit=2".to_owned();
    loop {
        let page = app.expect(Method::GET, &path, None, 200).await;
        seen.extend(page["data"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/hosts?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    for bad in ["limit=0", "limit=101", "limit=two", "cursor=%21%21%21"] {
        let response = app.call(Method::GET, &format!("/v1/hosts?{bad}"), None).await;
        expect_problem(response, 422, "validation_failed", None).await;
    }
}

async fn a_host_in_use_cannot_be_deleted_and_a_slug_cannot_be_taken_twice(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    create_event_type(app, event_type_body("intro", &[&host], "single")).await;
    let again = app.call(Method::POST, "/v1/event-types", Some(event_type_body("intro", &[&host], "single"))).await;
    expect_problem(again, 409, "conflict", None).await;
    let delete = app.call(Method::DELETE, &format!("/v1/hosts/{host}"), None).await;
    expect_problem(delete, 409, "conflict", None).await;
    app.expect(Method::GET, &format!("/v1/hosts/{host}"), None, 200).await;
}

async fn operations_endpoints_answer(app: &TestApp) {
    let get = |path: &str| app.client.get(format!("{}{path}", app.base)).send();
    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"), "every answer carries a request id");
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    app.expect(Method::GET, "/v1/hosts", None, 200).await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains("http_request_duration_seconds_bucket"), "{metrics}");
    assert!(metrics.contains("route=\"/v1/hosts\""), "{metrics}");

    let spec: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let documented = [
        ("/v1/hosts", ["get", "post"].as_slice()),
        ("/v1/hosts/{id}", &["get", "patch", "delete"]),
        ("/v1/hosts/{id}/availability", &["put"]),
        ("/v1/hosts/{id}/busy", &["get", "post"]),
        ("/v1/hosts/{id}/busy/{busy_id}", &["delete"]),
        ("/v1/hosts/{id}/calendars", &["get", "post"]),
        ("/v1/hosts/{id}/calendars/{calendar_id}", &["get", "patch", "delete"]),
        ("/v1/hosts/{id}/calendars/{calendar_id}/deliveries", &["get"]),
        ("/v1/hosts/{id}/calendars/google/authorize-url", &["get"]),
        ("/v1/event-types", &["get", "post"]),
        ("/v1/event-types/{id}", &["get", "patch", "delete"]),
        ("/v1/slots", &["get"]),
        ("/v1/bookings", &["get", "post"]),
        ("/v1/bookings/{id}", &["get"]),
        ("/v1/bookings/{id}/confirm", &["post"]),
        ("/v1/bookings/{id}/reject", &["post"]),
        ("/v1/bookings/{id}/cancel", &["post"]),
        ("/v1/bookings/{id}/reschedule", &["post"]),
        ("/v1/bookings/{id}/rotate-manage-token", &["post"]),
        ("/v1/bookings/{id}/ics", &["get"]),
        ("/v1/manage/{token}", &["get"]),
        ("/v1/manage/{token}/slots", &["get"]),
        ("/v1/manage/{token}/reschedule", &["post"]),
        ("/v1/manage/{token}/cancel", &["post"]),
        ("/b/{file}", &["get"]),
        ("/v1/reschedule-requests", &["post"]),
        ("/v1/webhooks", &["get", "post"]),
        ("/v1/webhooks/{id}", &["get", "patch", "delete"]),
        ("/v1/webhooks/{id}/rotate-secret", &["post"]),
        ("/v1/webhooks/{id}/test", &["post"]),
        ("/v1/webhooks/{id}/deliveries", &["get"]),
        ("/v1/webhooks/{id}/deliveries/{attempt_id}/retry", &["post"]),
        ("/v1/webhooks/{id}/replay", &["post"]),
        ("/v1/slack-channels", &["get", "post"]),
        ("/v1/slack-channels/{id}", &["get", "patch", "delete"]),
        ("/v1/slack-channels/{id}/test", &["post"]),
        ("/v1/slack-channels/{id}/deliveries", &["get"]),
        ("/v1/slack-channels/{id}/deliveries/{attempt_id}/retry", &["post"]),
        ("/v1/events", &["get"]),
    ];
    assert_eq!(spec["paths"].as_object().unwrap().len(), documented.len(), "no undocumented extra paths");
    for (path, methods) in documented {
        for method in methods {
            let operation = &spec["paths"][path][method];
            assert!(operation.is_object(), "{method} {path} is documented");
            assert!(operation["responses"]["422"].is_object(), "{method} {path} documents its problems");
        }
    }
    // Slack channels are documented under their own tag, with their types exact.
    for (path, method) in [("/v1/slack-channels", "post"), ("/v1/slack-channels/{id}/deliveries", "get")] {
        assert_eq!(spec["paths"][path][method]["tags"], serde_json::json!(["slack"]), "{method} {path}");
    }
    let channel = &spec["components"]["schemas"]["SlackChannelView"]["properties"];
    assert_eq!(channel["created_at"]["format"], "date-time", "{channel}");
    let attempt = &spec["components"]["schemas"]["DeliveryView"]["properties"];
    assert_eq!(attempt["attempted_at"]["format"], "date-time", "{attempt}");
    assert_eq!(channel["enabled"]["type"], "boolean", "{channel}");
    let docs = get("/docs").await.unwrap().text().await.unwrap();
    assert!(docs.contains("/v1/slots") && docs.contains("/openapi.json"));
}

async fn unknown_routes_and_methods_answer_problem_json(app: &TestApp) {
    expect_problem(app.call(Method::GET, "/v1/nothing-here", None).await, 404, "not_found", None).await;
    expect_problem(app.call(Method::PUT, "/v1/slots", None).await, 405, "method_not_allowed", None).await;
    let bad_id = app.call(Method::GET, "/v1/hosts/not-a-uuid", None).await;
    expect_problem(bad_id, 404, "not_found", None).await;
}

async fn a_booking_is_made_listed_rescheduled_and_cancelled(app: &TestApp) {
    let host = app.office_host("Ada", "America/New_York").await;
    let id = create_event_type(app, event_type_body("intro", &[&host], "single")).await;
    let day = |t: &str| format!("{WEEKDAY}T{t}Z");
    let body = json!({ "event_type_id": id, "start": day("14:00:00"),
        "attendee": { "name": "Grace", "email": "grace@example.com", "time_zone": "America/New_York" } });
    let booking = app.expect(Method::POST, "/v1/bookings", Some(body.clone()), 201).await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["version"], 1);
    assert_eq!(booking["hosts"][0]["id"], host.as_str());
    let again = app.call(Method::POST, "/v1/bookings", Some(body)).await;
    let problem = expect_problem(again, 409, "slot_taken", None).await;
    assert_eq!(problem["alternatives"][0]["start"], day("14:30:00"));
    assert!(!starts(&slots(app, &id, &day("00:00:00"), &day("23:59:59")).await).contains(&day("14:00:00").as_str()));
    let path = format!("/v1/bookings/{}/reschedule", booking["id"].as_str().unwrap());
    let moved =
        app.expect(Method::POST, &path, Some(json!({ "start": day("15:00:00"), "reason": "later" })), 200).await;
    assert_eq!(moved["version"], 2);
    assert_eq!(moved["history"][0]["previous_starts_at"], day("14:00:00"));
    let path = format!("/v1/bookings/{}/cancel", booking["human_id"].as_str().unwrap());
    let cancelled = app.expect(Method::POST, &path, Some(json!({ "reason": "ill" })), 200).await;
    assert_eq!(cancelled["status"], "cancelled");
    let again = app.call(Method::POST, &path, Some(json!({}))).await;
    expect_problem(again, 409, "invalid_transition", None).await;
}

async fn attendees_manage_their_booking_with_the_link_alone(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let id = create_event_type(app, event_type_body("intro", &[&host], "single")).await;
    let day = |t: &str| format!("{WEEKDAY}T{t}Z");
    let body = json!({ "event_type_id": id, "start": day("10:00:00"),
        "attendee": { "name": "Grace", "email": "grace@example.com", "time_zone": "America/New_York" } });
    let booking = app.expect(Method::POST, "/v1/bookings", Some(body), 201).await;
    let manage = booking["links"]["manage"].as_str().unwrap();
    let token = manage.rsplit('/').next().unwrap().to_owned();
    assert_eq!(manage, format!("{}/manage/{token}", app.base));
    let anonymous = |method: Method, path: String| app.client.request(method, format!("{}{path}", app.base));

    let view: Value = anonymous(Method::GET, format!("/v1/manage/{token}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(view["booking"]["id"], booking["id"]);
    assert_eq!(view["can_reschedule"], true);
    assert_eq!(view["can_cancel"], true);
    // The booking's current start is not offered as a new one; local times are the attendee's.
    let path = format!("/v1/manage/{token}/slots?start={}&end={}", day("09:30:00"), day("11:00:00"));
    let slots: Value = anonymous(Method::GET, path).send().await.unwrap().json().await.unwrap();
    assert_eq!(starts(slots["slots"].as_array().unwrap()), [day("09:30:00"), day("10:30:00")]);
    assert_eq!(slots["slots"][1]["local_start"], "2027-01-04T05:30:00-05:00");

    let moved = anonymous(Method::POST, format!("/v1/manage/{token}/reschedule"))
        .json(&json!({ "start": day("10:30:00"), "reason": "traffic" }))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    let moved: Value = moved.json().await.unwrap();
    assert_eq!(moved["history"][0]["by"], "attendee");
    assert_eq!(moved["links"]["manage"], manage, "links stay valid across changes");

    let html = anonymous(Method::GET, format!("/manage/{token}")).send().await.unwrap();
    assert_eq!(html.status(), 200);
    let html = html.text().await.unwrap();
    assert!(html.contains("Intro call") && html.contains("name=\"start\"") && html.contains("Cancel booking"));
    let cancelled = app
        .client
        .post(format!("{}/manage/{token}/cancel", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("reason=changed+my+mind")
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200, "the redirect lands on the page again");
    assert!(cancelled.text().await.unwrap().contains("has been cancelled"));
    let path = format!("/v1/bookings/{}", booking["id"].as_str().unwrap());
    let stored = app.expect(Method::GET, &path, None, 200).await;
    assert_eq!(stored["status"], "cancelled");
    assert_eq!(stored["history"][1]["reason"], "changed my mind");
    let gone = anonymous(Method::GET, format!("/v1/manage/{token}")).send().await.unwrap();
    expect_problem(gone, 410, "gone", None).await;
    let ics = anonymous(Method::GET, format!("/b/{token}.ics")).send().await.unwrap();
    assert_eq!(ics.status(), 200);
    assert!(ics.text().await.unwrap().contains("METHOD:CANCEL"));

    // A tampered or rotated token opens nothing.
    let mut tampered = token.clone().into_bytes();
    tampered[42] = if tampered[42] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let response = anonymous(Method::GET, format!("/b/{tampered}.ics")).send().await.unwrap();
    expect_problem(response, 404, "not_found", None).await;
    let path = format!("/v1/bookings/{}/rotate-manage-token", booking["id"].as_str().unwrap());
    let rotated = app.expect(Method::POST, &path, None, 200).await;
    assert_ne!(rotated["links"]["manage"], manage);
    let old = anonymous(Method::GET, format!("/b/{token}.ics")).send().await.unwrap();
    expect_problem(old, 404, "not_found", None).await;
}

async fn instants_near_the_ends_of_time_answer_422_never_5xx(app: &TestApp) {
    let host = app.office_host("Ada", "Europe/London").await;
    let id = create_event_type(app, event_type_body("intro", &[&host], "single")).await;
    for start in ["9999-12-31T23:59:59Z", "-009999-01-01T00:00:00Z", "1969-12-31T23:59:59Z"] {
        let body = json!({ "event_type_id": id, "start": start,
            "attendee": { "name": "G", "email": "g@example.com", "time_zone": "UTC" } });
        let response = app.call(Method::POST, "/v1/bookings", Some(body)).await;
        expect_problem(response, 422, "validation_failed", Some("/start")).await;
        let path = format!("/v1/slots?event_type_id={id}&start={start}&end=9999-12-31T23:59:59Z");
        let response = app.call(Method::GET, &path.replace('+', "%2B"), None).await;
        expect_problem(response, 422, "validation_failed", None).await;
    }
    let path = format!("/v1/hosts/{host}/busy");
    let response = app
        .call(Method::POST, &path, Some(json!({ "start": "9000-06-01T00:00:00Z", "end": "9000-06-02T00:00:00Z" })))
        .await;
    expect_problem(response, 422, "validation_failed", None).await;
}

async fn seats_are_counted_when_pending_seats_are_confirmed_and_per_host_for_round_robin(app: &TestApp) {
    let ada = app.office_host("Ada", "UTC").await;
    let bob = app.office_host("Bob", "UTC").await;
    let day = |t: &str| format!("{WEEKDAY}T{t}Z");
    let book = |event_type: String| {
        let body = json!({ "event_type_id": event_type, "start": day("10:00:00"),
            "attendee": { "name": "G", "email": "g@example.com", "time_zone": "UTC" } });
        app.call(Method::POST, "/v1/bookings", Some(body))
    };
    // Two seats, requests wait for confirmation and do not hold seats meanwhile.
    let mut body = event_type_body("group", &[&ada], "single");
    body["seats"] = json!(2);
    body["requires_confirmation"] = json!(true);
    body["pending_blocks"] = json!(false);
    let group = create_event_type(app, body).await;
    let mut pending = Vec::new();
    for _ in 0..3 {
        let booking = read(book(group.clone()).await, 201, "pending seat").await;
        assert_eq!(booking["status"], "pending");
        pending.push(booking["id"].as_str().unwrap().to_owned());
    }
    for id in &pending[..2] {
        app.expect(Method::POST, &format!("/v1/bookings/{id}/confirm"), None, 200).await;
    }
    let third = app.call(Method::POST, &format!("/v1/bookings/{}/confirm", pending[2]), None).await;
    expect_problem(third, 409, "slot_taken", None).await;

    // Round robin with two seats per host: a group fills before the next host opens one.
    let mut body = event_type_body("rr-group", &[&ada, &bob], "round_robin");
    body["seats"] = json!(2);
    body["slug"] = json!("rr-group");
    let rr = create_event_type(app, body).await;
    // Ada's 10:00 is taken by the confirmed group seats above (another event type): Bob only.
    let mut hosts = Vec::new();
    for _ in 0..2 {
        let booking = read(book(rr.clone()).await, 201, "round-robin seat").await;
        hosts.push(booking["hosts"][0]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(hosts, [bob.clone(), bob.clone()]);
    assert!(
        slots(app, &rr, &day("10:00:00"), &day("10:00:01")).await.is_empty(),
        "no listed slot that cannot be booked"
    );
    expect_problem(book(rr.clone()).await, 409, "slot_taken", None).await;
    // At 11:00 both are free: the first host's group fills, then the other host opens one.
    let mut hosts = Vec::new();
    for _ in 0..4 {
        let body = json!({ "event_type_id": rr, "start": day("11:00:00"),
            "attendee": { "name": "G", "email": "g@example.com", "time_zone": "UTC" } });
        let booking = app.expect(Method::POST, "/v1/bookings", Some(body), 201).await;
        hosts.push(booking["hosts"][0]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(hosts[0], hosts[1]);
    assert_eq!(hosts[2], hosts[3]);
    assert_ne!(hosts[0], hosts[2]);
}
