//! Seed 000 as one test: a customer reschedules from the operator's portal. The portal asks for
//! the booking's live slots and a short-lived link (`POST /v1/reschedule-requests`), the customer
//! picks a slot and commits it through the manage route (re-checked at commit), the booking row
//! moves, `booking.rescheduled` is delivered signed (verified by the official `standardwebhooks`
//! library), and the team's Slack channel gets a message with the change in blocks.
//!
//! Both receivers are on 127.0.0.1.

#[macro_use]
mod common;

use std::time::Duration;

use common::receiver::Receiver;
use common::verify::verify_with_library;
use common::{AppOptions, Backend, TestApp, WorkerOptions, spawn_app_with};
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::json;

on_both_backends!(spawn = app; a_customer_reschedules_from_the_portal_and_the_team_hears_in_slack);

async fn app(backend: Backend) -> TestApp {
    let options = AppOptions {
        allow_private_webhooks: true,
        worker: Some(WorkerOptions::loopback("0,50ms")),
        ..Default::default()
    };
    spawn_app_with(backend, options).await
}

async fn a_customer_reschedules_from_the_portal_and_the_team_hears_in_slack(app: &TestApp) {
    // The operator's setup: a host in London, a 45-minute consultation, a webhook for the
    // operator's database, and the team's Slack channel.
    let host = app.office_host("Ada", "Europe/London").await;
    let et = app
        .expect(
            Method::POST,
            "/v1/event-types",
            Some(json!({ "slug": "consultation", "title": "Consultation", "duration_minutes": 45,
                "slot_interval_minutes": 15, "min_notice_minutes": 60, "hosts": [host] })),
            201,
        )
        .await;
    let et = et["id"].as_str().unwrap().to_owned();
    let database = Receiver::ok().await;
    let webhook = app
        .expect(
            Method::POST,
            "/v1/webhooks",
            Some(json!({ "url": database.url, "description": "operator database", "events": ["booking.rescheduled"] })),
            201,
        )
        .await;
    let secret = webhook["secret"].as_str().unwrap().to_owned();
    let slack = Receiver::ok().await;
    let channel = app
        .expect(
            Method::POST,
            "/v1/slack-channels",
            Some(json!({ "webhook_url": format!("{}/services/T000/B000/abcdefgh4f9Z", slack.url),
                "events": ["booking.rescheduled"], "time_zone": "Europe/London" })),
            201,
        )
        .await;
    assert!(!channel["webhook_url"].as_str().unwrap().contains("abcdefgh"), "masked: {channel}");

    // A customer's existing booking, two days out.
    let from = Timestamp::now() + SignedDuration::from_hours(48);
    let path = format!("/v1/slots?event_type_id={et}&start={from}&end={}", from + SignedDuration::from_hours(24 * 7));
    let listed = app.expect(Method::GET, &path, None, 200).await;
    let original = listed["slots"][0]["start"].as_str().unwrap().to_owned();
    let booking = app
        .expect(
            Method::POST,
            "/v1/bookings",
            Some(json!({ "event_type_id": et, "start": original,
                "attendee": { "name": "Grace <!channel>", "email": "grace@example.com", "time_zone": "America/New_York" } })),
            201,
        )
        .await;
    let id = booking["id"].as_str().unwrap().to_owned();
    let human_id = booking["human_id"].as_str().unwrap().to_owned();

    // 1. The portal's "manage my appointment" asks slotd for the booking by its human id.
    let request =
        app.expect(Method::POST, "/v1/reschedule-requests", Some(json!({ "booking_ref": human_id })), 200).await;
    assert_eq!(request["booking"]["id"], id.as_str());
    let offered: Vec<&str> =
        request["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap()).collect();
    assert!(!offered.is_empty() && !offered.contains(&original.as_str()));
    let manage_url = request["manage_url"].as_str().unwrap();
    let token = manage_url.rsplit('/').next().unwrap();

    // 2. The customer picks a slot a day later than the original; it is re-checked at commit.
    let original_at: Timestamp = original.parse().unwrap();
    let pick = *offered
        .iter()
        .find(|s| s.parse::<Timestamp>().unwrap() >= original_at + SignedDuration::from_hours(24))
        .expect("a slot a day later");
    let moved = app
        .client
        .post(format!("{}/v1/manage/{token}/reschedule", app.base))
        .json(&json!({ "start": pick, "reason": "Flight delayed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);

    // 3. The booking row moved (same booking, version 2, history says who and why).
    let stored = app.expect(Method::GET, &format!("/v1/bookings/{id}"), None, 200).await;
    assert_eq!(stored["starts_at"], pick);
    assert_eq!(stored["version"], 2);
    assert_eq!(stored["history"][0]["by"], "attendee");
    assert_eq!(stored["history"][0]["previous_starts_at"], original.as_str());

    // 4. The operator's handler gets booking.rescheduled, signed; the official library agrees.
    let delivered = database.wait_for(1, Duration::from_secs(10)).await;
    let event = delivered[0].json();
    assert_eq!(event["type"], "booking.rescheduled");
    assert_eq!(event["data"]["id"], id.as_str());
    assert_eq!(event["data"]["starts_at"], pick);
    assert_eq!(event["data"]["reschedule"]["previous_starts_at"], original.as_str());
    assert_eq!(event["data"]["reschedule"]["reason"], "Flight delayed");
    assert_eq!(verify_with_library(&delivered, &[&secret]).await, vec![vec!["ok"]]);

    // 5. The team hears about it in Slack: blocks with the change in words, times in London,
    // the attendee's name escaped, and never the customer's manage link.
    let messages = slack.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 1, "one message for one change");
    let message = messages[0].json();
    let body = messages[0].body.as_str();
    assert!(message["text"].as_str().is_some_and(|t| t.contains(&human_id)), "{message}");
    let blocks = message["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[0]["text"]["text"].as_str().unwrap().to_lowercase().contains("rescheduled"), "{message}");
    let london = |t: &str| t.parse::<Timestamp>().unwrap().to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap());
    for time in [london(&original), london(pick)] {
        assert!(body.contains(&time.strftime("%H:%M").to_string()), "{} in {message}", time.strftime("%H:%M"));
    }
    assert!(body.contains("Flight delayed") && body.contains(&human_id), "{message}");
    assert!(body.contains("&lt;!channel&gt;") && !body.contains("<!channel>"), "escaped: {message}");
    assert!(!body.contains(token) && !body.contains("/manage/"), "no manage link: {message}");
    assert!(!body.contains(booking["links"]["manage"].as_str().unwrap().rsplit('/').next().unwrap()));
}
