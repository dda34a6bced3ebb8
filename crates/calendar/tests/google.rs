//! Google Calendar against a fake Google on 127.0.0.1 (`common/google_fake.rs`) that answers
//! in the documented shapes of the Calendar API v3 (`freeBusy`, `events` insert/patch/delete,
//! its error bodies) and of the OAuth 2.0 token endpoint, and records every request: busy time
//! across calendars and windows, write-back, token refresh on `401`, backoff on rate limits, and
//! the connect flow.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use axum::http::Method;
use common::google_fake::{CLIENT_ID, CLIENT_SECRET, CODE, CODE_REFRESH_TOKEN, FakeGoogle, REDIRECT, REFRESH_TOKEN};
use jiff::Timestamp;
use serde_json::json;
use slotd_calendar::google::{GoogleCalendar, authorize_url, event_id, exchange_code};
use slotd_calendar::{BusySource, CalendarError, CalendarEvent, EventSink, Interval};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn iv(start: &str, end: &str) -> Interval {
    Interval::new(ts(start), ts(end)).unwrap()
}

#[tokio::test]
async fn free_busy_reports_each_calendar_and_names_the_one_google_cannot_find() {
    let fake = FakeGoogle::start().await;
    fake.set_busy(
        "work@example.com",
        vec![iv("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"), iv("2026-12-02T14:00:00Z", "2026-12-02T15:30:00Z")],
    );
    fake.set_busy("home", vec![iv("2026-12-01T18:00:00Z", "2026-12-01T19:00:00Z")]);
    let google = fake.client(&["work@example.com", "home", "missing-cal"]);
    let range = iv("2026-12-01T00:00:00Z", "2026-12-08T00:00:00Z");

    let by_calendar = google.busy_by_calendar(range).await.unwrap();
    assert_eq!(by_calendar.len(), 3);
    assert_eq!(by_calendar[0].0, "work@example.com");
    assert_eq!(
        by_calendar[0].1.as_ref().unwrap(),
        &vec![iv("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"), iv("2026-12-02T14:00:00Z", "2026-12-02T15:30:00Z")]
    );
    assert_eq!(by_calendar[1].0, "home");
    assert_eq!(by_calendar[1].1.as_ref().unwrap(), &vec![iv("2026-12-01T18:00:00Z", "2026-12-01T19:00:00Z")]);
    assert_eq!(by_calendar[2].0, "missing-cal");
    assert!(
        matches!(&by_calendar[2].1, Err(CalendarError::Refused { status: 404, detail }) if detail.contains("notFound")),
        "{:?}",
        by_calendar[2].1
    );

    let calls = fake.requests("/calendar/v3/freeBusy");
    assert_eq!(calls.len(), 1);
    let body = calls[0].json();
    assert_eq!(body["timeMin"], "2026-12-01T00:00:00Z");
    assert_eq!(body["timeMax"], "2026-12-08T00:00:00Z");
    assert_eq!(body["items"], json!([{"id": "work@example.com"}, {"id": "home"}, {"id": "missing-cal"}]));
    assert_eq!(calls[0].authorization.as_deref(), Some("Bearer ya29.access-1"));

    // As a busy source: the failed calendar is named, and the kept token is reused.
    let err = google.busy(range).await.unwrap_err();
    assert!(
        matches!(&err, CalendarError::Refused { status: 404, detail } if detail.contains("missing-cal")),
        "{err:?}"
    );
    assert_eq!(fake.requests("/token").len(), 1);

    let healthy = fake.client(&["work@example.com", "home"]);
    let mut busy = healthy.busy(range).await.unwrap();
    busy.sort();
    assert_eq!(busy.len(), 3);
}

#[tokio::test]
async fn a_window_over_ninety_days_is_asked_in_several_calls_and_merged() {
    let fake = FakeGoogle::start().await;
    fake.set_busy(
        "primary",
        vec![
            iv("2027-01-05T09:00:00Z", "2027-01-05T10:00:00Z"),
            // Crosses the first 90-day boundary (2027-04-01T00:00Z).
            iv("2027-03-31T23:00:00Z", "2027-04-01T01:00:00Z"),
            iv("2027-07-10T12:00:00Z", "2027-07-10T13:00:00Z"),
        ],
    );
    let google = fake.client(&["primary"]);
    let range = iv("2027-01-01T00:00:00Z", "2027-07-20T00:00:00Z");

    let mut busy = google.busy(range).await.unwrap();
    slotd_core::interval::merge(&mut busy);
    assert_eq!(
        busy,
        vec![
            iv("2027-01-05T09:00:00Z", "2027-01-05T10:00:00Z"),
            iv("2027-03-31T23:00:00Z", "2027-04-01T01:00:00Z"),
            iv("2027-07-10T12:00:00Z", "2027-07-10T13:00:00Z"),
        ]
    );

    let windows: Vec<(String, String)> = fake
        .requests("/calendar/v3/freeBusy")
        .iter()
        .map(|r| {
            let b = r.json();
            (b["timeMin"].as_str().unwrap().to_owned(), b["timeMax"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        windows,
        vec![
            ("2027-01-01T00:00:00Z".to_owned(), "2027-04-01T00:00:00Z".to_owned()),
            ("2027-04-01T00:00:00Z".to_owned(), "2027-06-30T00:00:00Z".to_owned()),
            ("2027-06-30T00:00:00Z".to_owned(), "2027-07-20T00:00:00Z".to_owned()),
        ]
    );
}

#[tokio::test]
async fn fifty_one_calendars_are_asked_in_two_calls() {
    let fake = FakeGoogle::start().await;
    let ids: Vec<String> = (0..51).map(|i| format!("cal-{i}")).collect();
    fake.set_busy("cal-50", vec![iv("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z")]);
    let google = fake.client(&ids.iter().map(String::as_str).collect::<Vec<_>>());

    let by_calendar = google.busy_by_calendar(iv("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")).await.unwrap();
    assert_eq!(by_calendar.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(by_calendar[50].1.as_ref().unwrap(), &vec![iv("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z")]);
    assert!(by_calendar[..50].iter().all(|(_, r)| r.as_ref().unwrap().is_empty()));

    let calls = fake.requests("/calendar/v3/freeBusy");
    let sizes: Vec<usize> = calls.iter().map(|r| r.json()["items"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, vec![50, 1]);
    assert_eq!(calls[1].json()["items"], json!([{"id": "cal-50"}]));
}

#[tokio::test]
async fn events_are_inserted_then_patched_then_deleted_and_deleting_again_is_fine() {
    let fake = FakeGoogle::start().await;
    let google = fake.client(&["primary", "other"]).with_write_calendar_id("bookings");
    let uid = "booking-0190f1c2@slotd";
    let id = event_id(uid).unwrap();
    assert!(id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='v')));
    let mut event = CalendarEvent {
        uid: uid.to_owned(),
        sequence: 0,
        interval: iv("2026-12-03T15:00:00Z", "2026-12-03T15:30:00Z"),
        summary: "Intro call".to_owned(),
        description: "Booked with slotd".to_owned(),
    };

    google.put_event(&event).await.unwrap();
    let calls: Vec<(Method, String)> = fake.api_requests().iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    assert_eq!(
        calls,
        vec![
            (Method::PATCH, format!("/calendar/v3/calendars/bookings/events/{id}")),
            (Method::POST, "/calendar/v3/calendars/bookings/events".to_owned()),
        ]
    );
    let stored = fake.state.lock().unwrap().events[&("bookings".to_owned(), id.clone())].clone();
    assert_eq!(stored["id"], id.as_str());
    assert_eq!(stored["summary"], "Intro call");
    assert_eq!(stored["description"], "Booked with slotd");
    assert_eq!(stored["start"], json!({"dateTime": "2026-12-03T15:00:00Z"}));
    assert_eq!(stored["end"], json!({"dateTime": "2026-12-03T15:30:00Z"}));
    assert_eq!(stored["sequence"], 0);

    // The same UID again replaces the event (one PATCH, no second insert).
    event.sequence = 1;
    event.summary = "Intro call (moved)".to_owned();
    event.interval = iv("2026-12-04T15:00:00Z", "2026-12-04T15:30:00Z");
    google.put_event(&event).await.unwrap();
    assert_eq!(fake.api_requests().len(), 3);
    assert_eq!(fake.api_requests()[2].method, Method::PATCH);
    {
        let state = fake.state.lock().unwrap();
        assert_eq!(state.events.len(), 1);
        let stored = &state.events[&("bookings".to_owned(), id.clone())];
        assert_eq!(stored["summary"], "Intro call (moved)");
        assert_eq!(stored["sequence"], 1);
        assert_eq!(stored["start"], json!({"dateTime": "2026-12-04T15:00:00Z"}));
    }

    google.delete_event(uid).await.unwrap();
    assert_eq!(fake.state.lock().unwrap().events[&("bookings".to_owned(), id.clone())]["status"], "cancelled");
    // Google answers 410 for an event already deleted, 404 for one never made: both are fine.
    google.delete_event(uid).await.unwrap();
    google.delete_event("never-written").await.unwrap();
    let statuses: Vec<Method> = fake.api_requests().iter().skip(3).map(|r| r.method.clone()).collect();
    assert_eq!(statuses, vec![Method::DELETE, Method::DELETE, Method::DELETE]);

    // Putting it again after a delete brings the (cancelled) event back with one PATCH.
    event.sequence = 2;
    google.put_event(&event).await.unwrap();
    assert_eq!(fake.api_requests().len(), 7);
    {
        let state = fake.state.lock().unwrap();
        let stored = &state.events[&("bookings".to_owned(), id.clone())];
        assert_eq!(stored["status"], "confirmed");
        assert_eq!(stored["sequence"], 2);
    }

    // Without a write calendar, events go to the first calendar.
    let first = fake.client(&["primary", "other"]);
    first.put_event(&event).await.unwrap();
    assert!(fake.state.lock().unwrap().events.contains_key(&("primary".to_owned(), id.clone())));
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_the_retry_carries_the_new_one() {
    let fake = FakeGoogle::start().await;
    let google = fake.client(&["primary"]);
    let range = iv("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");
    google.busy(range).await.unwrap();
    assert_eq!(fake.requests("/token").len(), 1);

    // Google revokes the access token before it expires.
    fake.expire_access_tokens();
    google.busy(range).await.unwrap();

    let tokens = fake.requests("/token");
    assert_eq!(tokens.len(), 2);
    let form: HashMap<String, String> = form_urlencoded::parse(tokens[1].body.as_bytes()).into_owned().collect();
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], REFRESH_TOKEN);
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(form["client_secret"], CLIENT_SECRET);
    let calls = fake.requests("/calendar/v3/freeBusy");
    let auth: Vec<&str> = calls.iter().map(|r| r.authorization.as_deref().unwrap()).collect();
    assert_eq!(auth, vec!["Bearer ya29.access-1", "Bearer ya29.access-1", "Bearer ya29.access-2"]);
}

#[tokio::test]
async fn rate_limited_calls_back_off_then_succeed_or_give_up_after_three_tries() {
    let fake = FakeGoogle::start().await;
    let google = fake.client(&["primary"]);
    let range = iv("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");

    {
        let mut s = fake.state.lock().unwrap();
        s.rate_limit_next = 2;
        s.rate_limit_status = 403;
    }
    google.busy(range).await.unwrap();
    assert_eq!(fake.requests("/calendar/v3/freeBusy").len(), 3);

    {
        let mut s = fake.state.lock().unwrap();
        s.rate_limit_next = 1;
        s.rate_limit_status = 429;
    }
    google.busy(range).await.unwrap();
    assert_eq!(fake.requests("/calendar/v3/freeBusy").len(), 5);

    {
        let mut s = fake.state.lock().unwrap();
        s.rate_limit_next = 10;
        s.rate_limit_status = 403;
    }
    let err = google.busy(range).await.unwrap_err();
    assert!(
        matches!(&err, CalendarError::Refused { status: 403, detail } if detail.contains("rateLimitExceeded")),
        "{err:?}"
    );
    assert_eq!(fake.requests("/calendar/v3/freeBusy").len(), 8);
    // One token served all of it.
    assert_eq!(fake.requests("/token").len(), 1);
}

#[tokio::test]
async fn the_connect_flow_builds_the_consent_url_and_trades_the_code_for_a_refresh_token() {
    let fake = FakeGoogle::start().await;
    let url = authorize_url(
        &fake.base,
        CLIENT_ID,
        REDIRECT,
        "state with spaces&symbols",
        &["https://www.googleapis.com/auth/calendar.events", "https://www.googleapis.com/auth/calendar.freebusy"],
    )
    .unwrap();
    let parsed = reqwest::Url::parse(&url).unwrap();
    assert_eq!(parsed.path(), "/o/oauth2/v2/auth");
    assert!(url.contains("state=state+with+spaces%26symbols"), "{url}");
    let query: HashMap<String, String> = parsed.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["redirect_uri"], REDIRECT);
    assert_eq!(
        query["scope"],
        "https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/calendar.freebusy"
    );
    assert_eq!(query["state"], "state with spaces&symbols");
    assert_eq!(query["access_type"], "offline");
    assert_eq!(query["prompt"], "consent");

    let client = reqwest::Client::new();
    let refresh = exchange_code(&client, &fake.base, CLIENT_ID, CLIENT_SECRET, CODE, REDIRECT).await.unwrap();
    assert_eq!(refresh, CODE_REFRESH_TOKEN);
    let form: HashMap<String, String> =
        form_urlencoded::parse(fake.requests("/token")[0].body.as_bytes()).into_owned().collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], CODE);
    assert_eq!(form["redirect_uri"], REDIRECT);

    let err = exchange_code(&client, &fake.base, CLIENT_ID, CLIENT_SECRET, "4/stale", REDIRECT).await.unwrap_err();
    assert!(
        matches!(&err, CalendarError::Refused { status: 400, detail } if detail.contains("invalid_grant")),
        "{err:?}"
    );

    // A revoked refresh token: the connection is refused, and nothing reaches the API.
    let revoked = fake.client_with("1//revoked", &["primary"]);
    let err = revoked.busy(iv("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")).await.unwrap_err();
    assert!(
        matches!(&err, CalendarError::Refused { status: 400, detail } if detail.contains("invalid_grant")),
        "{err:?}"
    );
    assert!(fake.api_requests().is_empty());
}

#[tokio::test]
async fn no_secret_or_token_appears_in_debug_output_or_error_texts() {
    let fake = FakeGoogle::start().await;
    let google = fake.client(&["missing-cal"]);
    let err = google.busy(iv("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")).await.unwrap_err();
    let texts = [format!("{google:?}"), format!("{err:?}"), err.to_string()];
    for text in texts {
        for secret in [CLIENT_SECRET, REFRESH_TOKEN, "ya29.access-1"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    // A closed port is Unreachable, naming no secret.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let down = GoogleCalendar::new(
        reqwest::Client::new(),
        &closed,
        &closed,
        CLIENT_ID,
        CLIENT_SECRET,
        REFRESH_TOKEN,
        vec!["primary".into()],
    );
    let err = down.busy(iv("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")).await.unwrap_err();
    assert!(matches!(err, CalendarError::Unreachable(_)), "{err:?}");
    assert!(!err.to_string().contains(CLIENT_SECRET) && !err.to_string().contains(REFRESH_TOKEN));
}

#[tokio::test]
async fn an_insert_answered_409_duplicate_becomes_a_patch() {
    let fake = FakeGoogle::start().await;
    let google = fake.client(&["primary"]);
    let mut event = CalendarEvent {
        uid: "booking-race@slotd".to_owned(),
        sequence: 0,
        interval: iv("2026-12-03T15:00:00Z", "2026-12-03T15:30:00Z"),
        summary: "First".to_owned(),
        description: String::new(),
    };
    google.put_event(&event).await.unwrap();

    // Another worker's write lands between our PATCH (404) and our insert (409 duplicate).
    fake.state.lock().unwrap().hide_next_patch = true;
    event.sequence = 1;
    event.summary = "Second".to_owned();
    google.put_event(&event).await.unwrap();
    let methods: Vec<Method> = fake.api_requests().iter().skip(2).map(|r| r.method.clone()).collect();
    assert_eq!(methods, vec![Method::PATCH, Method::POST, Method::PATCH]);
    let state = fake.state.lock().unwrap();
    assert_eq!(state.events.len(), 1);
    assert_eq!(state.events.values().next().unwrap()["summary"], "Second");
}

#[tokio::test]
async fn retry_after_is_honoured_over_the_base_delay() {
    let fake = FakeGoogle::start().await;
    let google = fake.client(&["primary"]);
    {
        let mut s = fake.state.lock().unwrap();
        s.rate_limit_next = 1;
        s.rate_limit_status = 429;
        s.retry_after = Some(1);
    }
    let started = std::time::Instant::now();
    google.busy(iv("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(fake.requests("/calendar/v3/freeBusy").len(), 2);
}

#[tokio::test]
async fn an_answer_over_one_megabyte_is_too_large() {
    let fake = FakeGoogle::start().await;
    let google = fake.client(&["primary"]);
    fake.state.lock().unwrap().huge_next = true;
    let err = google.busy(iv("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")).await.unwrap_err();
    assert!(matches!(err, CalendarError::TooLarge(1_048_576)), "{err:?}");
}
