//! Webhook delivery end to end: a real worker in the app's process POSTs to receivers on
//! loopback. Signatures are checked by the official `standardwebhooks` Python library (from
//! `SLOTD_TEST_PYTHON`, installed by scripts/test), retries run on a millisecond schedule,
//! 410 and Retry-After are honoured, receivers that misbehave are recorded as failed attempts,
//! and the SSRF guard refuses at delivery time before connecting.
//!
//! Every receiver is on 127.0.0.1. Names in the resolver tables that map to other addresses
//! are only ever classified, never connected to.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::receiver::{Received, Receiver, Reply};
use common::{AppOptions, Backend, TestApp, WorkerOptions, expect_problem, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_backends!(
    spawn = app;
    deliveries_verify_with_the_standardwebhooks_library_also_during_rotation,
    attempts_follow_the_schedule_until_success,
    attempts_stop_after_the_schedule_and_can_be_retried_by_hand,
    a_410_disables_the_endpoint_and_announces_it,
    retry_after_is_honoured_within_the_schedule,
    receivers_that_misbehave_fail_their_attempt_with_a_clear_error,
    a_binary_answer_is_stored_as_text,
    a_test_event_goes_to_one_endpoint_and_deliveries_are_listed_and_filtered,
    a_replay_sends_the_events_since_an_instant_again_with_their_ids,
    delivery_routes_refuse_bad_input_and_other_organizations,
);

const SCHEDULE: &str = "0,50ms,100ms";
const WAIT: Duration = Duration::from_secs(10);

/// An app whose delivery worker runs on the millisecond schedule `0,50ms,100ms` with a 2 s time
/// limit and may reach loopback, for a growth organization (no endpoint limit).
async fn app(backend: Backend) -> TestApp {
    spawn_app_with(
        backend,
        AppOptions {
            allow_private_webhooks: true,
            worker: Some(WorkerOptions::loopback(SCHEDULE)),
            plan: Some(slotd_store::Plan::Growth),
            ..Default::default()
        },
    )
    .await
}

/// Creates an endpoint for `url` (all events unless `events`); answers (id, secret).
async fn endpoint(app: &TestApp, url: &str, events: Option<Vec<&str>>) -> (String, String) {
    let mut body = json!({ "url": url, "description": "test receiver" });
    if let Some(events) = events {
        body["events"] = json!(events);
    }
    let created = app.expect(Method::POST, "/v1/webhooks", Some(body), 201).await;
    (created["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
}

/// Makes one `host.created` event; answers the host id.
async fn host_event(app: &TestApp, name: &str) -> String {
    let host = app
        .expect(
            Method::POST,
            "/v1/hosts",
            Some(
                json!({ "name": name, "email": "h@example.com", "time_zone": "UTC", "availability": { "weekly": {} } }),
            ),
            201,
        )
        .await;
    host["id"].as_str().unwrap().to_owned()
}

async fn deliveries(app: &TestApp, endpoint: &str, query: &str) -> Vec<Value> {
    let page = app.expect(Method::GET, &format!("/v1/webhooks/{endpoint}/deliveries{query}"), None, 200).await;
    page["data"].as_array().unwrap().clone()
}

/// Waits until the endpoint has no pending attempt; answers its attempts, oldest first.
async fn settled(app: &TestApp, endpoint: &str) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let all = deliveries(app, endpoint, "?limit=100").await;
        if !all.is_empty() && all.iter().all(|d| d["status"] != "pending") {
            return all.into_iter().rev().collect();
        }
        assert!(Instant::now() < deadline, "deliveries still pending: {all:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn python() -> String {
    std::env::var("SLOTD_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").to_owned())
}

/// Verifies each delivery with `standardwebhooks.Webhook(secret).verify(body, headers)` for each
/// secret; answers, per delivery, per secret, "ok" or the library's error.
async fn verify_with_library(deliveries: &[Received], secrets: &[&str]) -> Vec<Vec<String>> {
    const VERIFIER: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
cases = json.load(sys.stdin)
out = []
for case in cases:
    row = []
    for secret in case["secrets"]:
        try:
            Webhook(secret).verify(case["body"], case["headers"])
            row.append("ok")
        except Exception as e:
            row.append(type(e).__name__ + ": " + str(e))
    out.append(row)
print(json.dumps(out))
"#;
    let cases: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            let headers: HashMap<&str, &str> = d.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            json!({ "body": d.body, "headers": headers, "secrets": secrets })
        })
        .collect();
    let python = python();
    let mut child = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(VERIFIER)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} ({e}): run scripts/test (it installs standardwebhooks into .venv) or set SLOTD_TEST_PYTHON")
        });
    child.stdin.take().unwrap().write_all(serde_json::to_string(&cases).unwrap().as_bytes()).await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "the standardwebhooks verifier failed (run scripts/test if the module is missing): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn deliveries_verify_with_the_standardwebhooks_library_also_during_rotation(app: &TestApp) {
    let receiver = Receiver::ok().await;
    let (id, old_secret) = endpoint(app, &receiver.url, None).await;
    host_event(app, "Ada").await;
    let first = receiver.wait_for(1, WAIT).await;
    let d = &first[0];
    assert_eq!(d.header("content-type"), Some("application/json"));
    assert_eq!(d.header("user-agent"), Some(concat!("slotd/", env!("CARGO_PKG_VERSION"))));
    let envelope = d.json();
    assert_eq!(envelope["type"], "host.created");
    assert_eq!(envelope["data"]["name"], "Ada");
    assert_eq!(d.header("webhook-id"), envelope["id"].as_str(), "webhook-id is the event id");
    let events = app.expect(Method::GET, "/v1/events?type=host.created", None, 200).await;
    assert_eq!(events["data"][0], envelope, "the delivered envelope is the event log's");
    let sent_at: i64 = d.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!((sent_at - jiff::Timestamp::now().as_second()).abs() <= 5);
    assert_eq!(verify_with_library(&first, &[&old_secret]).await, vec![vec!["ok"]]);

    let rotated = app.expect(Method::POST, &format!("/v1/webhooks/{id}/rotate-secret"), None, 200).await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    host_event(app, "Grace").await;
    let both = receiver.wait_for(2, WAIT).await;
    let during_grace = &both[1..];
    assert_eq!(during_grace[0].header("webhook-signature").unwrap().split(' ').count(), 2, "two signatures in grace");
    assert_eq!(
        verify_with_library(during_grace, &[&new_secret, &old_secret]).await,
        vec![vec!["ok", "ok"]],
        "both the new and the rotated-out secret verify during the grace period"
    );
    // A secret that was never the endpoint's does not verify.
    let stranger = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let verdict = verify_with_library(during_grace, &[stranger]).await;
    assert!(verdict[0][0].contains("No matching signature"), "{verdict:?}");
}

async fn attempts_follow_the_schedule_until_success(app: &TestApp) {
    // Fails twice, then takes it: attempts 1 and 2 fail, 3 succeeds, in order, ~50 and ~100 ms apart.
    let receiver = Receiver::scripted(|n| if n < 2 { Reply::status(500) } else { Reply::status(204) }).await;
    let (id, _) = endpoint(app, &receiver.url, Some(vec!["host.created"])).await;
    host_event(app, "Ada").await;
    let got = receiver.wait_for(3, WAIT).await;
    let ids: Vec<_> = got.iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "every attempt carries the same webhook-id: {ids:?}");
    // The schedule's delays with −10 % jitter at most.
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(gap1 >= Duration::from_millis(45), "second attempt after {gap1:?}");
    assert!(gap2 >= Duration::from_millis(90), "third attempt after {gap2:?}");
    let attempts = settled(app, &id).await;
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| (a["attempt"].as_i64().unwrap(), a["trigger"].as_str().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(summary, vec![(1, "event", "failed"), (2, "retry", "failed"), (3, "retry", "succeeded")]);
    assert_eq!(attempts[0]["response_status"], 500);
    assert_eq!(attempts[0]["error"], "HTTP 500 Internal Server Error");
    assert_eq!(attempts[2]["response_status"], 204);
    assert!(attempts.iter().all(|a| a["duration_ms"].is_u64() && a["attempted_at"].is_string()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 3, "nothing more after the success");
}

async fn attempts_stop_after_the_schedule_and_can_be_retried_by_hand(app: &TestApp) {
    let fail_until = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let failing = fail_until.clone();
    let receiver = Receiver::scripted(move |_| {
        if failing.load(std::sync::atomic::Ordering::SeqCst) { Reply::status(502) } else { Reply::status(200) }
    })
    .await;
    let (id, _) = endpoint(app, &receiver.url, None).await;
    host_event(app, "Ada").await;
    let attempts = settled(app, &id).await;
    assert_eq!(attempts.len(), 3, "the schedule has three attempts: {attempts:#?}");
    assert!(attempts.iter().all(|a| a["status"] == "failed"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 3, "no fourth automatic attempt");
    // A succeeded attempt cannot be retried; the last failed one can, once.
    let last = attempts[2]["id"].as_str().unwrap().to_owned();
    fail_until.store(false, std::sync::atomic::Ordering::SeqCst);
    let queued = app.expect(Method::POST, &format!("/v1/webhooks/{id}/deliveries/{last}/retry"), None, 202).await;
    assert_eq!(queued["attempt"], 4);
    assert_eq!(queued["trigger"], "manual");
    let after = settled(app, &id).await;
    assert_eq!(after.last().unwrap()["status"], "succeeded");
    let succeeded = after.last().unwrap()["id"].as_str().unwrap().to_owned();
    let response = app.call(Method::POST, &format!("/v1/webhooks/{id}/deliveries/{succeeded}/retry"), None).await;
    expect_problem(response, 409, "conflict", None).await;
    let got = receiver.received();
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].header("webhook-id"), got[0].header("webhook-id"));
}

async fn a_410_disables_the_endpoint_and_announces_it(app: &TestApp) {
    let gone = Receiver::scripted(|_| Reply::status(410)).await;
    let watcher = Receiver::ok().await;
    let (gone_id, _) = endpoint(app, &gone.url, Some(vec!["host.created"])).await;
    let (_, _) = endpoint(app, &watcher.url, Some(vec!["webhook.disabled"])).await;
    host_event(app, "Ada").await;
    let notice = watcher.wait_for(1, WAIT).await;
    let notice = notice[0].json();
    assert_eq!(notice["type"], "webhook.disabled");
    assert_eq!(notice["data"]["id"], gone_id.as_str());
    assert_eq!(notice["data"]["reason"], "gone");
    let attempts = settled(app, &gone_id).await;
    assert_eq!(attempts.len(), 1, "410 is not retried: {attempts:#?}");
    assert_eq!(attempts[0]["response_status"], 410);
    let endpoint_now = app.expect(Method::GET, &format!("/v1/webhooks/{gone_id}"), None, 200).await;
    assert_eq!(endpoint_now["enabled"], false);
    assert_eq!(endpoint_now["disabled_reason"], "gone");
    // Disabled: new events do not go there, and a retry or replay is refused until it is enabled.
    host_event(app, "Grace").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gone.received().len(), 1);
    let failed = attempts[0]["id"].as_str().unwrap();
    let response = app.call(Method::POST, &format!("/v1/webhooks/{gone_id}/deliveries/{failed}/retry"), None).await;
    let problem = expect_problem(response, 409, "conflict", None).await;
    assert!(problem["detail"].as_str().unwrap().contains("410"), "{problem}");
    let enabled =
        app.expect(Method::PATCH, &format!("/v1/webhooks/{gone_id}"), Some(json!({ "enabled": true })), 200).await;
    assert_eq!(enabled["disabled_reason"], Value::Null);
}

async fn retry_after_is_honoured_within_the_schedule(app: &TestApp) {
    // The schedule's longest wait is 100 ms, so a Retry-After of 1 s is capped there, and the
    // next attempt waits that long rather than the 50 ms the schedule says.
    let receiver = Receiver::scripted(|n| match n {
        0 => Reply::status(503).header("retry-after", "1"),
        _ => Reply::status(200),
    })
    .await;
    let (id, _) = endpoint(app, &receiver.url, None).await;
    host_event(app, "Ada").await;
    let got = receiver.wait_for(2, WAIT).await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(95), "Retry-After (capped at 100 ms) not honoured: {gap:?}");
    let attempts = settled(app, &id).await;
    assert_eq!(attempts[0]["response_status"], 503);
    assert_eq!(attempts[1]["status"], "succeeded");
}

/// A raw TCP receiver on loopback that does `behaviour` with each connection.
async fn raw_receiver(behaviour: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                match behaviour {
                    "garbage" => {
                        let _ = socket.write_all(b"this is not HTTP at all\r\n\r\n").await;
                    }
                    "reset" => {
                        let _ = socket.set_zero_linger();
                        drop(socket);
                        return;
                    }
                    "hang" => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    "huge" => {
                        // A 100 MB answer announced up front.
                        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 104857600\r\n\r\n").await;
                        let chunk = vec![b'x'; 65536];
                        for _ in 0..1600 {
                            if socket.write_all(&chunk).await.is_err() {
                                break;
                            }
                        }
                    }
                    "huge-chunked" => {
                        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").await;
                        let chunk = vec![b'x'; 65536];
                        for _ in 0..1600 {
                            let head = format!("{:x}\r\n", chunk.len());
                            if socket.write_all(head.as_bytes()).await.is_err()
                                || socket.write_all(&chunk).await.is_err()
                                || socket.write_all(b"\r\n").await.is_err()
                            {
                                break;
                            }
                        }
                    }
                    "binary" => {
                        // A success whose answer has a NUL byte and bytes that are not UTF-8.
                        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nok\0\xff\xfe!").await;
                    }
                    "redirect" => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/elsewhere\r\ncontent-length: 0\r\n\r\n")
                            .await;
                    }
                    _ => unreachable!(),
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/hooks")
}

async fn receivers_that_misbehave_fail_their_attempt_with_a_clear_error(app: &TestApp) {
    let cases = [
        ("garbage", "the request failed"),
        ("reset", ""),
        ("hang", "timed out"),
        ("huge", "larger than 64 KiB"),
        ("huge-chunked", "larger than 64 KiB"),
        ("redirect", "redirect to http://127.0.0.1:1/elsewhere not followed"),
    ];
    let mut endpoints = Vec::new();
    for (behaviour, _) in cases {
        let (id, _) = endpoint(app, &raw_receiver(behaviour).await, Some(vec!["host.created"])).await;
        endpoints.push(id);
    }
    let started = Instant::now();
    host_event(app, "Ada").await;
    for ((behaviour, expected), id) in cases.iter().zip(&endpoints) {
        let attempts = settled(app, id).await;
        let first = &attempts[0];
        assert_eq!(first["status"], "failed", "{behaviour}: {first:#}");
        let error = first["error"].as_str().unwrap_or_else(|| panic!("{behaviour}: no error in {first:#}"));
        assert!(!error.is_empty() && error.contains(expected), "{behaviour}: {error}");
        assert_eq!(attempts.len(), 3, "{behaviour} is retried on the schedule");
    }
    // The three hanging attempts were cut at the 2 s limit, not waited out.
    assert!(started.elapsed() < Duration::from_secs(9), "took {:?}", started.elapsed());
    // The worker is unharmed: a healthy endpoint still gets the next event at once.
    let healthy = Receiver::ok().await;
    endpoint(app, &healthy.url, Some(vec!["host.created"])).await;
    host_event(app, "Grace").await;
    healthy.wait_for(1, Duration::from_secs(2)).await;
}

async fn a_binary_answer_is_stored_as_text(app: &TestApp) {
    let (id, _) = endpoint(app, &raw_receiver("binary").await, None).await;
    host_event(app, "Ada").await;
    let attempts = settled(app, &id).await;
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(attempts[0]["status"], "succeeded");
    assert_eq!(attempts[0]["response_body"], "ok\u{FFFD}\u{FFFD}\u{FFFD}!");
}

#[tokio::test]
async fn the_guard_refuses_loopback_targets_at_delivery_before_connecting() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        // The API accepts loopback URLs here (as if the names had resolved to public addresses
        // when the endpoints were made: DNS rebinding), but the worker's guard is on, and its
        // resolver says `loopback.example.com` is 127.0.0.1, where a live receiver listens.
        let mut hosts = common::test_hosts();
        hosts.insert("loopback.example.com".into(), vec!["127.0.0.1".parse().unwrap()]);
        let worker = WorkerOptions {
            allow_private: false,
            resolver: slotd::ssrf::Resolver::Static(Arc::new(hosts)),
            ..WorkerOptions::loopback("0")
        };
        let app = spawn_app_with(
            backend,
            AppOptions { allow_private_webhooks: true, worker: Some(worker), ..Default::default() },
        )
        .await;
        let receiver = Receiver::ok().await;
        let urls = [
            format!("http://127.0.0.1:{}/hooks", receiver.port),
            format!("http://loopback.example.com:{}/hooks", receiver.port),
        ];
        let mut endpoints = Vec::new();
        for url in &urls {
            endpoints.push(endpoint(&app, url, None).await.0);
        }
        host_event(&app, "Ada").await;
        for (url, id) in urls.iter().zip(&endpoints) {
            let attempts = settled(&app, id).await;
            assert_eq!(attempts.len(), 1, "{url}: {attempts:#?}");
            let error = attempts[0]["error"].as_str().unwrap();
            assert!(error.contains("refused by the SSRF guard") && error.contains("127.0.0.1"), "{url}: {error}");
            assert_eq!(attempts[0]["response_status"], Value::Null);
        }
        assert!(receiver.received().is_empty(), "{backend:?}: the guard refused before connecting");
        app.stop().await;
    }
    // The same sender with the guard lifted does reach the receiver, so the refusal was the guard's.
    let receiver = Receiver::ok().await;
    let open = slotd::delivery::Sender::new(
        slotd::ssrf::Resolver::Static(Arc::new(common::test_hosts())),
        true,
        Duration::from_secs(2),
    );
    let (response, _) = open.post(&receiver.url, &[], "{}".into()).await;
    assert!(response.succeeded, "{response:?}");
    assert_eq!(receiver.received().len(), 1);
}

async fn a_test_event_goes_to_one_endpoint_and_deliveries_are_listed_and_filtered(app: &TestApp) {
    let first = Receiver::ok().await;
    let second = Receiver::ok().await;
    let (first_id, _) = endpoint(app, &first.url, None).await;
    endpoint(app, &second.url, None).await;
    let sent = app.expect(Method::POST, &format!("/v1/webhooks/{first_id}/test"), None, 202).await;
    assert_eq!(sent["event"]["type"], "webhook.test");
    assert_eq!(sent["event"]["data"]["webhook_id"], first_id.as_str());
    assert_eq!(sent["delivery"]["trigger"], "test");
    let got = first.wait_for(1, WAIT).await;
    assert_eq!(got[0].json(), sent["event"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(second.received().is_empty(), "the test event goes to its endpoint only");
    // A disabled endpoint still gets its test ping.
    app.expect(Method::PATCH, &format!("/v1/webhooks/{first_id}"), Some(json!({ "enabled": false })), 200).await;
    app.expect(Method::POST, &format!("/v1/webhooks/{first_id}/test"), None, 202).await;
    first.wait_for(2, WAIT).await;
    app.expect(Method::PATCH, &format!("/v1/webhooks/{first_id}"), Some(json!({ "enabled": true })), 200).await;
    for n in 0..3 {
        host_event(app, &format!("Host {n}")).await;
    }
    first.wait_for(5, WAIT).await;
    let all = settled(app, &first_id).await;
    assert_eq!(all.len(), 5);
    // Newest first, two per page, the cursor covering every attempt once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page =
            app.expect(Method::GET, &format!("/v1/webhooks/{first_id}/deliveries?limit=2{cursor}"), None, 200).await;
        seen.extend(page["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let expected: Vec<String> = all.iter().rev().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(seen, expected);
    let tests = deliveries(app, &first_id, "?limit=100").await;
    assert_eq!(tests.iter().filter(|d| d["event_type"] == "webhook.test").count(), 2);
    let event = all[2]["event_id"].as_str().unwrap();
    let one = deliveries(app, &first_id, &format!("?event_id={event}")).await;
    assert_eq!(one.len(), 1);
    assert!(deliveries(app, &first_id, "?status=failed").await.is_empty());
    assert_eq!(deliveries(app, &first_id, "?status=succeeded&limit=100").await.len(), 5);
}

async fn a_replay_sends_the_events_since_an_instant_again_with_their_ids(app: &TestApp) {
    let receiver = Receiver::ok().await;
    let (id, _) = endpoint(app, &receiver.url, Some(vec!["host.created"])).await;
    host_event(app, "Before").await;
    receiver.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = jiff::Timestamp::now();
    host_event(app, "After 1").await;
    host_event(app, "After 2").await;
    let originals = receiver.wait_for(3, WAIT).await;
    let replayed =
        app.expect(Method::POST, &format!("/v1/webhooks/{id}/replay"), Some(json!({ "since": since })), 202).await;
    assert_eq!(replayed, json!({ "queued": 2, "complete": true, "next_since": null }));
    let got = receiver.wait_for(5, WAIT).await;
    let original_ids: Vec<_> = originals[1..].iter().map(|r| r.header("webhook-id").unwrap()).collect();
    let mut replay_ids: Vec<_> = got[3..].iter().map(|r| r.header("webhook-id").unwrap()).collect();
    replay_ids.sort();
    assert_eq!(replay_ids, original_ids, "the replay resends the same events with the same ids");
    let attempts = settled(app, &id).await;
    assert_eq!(attempts.iter().filter(|a| a["trigger"] == "replay").count(), 2);
}

async fn delivery_routes_refuse_bad_input_and_other_organizations(app: &TestApp) {
    let receiver = Receiver::ok().await;
    let (id, _) = endpoint(app, &receiver.url, None).await;
    let unknown = "01a20896-0000-7000-8000-000000000000";
    for (method, path) in [
        (Method::POST, format!("/v1/webhooks/{unknown}/test")),
        (Method::GET, format!("/v1/webhooks/{unknown}/deliveries")),
        (Method::POST, format!("/v1/webhooks/{id}/deliveries/999999/retry")),
        (Method::POST, format!("/v1/webhooks/{id}/deliveries/not-a-number/retry")),
        (Method::POST, "/v1/webhooks/not-a-uuid/test".to_owned()),
    ] {
        let response = app.call(method.clone(), &path, None).await;
        expect_problem(response, 404, "not_found", None).await;
    }
    let response = app.call(Method::GET, &format!("/v1/webhooks/{id}/deliveries?status=lost"), None).await;
    expect_problem(response, 422, "validation_failed", Some("/status")).await;
    let response = app.call(Method::GET, &format!("/v1/webhooks/{id}/deliveries?cursor=%21%21"), None).await;
    expect_problem(response, 422, "validation_failed", Some("/cursor")).await;
    for body in [json!({}), json!({ "since": "yesterday" }), json!({ "since": "0001-01-01T00:00:00Z" })] {
        let response = app.call(Method::POST, &format!("/v1/webhooks/{id}/replay"), Some(body.clone())).await;
        assert_eq!(response.status(), 422, "{body}");
    }
    // Another organization sees none of it.
    let other = app.other_org_key().await;
    for (method, path) in [
        (Method::POST, format!("/v1/webhooks/{id}/test")),
        (Method::GET, format!("/v1/webhooks/{id}/deliveries")),
        (Method::POST, format!("/v1/webhooks/{id}/replay")),
    ] {
        let body = (method == Method::POST).then(|| json!({ "since": "2026-01-01T00:00:00Z" }));
        let response = app.call_as(&other, method, &path, body).await;
        expect_problem(response, 404, "not_found", None).await;
    }
    assert!(receiver.received().is_empty());
}
