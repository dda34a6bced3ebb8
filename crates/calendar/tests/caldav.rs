//! CalDAV against a real Radicale server (see `common/radicale.rs`): discovery from the server
//! root, busy time from server-expanded recurrences, write-back with ETags, and the errors a
//! connection shows (wrong password, server down).

mod common;

use common::radicale::{PASSWORD, Radicale, USER};
use jiff::Timestamp;
use slotd_calendar::caldav::CalDav;
use slotd_calendar::{BusySource, CalendarError, CalendarEvent, EventSink, Interval};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn iv(start: &str, end: &str) -> Interval {
    Interval::new(ts(start), ts(end)).unwrap()
}

fn sorted(mut v: Vec<Interval>) -> Vec<Interval> {
    v.sort();
    v
}

/// A raw request to Radicale as the test user (the test's own hands, not the code under test).
async fn raw(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut request =
        client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url).basic_auth(USER, Some(PASSWORD));
    if let Some(body) = body {
        request = request.header("Content-Type", "text/calendar; charset=utf-8").body(body.to_owned());
    }
    let response = request.send().await.expect("Radicale answers");
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Makes a calendar `name` for the test user (components: VEVENT unless told) and returns its URL.
async fn make_calendar(radicale: &Radicale, name: &str, display: &str, component: &str) -> String {
    // Radicale makes the principal collection on the user's first request.
    let (status, _) = raw("PROPFIND", &format!("{}{USER}/", radicale.url()), None).await;
    assert_eq!(status, 207);
    let url = format!("{}{USER}/{name}/", radicale.url());
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:displayname>{display}</D:displayname>
    <C:supported-calendar-component-set><C:comp name="{component}"/></C:supported-calendar-component-set>
  </D:prop></D:set>
</C:mkcalendar>"#
    );
    let client = reqwest::Client::new();
    let response = client
        .request(reqwest::Method::from_bytes(b"MKCALENDAR").unwrap(), &url)
        .basic_auth(USER, Some(PASSWORD))
        .header("Content-Type", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201, "MKCALENDAR: {}", response.text().await.unwrap());
    url
}

fn caldav(calendar_url: &str, password: &str) -> CalDav {
    CalDav::new(reqwest::Client::new(), calendar_url, USER, password).unwrap()
}

#[tokio::test]
async fn discovery_from_the_server_root_finds_the_users_calendars() {
    let Some(radicale) = Radicale::start() else { return };
    let work = make_calendar(&radicale, "work", "Work", "VEVENT").await;
    let tasks = make_calendar(&radicale, "tasks", "Tasks", "VTODO").await;

    let client = reqwest::Client::new();
    let mut found = CalDav::discover(&client, &radicale.url(), USER, PASSWORD).await.unwrap();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        (found[0].name.as_str(), found[0].url.as_str(), found[0].supports_events),
        ("Tasks", tasks.as_str(), false)
    );
    assert_eq!(
        (found[1].name.as_str(), found[1].url.as_str(), found[1].supports_events),
        ("Work", work.as_str(), true)
    );

    // From a calendar's own URL (without its trailing slash) the same calendars are found.
    let again = CalDav::discover(&client, work.trim_end_matches('/'), USER, PASSWORD).await.unwrap();
    assert_eq!(again.len(), 2);
}

const WEEKLY: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n\
UID:weekly@test\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250303T090000Z\r\nDTEND:20250303T100000Z\r\n\
RRULE:FREQ=WEEKLY;COUNT=6\r\nEXDATE:20250317T090000Z\r\nSUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

const TRANSPARENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n\
UID:free@test\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250305T100000Z\r\nDTEND:20250305T110000Z\r\n\
TRANSP:TRANSPARENT\r\nSUMMARY:Focus (free)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

const BERLIN: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n\
BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n\
BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n\
END:VTIMEZONE\r\nBEGIN:VEVENT\r\n\
UID:berlin@test\r\nDTSTAMP:20250101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20250402T140000\r\nDTEND;TZID=Europe/Berlin:20250402T150000\r\n\
RRULE:FREQ=WEEKLY;COUNT=2\r\nSUMMARY:Lunch\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[tokio::test]
async fn a_weekly_series_with_an_exdate_is_busy_per_expanded_instance_and_a_transparent_event_is_not() {
    let Some(radicale) = Radicale::start() else { return };
    let work = make_calendar(&radicale, "work", "Work", "VEVENT").await;
    assert_eq!(raw("PUT", &format!("{work}weekly.ics"), Some(WEEKLY)).await.0, 201);
    assert_eq!(raw("PUT", &format!("{work}free.ics"), Some(TRANSPARENT)).await.0, 201);
    let calendar = caldav(&work, PASSWORD);

    // Times in a zone come back in UTC, single or recurring (Berlin is UTC+1 in March until the
    // 30th, UTC+2 after).
    assert_eq!(raw("PUT", &format!("{work}berlin.ics"), Some(BERLIN)).await.0, 201);
    let busy = calendar.busy(iv("2025-04-01T00:00:00Z", "2025-04-30T00:00:00Z")).await.unwrap();
    assert_eq!(
        sorted(busy),
        vec![
            iv("2025-04-02T12:00:00Z", "2025-04-02T13:00:00Z"),
            // The weekly series' sixth and last instance.
            iv("2025-04-07T09:00:00Z", "2025-04-07T10:00:00Z"),
            iv("2025-04-09T12:00:00Z", "2025-04-09T13:00:00Z"),
        ]
    );
    assert_eq!(
        raw(
            "PUT",
            &format!("{work}berlin-once.ics"),
            Some(
                &BERLIN
                    .replace("RRULE:FREQ=WEEKLY;COUNT=2\r\n", "")
                    .replace("berlin@", "once@")
                    .replace("20250402", "20250326")
            )
        )
        .await
        .0,
        201
    );
    let busy = calendar.busy(iv("2025-03-26T00:00:00Z", "2025-03-27T00:00:00Z")).await.unwrap();
    assert_eq!(busy, vec![iv("2025-03-26T13:00:00Z", "2025-03-26T14:00:00Z")]);
    assert_eq!(raw("DELETE", &format!("{work}berlin-once.ics"), None).await.0, 200);

    // March: the 3rd, 10th and 24th (the 17th is excluded; the 31st is past the range).
    let busy = calendar.busy(iv("2025-03-01T00:00:00Z", "2025-03-30T00:00:00Z")).await.unwrap();
    assert_eq!(
        sorted(busy),
        vec![
            iv("2025-03-03T09:00:00Z", "2025-03-03T10:00:00Z"),
            iv("2025-03-10T09:00:00Z", "2025-03-10T10:00:00Z"),
            iv("2025-03-24T09:00:00Z", "2025-03-24T10:00:00Z"),
        ]
    );

    // A narrower range sees only the instances inside it.
    let busy = calendar.busy(iv("2025-03-04T00:00:00Z", "2025-03-12T00:00:00Z")).await.unwrap();
    assert_eq!(busy, vec![iv("2025-03-10T09:00:00Z", "2025-03-10T10:00:00Z")]);

    // A range with only the excluded instance and the transparent event is free.
    let busy = calendar.busy(iv("2025-03-05T00:00:00Z", "2025-03-06T00:00:00Z")).await.unwrap();
    assert_eq!(busy, vec![]);
    let busy = calendar.busy(iv("2025-03-17T00:00:00Z", "2025-03-18T00:00:00Z")).await.unwrap();
    assert_eq!(busy, vec![]);
}

#[tokio::test]
async fn put_event_creates_then_moves_one_event_and_delete_event_removes_it_twice_without_error() {
    let Some(radicale) = Radicale::start() else { return };
    let work = make_calendar(&radicale, "work", "Work", "VEVENT").await;
    let calendar = caldav(&work, PASSWORD);
    let march = iv("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z");
    let event_url = format!("{work}slotd-booking-0193.ics");
    let mut event = CalendarEvent {
        uid: "slotd-booking-0193".to_owned(),
        sequence: 0,
        interval: iv("2025-03-04T13:00:00Z", "2025-03-04T14:00:00Z"),
        summary: "Intro call, with Ann; 30 min".to_owned(),
        description: "Booked through slotd.\nSee you then.".to_owned(),
    };

    calendar.put_event(&event).await.unwrap();
    assert_eq!(calendar.busy(march).await.unwrap(), vec![event.interval]);
    let (status, body) = raw("GET", &event_url, None).await;
    assert_eq!(status, 200);
    assert!(body.contains("UID:slotd-booking-0193"), "{body}");
    assert!(body.contains("SUMMARY:Intro call\\, with Ann\\; 30 min"), "{body}");

    // The same UID again: the event moves; there is still one.
    event.sequence = 1;
    event.interval = iv("2025-03-04T15:00:00Z", "2025-03-04T16:00:00Z");
    calendar.put_event(&event).await.unwrap();
    assert_eq!(calendar.busy(march).await.unwrap(), vec![event.interval]);
    let (status, body) = raw("GET", &event_url, None).await;
    assert_eq!(status, 200);
    assert!(body.contains("DTSTART:20250304T150000Z"), "{body}");
    assert!(body.contains("SEQUENCE:1"), "{body}");
    assert_eq!(body.matches("BEGIN:VEVENT").count(), 1, "{body}");

    // Changed behind slotd's back (a new ETag): the write still lands.
    let edited = body.replace("SUMMARY:", "SUMMARY:edited ");
    assert_eq!(raw("PUT", &event_url, Some(&edited)).await.0, 204);
    event.sequence = 2;
    calendar.put_event(&event).await.unwrap();
    assert!(!raw("GET", &event_url, None).await.1.contains("edited"));

    calendar.delete_event(&event.uid).await.unwrap();
    assert_eq!(calendar.busy(march).await.unwrap(), vec![]);
    assert_eq!(raw("GET", &event_url, None).await.0, 404);
    calendar.delete_event(&event.uid).await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_401() {
    let Some(radicale) = Radicale::start() else { return };
    let work = make_calendar(&radicale, "work", "Work", "VEVENT").await;
    let calendar = caldav(&work, "wrong");
    let march = iv("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z");

    let error = calendar.busy(march).await.unwrap_err();
    assert!(matches!(error, CalendarError::Refused { status: 401, .. }), "{error:?}");
    let error = CalDav::discover(&reqwest::Client::new(), &radicale.url(), USER, "wrong").await.unwrap_err();
    assert!(matches!(error, CalendarError::Refused { status: 401, .. }), "{error:?}");
    let event = CalendarEvent {
        uid: "x".to_owned(),
        sequence: 0,
        interval: iv("2025-03-04T13:00:00Z", "2025-03-04T14:00:00Z"),
        summary: String::new(),
        description: String::new(),
    };
    let error = calendar.put_event(&event).await.unwrap_err();
    assert!(matches!(error, CalendarError::Refused { status: 401, .. }), "{error:?}");
    // Nothing was written.
    assert_eq!(raw("GET", &format!("{work}x.ics"), None).await.0, 404);
}

#[tokio::test]
async fn a_stopped_server_is_unreachable() {
    let Some(mut radicale) = Radicale::start() else { return };
    let work = make_calendar(&radicale, "work", "Work", "VEVENT").await;
    let calendar = caldav(&work, PASSWORD);
    radicale.stop();

    let error = calendar.busy(iv("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z")).await.unwrap_err();
    assert!(matches!(error, CalendarError::Unreachable(_)), "{error:?}");
    let error = calendar.delete_event("x").await.unwrap_err();
    assert!(matches!(error, CalendarError::Unreachable(_)), "{error:?}");
}

/// A loopback server that answers every request with `head` and then `body_len` bytes of `x`
/// (sent without a Content-Length when `chunked`).
async fn oversized_server(chunked: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cal/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let len = slotd_calendar::caldav::MAX_RESPONSE_BYTES + 1;
                let head = if chunked {
                    "HTTP/1.1 207 Multi-Status\r\nConnection: close\r\n\r\n".to_owned()
                } else {
                    format!("HTTP/1.1 207 Multi-Status\r\nContent-Length: {len}\r\n\r\n")
                };
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&vec![b'x'; len]).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn an_answer_over_the_size_cap_is_too_large_with_or_without_a_content_length() {
    for chunked in [false, true] {
        let url = oversized_server(chunked).await;
        let error = caldav(&url, PASSWORD).busy(iv("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z")).await.unwrap_err();
        assert!(matches!(error, CalendarError::TooLarge(_)), "chunked={chunked}: {error:?}");
    }
}

/// A server whose principal lives, it says, on a private address: discovery asks the caller's
/// guard before going there, and a refusal stops it before any request is sent (nothing is ever
/// sent beyond this loopback server).
#[tokio::test]
async fn discovery_asks_the_guard_before_following_an_href_to_another_address() {
    use std::sync::{Arc, Mutex};
    let requests = Arc::new(Mutex::new(0usize));
    let counted = requests.clone();
    let app = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            *counted.lock().unwrap() += 1;
            let body = r#"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/</d:href>
<d:propstat><d:prop><d:current-user-principal><d:href>http://10.0.0.1/principal/</d:href></d:current-user-principal>
</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;
            (axum::http::StatusCode::MULTI_STATUS, [("content-type", "application/xml")], body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let seen = Mutex::new(Vec::new());
    let vet = |url: &reqwest::Url| {
        seen.lock().unwrap().push(url.to_string());
        match url.host_str() {
            Some("127.0.0.1") => Ok(()),
            other => Err(format!("refused by the guard: {other:?}")),
        }
    };
    let error = CalDav::discover_vetted(&reqwest::Client::new(), &base, USER, PASSWORD, &vet).await.unwrap_err();
    assert!(error.to_string().contains("refused by the guard"), "{error}");
    assert_eq!(*requests.lock().unwrap(), 1, "only the start URL was asked");
    assert_eq!(*seen.lock().unwrap(), vec![base.clone(), "http://10.0.0.1/principal/".to_owned()]);
}
