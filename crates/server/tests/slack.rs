//! Slack channels: the `/v1/slack-channels` API (masked URLs, validation, isolation across
//! organizations and from webhook endpoints) and their messages end to end: a real worker in the
//! app's process posts booking changes to a receiver on loopback standing in for Slack, which
//! answers as each test scripts it (200, 429 with Retry-After, 410 `channel_is_archived`, 400
//! `invalid_payload`). Every test runs on SQLite and on PostgreSQL.
//!
//! Only the loopback receiver is ever contacted; `hooks.example.com` (public in the tests'
//! resolver table) is used only by apps without a delivery worker, so nothing is sent there.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::receiver::{Received, Receiver, Reply};
use common::{AppOptions, Backend, TestApp, WorkerOptions, expect_problem, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

/// The API alone (no delivery worker, private targets refused).
mod api {
    use super::*;

    on_both_backends!(
        slack_channels_are_created_read_listed_changed_and_deleted_with_the_url_masked,
        bad_slack_channel_input_answers_422_naming_the_field_and_writes_nothing,
        a_duplicate_url_conflicts_and_ids_cross_neither_organizations_nor_kinds,
    );
}

on_both_backends!(
    spawn = delivering_app;
    a_booking_change_posts_a_message_in_the_channels_zone_with_attendee_text_escaped_and_no_link,
    a_429_is_tried_again_no_sooner_than_its_retry_after,
    a_channel_slack_calls_archived_is_disabled_with_that_reason_and_gets_nothing_more,
    an_invalid_payload_answer_fails_once_without_a_retry,
    messages_to_one_channel_start_at_least_a_second_apart,
);

const WAIT: Duration = Duration::from_secs(15);

/// A Monday far ahead; hosts in Europe/London work 09:00–17:00 UTC then (no summer time).
const DAY: &str = "2027-01-04";

/// A Slack-shaped URL on a name the tests' resolver calls public (never contacted).
const PUBLIC_URL: &str = "https://hooks.example.com/services/T0SLOTD/B0TEST/secretTOKENabcd4f9Z";

/// An app whose delivery worker retries on `0,50ms,100ms` and may reach loopback.
async fn delivering_app(backend: Backend) -> TestApp {
    spawn_app_with(
        backend,
        AppOptions {
            allow_private_webhooks: true,
            worker: Some(WorkerOptions::loopback("0,50ms,100ms")),
            ..Default::default()
        },
    )
    .await
}

/// A Slack-shaped URL of the receiver.
fn slack_url(receiver: &Receiver) -> String {
    format!("http://127.0.0.1:{}/services/T0SLOTD/B0TEST/secretTOKENabcd4f9Z", receiver.port)
}

async fn channel(app: &TestApp, body: Value) -> Value {
    app.expect(Method::POST, "/v1/slack-channels", Some(body), 201).await
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("no id in {value}")).to_owned()
}

/// A London host and a 30-minute event type; answers the event type id.
async fn bookable(app: &TestApp) -> String {
    let host = app.office_host("Grace", "Europe/London").await;
    let event_type = app
        .expect(
            Method::POST,
            "/v1/event-types",
            Some(json!({ "slug": "intro", "title": "Intro call", "duration_minutes": 30,
                         "slot_interval_minutes": 30, "booking_window_days": 3650, "hosts": [host] })),
            201,
        )
        .await;
    id(&event_type)
}

/// Books `time` on [`DAY`] for an attendee called `name`.
async fn book(app: &TestApp, event_type: &str, time: &str, name: &str) -> Value {
    let body = json!({ "event_type_id": event_type, "start": format!("{DAY}T{time}:00Z"),
                       "attendee": { "name": name, "email": "ada@example.com", "time_zone": "Europe/Paris" } });
    app.expect(Method::POST, "/v1/bookings", Some(body), 201).await
}

async fn deliveries(app: &TestApp, channel: &str) -> Vec<Value> {
    let page = app.expect(Method::GET, &format!("/v1/slack-channels/{channel}/deliveries?limit=100"), None, 200).await;
    page["data"].as_array().unwrap().clone()
}

/// Waits until the channel has attempts and none pending; answers them, oldest first.
async fn settled(app: &TestApp, channel: &str) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let all = deliveries(app, channel).await;
        if !all.is_empty() && all.iter().all(|d| d["status"] != "pending") {
            return all.into_iter().rev().collect();
        }
        assert!(Instant::now() < deadline, "deliveries still pending: {all:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The header, section and fallback text of a received message.
fn texts(message: &Received) -> (String, String, String) {
    let body = message.json();
    let blocks = body["blocks"].as_array().unwrap_or_else(|| panic!("no blocks in {body}"));
    assert_eq!(blocks[0]["type"], "header", "{body}");
    assert_eq!(blocks[1]["type"], "section", "{body}");
    (
        blocks[0]["text"]["text"].as_str().unwrap().to_owned(),
        blocks[1]["text"]["text"].as_str().unwrap().to_owned(),
        body["text"].as_str().unwrap().to_owned(),
    )
}

async fn slack_channels_are_created_read_listed_changed_and_deleted_with_the_url_masked(app: &TestApp) {
    let created = channel(app, json!({ "webhook_url": PUBLIC_URL })).await;
    let masked = "https://hooks.example.com/services/T…/…/…4f9Z";
    assert_eq!(created["webhook_url"], masked);
    assert_eq!(
        created["events"],
        json!([
            "booking.requested",
            "booking.confirmed",
            "booking.rejected",
            "booking.cancelled",
            "booking.rescheduled"
        ])
    );
    assert_eq!((created["time_zone"].clone(), created["enabled"].clone()), (Value::Null, json!(true)));
    assert_eq!(created["disabled_reason"], Value::Null);
    assert!(created["created_at"].is_string() && created["updated_at"].is_string());
    let channel_id = id(&created);
    let path = format!("/v1/slack-channels/{channel_id}");
    let read = app.expect(Method::GET, &path, None, 200).await;
    assert_eq!(read, created);
    let listed = app.expect(Method::GET, "/v1/slack-channels", None, 200).await;
    assert_eq!(listed["data"], json!([created]));

    let changed = app
        .expect(
            Method::PATCH,
            &path,
            Some(json!({ "events": ["booking.cancelled", "webhook.test", "booking.cancelled"],
                         "time_zone": "Europe/London", "enabled": false })),
            200,
        )
        .await;
    assert_eq!(changed["events"], json!(["booking.cancelled", "webhook.test"]));
    assert_eq!((changed["time_zone"].clone(), changed["enabled"].clone()), (json!("Europe/London"), json!(false)));
    assert_eq!(changed["webhook_url"], masked, "unchanged");
    // Left out: unchanged; null: back to the default zone.
    let same = app.expect(Method::PATCH, &path, Some(json!({})), 200).await;
    assert_eq!(same["time_zone"], "Europe/London");
    let cleared = app.expect(Method::PATCH, &path, Some(json!({ "time_zone": null })), 200).await;
    assert_eq!(cleared["time_zone"], Value::Null);
    let moved = app
        .expect(Method::PATCH, &path, Some(json!({ "webhook_url": "https://crm.example.com/incoming/zz9Q" })), 200)
        .await;
    assert_eq!(moved["webhook_url"], "https://crm.example.com/…zz9Q");
    // The old URL is free again; the full URL is never answered.
    let again = channel(app, json!({ "webhook_url": PUBLIC_URL })).await;
    let everything = app.expect(Method::GET, "/v1/slack-channels", None, 200).await.to_string();
    assert!(!everything.contains("secretTOKEN") && !everything.contains("/incoming/"), "{everything}");
    assert!(!again.to_string().contains("secretTOKEN"));

    app.expect(Method::DELETE, &path, None, 204).await;
    expect_problem(app.call(Method::GET, &path, None).await, 404, "not_found", None).await;
    expect_problem(app.call(Method::DELETE, &path, None).await, 404, "not_found", None).await;
    let listed = app.expect(Method::GET, "/v1/slack-channels", None, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

async fn bad_slack_channel_input_answers_422_naming_the_field_and_writes_nothing(app: &TestApp) {
    let cases = [
        (json!({ "webhook_url": "ftp://hooks.example.com/services/T/B/x" }), "/webhook_url"),
        (json!({ "webhook_url": "not a url" }), "/webhook_url"),
        // Resolves to a private address: the SSRF guard refuses it (classified, never contacted).
        (json!({ "webhook_url": "https://internal.example.com/services/T/B/x" }), "/webhook_url"),
        (json!({ "webhook_url": PUBLIC_URL, "events": ["host.created"] }), "/events/0"),
        (json!({ "webhook_url": PUBLIC_URL, "events": ["booking.confirmed", "nope"] }), "/events/1"),
        (json!({ "webhook_url": PUBLIC_URL, "time_zone": "Mars/Olympus" }), "/time_zone"),
        (json!({ "webhook_url": PUBLIC_URL, "enabled": "yes" }), "/enabled"),
    ];
    for (body, pointer) in cases {
        let response = app.call(Method::POST, "/v1/slack-channels", Some(body.clone())).await;
        expect_problem(response, 422, "validation_failed", Some(pointer)).await;
    }
    for body in [json!({ "events": ["booking.confirmed"] }), json!({ "webhook_url": PUBLIC_URL, "url": "x" })] {
        let response = app.call(Method::POST, "/v1/slack-channels", Some(body)).await;
        expect_problem(response, 422, "validation_failed", None).await;
    }
    let response = app.call_raw(Method::POST, "/v1/slack-channels", "{not json").await;
    expect_problem(response, 400, "malformed_request", None).await;
    let listed = app.expect(Method::GET, "/v1/slack-channels", None, 200).await;
    assert_eq!(listed["data"], json!([]), "nothing was written");

    let created = channel(app, json!({ "webhook_url": PUBLIC_URL, "time_zone": "Asia/Tokyo" })).await;
    let path = format!("/v1/slack-channels/{}", id(&created));
    for (body, pointer) in [
        (json!({ "time_zone": "Nowhere/Land" }), "/time_zone"),
        (json!({ "events": ["booking.cancelled", "event_type.created"] }), "/events/1"),
        (json!({ "webhook_url": "http://metadata.example.com/latest" }), "/webhook_url"),
    ] {
        let response = app.call(Method::PATCH, &path, Some(body)).await;
        expect_problem(response, 422, "validation_failed", Some(pointer)).await;
    }
    assert_eq!(app.expect(Method::GET, &path, None, 200).await, created, "nothing changed");
    let response = app.call(Method::GET, "/v1/slack-channels?limit=0", None).await;
    expect_problem(response, 422, "validation_failed", Some("/limit")).await;
}

async fn a_duplicate_url_conflicts_and_ids_cross_neither_organizations_nor_kinds(app: &TestApp) {
    let created = channel(app, json!({ "webhook_url": PUBLIC_URL })).await;
    let response = app.call(Method::POST, "/v1/slack-channels", Some(json!({ "webhook_url": PUBLIC_URL }))).await;
    let problem = expect_problem(response, 409, "conflict", None).await;
    assert!(!problem.to_string().contains("secretTOKEN"), "{problem}");
    let channel_id = id(&created);

    // Channels do not count against the free plan's two webhook endpoints.
    channel(app, json!({ "webhook_url": "https://crm.example.com/services/T1/B1/other" })).await;
    let mut webhooks = Vec::new();
    for n in 0..2 {
        let body = json!({ "url": format!("https://hooks.example.com/wh/{n}") });
        webhooks.push(id(&app.expect(Method::POST, "/v1/webhooks", Some(body), 201).await));
    }
    let webhook = webhooks[0].clone();
    let listed = app.expect(Method::GET, "/v1/webhooks", None, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "only webhook endpoints: {listed}");
    let listed = app.expect(Method::GET, "/v1/slack-channels", None, 200).await;
    assert!(listed["data"].as_array().unwrap().iter().all(|c| !webhooks.contains(&id(c))));

    // A channel's id is not a webhook endpoint's, and the other way round.
    for (method, path) in [
        (Method::GET, format!("/v1/webhooks/{channel_id}")),
        (Method::PATCH, format!("/v1/webhooks/{channel_id}")),
        (Method::DELETE, format!("/v1/webhooks/{channel_id}")),
        (Method::POST, format!("/v1/webhooks/{channel_id}/test")),
        (Method::POST, format!("/v1/webhooks/{channel_id}/rotate-secret")),
        (Method::GET, format!("/v1/webhooks/{channel_id}/deliveries")),
        (Method::GET, format!("/v1/slack-channels/{webhook}")),
        (Method::PATCH, format!("/v1/slack-channels/{webhook}")),
        (Method::DELETE, format!("/v1/slack-channels/{webhook}")),
        (Method::POST, format!("/v1/slack-channels/{webhook}/test")),
        (Method::GET, format!("/v1/slack-channels/{webhook}/deliveries")),
        (Method::POST, format!("/v1/slack-channels/{webhook}/deliveries/1/retry")),
        (Method::GET, "/v1/slack-channels/not-a-uuid".to_owned()),
    ] {
        let body = (method == Method::PATCH).then(|| json!({ "enabled": false }));
        let response = app.call(method.clone(), &path, body).await;
        expect_problem(response, 404, "not_found", None).await;
    }
    // Another organization sees none of it.
    let other = app.other_org_key().await;
    for (method, path) in [
        (Method::GET, format!("/v1/slack-channels/{channel_id}")),
        (Method::PATCH, format!("/v1/slack-channels/{channel_id}")),
        (Method::DELETE, format!("/v1/slack-channels/{channel_id}")),
        (Method::POST, format!("/v1/slack-channels/{channel_id}/test")),
        (Method::GET, format!("/v1/slack-channels/{channel_id}/deliveries")),
        (Method::POST, format!("/v1/slack-channels/{channel_id}/deliveries/1/retry")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({ "enabled": false }));
        let response = app.call_as(&other, method.clone(), &path, body).await;
        expect_problem(response, 404, "not_found", None).await;
    }
    let theirs = app.call_as(&other, Method::GET, "/v1/slack-channels", None).await;
    assert_eq!(common::read(theirs, 200, "their list").await["data"], json!([]));
    // Another organization may add the same URL to its own channels.
    let response =
        app.call_as(&other, Method::POST, "/v1/slack-channels", Some(json!({ "webhook_url": PUBLIC_URL }))).await;
    assert_eq!(response.status(), 201);
    // Everything of ours is as it was.
    let ours = app.expect(Method::GET, &format!("/v1/slack-channels/{channel_id}"), None, 200).await;
    assert_eq!(ours, created);
    let webhook_now = app.expect(Method::GET, &format!("/v1/webhooks/{webhook}"), None, 200).await;
    assert_eq!(webhook_now["enabled"], true);
}

async fn a_booking_change_posts_a_message_in_the_channels_zone_with_attendee_text_escaped_and_no_link(app: &TestApp) {
    let receiver = Receiver::ok().await;
    let tokyo = Receiver::ok().await;
    let default_zone = id(&channel(app, json!({ "webhook_url": slack_url(&receiver) })).await);
    channel(
        app,
        json!({ "webhook_url": slack_url(&tokyo), "time_zone": "Asia/Tokyo",
                        "events": ["booking.rescheduled"] }),
    )
    .await;
    let event_type = bookable(app).await;
    let booking = book(app, &event_type, "10:00", "Ada <!channel> & <https://evil|x>").await;
    let manage = booking["links"]["manage"].as_str().unwrap().to_owned();
    let token = manage.rsplit('/').next().unwrap().to_owned();
    let got = receiver.wait_for(1, WAIT).await;
    let first = &got[0];
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.header("user-agent"), Some(concat!("slotd/", env!("CARGO_PKG_VERSION"))));
    assert_eq!(first.header("webhook-signature"), None, "Slack messages are not signed");
    let (header, section, text) = texts(first);
    assert_eq!(header, "Booking confirmed");
    let escaped = "Ada &lt;!channel&gt; &amp; &lt;https://evil|x&gt;";
    assert!(section.contains(escaped) && text.contains(escaped), "{section}\n{text}");
    assert!(section.contains("Confirmed for Mon 4 Jan 2027, 10:00–10:30 (Europe/London)."), "{section}");
    assert!(section.contains("*Intro call*") && section.contains("*Hosts:* Grace"), "{section}");
    assert!(section.contains(booking["human_id"].as_str().unwrap()), "{section}");
    assert!(!first.body.contains("<!channel>") && !first.body.contains("<https://evil"), "{}", first.body);
    assert!(!first.body.contains(&token) && !first.body.contains("/manage/"), "no manage link: {}", first.body);

    let path = format!("/v1/bookings/{}/reschedule", id(&booking));
    app.expect(
        Method::POST,
        &path,
        Some(json!({ "start": format!("{DAY}T14:00:00Z"), "reason": "Flight <delayed>" })),
        200,
    )
    .await;
    let got = receiver.wait_for(2, WAIT).await;
    let (header, section, _) = texts(&got[1]);
    assert_eq!(header, "Booking rescheduled");
    assert!(
        section.contains(
            "Moved by the API from Mon 4 Jan 2027, 10:00–10:30 (Europe/London) to Mon 4 Jan 2027, 14:00–14:30 \
             (Europe/London)."
        ),
        "{section}"
    );
    assert!(section.contains("*Reason:* Flight &lt;delayed&gt;"), "{section}");
    assert!(!got[1].body.contains(&token));
    // The channel with its own zone follows only reschedules, and states them in that zone.
    let in_tokyo = tokyo.wait_for(1, WAIT).await;
    let (_, section, _) = texts(&in_tokyo[0]);
    assert!(
        section.contains("from Mon 4 Jan 2027, 19:00–19:30 (Asia/Tokyo) to Mon 4 Jan 2027, 23:00–23:30 (Asia/Tokyo)"),
        "{section}"
    );

    // The test message goes to this channel only and says it is a test.
    let sent = app.expect(Method::POST, &format!("/v1/slack-channels/{default_zone}/test"), None, 202).await;
    assert_eq!(sent["event"]["type"], "webhook.test");
    assert_eq!(sent["delivery"]["trigger"], "test");
    let got = receiver.wait_for(3, WAIT).await;
    let (header, _, text) = texts(&got[2]);
    assert_eq!(header, "Test message from slotd");
    assert!(text.contains("test message"), "{text}");
    let attempts = settled(app, &default_zone).await;
    let summary: Vec<(&str, &str)> =
        attempts.iter().map(|a| (a["event_type"].as_str().unwrap(), a["status"].as_str().unwrap())).collect();
    assert_eq!(
        summary,
        vec![("booking.confirmed", "succeeded"), ("booking.rescheduled", "succeeded"), ("webhook.test", "succeeded")]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tokyo.received().len(), 1, "the test message went to its channel only");
}

async fn a_429_is_tried_again_no_sooner_than_its_retry_after(app: &TestApp) {
    let receiver = Receiver::scripted(|n| match n {
        0 => Reply::status(429).header("retry-after", "2"),
        _ => Reply::status(200),
    })
    .await;
    let channel_id = id(&channel(app, json!({ "webhook_url": slack_url(&receiver) })).await);
    let event_type = bookable(app).await;
    book(app, &event_type, "10:00", "Ada").await;
    book(app, &event_type, "11:00", "Bob").await;
    let got = receiver.wait_for(3, WAIT).await;
    // The schedule says 50 ms; Slack's Retry-After of 2 s wins (less at most the clock's
    // rounding), for the message that met the 429 and for the channel's next one alike.
    for later in &got[1..] {
        let gap = later.at - got[0].at;
        assert!(gap >= Duration::from_millis(1900), "Retry-After not honoured: {gap:?}");
    }
    assert!(got[1..].iter().any(|later| later.body == got[0].body), "the same message again");
    let attempts = settled(app, &channel_id).await;
    let mut summary: Vec<(&str, Option<u64>)> =
        attempts.iter().map(|a| (a["status"].as_str().unwrap(), a["response_status"].as_u64())).collect();
    summary.sort();
    assert_eq!(summary, vec![("failed", Some(429)), ("succeeded", Some(200)), ("succeeded", Some(200))]);
    assert_eq!(attempts.iter().filter(|a| a["trigger"] == "retry").count(), 1);
}

async fn a_channel_slack_calls_archived_is_disabled_with_that_reason_and_gets_nothing_more(app: &TestApp) {
    let receiver = Receiver::scripted(|_| Reply { body: "channel_is_archived".into(), ..Reply::status(410) }).await;
    let watcher = Receiver::ok().await;
    let channel_id = id(&channel(app, json!({ "webhook_url": slack_url(&receiver) })).await);
    app.expect(Method::POST, "/v1/webhooks", Some(json!({ "url": watcher.url, "events": ["webhook.disabled"] })), 201)
        .await;
    let event_type = bookable(app).await;
    book(app, &event_type, "10:00", "Ada").await;
    let attempts = settled(app, &channel_id).await;
    assert_eq!(attempts.len(), 1, "not retried: {attempts:#?}");
    assert_eq!((attempts[0]["status"].as_str(), attempts[0]["response_status"].as_u64()), (Some("failed"), Some(410)));
    assert_eq!(attempts[0]["response_body"], "channel_is_archived");
    let now = app.expect(Method::GET, &format!("/v1/slack-channels/{channel_id}"), None, 200).await;
    assert_eq!((now["enabled"].clone(), now["disabled_reason"].clone()), (json!(false), json!("channel_is_archived")));
    // Later events queue nothing for it, and a retry is refused until it is enabled again.
    book(app, &event_type, "11:00", "Grace").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(deliveries(app, &channel_id).await.len(), 1);
    assert_eq!(receiver.received().len(), 1);
    let failed = attempts[0]["id"].as_str().unwrap();
    let response =
        app.call(Method::POST, &format!("/v1/slack-channels/{channel_id}/deliveries/{failed}/retry"), None).await;
    let problem = expect_problem(response, 409, "conflict", None).await;
    assert!(problem["detail"].as_str().unwrap().contains("channel_is_archived"), "{problem}");
    // A Slack channel's end is shown on the channel, not announced as a webhook endpoint's.
    assert!(watcher.received().is_empty());
    let enabled = app
        .expect(Method::PATCH, &format!("/v1/slack-channels/{channel_id}"), Some(json!({ "enabled": true })), 200)
        .await;
    assert_eq!(enabled["disabled_reason"], Value::Null);
}

async fn an_invalid_payload_answer_fails_once_without_a_retry(app: &TestApp) {
    let receiver = Receiver::scripted(|_| Reply { body: "invalid_payload".into(), ..Reply::status(400) }).await;
    let channel_id = id(&channel(app, json!({ "webhook_url": slack_url(&receiver) })).await);
    let event_type = bookable(app).await;
    book(app, &event_type, "10:00", "Ada").await;
    let attempts = settled(app, &channel_id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let attempts_later = deliveries(app, &channel_id).await;
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(attempts_later.len(), 1, "no retry attempt: {attempts_later:#?}");
    assert_eq!((attempts[0]["status"].as_str(), attempts[0]["response_status"].as_u64()), (Some("failed"), Some(400)));
    assert_eq!(receiver.received().len(), 1);
    let now = app.expect(Method::GET, &format!("/v1/slack-channels/{channel_id}"), None, 200).await;
    assert_eq!(now["enabled"], true, "our bug does not disable the channel");
    // It can still be tried again by hand.
    let failed = attempts[0]["id"].as_str().unwrap();
    let queued = app
        .expect(Method::POST, &format!("/v1/slack-channels/{channel_id}/deliveries/{failed}/retry"), None, 202)
        .await;
    assert_eq!(queued["trigger"], "manual");
    receiver.wait_for(2, WAIT).await;
}

async fn messages_to_one_channel_start_at_least_a_second_apart(app: &TestApp) {
    let receiver = Receiver::ok().await;
    let other = Receiver::ok().await;
    let channel_id = id(&channel(app, json!({ "webhook_url": slack_url(&receiver) })).await);
    let event_type = bookable(app).await;
    for time in ["10:00", "11:00", "12:00"] {
        book(app, &event_type, time, "Ada").await;
    }
    // A second channel is paced on its own: its first message does not wait for the first's.
    let started = Instant::now();
    let other_id = id(&channel(app, json!({ "webhook_url": slack_url(&other) })).await);
    app.expect(Method::POST, &format!("/v1/slack-channels/{other_id}/test"), None, 202).await;
    other.wait_for(1, Duration::from_secs(1)).await;
    assert!(started.elapsed() < Duration::from_millis(900), "{:?}", started.elapsed());
    let got = receiver.wait_for(3, WAIT).await;
    for pair in got.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(950), "messages {gap:?} apart");
    }
    assert_eq!(settled(app, &channel_id).await.len(), 3);
}
