//! The hosted manage page, `/manage/{token}`, over the real router on SQLite and PostgreSQL:
//! its headers (safe to embed, never cached), the current time marked and never offered, the
//! zone selector, day links and paging, a reschedule through the form ending on the success
//! page, a taken time answered with one-click alternatives, the cut-off and the required reason
//! in words, cancelled / declined / invalid links, and HTML escaping of everything a user typed.
//!
//! The page is read as HTML text: what a browser shows is checked by `tests/browser.rs`.

#[macro_use]
mod common;

use base64::Engine;
use common::{AppOptions, Backend, TestApp, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

on_both_backends!(
    spawn = spawn_embeddable;
    the_page_is_safe_to_embed_never_cached_and_its_styles_are_allowed_by_hash,
    the_current_time_is_marked_and_not_offered,
    the_zone_selector_changes_the_times_shown_and_an_unknown_zone_falls_back_with_a_note,
    a_day_link_shows_that_days_times_and_days_without_times_are_disabled,
    the_days_come_fourteen_per_page_and_never_before_today,
    a_reschedule_through_the_form_redirects_to_the_success_page_and_moves_the_booking,
    a_taken_time_says_so_and_offers_the_nearest_free_times_as_one_click_buttons,
    inside_the_cut_off_the_page_says_changes_are_closed_and_the_form_changes_nothing,
    a_required_reason_is_marked_required_and_checked_on_the_server,
    bad_form_input_answers_4xx_in_words_and_changes_nothing,
    cancelled_declined_and_invalid_links_each_get_a_page_in_words,
    names_and_reasons_typed_by_people_are_escaped,
);

/// The operators' frame-ancestors in these tests.
const FRAME_ANCESTORS: &str = "'self' https://shop.example.com";

/// A Monday far enough ahead for any notice; Europe/London is on UTC then.
const DAY: &str = "2027-01-04";

async fn spawn_embeddable(backend: Backend) -> TestApp {
    spawn_app_with(backend, AppOptions { frame_ancestors: Some(FRAME_ANCESTORS.to_owned()), ..Default::default() })
        .await
}

/// `HH:MM` on [`DAY`] as an RFC 3339 UTC instant.
fn at(time: &str) -> String {
    format!("{DAY}T{time}:00Z")
}

/// A client that does not follow redirects (to see the 303 of a form).
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// An event type with `extra` settings for one office host in London; answers its id.
async fn event_type(app: &TestApp, host: &str, extra: Value) -> String {
    let mut body = json!({ "slug": "intro", "title": "Intro call", "duration_minutes": 30,
        "slot_interval_minutes": 30, "booking_window_days": 3650, "hosts": [host] });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    app.expect(Method::POST, "/v1/event-types", Some(body), 201).await["id"].as_str().unwrap().to_owned()
}

/// A booking at `start` for an attendee in New York.
async fn book(app: &TestApp, event_type: &str, start: &str, name: &str) -> Value {
    let body = json!({ "event_type_id": event_type, "start": start,
        "attendee": { "name": name, "email": "grace@example.com", "time_zone": "America/New_York" } });
    app.expect(Method::POST, "/v1/bookings", Some(body), 201).await
}

/// A London office host, an intro call, and Grace's booking at 10:00 on [`DAY`]; answers the
/// event type id, the booking and its manage token.
async fn booked(app: &TestApp, extra: Value) -> (String, Value, String) {
    let host = app.office_host("Ada", "Europe/London").await;
    let event_type = event_type(app, &host, extra).await;
    let booking = book(app, &event_type, &at("10:00"), "Grace").await;
    let token = booking["links"]["manage"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    (event_type, booking, token)
}

/// `GET path` without a key: status and text.
async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let response = no_redirects().get(format!("{}{path}", app.base)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `POST path` with a form body: status, `Location`, text.
async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let response = no_redirects()
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), location, response.text().await.unwrap())
}

async fn stored(app: &TestApp, booking: &Value) -> Value {
    app.expect(Method::GET, &format!("/v1/bookings/{}", booking["id"].as_str().unwrap()), None, 200).await
}

/// The time radios offered (their `value`s).
fn offered(html: &str) -> Vec<String> {
    html.split("name=\"start\" value=\"").skip(1).map(|rest| rest.split('"').next().unwrap().to_owned()).collect()
}

/// The text of the `<legend>` of the time choice.
fn legend(html: &str) -> String {
    html.split("<legend>").nth(1).and_then(|rest| rest.split("</legend>").next()).unwrap_or_default().to_owned()
}

async fn the_page_is_safe_to_embed_never_cached_and_its_styles_are_allowed_by_hash(app: &TestApp) {
    let (_, _, token) = booked(app, json!({})).await;
    let paths = [
        format!("/manage/{token}"),
        format!("/manage/{token}?tz=Europe/Paris&day=2027-01-05"),
        format!("/b/{token}.ics"),
        "/manage/not-a-token".to_owned(),
        format!("/v1/manage/{token}"),
    ];
    for path in &paths {
        let response = no_redirects().get(format!("{}{path}", app.base)).send().await.unwrap();
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(header("referrer-policy").as_deref(), Some("no-referrer"), "{path}");
        assert_eq!(header("cache-control").as_deref(), Some("no-store"), "{path}");
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        let csp = header("content-security-policy").unwrap_or_else(|| panic!("no CSP on {path}"));
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        assert!(directives.contains(&"default-src 'none'"), "{csp}");
        assert!(directives.contains(&"form-action 'self'"), "{csp}");
        assert!(directives.contains(&"base-uri 'none'"), "{csp}");
        assert!(directives.contains(&format!("frame-ancestors {FRAME_ANCESTORS}").as_str()), "{csp}");
        let style = directives.iter().find(|d| d.starts_with("style-src ")).unwrap_or_else(|| panic!("{csp}"));
        assert!(!style.contains("http") && !style.contains('*'), "no external style source: {csp}");
        let is_html = header("content-type").is_some_and(|c| c.starts_with("text/html"));
        let text = response.text().await.unwrap();
        if is_html {
            // The one inline stylesheet is exactly the one the policy allows.
            let css = text.split("<style>").nth(1).unwrap().split("</style>").next().unwrap();
            let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(css.as_bytes()));
            assert_eq!(*style, format!("style-src 'sha256-{hash}'"), "{path}");
            assert!(!text.contains("<script"), "no JavaScript on {path}");
            assert!(!text.contains("http://") && !text.contains("https://"), "no external URL on {path}");
        }
    }
    // Other paths are not pages: no page headers.
    let response = app.call(Method::GET, "/v1/hosts", None).await;
    assert!(response.headers().get("content-security-policy").is_none());
}

async fn the_current_time_is_marked_and_not_offered(app: &TestApp) {
    let (_, booking, token) = booked(app, json!({})).await;
    let (status, html) = get(app, &format!("/manage/{token}?tz=Europe/London&day={DAY}")).await;
    assert_eq!(status, 200, "{html}");
    let offered = offered(&html);
    assert!(!offered.contains(&at("10:00")), "the booking's own time is not offered: {offered:?}");
    assert_eq!(offered.first().map(String::as_str), Some(at("09:00").as_str()));
    assert!(offered.contains(&at("10:30")), "{offered:?}");
    assert_eq!(offered.len(), 15, "16 slots of the day less the current one: {offered:?}");
    let current = html.split("chip current").nth(1).expect("the current time is marked");
    assert!(
        current.trim_start_matches(|c| c != '>').starts_with("><span>10:00<small>your current time</small>"),
        "{current}"
    );
    assert!(html.contains("Monday 4 January 2027, 10:00 – 10:30"), "the summary shows the current time");
    assert_eq!(stored(app, &booking).await["version"], 1, "looking changes nothing");
}

async fn the_zone_selector_changes_the_times_shown_and_an_unknown_zone_falls_back_with_a_note(app: &TestApp) {
    let (_, _, token) = booked(app, json!({})).await;
    let chip = |html: &str, start: &str| {
        let after = html.split(&format!("value=\"{start}\"")).nth(1).unwrap_or_else(|| panic!("{start} not offered"));
        after.split("<span>").nth(1).unwrap().split("</span>").next().unwrap().to_owned()
    };
    // Default: the attendee's zone (New York, UTC-5 in January).
    let (_, html) = get(app, &format!("/manage/{token}?day={DAY}")).await;
    assert_eq!(legend(&html), "Times on Monday 4 January 2027 (America/New_York)");
    assert_eq!(chip(&html, &at("10:30")), "05:30");
    assert!(html.contains("<option value=\"America/New_York\" selected>"), "the zone is preselected");
    assert!(html.contains("Monday 4 January 2027, 05:00 – 05:30"));
    // The hosts' zone and common zones are offered.
    assert!(html.contains("<option value=\"Europe/London\">") && html.contains("<option value=\"Asia/Tokyo\">"));
    assert!(html.contains("<option value=\"UTC\">"));

    let (_, html) = get(app, &format!("/manage/{token}?tz=Europe%2FParis&day={DAY}")).await;
    assert_eq!(legend(&html), "Times on Monday 4 January 2027 (Europe/Paris)");
    assert_eq!(chip(&html, &at("10:30")), "11:30");
    assert!(html.contains("<option value=\"Europe/Paris\" selected>"));
    assert!(html.contains("Monday 4 January 2027, 11:00 – 11:30"));
    // Every link and form carries the zone.
    assert!(html.contains("tz=Europe%2FParis&amp;from="), "day links keep the zone");
    assert!(html.contains("<input type=\"hidden\" name=\"tz\" value=\"Europe/Paris\">"), "the forms keep the zone");

    let (status, html) = get(app, &format!("/manage/{token}?tz=Mars%2FOlympus&day={DAY}")).await;
    assert_eq!(status, 200, "an unknown zone is not an error page");
    assert!(html.contains("“Mars/Olympus” is not a time zone we know, so times are shown in America/New_York."));
    assert_eq!(chip(&html, &at("10:30")), "05:30");
}

async fn a_day_link_shows_that_days_times_and_days_without_times_are_disabled(app: &TestApp) {
    let (_, _, token) = booked(app, json!({})).await;
    let (_, html) = get(app, &format!("/manage/{token}?tz=UTC&from={DAY}&day=2027-01-05")).await;
    assert_eq!(legend(&html), "Times on Tuesday 5 January 2027 (UTC)");
    let offered = offered(&html);
    assert_eq!(offered.len(), 16, "{offered:?}");
    assert!(offered.iter().all(|s| s.starts_with("2027-01-05T")), "{offered:?}");
    assert!(html.contains("href=\"/manage/") && html.contains("day=2027-01-05\" aria-current=\"date\""));
    // Monday shows 15 (its current time is not free to move to), the weekend none.
    assert!(html.contains("aria-label=\"Monday 4 January 2027, 15 free times\""), "{html}");
    assert!(html.contains("aria-disabled=\"true\" aria-label=\"Saturday 9 January 2027, no free times\""));
    assert!(html.contains("aria-disabled=\"true\" aria-label=\"Sunday 10 January 2027, no free times\""));
    // The day's own page: without `from`, the 14 days start at the day asked for when it is ahead.
    let (_, html) = get(app, &format!("/manage/{token}?tz=UTC&day=2027-02-01")).await;
    assert_eq!(legend(&html), "Times on Monday 1 February 2027 (UTC)");
    // A bad day is ignored, not an error.
    let (status, _) = get(app, &format!("/manage/{token}?tz=UTC&day=yesterday&from=soon")).await;
    assert_eq!(status, 200);
}

async fn the_days_come_fourteen_per_page_and_never_before_today(app: &TestApp) {
    let (_, _, token) = booked(app, json!({})).await;
    let (_, html) = get(app, &format!("/manage/{token}?tz=UTC&from={DAY}")).await;
    assert!(html.contains("Mon 4 Jan – Sun 17 Jan"), "{html}");
    assert_eq!(html.matches("<li><a class=\"day\"").count() + html.matches("<li><span class=\"day off\"").count(), 14);
    assert!(html.contains("from=2027-01-18\">Later dates"), "later dates page on");
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let earlier = html.split("from=").nth(1).unwrap().split('"').next().unwrap();
    let earlier: jiff::civil::Date = earlier.parse().unwrap();
    assert!(html.contains("Earlier dates") && earlier >= today, "earlier dates never before today: {earlier}");
    // The first page starts today and has no earlier page.
    for path in [format!("/manage/{token}?tz=UTC"), format!("/manage/{token}?tz=UTC&from=2000-01-01")] {
        let (status, html) = get(app, &path).await;
        assert_eq!(status, 200);
        assert!(html.contains(&format!("<span class=\"range\">{} –", today.strftime("%a %-d %b"))), "{path}: {html}");
        assert!(!html.contains("Earlier dates"), "{path}");
    }
}

async fn a_reschedule_through_the_form_redirects_to_the_success_page_and_moves_the_booking(app: &TestApp) {
    let (_, booking, token) = booked(app, json!({})).await;
    let form = [("start", at("11:00")), ("reason", "Dentist".to_owned()), ("tz", "Europe/Paris".to_owned())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, location, _) = post_form(app, &format!("/manage/{token}/reschedule"), &form).await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert_eq!(location, format!("/manage/{token}?done=rescheduled&tz=Europe%2FParis"));
    let (status, html) = get(app, &location).await;
    assert_eq!(status, 200);
    assert!(html.contains("<title>Your booking has been moved</title>"));
    assert!(html.contains("Done: the new time is Monday 4 January 2027, 12:00 – 12:30."), "{html}");
    assert!(html.contains(&format!("href=\"/b/{token}.ics\"")));
    let moved = stored(app, &booking).await;
    assert_eq!(moved["starts_at"], at("11:00"));
    assert_eq!(moved["version"], 2);
    assert_eq!(moved["history"][0]["by"], "attendee");
    assert_eq!(moved["history"][0]["reason"], "Dentist");
}

async fn a_taken_time_says_so_and_offers_the_nearest_free_times_as_one_click_buttons(app: &TestApp) {
    let (event_type, booking, token) = booked(app, json!({})).await;
    // The page was loaded with 11:00 free; someone else books it before the click.
    let (_, html) = get(app, &format!("/manage/{token}?tz=Europe/London&day={DAY}")).await;
    assert!(offered(&html).contains(&at("11:00")));
    book(app, &event_type, &at("11:00"), "Someone else").await;
    let start = at("11:00");
    let form = [("start", start.as_str()), ("reason", "Train"), ("tz", "Europe/London")];
    let (status, _, html) = post_form(app, &format!("/manage/{token}/reschedule"), &form).await;
    assert_eq!(status, 409);
    assert!(html.contains("That time was just taken"), "{html}");
    let buttons: Vec<&str> = html
        .split("class=\"alternatives\"")
        .nth(1)
        .unwrap()
        .split("</ul>")
        .next()
        .unwrap()
        .split("<li>")
        .skip(1)
        .collect();
    assert!(!buttons.is_empty(), "{html}");
    let starts: Vec<String> = buttons.iter().flat_map(|b| offered(b)).collect();
    assert!(starts.contains(&at("11:30")) && starts.contains(&at("10:30")), "{starts:?}");
    assert!(
        !starts.contains(&at("10:00")) && !starts.contains(&at("11:00")),
        "neither the current nor the taken time: {starts:?}"
    );
    for button in &buttons {
        assert!(button.contains(&format!("action=\"/manage/{token}/reschedule\"")), "{button}");
        assert!(button.contains("name=\"reason\" value=\"Train\""), "the reason is carried over: {button}");
        assert!(button.contains("name=\"tz\" value=\"Europe/London\""), "{button}");
    }
    assert!(buttons.iter().any(|b| b.contains("Move to Mon 4 Jan, 11:30")), "{buttons:?}");
    assert_eq!(stored(app, &booking).await["version"], 1, "the booking is unchanged");

    let start = at("11:30");
    let form = [("start", start.as_str()), ("reason", "Train"), ("tz", "Europe/London")];
    let (status, location, _) = post_form(app, &format!("/manage/{token}/reschedule"), &form).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some(format!("/manage/{token}?done=rescheduled&tz=Europe%2FLondon").as_str()))
    );
    let moved = stored(app, &booking).await;
    assert_eq!(moved["starts_at"], at("11:30"));
    assert_eq!(moved["history"][0]["reason"], "Train");
}

/// A host open around the clock in UTC.
async fn open_host(app: &TestApp) -> String {
    let days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    let weekly: serde_json::Map<String, Value> =
        days.iter().map(|d| ((*d).to_owned(), json!([{ "start": "00:00", "end": "24:00" }]))).collect();
    let body = json!({ "name": "Olga", "email": "olga@example.com", "time_zone": "UTC", "availability": { "weekly": weekly } });
    app.expect(Method::POST, "/v1/hosts", Some(body), 201).await["id"].as_str().unwrap().to_owned()
}

async fn inside_the_cut_off_the_page_says_changes_are_closed_and_the_form_changes_nothing(app: &TestApp) {
    let host = open_host(app).await;
    let strict =
        event_type(app, &host, json!({ "reschedule_cutoff_minutes": 1440, "cancel_cutoff_minutes": 1440 })).await;
    let hour = jiff::Timestamp::now().as_second() / 3600 + 6;
    let soon = jiff::Timestamp::from_second(hour * 3600).unwrap().to_string();
    let booking = book(app, &strict, &soon, "Grace").await;
    let token = booking["links"]["manage"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let (status, html) = get(app, &format!("/manage/{token}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Changes are closed within 24 hours of the start."), "{html}");
    assert!(!html.contains("Pick a new time") && !html.contains("Cancel booking"), "no forms inside the cut-off");
    let later = jiff::Timestamp::from_second((hour + 2) * 3600).unwrap().to_string();
    let (status, _, html) = post_form(app, &format!("/manage/{token}/reschedule"), &[("start", &later)]).await;
    assert_eq!(status, 422);
    assert!(html.contains("Changes are closed within 24 hours of the start."), "{html}");
    let (status, _, _) = post_form(app, &format!("/manage/{token}/cancel"), &[("reason", "ill")]).await;
    assert_eq!(status, 422);
    let after = stored(app, &booking).await;
    assert_eq!((after["version"].as_i64(), after["status"].as_str()), (Some(1), Some("confirmed")));

    // Only the reschedule closes (10 hours), cancelling (90 minutes) stays open.
    let loose = app
        .expect(Method::POST, "/v1/event-types", Some(json!({ "slug": "loose", "title": "Loose", "duration_minutes": 30,
            "slot_interval_minutes": 30, "hosts": [host], "reschedule_cutoff_minutes": 600, "cancel_cutoff_minutes": 90 })), 201)
        .await;
    let a_bit_later = jiff::Timestamp::from_second((hour + 1) * 3600).unwrap().to_string();
    let booking = book(app, loose["id"].as_str().unwrap(), &a_bit_later, "Grace").await;
    let token = booking["links"]["manage"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let (_, html) = get(app, &format!("/manage/{token}")).await;
    assert!(html.contains("Moving the booking is closed within 10 hours of the start."), "{html}");
    assert!(html.contains("Cancel booking"), "cancelling is still open");
}

async fn a_required_reason_is_marked_required_and_checked_on_the_server(app: &TestApp) {
    let (_, booking, token) = booked(app, json!({ "reschedule_reason_required": true })).await;
    let (_, html) = get(app, &format!("/manage/{token}?tz=UTC&day={DAY}")).await;
    assert!(html.contains("<label for=\"reason\">Reason (required)</label>"), "{html}");
    assert!(html.contains("name=\"reason\" maxlength=\"1000\" required"), "{html}");
    for reason in ["", "   "] {
        let start = at("11:00");
        let form = [("start", start.as_str()), ("reason", reason), ("tz", "UTC")];
        let (status, _, html) = post_form(app, &format!("/manage/{token}/reschedule"), &form).await;
        assert_eq!(status, 422);
        assert!(html.contains("Please give a reason for moving the booking: the host asks for one."), "{html}");
        assert!(html.contains(&format!("value=\"{}\" required checked", at("11:00"))), "the picked time stays picked");
    }
    assert_eq!(stored(app, &booking).await["version"], 1);
    let (_, html) = get(app, &format!("/manage/{token}?tz=UTC&day={DAY}")).await;
    assert!(!html.contains("<label for=\"reason\">Reason (optional)"));
}

async fn bad_form_input_answers_4xx_in_words_and_changes_nothing(app: &TestApp) {
    let (_, booking, token) = booked(app, json!({})).await;
    let path = format!("/manage/{token}/reschedule");
    let long = "x".repeat(1001);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "Please pick a new time."),
        (vec![("start", "tomorrow at noon")], "Please pick a new time."),
        (vec![("start", "2027-01-04T10:00:00Z")], "That is already your booking&#39;s time."),
        (vec![("start", "2027-01-04T10:05:00Z")], "The start is not on the slot grid"),
        (vec![("start", "2027-01-04T11:00:00Z"), ("reason", &long)], "The reason is too long"),
    ];
    for (form, words) in cases {
        let (status, _, html) = post_form(app, &path, &form).await;
        assert!((400..500).contains(&status), "{form:?}: {status}");
        assert!(
            html.contains("class=\"notice error\"")
                && (html.contains(words) || html.contains(&words.replace("&#39;", "'"))),
            "{form:?}: {html}"
        );
        assert!(!html.contains("validation_failed") && !html.contains("urn:slotd"), "words, not codes");
    }
    let raw = no_redirects()
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', b'%'])
        .send()
        .await
        .unwrap();
    assert!(raw.status().is_client_error(), "{}", raw.status());
    assert_eq!(stored(app, &booking).await["version"], 1, "nothing was written");
}

async fn cancelled_declined_and_invalid_links_each_get_a_page_in_words(app: &TestApp) {
    let (_, booking, token) = booked(app, json!({})).await;
    let (status, location, _) =
        post_form(app, &format!("/manage/{token}/cancel"), &[("reason", "Ill"), ("tz", "UTC")]).await;
    assert_eq!((status, location.clone()), (303, Some(format!("/manage/{token}?done=cancelled&tz=UTC"))));
    let (status, html) = get(app, &location.unwrap()).await;
    assert_eq!(status, 200);
    assert!(html.contains("<title>Your booking has been cancelled</title>"));
    assert!(html.contains("Monday 4 January 2027, 10:00 – 10:30"));
    let after = stored(app, &booking).await;
    assert_eq!((after["status"].as_str(), after["history"][0]["reason"].as_str()), (Some("cancelled"), Some("Ill")));
    let (status, html) = get(app, &format!("/manage/{token}")).await;
    assert_eq!(status, 410);
    assert!(html.contains("This booking was cancelled") && !html.contains("Pick a new time"));
    let (status, _, html) = post_form(app, &format!("/manage/{token}/reschedule"), &[("start", &at("11:00"))]).await;
    assert!((400..500).contains(&status) && html.contains("This booking was cancelled"), "{status}: {html}");
    assert_eq!(stored(app, &booking).await["version"], 2, "nothing more was written");

    // Declined by the host.
    let host = app.office_host("Bea", "Europe/London").await;
    let approval = app
        .expect(Method::POST, "/v1/event-types", Some(json!({ "slug": "approval", "title": "Approval", "duration_minutes": 30,
            "slot_interval_minutes": 30, "booking_window_days": 3650, "hosts": [host], "requires_confirmation": true })), 201)
        .await;
    let pending = book(app, approval["id"].as_str().unwrap(), &at("14:00"), "Grace").await;
    let pending_token = pending["links"]["manage"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let (_, html) = get(app, &format!("/manage/{pending_token}")).await;
    assert!(html.contains("Waiting for the host to confirm."), "{html}");
    app.expect(Method::POST, &format!("/v1/bookings/{}/reject", pending["id"].as_str().unwrap()), Some(json!({})), 200)
        .await;
    let (status, html) = get(app, &format!("/manage/{pending_token}")).await;
    assert_eq!(status, 410);
    assert!(html.contains("This booking was declined"), "{html}");

    // Invalid links: tampered, truncated, nonsense; for a page and a form alike.
    let mut tampered = token.clone().into_bytes();
    tampered[42] = if tampered[42] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [tampered.as_str(), &token[..20], "x", "%3Cscript%3E"] {
        let (status, html) = get(app, &format!("/manage/{bad}")).await;
        assert_eq!(status, 404, "{bad}");
        assert!(html.contains("This link does not work") && html.contains("most recent message"), "{bad}: {html}");
        let (status, _, html) = post_form(app, &format!("/manage/{bad}/cancel"), &[]).await;
        assert_eq!(status, 404, "{bad}");
        assert!(html.contains("This link does not work"), "{bad}");
    }
}

async fn names_and_reasons_typed_by_people_are_escaped(app: &TestApp) {
    let host = app.office_host("<b>Ada</b>", "Europe/London").await;
    let event_type = event_type(app, &host, json!({ "title": "Call <img src=x onerror=alert(1)>" })).await;
    let booking = book(app, &event_type, &at("10:00"), "<script>alert('x')</script>").await;
    let token = booking["links"]["manage"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    book(app, &event_type, &at("11:00"), "Other").await;
    let (_, html) =
        get(app, &format!("/manage/{token}?tz=%3Cscript%3Ealert(1)%3C/script%3E&day=%22%3E%3Cscript%3E")).await;
    assert!(
        html.contains("Booked for &lt;script&gt;alert('x')&lt;/script&gt;")
            || html.contains("Booked for &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("Call &lt;img src=x onerror=alert(1)&gt; with &lt;b&gt;Ada&lt;/b&gt;"), "{html}");
    assert!(html.contains("“&lt;script&gt;alert(1)&lt;/script&gt;” is not a time zone we know"), "{html}");
    assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("<b>"), "{html}");
    let reason = "\"><script>alert(2)</script>";
    let start = at("11:00");
    let form = [("start", start.as_str()), ("reason", reason), ("tz", "UTC")];
    let (status, _, html) = post_form(app, &format!("/manage/{token}/reschedule"), &form).await;
    assert_eq!(status, 409);
    assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;\""), "{html}");
    assert!(!html.contains("<script"), "{html}");
}
