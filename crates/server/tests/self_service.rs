//! Self-service end to end: the operator's portal route (`POST /v1/reschedule-requests`), its
//! short-lived manage links, and attendees of different bookings racing for one free slot.
//! Both backends, a fresh database each.

#[macro_use]
mod common;

use common::{Backend, TestApp, expect_problem, spawn_app};
use jiff::{SignedDuration, Timestamp, ToSpan};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    a_reschedule_request_answers_live_slots_and_a_short_lived_link,
    a_slot_next_to_the_booking_is_offered_because_its_own_block_does_not_count,
    bad_reschedule_requests_answer_422_naming_the_field,
    reschedule_requests_for_unknown_foreign_cancelled_or_finished_bookings_say_why,
    an_expired_link_answers_410_link_expired_and_the_page_says_so_in_words,
    a_short_lived_link_never_hands_out_the_permanent_one,
    moving_a_booking_to_its_own_start_is_refused_and_changes_nothing,
    attendees_racing_for_one_slot_never_both_get_it,
);

/// The secret the test apps sign manage tokens with (see `common::spawn_app_with`).
const TEST_SECRET: &[u8] = b"test secret of at least 32 chars!";

/// A host open every day around the clock in `zone`.
async fn open_host(app: &TestApp, zone: &str) -> String {
    let day = json!([{ "start": "00:00", "end": "24:00" }]);
    let weekly = json!({ "monday": day, "tuesday": day, "wednesday": day, "thursday": day,
        "friday": day, "saturday": day, "sunday": day });
    let host = app
        .expect(
            Method::POST,
            "/v1/hosts",
            Some(json!({ "name": "Ada", "email": "ada@example.com", "time_zone": zone,
                "availability": { "weekly": weekly } })),
            201,
        )
        .await;
    host["id"].as_str().unwrap().to_owned()
}

/// A 30-minute event type every 30 minutes with 15 minutes of air after, and 2 hours' notice.
async fn event_type(app: &TestApp, host: &str, extra: Value) -> String {
    let mut body = json!({ "slug": "call", "title": "Call", "duration_minutes": 30, "slot_interval_minutes": 30,
        "buffer_after_minutes": 15, "min_notice_minutes": 120, "booking_window_days": 3650, "hosts": [host] });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let created = app.expect(Method::POST, "/v1/event-types", Some(body), 201).await;
    created["id"].as_str().unwrap().to_owned()
}

async fn book(app: &TestApp, event_type: &str, start: &str) -> Value {
    let body = json!({ "event_type_id": event_type, "start": start,
        "attendee": { "name": "Grace", "email": "grace@example.com", "time_zone": "America/New_York" } });
    app.expect(Method::POST, "/v1/bookings", Some(body), 201).await
}

/// The first free start from `/v1/slots` at least `after` from now.
async fn free_start(app: &TestApp, event_type: &str, after: SignedDuration) -> Timestamp {
    let from = Timestamp::now() + after;
    let path =
        format!("/v1/slots?event_type_id={event_type}&start={from}&end={}", from + SignedDuration::from_hours(72));
    let slots = app.expect(Method::GET, &path, None, 200).await;
    slots["slots"][0]["start"].as_str().unwrap().parse().unwrap()
}

fn token_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

fn starts(answer: &Value) -> Vec<Timestamp> {
    answer["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap().parse().unwrap()).collect()
}

async fn a_reschedule_request_answers_live_slots_and_a_short_lived_link(app: &TestApp) {
    let host = open_host(app, "Europe/London").await;
    let et = event_type(app, &host, json!({})).await;
    let start = free_start(app, &et, SignedDuration::from_hours(30)).await;
    let booking = book(app, &et, &start.to_string()).await;

    let asked_at = Timestamp::now();
    let answer = app
        .expect(Method::POST, "/v1/reschedule-requests", Some(json!({ "booking_ref": booking["human_id"] })), 200)
        .await;
    assert_eq!(answer["booking"]["id"], booking["id"]);
    assert_eq!(answer["can_reschedule"], true);
    let offered = starts(&answer);
    assert!(!offered.contains(&start), "the booking's own time is not offered");
    // From the earliest the notice allows (2 h) to 14 days ahead, every 30 minutes.
    let first = offered[0];
    assert!(first >= asked_at + SignedDuration::from_hours(2), "{first}");
    assert!(first <= asked_at + SignedDuration::from_mins(150), "{first}");
    assert!(*offered.last().unwrap() < Timestamp::now() + SignedDuration::from_hours(24 * 14));
    assert!(offered.len() > 600, "{} slots", offered.len());
    assert!(offered.windows(2).all(|w| w[0] < w[1]));
    // Local times are the attendee's by default.
    assert!(answer["slots"][0]["local_start"].as_str().unwrap().ends_with("-05:00"), "{}", answer["slots"][0]);

    // The link is short-lived (60 minutes by default) and opens the booking.
    let expires_at: Timestamp = answer["expires_at"].as_str().unwrap().parse().unwrap();
    let lifetime = expires_at.duration_since(asked_at);
    assert!(lifetime > SignedDuration::from_mins(59) && lifetime <= SignedDuration::from_mins(61), "{lifetime:?}");
    let manage_url = answer["manage_url"].as_str().unwrap();
    assert!(manage_url.starts_with(&format!("{}/manage/", app.base)), "{manage_url}");
    let token = token_of(manage_url);
    assert_ne!(manage_url, booking["links"]["manage"], "a new, short-lived link");
    let view = app.client.get(format!("{}/v1/manage/{token}", app.base)).send().await.unwrap();
    assert_eq!(view.status(), 200);
    let page = app.client.get(manage_url).send().await.unwrap();
    assert_eq!(page.status(), 200);

    // The customer picks one of the offered slots through that link; the booking moves.
    let pick = offered[10];
    let moved = app
        .client
        .post(format!("{}/v1/manage/{token}/reschedule", app.base))
        .json(&json!({ "start": pick, "reason": "picked on the portal" }))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    let stored = app.expect(Method::GET, &format!("/v1/bookings/{}", booking["id"].as_str().unwrap()), None, 200).await;
    assert_eq!(stored["starts_at"], pick.to_string());
    assert_eq!(stored["history"][0]["by"], "attendee");
    // The permanent link keeps working alongside.
    let permanent = token_of(booking["links"]["manage"].as_str().unwrap());
    let view = app.client.get(format!("{}/v1/manage/{permanent}", app.base)).send().await.unwrap();
    assert_eq!(view.status(), 200);

    // By id, with fewer days, a chosen zone and a longer link.
    let body =
        json!({ "booking_ref": booking["id"], "days": 2, "time_zone": "Asia/Kolkata", "expires_in_minutes": 1440 });
    let answer = app.expect(Method::POST, "/v1/reschedule-requests", Some(body), 200).await;
    let offered = starts(&answer);
    assert!(!offered.contains(&pick));
    assert!(*offered.last().unwrap() < Timestamp::now() + SignedDuration::from_hours(48));
    assert!(answer["slots"][0]["local_start"].as_str().unwrap().ends_with("+05:30"));
    let expires_at: Timestamp = answer["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expires_at.duration_since(Timestamp::now()) > SignedDuration::from_hours(23));
}

async fn a_slot_next_to_the_booking_is_offered_because_its_own_block_does_not_count(app: &TestApp) {
    let host = open_host(app, "UTC").await;
    let et = event_type(app, &host, json!({})).await;
    let start = free_start(app, &et, SignedDuration::from_hours(30)).await;
    let booking = book(app, &et, &start.to_string()).await;
    let next = start + SignedDuration::from_mins(30);
    // For everyone else, the 15 minutes of air after the booking block the next start.
    let path = format!("/v1/slots?event_type_id={et}&start={start}&end={}", start + 2.hours());
    let listed = app.expect(Method::GET, &path, None, 200).await;
    assert!(!starts(&listed).contains(&next));
    // For the booking itself, it is free.
    let answer =
        app.expect(Method::POST, "/v1/reschedule-requests", Some(json!({ "booking_ref": booking["id"] })), 200).await;
    assert!(starts(&answer).contains(&next));
    assert!(!starts(&answer).contains(&start));
}

async fn bad_reschedule_requests_answer_422_naming_the_field(app: &TestApp) {
    let host = open_host(app, "UTC").await;
    let et = event_type(app, &host, json!({})).await;
    let start = free_start(app, &et, SignedDuration::from_hours(30)).await;
    let booking = book(app, &et, &start.to_string()).await;
    let id = booking["id"].clone();
    for (body, pointer) in [
        (json!({ "booking_ref": id, "days": 0 }), "/days"),
        (json!({ "booking_ref": id, "days": 32 }), "/days"),
        (json!({ "booking_ref": id, "expires_in_minutes": 4 }), "/expires_in_minutes"),
        (json!({ "booking_ref": id, "expires_in_minutes": 1441 }), "/expires_in_minutes"),
        (json!({ "booking_ref": id, "time_zone": "Mars/Olympus" }), "/time_zone"),
        (json!({ "booking_ref": "" }), "/booking_ref"),
        (json!({ "booking_ref": id, "days": "two" }), "/days"),
        (json!({ "booking_ref": id, "colour": "blue" }), "/colour"),
        (json!({}), "/booking_ref"),
    ] {
        let response = app.call(Method::POST, "/v1/reschedule-requests", Some(body.clone())).await;
        expect_problem(response, 422, "validation_failed", Some(pointer)).await;
    }
    let response = app.call_raw(Method::POST, "/v1/reschedule-requests", "{not json").await;
    expect_problem(response, 400, "malformed_request", None).await;
    let anonymous = app
        .client
        .post(format!("{}/v1/reschedule-requests", app.base))
        .json(&json!({ "booking_ref": id }))
        .send()
        .await
        .unwrap();
    expect_problem(anonymous, 401, "unauthorized", None).await;
    // Nothing was written: the booking is as it was, and no event beyond its creation.
    let stored = app.expect(Method::GET, &format!("/v1/bookings/{}", id.as_str().unwrap()), None, 200).await;
    assert_eq!(stored["version"], 1);
    let events = app.expect(Method::GET, "/v1/events?type=booking.rescheduled", None, 200).await;
    assert!(events["data"].as_array().unwrap().is_empty());
}

async fn reschedule_requests_for_unknown_foreign_cancelled_or_finished_bookings_say_why(app: &TestApp) {
    let host = open_host(app, "UTC").await;
    let et = event_type(app, &host, json!({})).await;
    let start = free_start(app, &et, SignedDuration::from_hours(30)).await;
    let booking = book(app, &et, &start.to_string()).await;
    let request = |reference: &Value| json!({ "booking_ref": reference });

    for unknown in [json!("BK-AAAAAA"), json!("0190a0a0-0000-7000-8000-000000000000"), json!("nonsense")] {
        let response = app.call(Method::POST, "/v1/reschedule-requests", Some(request(&unknown))).await;
        expect_problem(response, 404, "not_found", None).await;
    }
    let other = app.other_org_key().await;
    let foreign = app.call_as(&other, Method::POST, "/v1/reschedule-requests", Some(request(&booking["id"]))).await;
    expect_problem(foreign, 404, "not_found", None).await;

    // Over: 410, naming the booking.
    let id: uuid::Uuid = booking["id"].as_str().unwrap().parse().unwrap();
    app.db.store.shift_booking_into_past_for_test(id, SignedDuration::from_hours(24 * 3)).await;
    let over = app.call(Method::POST, "/v1/reschedule-requests", Some(request(&booking["id"]))).await;
    let problem = expect_problem(over, 410, "gone", None).await;
    assert!(problem["detail"].as_str().unwrap().contains("is over"), "{problem}");

    // Cancelled: 409, saying so.
    let start = free_start(app, &et, SignedDuration::from_hours(30)).await;
    let booking = book(app, &et, &start.to_string()).await;
    let path = format!("/v1/bookings/{}/cancel", booking["id"].as_str().unwrap());
    app.expect(Method::POST, &path, Some(json!({})), 200).await;
    let cancelled = app.call(Method::POST, "/v1/reschedule-requests", Some(request(&booking["human_id"]))).await;
    let problem = expect_problem(cancelled, 409, "invalid_transition", None).await;
    assert!(problem["detail"].as_str().unwrap().contains("cancelled"), "{problem}");

    // Inside the cut-off: answered, but nothing to pick.
    let et = {
        let created = app
            .expect(
                Method::POST,
                "/v1/event-types",
                Some(json!({ "slug": "strict", "title": "Strict", "duration_minutes": 30, "hosts": [host],
                    "reschedule_cutoff_minutes": 10080, "booking_window_days": 3650 })),
                201,
            )
            .await;
        created["id"].as_str().unwrap().to_owned()
    };
    let start = free_start(app, &et, SignedDuration::from_hours(30)).await;
    let booking = book(app, &et, &start.to_string()).await;
    let answer = app.expect(Method::POST, "/v1/reschedule-requests", Some(request(&booking["id"])), 200).await;
    assert_eq!(answer["can_reschedule"], false);
    assert_eq!(answer["can_cancel"], true);
    assert!(answer["slots"].as_array().unwrap().is_empty());
}

async fn an_expired_link_answers_410_link_expired_and_the_page_says_so_in_words(app: &TestApp) {
    let host = open_host(app, "UTC").await;
    let et = event_type(app, &host, json!({})).await;
    let start = free_start(app, &et, SignedDuration::from_hours(30)).await;
    let booking = book(app, &et, &start.to_string()).await;
    let id: uuid::Uuid = booking["id"].as_str().unwrap().parse().unwrap();
    // A link minted exactly as the server mints them, whose hour ended a minute ago.
    let key = slotd_core::manage_token::ManageTokenKey::derive(TEST_SECRET);
    let expired = key.expiring_token(*id.as_bytes(), 0, Timestamp::now().as_second() - 60);
    let live = key.expiring_token(*id.as_bytes(), 0, Timestamp::now().as_second() + 60);
    let get = |path: String| app.client.get(format!("{}{path}", app.base)).send();

    assert_eq!(get(format!("/v1/manage/{live}")).await.unwrap().status(), 200);
    for path in
        [format!("/v1/manage/{expired}"), format!("/v1/manage/{expired}/slots?start={start}&end={}", start + 1.hour())]
    {
        let response = get(path).await.unwrap();
        expect_problem(response, 410, "link_expired", None).await;
    }
    let moved = app
        .client
        .post(format!("{}/v1/manage/{expired}/reschedule", app.base))
        .json(&json!({ "start": start + 1.hour() }))
        .send()
        .await
        .unwrap();
    expect_problem(moved, 410, "link_expired", None).await;
    let page = get(format!("/manage/{expired}")).await.unwrap();
    assert_eq!(page.status(), 410);
    let html = page.text().await.unwrap().to_lowercase();
    assert!(html.contains("expired"), "{html}");
    // A forged expiry is not "expired" but invalid: 404 like any bad link.
    let forged = key.expiring_token(*uuid::Uuid::now_v7().as_bytes(), 0, Timestamp::now().as_second() - 60);
    expect_problem(get(format!("/v1/manage/{forged}")).await.unwrap(), 404, "not_found", None).await;
    // Nothing moved.
    let stored = app.expect(Method::GET, &format!("/v1/bookings/{id}"), None, 200).await;
    assert_eq!(stored["version"], 1);
    // Rotating the booking's links kills short-lived ones too.
    app.expect(Method::POST, &format!("/v1/bookings/{id}/rotate-manage-token"), None, 200).await;
    expect_problem(get(format!("/v1/manage/{live}")).await.unwrap(), 404, "not_found", None).await;
}

/// Acceptance: two attendees of different bookings move into the same free slot at the same
/// moment, 50 rounds: exactly one wins each round, the other gets 409 with alternatives, and no
/// two blocking bookings of the host ever overlap.
async fn attendees_racing_for_one_slot_never_both_get_it(app: &TestApp) {
    let host = open_host(app, "UTC").await;
    let et = event_type(app, &host, json!({})).await;
    let base: Timestamp = "2027-03-01T00:00:00Z".parse().unwrap();
    let mut wins = [0usize; 2];
    for round in 0..50i64 {
        let day = base + SignedDuration::from_hours(24 * round);
        let first = book(app, &et, &(day + 1.hour()).to_string()).await;
        let second = book(app, &et, &(day + 3.hours()).to_string()).await;
        let target = day + 5.hours();
        // Each attendee gets a short-lived link from the portal, as in seed 000.
        let mut links = Vec::new();
        for booking in [&first, &second] {
            let answer = app
                .expect(
                    Method::POST,
                    "/v1/reschedule-requests",
                    Some(json!({ "booking_ref": booking["id"], "days": 1 })),
                    200,
                )
                .await;
            links.push(token_of(answer["manage_url"].as_str().unwrap()).to_owned());
        }
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let race = |token: String| {
            let (client, url, barrier) =
                (app.client.clone(), format!("{}/v1/manage/{token}/reschedule", app.base), barrier.clone());
            async move {
                barrier.wait().await;
                let response = client.post(url).json(&json!({ "start": target })).send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            }
        };
        let (a, b) = tokio::join!(race(links[0].clone()), race(links[1].clone()));
        let outcomes = [a, b];
        let winners: Vec<usize> = (0..2).filter(|&i| outcomes[i].0 == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one wins: {outcomes:?}");
        let winner = winners[0];
        wins[winner] += 1;
        let (status, problem) = &outcomes[1 - winner];
        assert_eq!(*status, 409, "round {round}: {problem}");
        assert_eq!(problem["code"], "slot_taken");
        let alternatives = problem["alternatives"].as_array().unwrap();
        assert!(!alternatives.is_empty(), "round {round}: alternatives offered");
        assert!(alternatives.iter().all(|a| a["start"] != json!(target)), "round {round}: {problem}");
        assert_eq!(outcomes[winner].1["starts_at"], target.to_string());
    }
    assert_eq!(app.db.store.count_overlapping_blocking_bookings().await.unwrap(), 0);
    assert_eq!(wins[0] + wins[1], 50);
}

async fn a_short_lived_link_never_hands_out_the_permanent_one(app: &TestApp) {
    let host = open_host(app, "UTC").await;
    let et = event_type(app, &host, json!({})).await;
    let start = free_start(app, &et, SignedDuration::from_hours(30)).await;
    let booking = book(app, &et, &start.to_string()).await;
    let permanent = token_of(booking["links"]["manage"].as_str().unwrap()).to_owned();
    let answer =
        app.expect(Method::POST, "/v1/reschedule-requests", Some(json!({ "booking_ref": booking["id"] })), 200).await;
    let short = token_of(answer["manage_url"].as_str().unwrap()).to_owned();
    let pick = starts(&answer)[3];
    let leaks = |what: &str, text: &str| {
        // iCalendar folds long lines ("\r\n "): read the text unfolded.
        let text = text.replace("\r\n ", "");
        assert!(!text.contains(&permanent), "{what} hands out the permanent token: {text}");
        assert!(text.contains(&short), "{what} carries the link it was asked with: {text}");
    };

    let view = app.client.get(format!("{}/v1/manage/{short}", app.base)).send().await.unwrap();
    leaks("GET /v1/manage", &view.text().await.unwrap());
    let ics = app.client.get(format!("{}/b/{short}.ics", app.base)).send().await.unwrap();
    assert_eq!(ics.status(), 200);
    leaks("the .ics", &ics.text().await.unwrap());
    let page = app.client.get(format!("{}/manage/{short}", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(!page.text().await.unwrap().contains(&permanent), "the page hands out the permanent token");
    // The change's answer, and its idempotent replay (the stored answer), carry the short link.
    let reschedule = || {
        app.client
            .post(format!("{}/v1/manage/{short}/reschedule", app.base))
            .header("idempotency-key", "portal-move-1")
            .json(&json!({ "start": pick }))
            .send()
    };
    let moved = reschedule().await.unwrap();
    assert_eq!(moved.status(), 200);
    leaks("the reschedule answer", &moved.text().await.unwrap());
    let replayed = reschedule().await.unwrap();
    assert_eq!(replayed.status(), 200);
    leaks("the replayed answer", &replayed.text().await.unwrap());
    // The API-key view and the webhook payload keep the permanent links.
    let stored = app.expect(Method::GET, &format!("/v1/bookings/{}", booking["id"].as_str().unwrap()), None, 200).await;
    assert_eq!(token_of(stored["links"]["manage"].as_str().unwrap()), permanent);
    let events = app.expect(Method::GET, "/v1/events?type=booking.rescheduled", None, 200).await;
    assert_eq!(token_of(events["data"][0]["data"]["links"]["manage"].as_str().unwrap()), permanent);
}

async fn moving_a_booking_to_its_own_start_is_refused_and_changes_nothing(app: &TestApp) {
    let host = open_host(app, "UTC").await;
    let et = event_type(app, &host, json!({})).await;
    let start = free_start(app, &et, SignedDuration::from_hours(30)).await;
    let booking = book(app, &et, &start.to_string()).await;
    let token = token_of(booking["links"]["manage"].as_str().unwrap()).to_owned();
    let id = booking["id"].as_str().unwrap();
    let by_attendee = app
        .client
        .post(format!("{}/v1/manage/{token}/reschedule", app.base))
        .json(&json!({ "start": start }))
        .send()
        .await
        .unwrap();
    expect_problem(by_attendee, 422, "validation_failed", Some("/start")).await;
    let by_api =
        app.call(Method::POST, &format!("/v1/bookings/{id}/reschedule"), Some(json!({ "start": start }))).await;
    expect_problem(by_api, 422, "validation_failed", Some("/start")).await;
    let stored = app.expect(Method::GET, &format!("/v1/bookings/{id}"), None, 200).await;
    assert_eq!(stored["version"], 1);
    let events = app.expect(Method::GET, "/v1/events?type=booking.rescheduled", None, 200).await;
    assert!(events["data"].as_array().unwrap().is_empty());
}
