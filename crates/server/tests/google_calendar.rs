//! Google Calendar connections end to end, against the fake Google of the calendar crate's tests
//! (`crates/calendar/tests/common/google_fake.rs`) on 127.0.0.1: the connect flow through
//! slotd's API and callback page (consent, code, state), connections made with a refresh token
//! and the inputs refused, busy time from `freeBusy` in slot listings and at commit (warnings,
//! `503 calendar_unavailable`, `on_error: ignore`), write-back by the delivery worker (insert,
//! patch on reschedule, delete on cancel), and a token refresh after a `401`. Every test runs on
//! SQLite and on PostgreSQL. Nothing but 127.0.0.1 is contacted.

#[macro_use]
mod common;
#[path = "../../calendar/tests/common/google_fake.rs"]
mod google_fake;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{AppOptions, Backend, TestApp, WorkerOptions, expect_problem, spawn_app_with};
use google_fake::{CLIENT_ID, CLIENT_SECRET, FakeGoogle, REFRESH_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slotd_calendar::Interval;

/// Declares each listed `async fn name(app: &TestApp, fake: &FakeGoogle)` as two tests,
/// `sqlite::name` and `postgres::name`, each with its own fake Google and an app (with a
/// delivery worker) pointed at it, over a fresh database.
macro_rules! with_google_on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() {
                let fake = super::FakeGoogle::start().await;
                let app = super::google_app(super::Backend::Sqlite, &fake).await;
                super::$name(&app, &fake).await;
                app.stop().await;
            } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() {
                let fake = super::FakeGoogle::start().await;
                let app = super::google_app(super::Backend::Postgres, &fake).await;
                super::$name(&app, &fake).await;
                app.stop().await;
            } )*
        }
    };
}

with_google_on_both_backends!(
    the_connect_flow_goes_through_consent_and_the_callback_and_stores_a_connection_without_secrets,
    bad_callbacks_answer_an_html_error_page_and_store_nothing,
    a_connection_made_with_a_refresh_token_is_stored_and_bad_input_answers_422_storing_nothing,
    busy_time_from_free_busy_removes_slots_and_blocks_the_commit,
    a_calendar_that_cannot_be_read_warns_in_listings_and_refuses_commits_unless_ignored,
    write_back_inserts_patches_and_deletes_the_bookings_event,
    an_expired_access_token_is_refreshed_and_the_listing_still_succeeds,
);

/// A slotd started without a Google OAuth client.
mod without_google_client {
    use super::*;

    on_both_backends!(spawn = app_without_google_client; the_connect_flow_needs_a_google_client);
}

/// How long the worker gets to write into the fake.
const WAIT: Duration = Duration::from_secs(10);

/// A Monday far ahead; hosts in Europe/London work 09:00–17:00 UTC then (no summer time).
const DAY: &str = "2027-01-04";

fn at(time: &str) -> String {
    format!("{DAY}T{time}:00Z")
}

fn iv(start: &str, end: &str) -> Interval {
    Interval::new(at(start).parse().unwrap(), at(end).parse().unwrap()).unwrap()
}

/// An app whose calendars reach the fake (no caching, so every listing reads it) and whose
/// delivery worker writes bookings back.
async fn google_app(backend: Backend, fake: &FakeGoogle) -> TestApp {
    spawn_app_with(
        backend,
        AppOptions {
            allow_private_webhooks: true,
            worker: Some(WorkerOptions::loopback("0,1s")),
            calendars: Some(slotd::calendars::CalendarSettings {
                google_client_id: Some(CLIENT_ID.to_owned()),
                google_client_secret: Some(CLIENT_SECRET.to_owned()),
                google_api_base: fake.base.clone(),
                google_oauth_base: Some(fake.base.clone()),
                cache_ttl: Duration::ZERO,
            }),
            ..Default::default()
        },
    )
    .await
}

/// An app with slotd's default calendar settings: no Google client (and Google's own bases,
/// never contacted here).
async fn app_without_google_client(backend: Backend) -> TestApp {
    spawn_app_with(backend, AppOptions { allow_private_webhooks: true, ..Default::default() }).await
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("no id in {value}")).to_owned()
}

/// A London host (Mon–Fri 09:00–17:00) and a 30-minute event type on it: (host, event type).
async fn bookable(app: &TestApp) -> (String, String) {
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
    (host, id(&event_type))
}

/// Connects the host's Google calendars with the fake's refresh token; answers the connection.
async fn connect(app: &TestApp, host: &str, extra: Value) -> Value {
    let mut body = json!({ "kind": "google", "refresh_token": REFRESH_TOKEN });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    app.expect(Method::POST, &format!("/v1/hosts/{host}/calendars"), Some(body), 201).await
}

async fn calendars(app: &TestApp, host: &str) -> Vec<Value> {
    let list = app.expect(Method::GET, &format!("/v1/hosts/{host}/calendars"), None, 200).await;
    list["data"].as_array().unwrap_or_else(|| panic!("no data in {list}")).clone()
}

/// The slot listing of [`DAY`].
async fn slots(app: &TestApp, event_type: &str) -> Value {
    let next = DAY.replace("-04", "-05");
    let path = format!("/v1/slots?event_type_id={event_type}&start={DAY}T00:00:00Z&end={next}T00:00:00Z");
    app.expect(Method::GET, &path, None, 200).await
}

/// The starts of a slot listing.
fn starts(listing: &Value) -> Vec<String> {
    listing["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap().to_owned()).collect()
}

fn booking_request(event_type: &str, time: &str) -> Value {
    json!({ "event_type_id": event_type, "start": at(time),
            "attendee": { "name": "Ada", "email": "ada@example.com", "time_zone": "Europe/Paris" } })
}

async fn bookings(app: &TestApp) -> Vec<Value> {
    let page = app.expect(Method::GET, "/v1/bookings?limit=100", None, 200).await;
    page["data"].as_array().unwrap().clone()
}

/// A client that does not follow redirects (the test takes each `Location` itself) and sends no
/// API key (a browser's view).
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The consent link slotd makes for `host` with `query`.
async fn authorize_url(app: &TestApp, host: &str, query: &str) -> reqwest::Url {
    let answer =
        app.expect(Method::GET, &format!("/v1/hosts/{host}/calendars/google/authorize-url?{query}"), None, 200).await;
    reqwest::Url::parse(answer["url"].as_str().unwrap_or_else(|| panic!("no url in {answer}"))).unwrap()
}

/// Follows a consent link at the fake as a user who answers the consent screen; answers where
/// Google sends the browser back.
async fn consent(url: &reqwest::Url) -> reqwest::Url {
    let response = browser().get(url.clone()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND, "{}", response.text().await.unwrap());
    let location = response.headers()[reqwest::header::LOCATION].to_str().unwrap().to_owned();
    reqwest::Url::parse(&location).unwrap()
}

fn query_of(url: &reqwest::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// `url` with its query replaced by `pairs`.
fn with_query(url: &reqwest::Url, pairs: &[(&str, &str)]) -> reqwest::Url {
    let mut url = url.clone();
    url.set_query(None);
    url.query_pairs_mut().extend_pairs(pairs);
    url
}

/// Opens slotd's callback page as the browser: (status, content type, HTML).
async fn callback(url: &reqwest::Url) -> (StatusCode, String, String) {
    let response = browser().get(url.clone()).send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// Asserts a callback answered the "not connected" page with `status`.
async fn refused_page(url: &reqwest::Url, status: u16, says: &str) {
    let (got, content_type, html) = callback(url).await;
    assert_eq!(got.as_u16(), status, "{url}: {html}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(html.contains("Google Calendar was not connected"), "{html}");
    assert!(html.contains(says), "expected {says:?} in {html}");
}

/// Asserts none of the secrets the fake knows or issued appear in `text`.
fn assert_no_secrets(fake: &FakeGoogle, text: &str) {
    let state = fake.state.lock().unwrap();
    let mut secrets = vec![CLIENT_SECRET.to_owned(), REFRESH_TOKEN.to_owned(), "ya29.".to_owned()];
    secrets.extend(state.issued_refresh_tokens.iter().cloned());
    secrets.extend(state.codes.keys().cloned());
    for secret in secrets {
        assert!(!text.contains(&secret), "{secret} in {text}");
    }
}

/// Asserts a connection as the API shows it has exactly the fields of a view (no credentials)
/// and no secret in them.
fn assert_view(fake: &FakeGoogle, connection: &Value) {
    let mut keys: Vec<&str> = connection.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "calendar_ids",
            "created_at",
            "host_id",
            "id",
            "kind",
            "last_error",
            "last_synced_at",
            "on_error",
            "status",
            "url",
            "write_back",
            "write_back_failing_since"
        ],
        "{connection}"
    );
    assert_no_secrets(fake, &connection.to_string());
}

async fn the_connect_flow_goes_through_consent_and_the_callback_and_stores_a_connection_without_secrets(
    app: &TestApp,
    fake: &FakeGoogle,
) {
    let host = app.office_host("Grace", "Europe/London").await;
    let redirect_uri = format!("{}/oauth/google/callback", app.base);

    let answer = app
        .expect(
            Method::GET,
            &format!("/v1/hosts/{host}/calendars/google/authorize-url?calendar_ids=primary,team&write_back=true&on_error=ignore"),
            None,
            200,
        )
        .await;
    let expires_at: jiff::Timestamp = answer["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expires_at > jiff::Timestamp::now(), "{answer}");
    let url = reqwest::Url::parse(answer["url"].as_str().unwrap()).unwrap();
    assert!(url.as_str().starts_with(&format!("{}/o/oauth2/v2/auth?", fake.base)), "{url}");
    let query = query_of(&url);
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["redirect_uri"], redirect_uri);
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["access_type"], "offline");
    assert!(query["scope"].contains("https://www.googleapis.com/auth/calendar"), "{url}");
    let state = query["state"].clone();
    assert!(state.len() > 20, "{url}");
    // The state is sealed: neither the host nor the calendars can be read from it.
    assert!(!state.contains(&host) && !state.contains("team"), "{state}");
    assert_no_secrets(fake, url.as_str());

    // The host clicks "Allow"; Google sends the browser back with a code and the state.
    let back = consent(&url).await;
    assert!(back.as_str().starts_with(&format!("{redirect_uri}?")), "{back}");
    let returned = query_of(&back);
    assert_eq!(returned["state"], state);
    let code = returned["code"].clone();
    assert!(!code.is_empty());

    let (status, content_type, html) = callback(&back).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(html.contains("Google Calendar connected") && html.contains("connected"), "{html}");
    assert!(html.contains("Grace") && html.contains("primary, team"), "{html}");
    assert!(!html.contains("not connected"), "{html}");
    assert_no_secrets(fake, &html);

    // slotd traded the code as Google's documentation says, then read the calendars once with
    // the refresh token it got.
    let tokens = fake.requests("/token");
    let exchange = tokens.iter().map(|r| r.form()).find(|f| f["grant_type"] == "authorization_code").unwrap();
    assert_eq!(exchange["code"], code);
    assert_eq!(exchange["redirect_uri"], redirect_uri);
    assert_eq!(exchange["client_id"], CLIENT_ID);
    assert_eq!(exchange["client_secret"], CLIENT_SECRET);
    let issued = fake.state.lock().unwrap().issued_refresh_tokens.clone();
    assert_eq!(issued.len(), 1);
    let refresh = tokens.iter().map(|r| r.form()).find(|f| f["grant_type"] == "refresh_token").unwrap();
    assert_eq!(refresh["refresh_token"], issued[0]);
    let reads = fake.requests("/calendar/v3/freeBusy");
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].json()["items"], json!([{"id": "primary"}, {"id": "team"}]));

    let list = calendars(app, &host).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let connection = &list[0];
    assert_eq!(connection["kind"], "google");
    assert_eq!(connection["host_id"], host.as_str());
    assert_eq!(connection["status"], "ok");
    assert_eq!(connection["calendar_ids"], json!(["primary", "team"]));
    assert_eq!(connection["write_back"], true);
    assert_eq!(connection["on_error"], "ignore");
    assert_eq!(connection["url"], Value::Null);
    assert_eq!(connection["last_error"], Value::Null);
    assert!(connection["last_synced_at"].is_string(), "{connection}");
    assert!(html.contains(connection["id"].as_str().unwrap()), "{html}");
    assert_view(fake, connection);
    let one = app.expect(Method::GET, &format!("/v1/hosts/{host}/calendars/{}", id(connection)), None, 200).await;
    assert_eq!(&one, connection);
}

async fn bad_callbacks_answer_an_html_error_page_and_store_nothing(app: &TestApp, fake: &FakeGoogle) {
    let host = app.office_host("Grace", "Europe/London").await;
    let url = authorize_url(app, &host, "calendar_ids=primary").await;

    // A state altered on the way back.
    let back = consent(&url).await;
    let returned = query_of(&back);
    let mut tampered: Vec<char> = returned["state"].chars().collect();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    refused_page(
        &with_query(&back, &[("code", &returned["code"]), ("state", &tampered)]),
        400,
        "not made by this slotd, or it was altered",
    )
    .await;
    // No state at all, and a state of another kind of sealed value, fare the same.
    refused_page(&with_query(&back, &[("code", &returned["code"])]), 400, "altered").await;
    refused_page(&with_query(&back, &[("code", &returned["code"]), ("state", "v1:bm90IGEgc3RhdGU=")]), 400, "altered")
        .await;

    // No code.
    let back = consent(&url).await;
    let returned = query_of(&back);
    refused_page(&with_query(&back, &[("state", &returned["state"])]), 400, "no authorization code").await;
    refused_page(&with_query(&back, &[("state", &returned["state"]), ("code", "")]), 400, "no authorization code")
        .await;

    // The host clicks "Cancel": Google sends error=access_denied and the state, no code.
    fake.state.lock().unwrap().deny_consent = true;
    let back = consent(&url).await;
    fake.state.lock().unwrap().deny_consent = false;
    let returned = query_of(&back);
    assert_eq!(returned.get("error").map(String::as_str), Some("access_denied"), "{back}");
    assert!(!returned.contains_key("code") && returned.contains_key("state"), "{back}");
    refused_page(&back, 400, "Access to the calendar was not granted").await;

    // None of these traded a code or stored anything.
    assert!(fake.requests("/token").is_empty());
    assert!(calendars(app, &host).await.is_empty());

    // A code works once: the first visit connects, a second (a reload) is refused by Google.
    let back = consent(&url).await;
    let (status, _, html) = callback(&back).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(calendars(app, &host).await.len(), 1);
    refused_page(&back, 400, "Google did not accept the authorization").await;
    let exchanges: Vec<HashMap<String, String>> =
        fake.requests("/token").iter().map(|r| r.form()).filter(|f| f["grant_type"] == "authorization_code").collect();
    assert_eq!(exchanges.len(), 2);
    assert_eq!(exchanges[0]["code"], exchanges[1]["code"]);
    assert_eq!(calendars(app, &host).await.len(), 1);

    // The host the link was made for is deleted before the browser comes back.
    let gone = app.office_host("Linus", "UTC").await;
    let back = consent(&authorize_url(app, &gone, "").await).await;
    app.expect(Method::DELETE, &format!("/v1/hosts/{gone}"), None, 204).await;
    refused_page(&back, 404, "no longer exists").await;
    let range = Interval::new(jiff::Timestamp::now(), jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1));
    let stored = app.db.store.busy_time(app.org, &[gone.parse().unwrap()], range.unwrap()).await.unwrap();
    assert!(stored.calendars.is_empty(), "{:?}", stored.calendars);
    app.expect(Method::GET, &format!("/v1/hosts/{gone}/calendars"), None, 404).await;
    assert_eq!(calendars(app, &host).await.len(), 1);
}

async fn the_connect_flow_needs_a_google_client(app: &TestApp) {
    let host = app.office_host("Grace", "Europe/London").await;
    let response = app.call(Method::GET, &format!("/v1/hosts/{host}/calendars/google/authorize-url"), None).await;
    let problem = expect_problem(response, 422, "validation_failed", Some("")).await;
    assert!(problem.to_string().contains("--google-client-id"), "{problem}");
    // Nor can a connection lean on a server client that is not there.
    let response = app
        .call(
            Method::POST,
            &format!("/v1/hosts/{host}/calendars"),
            Some(json!({ "kind": "google", "refresh_token": REFRESH_TOKEN })),
        )
        .await;
    expect_problem(response, 422, "validation_failed", Some("/client_id")).await;
    assert!(calendars(app, &host).await.is_empty());
}

async fn a_connection_made_with_a_refresh_token_is_stored_and_bad_input_answers_422_storing_nothing(
    app: &TestApp,
    fake: &FakeGoogle,
) {
    let host = app.office_host("Grace", "Europe/London").await;
    let path = format!("/v1/hosts/{host}/calendars");
    let google = |extra: Value| {
        let mut body = json!({ "kind": "google", "refresh_token": REFRESH_TOKEN });
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let cases = [
        ("an unknown kind", json!({ "kind": "outlook", "refresh_token": REFRESH_TOKEN }), "/kind"),
        ("no refresh token", json!({ "kind": "google" }), "/refresh_token"),
        ("a blank refresh token", google(json!({ "refresh_token": " " })), "/refresh_token"),
        ("a client id without its secret", google(json!({ "client_id": CLIENT_ID })), "/client_secret"),
        ("a client secret without its id", google(json!({ "client_secret": CLIENT_SECRET })), "/client_id"),
        ("a url", google(json!({ "url": "https://calendar.google.com/x.ics" })), "/url"),
        ("a password", google(json!({ "password": "hunter2" })), "/password"),
        ("no calendars", google(json!({ "calendar_ids": [] })), "/calendar_ids"),
        ("a blank calendar id", google(json!({ "calendar_ids": ["primary", " "] })), "/calendar_ids/1"),
        ("an unknown field", google(json!({ "colour": "red" })), "/colour"),
        ("a bad on_error", google(json!({ "on_error": "retry" })), "/on_error"),
    ];
    for (what, body, pointer) in cases {
        let response = app.call(Method::POST, &path, Some(body)).await;
        let problem = expect_problem(response, 422, "validation_failed", Some(pointer)).await;
        assert_no_secrets(fake, &problem.to_string());
        assert!(calendars(app, &host).await.is_empty(), "{what} stored a connection");
    }
    // Invalid input never reached Google.
    assert!(fake.state.lock().unwrap().requests.is_empty());

    // Google refuses the refresh token (revoked), or the connection's own client.
    for body in [
        google(json!({ "refresh_token": "1//revoked-long-ago" })),
        google(json!({ "client_id": CLIENT_ID, "client_secret": "GOCSPX-wrong" })),
    ] {
        let response = app.call(Method::POST, &path, Some(body)).await;
        let problem = expect_problem(response, 422, "validation_failed", Some("/refresh_token")).await;
        let detail = problem["errors"][0]["detail"].as_str().unwrap();
        assert!(detail.contains("not connected"), "{problem}");
        assert!(detail.contains("invalid_grant") || detail.contains("invalid_client"), "{problem}");
        assert!(!problem.to_string().contains("1//revoked-long-ago") && !problem.to_string().contains("GOCSPX-wrong"));
        assert_no_secrets(fake, &problem.to_string());
    }
    assert_eq!(fake.requests("/token").len(), 2);
    assert!(fake.api_requests().is_empty());
    assert!(calendars(app, &host).await.is_empty());

    // A good one: read once, then stored (duplicate calendar ids once).
    let created = connect(app, &host, json!({ "calendar_ids": ["primary", "team", "primary"] })).await;
    assert_eq!(created["kind"], "google");
    assert_eq!(created["host_id"], host.as_str());
    assert_eq!(created["calendar_ids"], json!(["primary", "team"]));
    assert_eq!(created["status"], "ok");
    assert_eq!(created["write_back"], false);
    assert_eq!(created["on_error"], "fail");
    assert_eq!(created["url"], Value::Null);
    assert!(created["last_synced_at"].is_string(), "{created}");
    assert_view(fake, &created);
    let reads = fake.requests("/calendar/v3/freeBusy");
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].json()["items"], json!([{"id": "primary"}, {"id": "team"}]));

    // With the connection's own OAuth client; calendar ids default to primary.
    let own = connect(app, &host, json!({ "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET })).await;
    assert_eq!(own["calendar_ids"], json!(["primary"]));
    assert_view(fake, &own);

    let list = calendars(app, &host).await;
    assert_eq!(list, vec![created.clone(), own.clone()]);
    assert_no_secrets(fake, &json!(list).to_string());
    app.expect(Method::DELETE, &format!("{path}/{}", id(&own)), None, 204).await;
    assert_eq!(calendars(app, &host).await, vec![created]);
    app.expect(Method::GET, &format!("{path}/{}", id(&own)), None, 404).await;
}

async fn busy_time_from_free_busy_removes_slots_and_blocks_the_commit(app: &TestApp, fake: &FakeGoogle) {
    let (host, event_type) = bookable(app).await;
    connect(app, &host, json!({ "calendar_ids": ["primary"] })).await;

    let before = slots(app, &event_type).await;
    assert_eq!(before["warnings"], json!([]));
    let free = starts(&before);
    assert_eq!(free.len(), 16, "{free:?}");
    assert!(free.contains(&at("10:00")) && free.contains(&at("10:30")), "{free:?}");

    fake.set_busy("primary", vec![iv("10:00", "11:00")]);
    let after = slots(app, &event_type).await;
    assert_eq!(after["warnings"], json!([]));
    let expected: Vec<String> = free.iter().filter(|s| **s != at("10:00") && **s != at("10:30")).cloned().collect();
    assert_eq!(starts(&after), expected);

    // The commit reads Google live and finds the time taken.
    let response = app.call(Method::POST, "/v1/bookings", Some(booking_request(&event_type, "10:30"))).await;
    expect_problem(response, 409, "slot_taken", None).await;
    assert!(bookings(app).await.is_empty());
    // Next to it is free.
    app.expect(Method::POST, "/v1/bookings", Some(booking_request(&event_type, "11:00")), 201).await;

    // Every read asked Google about the host's calendar with a bearer token.
    let reads = fake.requests("/calendar/v3/freeBusy");
    assert!(reads.len() >= 4, "{reads:?}");
    for read in &reads {
        assert_eq!(read.json()["items"], json!([{"id": "primary"}]));
        assert!(read.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer ya29.")), "{read:?}");
    }
}

async fn a_calendar_that_cannot_be_read_warns_in_listings_and_refuses_commits_unless_ignored(
    app: &TestApp,
    fake: &FakeGoogle,
) {
    let (host, event_type) = bookable(app).await;
    let failing = connect(app, &host, json!({ "calendar_ids": ["primary", "team"] })).await;
    fake.set_failing("team", Some("backendError"));

    let listing = slots(app, &event_type).await;
    assert_eq!(starts(&listing).len(), 16);
    let warnings = listing["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{listing}");
    let warning = warnings[0].as_object().unwrap();
    assert_eq!(warning.keys().collect::<Vec<_>>(), vec!["calendar_id", "detail"]);
    assert_eq!(warning["calendar_id"], failing["id"]);
    let detail = warning["detail"].as_str().unwrap();
    assert!(detail.contains("team") && detail.contains("backendError"), "{detail}");
    assert_no_secrets(fake, &listing.to_string());

    let response = app.call(Method::POST, "/v1/bookings", Some(booking_request(&event_type, "10:00"))).await;
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let problem = expect_problem(response, 503, "calendar_unavailable", None).await;
    assert_eq!(problem["calendar_id"], failing["id"]);
    assert!(retry_after.as_deref().is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n > 0)), "{retry_after:?}");
    assert!(bookings(app).await.is_empty());

    // The connection records what went wrong (in the background).
    let path = format!("/v1/hosts/{host}/calendars/{}", id(&failing));
    let deadline = Instant::now() + WAIT;
    loop {
        let now = app.expect(Method::GET, &path, None, 200).await;
        if now["status"] == "error" {
            assert!(now["last_error"].as_str().unwrap().contains("team"), "{now}");
            break;
        }
        assert!(Instant::now() < deadline, "the failure was not recorded: {now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The same calendars connected with on_error: ignore: the listing still warns, the commit
    // goes ahead without them.
    fake.set_failing("team", None);
    app.expect(Method::DELETE, &path, None, 204).await;
    let ignoring = connect(app, &host, json!({ "calendar_ids": ["primary", "team"], "on_error": "ignore" })).await;
    assert_eq!(ignoring["on_error"], "ignore");
    fake.set_failing("team", Some("backendError"));
    let listing = slots(app, &event_type).await;
    assert_eq!(listing["warnings"].as_array().unwrap().len(), 1, "{listing}");
    assert_eq!(listing["warnings"][0]["calendar_id"], ignoring["id"]);
    let booking = app.expect(Method::POST, "/v1/bookings", Some(booking_request(&event_type, "10:00")), 201).await;
    assert_eq!(booking["status"], "confirmed", "{booking}");
    assert_eq!(bookings(app).await.len(), 1);
}

/// Waits until the connection has `n` write-back attempts and none pending; answers them,
/// newest first.
async fn settled(app: &TestApp, path: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let page = app.expect(Method::GET, path, None, 200).await;
        let attempts = page["data"].as_array().unwrap().clone();
        if attempts.len() >= n && attempts.iter().all(|a| a["status"] != "pending") {
            assert_eq!(attempts.len(), n, "{attempts:#?}");
            return attempts;
        }
        assert!(Instant::now() < deadline, "attempts: {attempts:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the fake's event `event_id` in `calendar` satisfies `done`; answers it.
async fn event_when(fake: &FakeGoogle, calendar: &str, event_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let event = fake.event(calendar, event_id);
        if let Some(event) = &event
            && done(event)
        {
            return event.clone();
        }
        assert!(Instant::now() < deadline, "the calendar's event is {event:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn write_back_inserts_patches_and_deletes_the_bookings_event(app: &TestApp, fake: &FakeGoogle) {
    let (host, event_type) = bookable(app).await;
    let connection = connect(app, &host, json!({ "calendar_ids": ["primary", "team"], "write_back": true })).await;
    assert_eq!(connection["write_back"], true);
    let deliveries_path = format!("/v1/hosts/{host}/calendars/{}/deliveries", id(&connection));
    let page = app.expect(Method::GET, &deliveries_path, None, 200).await;
    assert_eq!(page["data"], json!([]));

    let booking = app.expect(Method::POST, "/v1/bookings", Some(booking_request(&event_type, "10:00")), 201).await;
    let event_id = slotd_calendar::google::event_id(&format!("{}@slotd", id(&booking))).unwrap();
    let event = event_when(fake, "primary", &event_id, |e| e["start"]["dateTime"] == at("10:00")).await;
    assert_eq!(event["id"], event_id.as_str());
    assert_eq!(event["status"], "confirmed");
    assert_eq!(event["end"]["dateTime"], at("10:30"));
    assert_eq!(event["summary"], "Intro call with Ada");
    let description = event["description"].as_str().unwrap();
    assert!(description.contains(booking["human_id"].as_str().unwrap()), "{description}");
    assert!(description.contains("ada@example.com") && !description.contains("/manage/"), "{description}");
    // Written into the first calendar only.
    assert!(fake.event("team", &event_id).is_none());
    settled(app, &deliveries_path, 1).await;

    // slotd's own event does not block its booking's neighbours twice, nor the booking itself.
    let listing = slots(app, &event_type).await;
    assert_eq!(listing["warnings"], json!([]));
    assert!(!starts(&listing).contains(&at("10:00")) && starts(&listing).contains(&at("10:30")), "{listing}");

    let reschedule = format!("/v1/bookings/{}/reschedule", id(&booking));
    app.expect(Method::POST, &reschedule, Some(json!({ "start": at("14:00") })), 200).await;
    let event = event_when(fake, "primary", &event_id, |e| e["start"]["dateTime"] == at("14:00")).await;
    assert_eq!(event["end"]["dateTime"], at("14:30"));
    assert_eq!(event["status"], "confirmed");
    settled(app, &deliveries_path, 2).await;
    let listing = slots(app, &event_type).await;
    assert!(starts(&listing).contains(&at("10:00")) && !starts(&listing).contains(&at("14:00")), "{listing}");

    let cancel = format!("/v1/bookings/{}/cancel", id(&booking));
    app.expect(Method::POST, &cancel, Some(json!({ "reason": "ill" })), 200).await;
    event_when(fake, "primary", &event_id, |e| e["status"] == "cancelled").await;
    assert!(starts(&slots(app, &event_type).await).contains(&at("14:00")));

    // One insert, then patches; one delete; one event in all.
    let events_path = "/calendar/v3/calendars/primary/events";
    let writes: Vec<(Method, bool)> = fake
        .api_requests()
        .iter()
        .filter(|r| r.path.starts_with(events_path))
        .map(|r| (r.method.clone(), r.path == events_path))
        .collect();
    assert_eq!(writes.iter().filter(|(m, _)| *m == Method::POST).count(), 1, "{writes:?}");
    assert!(writes.iter().all(|(m, collection)| (*m == Method::POST) == *collection), "{writes:?}");
    assert_eq!(writes.iter().filter(|(m, _)| *m == Method::DELETE).count(), 1, "{writes:?}");
    assert_eq!(fake.state.lock().unwrap().events.len(), 1);

    // The attempts, newest first.
    let attempts = settled(app, &deliveries_path, 3).await;
    let seen: Vec<(&str, &str)> =
        attempts.iter().map(|a| (a["event_type"].as_str().unwrap(), a["status"].as_str().unwrap())).collect();
    assert_eq!(
        seen,
        vec![
            ("booking.cancelled", "succeeded"),
            ("booking.rescheduled", "succeeded"),
            ("booking.confirmed", "succeeded")
        ]
    );
    let bodies: Vec<&str> = attempts.iter().map(|a| a["response_body"].as_str().unwrap()).collect();
    assert!(
        bodies[0].starts_with("deleted") && bodies[1].starts_with("put") && bodies[2].starts_with("put"),
        "{bodies:?}"
    );
    assert_no_secrets(fake, &json!(attempts).to_string());
}

async fn an_expired_access_token_is_refreshed_and_the_listing_still_succeeds(app: &TestApp, fake: &FakeGoogle) {
    let (host, event_type) = bookable(app).await;
    let connection = connect(app, &host, json!({ "calendar_ids": ["primary"] })).await;
    fake.set_busy("primary", vec![iv("10:00", "11:00")]);
    let first = slots(app, &event_type).await;
    assert_eq!(first["warnings"], json!([]));
    assert!(!starts(&first).contains(&at("10:00")));
    let tokens_before = fake.requests("/token").len();
    let reads_before = fake.requests("/calendar/v3/freeBusy").len();

    // Google expires the access token slotd keeps.
    fake.expire_access_tokens();
    let listing = slots(app, &event_type).await;
    assert_eq!(listing["warnings"], json!([]), "{listing}");
    assert_eq!(starts(&listing), starts(&first));

    let tokens = fake.requests("/token");
    assert_eq!(tokens.len(), tokens_before + 1);
    let form = tokens.last().unwrap().form();
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], REFRESH_TOKEN);
    let reads = fake.requests("/calendar/v3/freeBusy");
    assert_eq!(reads.len(), reads_before + 2, "one refused, one retried");
    let old = reads[reads_before].authorization.clone().unwrap();
    let new = reads[reads_before + 1].authorization.clone().unwrap();
    assert_ne!(old, new);
    assert_eq!(reads[reads_before - 1].authorization.as_ref(), Some(&old));
    let issued = fake.state.lock().unwrap().issued;
    assert_eq!(new, format!("Bearer ya29.access-{issued}"));

    // The connection is still fine, and the next listing uses the new token without a refresh.
    slots(app, &event_type).await;
    assert_eq!(fake.requests("/token").len(), tokens_before + 1);
    let path = format!("/v1/hosts/{host}/calendars/{}", id(&connection));
    let now = app.expect(Method::GET, &path, None, 200).await;
    assert_eq!(now["status"], "ok", "{now}");
    assert_eq!(now["last_error"], Value::Null);
}
