//! A fake Google on 127.0.0.1 that answers in the documented shapes of the Calendar API v3
//! (`freeBusy`, `events` insert/patch/delete, its error bodies) and of OAuth 2.0 (the consent
//! page as it answers after the user clicks "Allow" or "Cancel", and the token endpoint), and
//! records every request. Shared by the calendar crate's tests (`common::google_fake`) and the
//! server's (`#[path = "../../calendar/tests/common/google_fake.rs"] mod google_fake;`).
//!
//! What it knows:
//! - one OAuth client, [`CLIENT_ID`] with [`CLIENT_SECRET`] (a wrong one is `401
//!   invalid_client`, as Google answers);
//! - refresh tokens: [`REFRESH_TOKEN`] and every one it issued for a code; any other is `400
//!   invalid_grant`;
//! - codes: [`CODE`] (issued for [`REDIRECT`] up front) and each fresh one its consent page
//!   issues; a code is traded once, by the client it was issued to, with the `redirect_uri` it was
//!   issued for; else `400 invalid_grant`;
//! - access tokens: each one issued works on the API until [`FakeGoogle::expire_access_tokens`]
//!   (then calls with them answer `401`, as for an expired token);
//! - busy time per calendar (`busy`) plus the calendar's own events that are not cancelled or
//!   transparent, as Google's freeBusy counts them; a calendar id starting with `missing` is
//!   reported `notFound`, one in `failing` with its reason.

#![allow(dead_code)] // each test file uses only part of it

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};
use slotd_calendar::Interval;
use slotd_calendar::google::GoogleCalendar;

/// The one OAuth client the fake knows.
pub const CLIENT_ID: &str = "client-123.apps.googleusercontent.com";
/// Its secret.
pub const CLIENT_SECRET: &str = "GOCSPX-very-secret";
/// A refresh token the fake accepts from the start.
pub const REFRESH_TOKEN: &str = "1//refresh-token-abc";
/// A code issued up front for [`REDIRECT`], traded for [`CODE_REFRESH_TOKEN`].
pub const CODE: &str = "4/auth-code-xyz";
/// The redirect URI [`CODE`] was issued for.
pub const REDIRECT: &str = "https://slotd.example/connect/google/callback";
/// The refresh token [`CODE`] is traded for.
pub const CODE_REFRESH_TOKEN: &str = "1//refresh-from-code";

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub body: String,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// The form fields of a `/token` request (or the query of a `GET`).
    pub fn form(&self) -> HashMap<String, String> {
        let text = if self.method == Method::GET { self.query.as_deref().unwrap_or("") } else { &self.body };
        form_urlencoded::parse(text.as_bytes()).into_owned().collect()
    }
}

/// A code the consent page issued, not traded yet.
#[derive(Clone, Debug)]
pub struct IssuedCode {
    pub client_id: String,
    pub redirect_uri: String,
    /// The refresh token it is traded for.
    pub refresh_token: String,
}

#[derive(Default)]
pub struct FakeState {
    pub requests: Vec<Recorded>,
    /// Access tokens issued so far.
    pub issued: u32,
    /// Access tokens the API accepts.
    pub valid_tokens: HashSet<String>,
    /// Refresh tokens the token endpoint accepts.
    pub refresh_tokens: HashSet<String>,
    /// Codes not traded yet.
    pub codes: HashMap<String, IssuedCode>,
    /// Codes issued by the consent page so far.
    pub codes_issued: u32,
    /// Refresh tokens issued for codes, in order.
    pub issued_refresh_tokens: Vec<String>,
    /// The user clicks "Cancel" on the consent page (Google redirects with `error=access_denied`).
    pub deny_consent: bool,
    pub busy: HashMap<String, Vec<Interval>>,
    /// Calendars freeBusy reports an error for, with the error's reason.
    pub failing: HashMap<String, String>,
    /// Events by (calendar, id); a deleted one stays with `status: cancelled`, as in Google.
    pub events: HashMap<(String, String), Value>,
    /// The next this many API calls are rate limited with this status (403 or 429).
    pub rate_limit_next: u32,
    pub rate_limit_status: u16,
    /// Sent with rate-limit answers.
    pub retry_after: Option<u64>,
    /// The next PATCH answers 404, as if the event were made by someone else just after.
    pub hide_next_patch: bool,
    /// The next freeBusy answer is 2 MB.
    pub huge_next: bool,
}

pub type Shared = Arc<Mutex<FakeState>>;

pub struct FakeGoogle {
    /// Both the API base and the OAuth base (`/o/oauth2/v2/auth`, `/token`).
    pub base: String,
    pub state: Shared,
}

impl FakeGoogle {
    pub async fn start() -> FakeGoogle {
        let mut initial = FakeState::default();
        initial.refresh_tokens.insert(REFRESH_TOKEN.to_owned());
        initial.codes.insert(
            CODE.to_owned(),
            IssuedCode {
                client_id: CLIENT_ID.to_owned(),
                redirect_uri: REDIRECT.to_owned(),
                refresh_token: CODE_REFRESH_TOKEN.to_owned(),
            },
        );
        let state: Shared = Arc::new(Mutex::new(initial));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        FakeGoogle { base, state }
    }

    pub fn client(&self, calendar_ids: &[&str]) -> GoogleCalendar {
        self.client_with(REFRESH_TOKEN, calendar_ids)
    }

    pub fn client_with(&self, refresh_token: &str, calendar_ids: &[&str]) -> GoogleCalendar {
        GoogleCalendar::new(
            reqwest::Client::new(),
            self.base.clone(),
            self.base.clone(),
            CLIENT_ID,
            CLIENT_SECRET,
            refresh_token,
            calendar_ids.iter().map(|s| s.to_string()).collect(),
        )
        .with_backoff(Duration::from_millis(5), 3)
    }

    pub fn set_busy(&self, calendar: &str, busy: Vec<Interval>) {
        self.state.lock().unwrap().busy.insert(calendar.to_owned(), busy);
    }

    /// From now on freeBusy reports `reason` for `calendar` (`None`: reads it again).
    pub fn set_failing(&self, calendar: &str, reason: Option<&str>) {
        let mut state = self.state.lock().unwrap();
        match reason {
            Some(reason) => state.failing.insert(calendar.to_owned(), reason.to_owned()),
            None => state.failing.remove(calendar),
        };
    }

    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.iter().filter(|r| r.path == path).cloned().collect()
    }

    pub fn api_requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.iter().filter(|r| r.path.starts_with("/calendar/")).cloned().collect()
    }

    /// Every access token issued so far stops working (the next API call answers `401`).
    pub fn expire_access_tokens(&self) {
        self.state.lock().unwrap().valid_tokens.clear();
    }

    /// The event with this id in `calendar`, as stored.
    pub fn event(&self, calendar: &str, id: &str) -> Option<Value> {
        self.state.lock().unwrap().events.get(&(calendar.to_owned(), id.to_owned())).cloned()
    }
}

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

/// Google's API error body.
fn google_error(status: u16, reason: &str, message: &str) -> Response {
    json_response(
        status,
        json!({"error": {"code": status, "message": message,
            "errors": [{"domain": if reason.contains("RateLimit") { "usageLimits" } else { "global" },
                        "reason": reason, "message": message}]}}),
    )
}

/// The error page Google's consent screen shows for a request it refuses.
fn consent_error(status: u16, error: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<!doctype html><title>Error {status}: {error}</title><p>Access blocked: Error {status}: {error}</p>"),
    )
        .into_response()
}

fn timestamp(value: &Value) -> Option<Timestamp> {
    value.as_str()?.parse().ok()
}

/// `GET /o/oauth2/v2/auth`, as Google answers once the user has chosen: `302` back to the
/// `redirect_uri` with a fresh `code` (or `error=access_denied`) and the `state` echoed.
fn consent(s: &mut FakeState, query: &HashMap<String, String>) -> Response {
    let field = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    if field("client_id") != CLIENT_ID {
        return consent_error(401, "invalid_client");
    }
    let Ok(mut redirect) = reqwest::Url::parse(field("redirect_uri")) else {
        return consent_error(400, "invalid_request");
    };
    if !matches!(redirect.scheme(), "http" | "https") || redirect.fragment().is_some() {
        return consent_error(400, "redirect_uri_mismatch");
    }
    if field("response_type") != "code" || field("scope").is_empty() {
        return consent_error(400, "invalid_request");
    }
    {
        let mut pairs = redirect.query_pairs_mut();
        if s.deny_consent {
            pairs.append_pair("error", "access_denied");
        } else {
            s.codes_issued += 1;
            let code = format!("4/0Afake-code-{}", s.codes_issued);
            s.codes.insert(
                code.clone(),
                IssuedCode {
                    client_id: field("client_id").to_owned(),
                    redirect_uri: field("redirect_uri").to_owned(),
                    refresh_token: format!("1//refresh-from-code-{}", s.codes_issued),
                },
            );
            pairs.append_pair("code", &code).append_pair("scope", field("scope"));
        }
        if let Some(state) = query.get("state") {
            pairs.append_pair("state", state);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, redirect.to_string())]).into_response()
}

/// `POST /token`: the refresh and authorization-code grants.
fn token(s: &mut FakeState, body: &str) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
        return json_response(401, json!({"error": "invalid_client", "error_description": "Unauthorized"}));
    }
    match field("grant_type") {
        "refresh_token" if s.refresh_tokens.contains(field("refresh_token")) => {
            s.issued += 1;
            let token = format!("ya29.access-{}", s.issued);
            s.valid_tokens.insert(token.clone());
            json_response(
                200,
                json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer",
                       "scope": "https://www.googleapis.com/auth/calendar"}),
            )
        }
        "refresh_token" => json_response(
            400,
            json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
        ),
        "authorization_code" => {
            // A code is gone once presented, whether or not the exchange succeeds.
            match s.codes.remove(field("code")) {
                Some(issued)
                    if issued.client_id == field("client_id") && issued.redirect_uri == field("redirect_uri") =>
                {
                    s.refresh_tokens.insert(issued.refresh_token.clone());
                    s.issued_refresh_tokens.push(issued.refresh_token.clone());
                    s.issued += 1;
                    let access = format!("ya29.access-{}", s.issued);
                    s.valid_tokens.insert(access.clone());
                    json_response(
                        200,
                        json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer",
                               "refresh_token": issued.refresh_token,
                               "scope": "https://www.googleapis.com/auth/calendar"}),
                    )
                }
                Some(_) => json_response(400, json!({"error": "invalid_grant", "error_description": "Bad Request"})),
                None => {
                    json_response(400, json!({"error": "invalid_grant", "error_description": "Malformed auth code."}))
                }
            }
        }
        _ => json_response(400, json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})),
    }
}

/// `POST /calendar/v3/freeBusy`.
fn free_busy(s: &mut FakeState, body: &str) -> Response {
    if std::mem::take(&mut s.huge_next) {
        let padding = "x".repeat(2 * 1024 * 1024);
        return json_response(200, json!({"kind": "calendar#freeBusy", "padding": padding}));
    }
    let request: Value = serde_json::from_str(body).unwrap();
    let window =
        Interval::new(timestamp(&request["timeMin"]).unwrap(), timestamp(&request["timeMax"]).unwrap()).unwrap();
    let mut calendars = serde_json::Map::new();
    for item in request["items"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        if id.starts_with("missing") {
            calendars.insert(id.into(), json!({"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}));
            continue;
        }
        if let Some(reason) = s.failing.get(id) {
            calendars.insert(id.into(), json!({"errors": [{"domain": "global", "reason": reason}], "busy": []}));
            continue;
        }
        // The calendar's events count as busy unless cancelled or marked free.
        let events = s
            .events
            .iter()
            .filter(|((cal, _), e)| cal == id && e["status"] != "cancelled" && e["transparency"] != "transparent");
        let mut busy: Vec<Interval> = events
            .filter_map(|(_, e)| Interval::new(timestamp(&e["start"]["dateTime"])?, timestamp(&e["end"]["dateTime"])?))
            .collect();
        busy.extend(s.busy.get(id).into_iter().flatten().copied());
        busy.sort();
        // Google clips busy periods to the window asked about.
        let busy: Vec<Value> = busy
            .iter()
            .filter(|b| b.overlaps(&window))
            .map(|b| json!({"start": b.start.max(window.start).to_string(), "end": b.end.min(window.end).to_string()}))
            .collect();
        calendars.insert(id.into(), json!({"busy": busy}));
    }
    json_response(
        200,
        json!({"kind": "calendar#freeBusy", "timeMin": request["timeMin"], "timeMax": request["timeMax"],
               "calendars": calendars}),
    )
}

/// `/calendar/v3/calendars/{cal}/events[/{id}]`.
fn events(s: &mut FakeState, method: &Method, path: &str, body: &str) -> Response {
    let segments: Vec<&str> = path.trim_start_matches("/calendar/v3/calendars/").split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, [cal, "events"]) => {
            let event: Value = serde_json::from_str(body).unwrap();
            let key = (cal.to_string(), event["id"].as_str().unwrap().to_owned());
            if s.events.contains_key(&key) {
                return google_error(409, "duplicate", "The requested identifier already exists.");
            }
            s.events.insert(key, event.clone());
            json_response(200, event)
        }
        (&Method::PATCH, [cal, "events", id]) => {
            let key = (cal.to_string(), id.to_string());
            let patch: Value = serde_json::from_str(body).unwrap();
            if std::mem::take(&mut s.hide_next_patch) {
                return google_error(404, "notFound", "Not Found");
            }
            let Some(event) = s.events.get_mut(&key) else { return google_error(404, "notFound", "Not Found") };
            for (k, v) in patch.as_object().unwrap() {
                event[k] = v.clone();
            }
            json_response(200, event.clone())
        }
        (&Method::DELETE, [cal, "events", id]) => {
            let key = (cal.to_string(), id.to_string());
            match s.events.get_mut(&key) {
                Some(event) if event["status"] == "cancelled" => {
                    google_error(410, "deleted", "Resource has been deleted")
                }
                Some(event) => {
                    event["status"] = json!("cancelled");
                    StatusCode::NO_CONTENT.into_response()
                }
                None => google_error(404, "notFound", "Not Found"),
            }
        }
        _ => google_error(404, "notFound", "Not Found"),
    }
}

async fn handle(State(state): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: String) -> Response {
    let path = uri.path().to_owned();
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned());
    let mut s = state.lock().unwrap();
    s.requests.push(Recorded {
        method: method.clone(),
        path: path.clone(),
        query: uri.query().map(str::to_owned),
        authorization: authorization.clone(),
        body: body.clone(),
    });

    if path == "/o/oauth2/v2/auth" && method == Method::GET {
        let query: HashMap<String, String> =
            form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
        return consent(&mut s, &query);
    }
    if path == "/token" && method == Method::POST {
        return token(&mut s, &body);
    }

    if !path.starts_with("/calendar/v3/") {
        return google_error(404, "notFound", "Not Found");
    }
    let token = authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "));
    if !token.is_some_and(|t| s.valid_tokens.contains(t)) {
        return google_error(401, "authError", "Invalid Credentials");
    }
    if s.rate_limit_next > 0 {
        s.rate_limit_next -= 1;
        let status = if s.rate_limit_status == 429 { 429 } else { 403 };
        let mut response = google_error(status, "rateLimitExceeded", "Rate Limit Exceeded");
        if let Some(secs) = s.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        return response;
    }

    if path == "/calendar/v3/freeBusy" && method == Method::POST {
        return free_busy(&mut s, &body);
    }
    events(&mut s, &method, &path, &body)
}
