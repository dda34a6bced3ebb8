//! Rate limit tests (PRODUCT.md "Rate limits"): per API key on the `/v1` routes, per client
//! address on the token routes, `429 rate_limited` problem+json with `Retry-After`, and `0`
//! turning a limit off. The real router over a real loopback socket, on SQLite and on
//! PostgreSQL. "Another address" is a client socket bound to 127.0.0.2, still loopback.

#[macro_use]
mod common;

use std::net::IpAddr;

use common::{AppOptions, Backend, TestApp, expect_problem, read, spawn_app_with};
use reqwest::{Client, Method, Response};
use serde_json::{Value, json};
use slotd::rate_limit::RateLimit;

on_both_backends!(
    spawn = limited_app;
    a_burst_over_the_key_limit_answers_429_problem_json_with_retry_after_and_writes_nothing,
    a_wrong_key_answers_401_and_spends_no_budget_of_a_real_key,
    a_thousand_wrong_tokens_from_one_address_are_refused_while_the_right_token_from_another_address_works,
);

mod off {
    use super::*;

    on_both_backends!(spawn = unlimited_app; zero_turns_both_limits_off);
}

/// Per key: 1 request per second, bursts of 5. Per address on the token routes: 5 per second,
/// bursts of 20 (the `serve` defaults).
const KEY_LIMIT: RateLimit = RateLimit { per_second: 1, burst: 5 };
const TOKEN_LIMIT: RateLimit = RateLimit { per_second: 5, burst: 20 };

async fn limited_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, AppOptions { rate_limits: Some((KEY_LIMIT, TOKEN_LIMIT)), ..Default::default() }).await
}

async fn unlimited_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, AppOptions { rate_limits: Some((RateLimit::OFF, RateLimit::OFF)), ..Default::default() })
        .await
}

/// A client whose connections come from `address` (a loopback address).
fn client_from(address: &str) -> Client {
    Client::builder().local_address(address.parse::<IpAddr>().unwrap()).build().unwrap()
}

/// The `Retry-After` seconds of a response (must be a whole number of at least 1).
fn retry_after(response: &Response) -> u64 {
    let value = response.headers().get("retry-after").expect("a Retry-After header");
    let seconds: u64 = value.to_str().unwrap().parse().expect("Retry-After is whole seconds");
    assert!(seconds >= 1, "Retry-After {seconds}");
    seconds
}

async fn a_burst_over_the_key_limit_answers_429_problem_json_with_retry_after_and_writes_nothing(app: &TestApp) {
    for _ in 0..KEY_LIMIT.burst {
        app.expect(Method::GET, "/v1/hosts", None, 200).await;
    }
    let host = json!({ "name": "Ada", "email": "ada@example.com", "time_zone": "Europe/London" });
    let refused = app.call(Method::POST, "/v1/hosts", Some(host)).await;
    assert!(retry_after(&refused) <= 1, "one request per second comes back within a second");
    let problem = expect_problem(refused, 429, "rate_limited", None).await;
    assert!(problem["detail"].as_str().unwrap().contains("try again"), "{problem}");

    // Another key, even of the same organization, has its own budget, and sees that the refused
    // request wrote nothing.
    let second_key = slotd::keys::create_api_key(&app.db.store, app.org).await.unwrap();
    let hosts = read(app.call_as(&second_key, Method::GET, "/v1/hosts", None).await, 200, "second key").await;
    assert_eq!(hosts["data"], json!([]), "{hosts}");
    let other_org = app.other_org_key().await;
    read(app.call_as(&other_org, Method::GET, "/v1/hosts", None).await, 200, "another organization").await;

    // The first key is still refused until its budget refills, then works again.
    let still = app.call(Method::GET, "/v1/hosts", None).await;
    let wait = retry_after(&still);
    expect_problem(still, 429, "rate_limited", None).await;
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    app.expect(Method::GET, "/v1/hosts", None, 200).await;
}

async fn a_wrong_key_answers_401_and_spends_no_budget_of_a_real_key(app: &TestApp) {
    // The wrong key differs from the real one in its last character only.
    let mut wrong = app.key.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    for _ in 0..50 {
        expect_problem(app.call_as(&wrong, Method::GET, "/v1/hosts", None).await, 401, "unauthorized", None).await;
    }
    for _ in 0..KEY_LIMIT.burst {
        app.expect(Method::GET, "/v1/hosts", None, 200).await;
    }
}

/// A booking's manage token (the last segment of `links.manage`) and the token it replaced.
async fn booking_tokens(app: &TestApp) -> (String, String) {
    let host = app.office_host("Ada", "Europe/London").await;
    let event_type = app
        .expect(
            Method::POST,
            "/v1/event-types",
            Some(json!({ "slug": "intro", "title": "Intro call", "duration_minutes": 30,
                         "booking_window_days": 3650, "hosts": [host] })),
            201,
        )
        .await;
    let booking = app
        .expect(
            Method::POST,
            "/v1/bookings",
            Some(json!({ "event_type_id": event_type["id"], "start": "2027-01-04T10:00:00Z",
                         "attendee": { "name": "Grace", "email": "grace@example.com", "time_zone": "Europe/Paris" } })),
            201,
        )
        .await;
    let path = format!("/v1/bookings/{}/rotate-manage-token", booking["id"].as_str().unwrap());
    let rotated = app.expect(Method::POST, &path, None, 200).await;
    (token(&rotated), token(&booking))
}

fn token(booking: &Value) -> String {
    booking["links"]["manage"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()
}

async fn a_thousand_wrong_tokens_from_one_address_are_refused_while_the_right_token_from_another_address_works(
    app: &TestApp,
) {
    let (right, replaced) = booking_tokens(app).await;
    let guesser = client_from("127.0.0.1");
    let started = std::time::Instant::now();
    let (mut not_found, mut refused, mut first_refusal) = (0_u32, 0_u32, None);
    for i in 0..1000 {
        // The replaced token (a real MAC of an older generation) and variations of it.
        let wrong = if i == 0 { replaced.clone() } else { format!("{replaced}{i}") };
        let response = guesser.get(format!("{}/v1/manage/{wrong}", app.base)).send().await.unwrap();
        match response.status().as_u16() {
            404 => not_found += 1,
            429 => {
                retry_after(&response);
                if first_refusal.is_none() {
                    first_refusal = Some(i);
                    expect_problem(response, 429, "rate_limited", None).await;
                }
                refused += 1;
            }
            other => panic!("wrong token {i} answered {other}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(first_refusal.is_some_and(|i| i <= 3), "refused from guess {first_refusal:?} on");
    // A couple of guesses from the burst, then at most the steady rate.
    let allowed = 3.0 + f64::from(TOKEN_LIMIT.per_second) * elapsed;
    assert!(f64::from(not_found) <= allowed, "{not_found} guesses answered in {elapsed:.1} s; {refused} refused");

    // The same address with the right token is refused too: its budget is spent.
    let response = guesser.get(format!("{}/v1/manage/{right}", app.base)).send().await.unwrap();
    assert_eq!(response.status(), 429);

    // The attendee, from another address, is not affected: the API, the page and the ics file.
    let attendee = client_from("127.0.0.2");
    let view = attendee.get(format!("{}/v1/manage/{right}", app.base)).send().await.unwrap();
    let view = read(view, 200, "the right token from 127.0.0.2").await;
    assert_eq!(view["booking"]["status"], "confirmed", "{view}");
    let page = attendee.get(format!("{}/manage/{right}", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let ics = attendee.get(format!("{}/b/{right}.ics", app.base)).send().await.unwrap();
    assert_eq!(ics.status(), 200);
    // And the API keys' routes are limited per key, not per address.
    app.expect(Method::GET, "/v1/hosts", None, 200).await;
}

async fn zero_turns_both_limits_off(app: &TestApp) {
    for _ in 0..300 {
        app.expect(Method::GET, "/v1/hosts", None, 200).await;
    }
    let guesser = client_from("127.0.0.1");
    for i in 0..200 {
        let response = guesser.get(format!("{}/v1/manage/not-a-token-{i}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), 404, "guess {i}");
    }
}

#[test]
fn every_operation_documents_429_rate_limited_and_503_with_a_retry_after_in_whole_seconds() {
    let document = serde_json::to_value(slotd::app::openapi()).unwrap();
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            for status in ["429", "503"] {
                let response = &operation["responses"][status];
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
                let header = &response["headers"]["Retry-After"]["schema"];
                assert_eq!(header["type"], "integer", "{method} {path} {status}: {header}");
                assert_eq!(header["format"], "int64", "{method} {path} {status}: {header}");
            }
        }
    }
    assert!(operations > 30, "{operations} operations");
}
