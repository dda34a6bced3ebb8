//! Google Calendar as a busy-time source and a write-back target, spoken in the shapes of
//! Google's Calendar API v3 and OAuth 2.0. Busy time comes from `freeBusy` (windows longer than
//! [`MAX_WINDOW_DAYS`] are split, and at most [`MAX_CALENDARS_PER_CALL`] calendars go in one
//! call); slotd's events are written with `PATCH`/`POST`/`DELETE` on `events`, under an event id
//! derived from the booking's UID so a retried write never makes a second event.
//!
//! Access tokens come from the connection's refresh token (`grant_type=refresh_token`) and are
//! kept in memory until shortly before they expire; a `401` from the API refreshes once and
//! retries. Rate limiting (`429`, or `403` with reason `rateLimitExceeded` /
//! `userRateLimitExceeded`) is retried with exponential backoff, honouring `Retry-After`.
//! [`authorize_url`] and [`exchange_code`] are the two halves of the connect flow.
//!
//! Both base URLs are the caller's (tests point them at a local fake), as is the HTTP client
//! (the server hands in its SSRF-guarded one). Every request has a time limit of
//! [`REQUEST_TIMEOUT`] and its answer is read up to [`MAX_RESPONSE_BYTES`]. Tokens and the
//! client secret never appear in an error text or in `Debug` output.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::json;

use crate::http::Answer;
use crate::{BusySource, CalendarError, CalendarEvent, EventSink, Interval};

/// Google's API base URL.
pub const GOOGLE_API_BASE: &str = "https://www.googleapis.com";
/// The time limit of one request to Google.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from Google, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// The longest window one `freeBusy` call asks about.
pub const MAX_WINDOW_DAYS: i64 = 90;
/// The most calendars one `freeBusy` call asks about.
pub const MAX_CALENDARS_PER_CALL: usize = 50;
/// The longest `Retry-After` honoured; a longer one is cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// An access token is refreshed this long before Google says it expires.
const EXPIRY_MARGIN: SignedDuration = SignedDuration::from_secs(60);

/// One Google account's calendars, with the OAuth credentials to read and write them.
pub struct GoogleCalendar {
    client: reqwest::Client,
    api_base: String,
    oauth_base: String,
    client_id: String,
    client_secret: String,
    refresh_token: String,
    calendar_ids: Vec<String>,
    write_calendar_id: Option<String>,
    backoff_base: Duration,
    tries: u32,
    /// The access token and when it stops being used.
    token: Mutex<Option<(String, Timestamp)>>,
}

impl std::fmt::Debug for GoogleCalendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client secret, refresh token and access token never reach a log line.
        f.debug_struct("GoogleCalendar")
            .field("api_base", &self.api_base)
            .field("oauth_base", &self.oauth_base)
            .field("client_id", &self.client_id)
            .field("calendar_ids", &self.calendar_ids)
            .field("write_calendar_id", &self.write_calendar_id)
            .finish_non_exhaustive()
    }
}

impl Answer {
    /// Whether Google says to slow down: `429`, or `403` with a rate-limit reason.
    fn rate_limited(&self) -> bool {
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            return true;
        }
        if self.status != StatusCode::FORBIDDEN {
            return false;
        }
        #[derive(Deserialize)]
        struct Body {
            error: ErrorBody,
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            #[serde(default)]
            errors: Vec<ErrorItem>,
        }
        serde_json::from_slice::<Body>(&self.body).is_ok_and(|b| {
            b.error.errors.iter().any(|e| matches!(e.reason.as_str(), "rateLimitExceeded" | "userRateLimitExceeded"))
        })
    }

    fn retry_after(&self) -> Option<Duration> {
        let secs: u64 = self.headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
        Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
    }

    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, CalendarError> {
        serde_json::from_slice(&self.body).map_err(|e| CalendarError::Invalid(format!("not the JSON expected: {e}")))
    }
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    reason: String,
}

fn parse_base(base: &str) -> Result<Url, CalendarError> {
    let url = Url::parse(base).map_err(|e| CalendarError::Invalid(format!("not a URL ({e}): {base}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(CalendarError::Invalid(format!("not an http(s) URL: {base}")));
    }
    Ok(url)
}

/// `base` with the path segments appended (each percent-encoded as one segment).
fn endpoint(base: &str, segments: &[&str]) -> Result<Url, CalendarError> {
    let mut url = parse_base(base)?;
    {
        let mut path =
            url.path_segments_mut().map_err(|()| CalendarError::Invalid(format!("not a base URL: {base}")))?;
        path.pop_if_empty();
        path.extend(segments);
    }
    Ok(url)
}

/// Sends one request with the time limit and reads the answer with the size cap.
async fn send(
    client: &reqwest::Client,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
) -> Result<Answer, CalendarError> {
    let mut request = client.request(method, url).timeout(REQUEST_TIMEOUT).headers(headers);
    if let Some(body) = body {
        request = request.body(body);
    }
    Answer::of(request, MAX_RESPONSE_BYTES).await
}

/// A form POST to `{oauth_base}/token`.
async fn token_request(
    client: &reqwest::Client,
    oauth_base: &str,
    form: &[(&str, &str)],
) -> Result<TokenResponse, CalendarError> {
    let url = endpoint(oauth_base, &["token"])?;
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
    let answer = send(client, Method::POST, url, headers, Some(body.into_bytes())).await?;
    if !answer.status.is_success() {
        // Google's token errors (`{"error":"invalid_grant",…}`) carry no secrets.
        return Err(answer.refused());
    }
    answer.json()
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The address to send a user to so they grant slotd access to their calendars
/// (`{oauth_base}/o/oauth2/v2/auth`, asking for offline access so a refresh token comes back).
pub fn authorize_url(
    oauth_base: &str,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    scopes: &[&str],
) -> Result<String, CalendarError> {
    let mut url = endpoint(oauth_base, &["o", "oauth2", "v2", "auth"])?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", state)
        .append_pair("access_type", "offline")
        .append_pair("prompt", "consent");
    Ok(url.into())
}

/// Trades the code Google sent to `redirect_uri` for the connection's refresh token.
pub async fn exchange_code(
    client: &reqwest::Client,
    oauth_base: &str,
    client_id: &str,
    client_secret: &str,
    code: &str,
    redirect_uri: &str,
) -> Result<String, CalendarError> {
    let answer = token_request(
        client,
        oauth_base,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("redirect_uri", redirect_uri),
        ],
    )
    .await?;
    answer.refresh_token.filter(|t| !t.is_empty()).ok_or_else(|| {
        CalendarError::Invalid("Google gave no refresh token (ask with access_type=offline and prompt=consent)".into())
    })
}

/// Google's event id for a UID: the lowercase hex of its bytes (base32hex-safe, `[0-9a-f]`).
pub fn event_id(uid: &str) -> Result<String, CalendarError> {
    let id: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
    if !(5..=1024).contains(&id.len()) {
        return Err(CalendarError::Invalid(format!("a UID of {} bytes has no Google event id", uid.len())));
    }
    Ok(id)
}

/// One calendar's part of a `freeBusy` answer.
#[derive(Deserialize)]
struct FreeBusyCalendar {
    #[serde(default)]
    busy: Vec<FreeBusyPeriod>,
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct FreeBusyPeriod {
    start: String,
    end: String,
}

#[derive(Deserialize)]
struct FreeBusyResponse {
    #[serde(default)]
    calendars: HashMap<String, FreeBusyCalendar>,
}

fn calendar_error(errors: &[ErrorItem]) -> CalendarError {
    let status = if errors.iter().any(|e| e.reason == "notFound") { 404 } else { 403 };
    let detail = errors.iter().map(|e| format!("{}/{}", e.domain, e.reason)).collect::<Vec<_>>().join(", ");
    CalendarError::Refused { status, detail }
}

/// `range` cut into windows of at most [`MAX_WINDOW_DAYS`].
fn windows(range: Interval) -> Vec<Interval> {
    let step = SignedDuration::from_hours(24 * MAX_WINDOW_DAYS);
    let mut out = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = start.checked_add(step).map_or(range.end, |e| e.min(range.end));
        out.extend(Interval::new(start, end));
        start = end;
    }
    out
}

impl GoogleCalendar {
    /// A connection to the `calendar_ids` of the account that granted `refresh_token`.
    pub fn new(
        client: reqwest::Client,
        api_base: impl Into<String>,
        oauth_base: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        refresh_token: impl Into<String>,
        calendar_ids: Vec<String>,
    ) -> GoogleCalendar {
        GoogleCalendar {
            client,
            api_base: api_base.into(),
            oauth_base: oauth_base.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            refresh_token: refresh_token.into(),
            calendar_ids,
            write_calendar_id: None,
            backoff_base: Duration::from_secs(1),
            tries: 3,
            token: Mutex::new(None),
        }
    }

    /// Writes events into this calendar rather than the first of `calendar_ids`.
    pub fn with_write_calendar_id(mut self, id: impl Into<String>) -> GoogleCalendar {
        self.write_calendar_id = Some(id.into());
        self
    }

    /// Rate-limited requests are tried `tries` times in all, waiting `base`, `2 × base`, …
    /// between them (or what `Retry-After` says). The default is 3 tries from 1 s.
    pub fn with_backoff(mut self, base: Duration, tries: u32) -> GoogleCalendar {
        self.backoff_base = base;
        self.tries = tries.max(1);
        self
    }

    fn write_calendar(&self) -> Result<&str, CalendarError> {
        self.write_calendar_id
            .as_deref()
            .or(self.calendar_ids.first().map(String::as_str))
            .ok_or_else(|| CalendarError::Invalid("no calendar to write events into".into()))
    }

    /// A usable access token: the one kept, or a fresh one when there is none, it has expired,
    /// or `force` (the API said the kept one is no good).
    async fn access_token(&self, force: bool) -> Result<String, CalendarError> {
        if !force
            && let Some((token, until)) = self.token.lock().expect("token lock").as_ref()
            && Timestamp::now() < *until
        {
            return Ok(token.clone());
        }
        let answer = token_request(
            &self.client,
            &self.oauth_base,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &self.refresh_token),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
            ],
        )
        .await?;
        let lifetime = SignedDuration::from_secs(answer.expires_in.unwrap_or(3600).max(0));
        let until = Timestamp::now().checked_add(lifetime - EXPIRY_MARGIN).unwrap_or(Timestamp::MAX);
        *self.token.lock().expect("token lock") = Some((answer.access_token.clone(), until));
        Ok(answer.access_token)
    }

    /// One API call with a bearer token: refreshes once on `401`, backs off on rate limiting.
    /// Other statuses are for the caller.
    async fn call(&self, method: Method, url: Url, body: Option<serde_json::Value>) -> Result<Answer, CalendarError> {
        let body = body.map(|b| serde_json::to_vec(&b).expect("JSON values serialize"));
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            let token = self.access_token(false).await?;
            let mut headers = HeaderMap::new();
            let mut bearer = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| CalendarError::Invalid("the access token is not a header value".into()))?;
            bearer.set_sensitive(true);
            headers.insert(AUTHORIZATION, bearer);
            if body.is_some() {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            let answer = send(&self.client, method.clone(), url.clone(), headers, body.clone()).await?;
            if answer.status == StatusCode::UNAUTHORIZED {
                if refreshed {
                    return Err(answer.refused());
                }
                refreshed = true;
                self.access_token(true).await?;
                continue;
            }
            if answer.rate_limited() {
                attempt += 1;
                if attempt >= self.tries {
                    return Err(answer.refused());
                }
                let delay = answer.retry_after().unwrap_or_else(|| self.backoff_base * 2u32.pow(attempt - 1));
                tokio::time::sleep(delay).await;
                continue;
            }
            return Ok(answer);
        }
    }

    /// Busy time per calendar: each of `calendar_ids` with its busy intervals overlapping
    /// `range`, or what Google said was wrong with that calendar. The outer error is for a call
    /// that failed as a whole.
    pub async fn busy_by_calendar(
        &self,
        range: Interval,
    ) -> Result<Vec<(String, Result<Vec<Interval>, CalendarError>)>, CalendarError> {
        let url = endpoint(&self.api_base, &["calendar", "v3", "freeBusy"])?;
        let mut results: Vec<(String, Result<Vec<Interval>, CalendarError>)> =
            self.calendar_ids.iter().map(|id| (id.clone(), Ok(Vec::new()))).collect();
        for window in windows(range) {
            for (chunk_index, chunk) in self.calendar_ids.chunks(MAX_CALENDARS_PER_CALL).enumerate() {
                let items: Vec<_> = chunk.iter().map(|id| json!({ "id": id })).collect();
                let request = json!({
                    "timeMin": window.start.to_string(),
                    "timeMax": window.end.to_string(),
                    "items": items,
                });
                let answer = self.call(Method::POST, url.clone(), Some(request)).await?;
                if !answer.status.is_success() {
                    return Err(answer.refused());
                }
                let mut response: FreeBusyResponse = answer.json()?;
                for (offset, id) in chunk.iter().enumerate() {
                    let slot = &mut results[chunk_index * MAX_CALENDARS_PER_CALL + offset].1;
                    let Ok(busy) = slot else { continue };
                    let Some(calendar) = response.calendars.remove(id) else {
                        *slot = Err(CalendarError::Invalid(format!("Google's answer leaves out the calendar {id}")));
                        continue;
                    };
                    if !calendar.errors.is_empty() {
                        *slot = Err(calendar_error(&calendar.errors));
                        continue;
                    }
                    for period in calendar.busy {
                        let parse = |s: &str| {
                            s.parse::<Timestamp>()
                                .map_err(|e| CalendarError::Invalid(format!("not an RFC 3339 time ({e}): {s}")))
                        };
                        match (parse(&period.start), parse(&period.end)) {
                            (Ok(start), Ok(end)) => busy.extend(Interval::new(start, end)),
                            (Err(e), _) | (_, Err(e)) => {
                                *slot = Err(e);
                                break;
                            }
                        }
                    }
                }
            }
        }
        Ok(results)
    }

    fn event_url(&self, segments: &[&str]) -> Result<Url, CalendarError> {
        let calendar = self.write_calendar()?;
        let mut all = vec!["calendar", "v3", "calendars", calendar, "events"];
        all.extend_from_slice(segments);
        endpoint(&self.api_base, &all)
    }
}

impl BusySource for GoogleCalendar {
    async fn busy(&self, range: Interval) -> Result<Vec<Interval>, CalendarError> {
        let mut busy = Vec::new();
        let mut failed = Vec::new();
        let mut first_error = None;
        for (id, result) in self.busy_by_calendar(range).await? {
            match result {
                Ok(intervals) => busy.extend(intervals),
                Err(e) => {
                    failed.push(id);
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            None => Ok(busy),
            Some(CalendarError::Refused { status, detail }) => {
                Err(CalendarError::Refused { status, detail: format!("calendars {}: {detail}", failed.join(", ")) })
            }
            Some(e) => Err(CalendarError::Invalid(format!("calendars {}: {e}", failed.join(", ")))),
        }
    }
}

impl EventSink for GoogleCalendar {
    async fn put_event(&self, event: &CalendarEvent) -> Result<(), CalendarError> {
        let id = event_id(&event.uid)?;
        let body = json!({
            "id": id,
            "status": "confirmed",
            "summary": event.summary,
            "description": event.description,
            "start": { "dateTime": event.interval.start.to_string() },
            "end": { "dateTime": event.interval.end.to_string() },
            "sequence": event.sequence,
        });
        let one = self.event_url(&[&id])?;
        let answer = self.call(Method::PATCH, one.clone(), Some(body.clone())).await?;
        if answer.status.is_success() {
            return Ok(());
        }
        if answer.status != StatusCode::NOT_FOUND {
            return Err(answer.refused());
        }
        let answer = self.call(Method::POST, self.event_url(&[])?, Some(body.clone())).await?;
        if answer.status.is_success() {
            return Ok(());
        }
        if answer.status != StatusCode::CONFLICT {
            return Err(answer.refused());
        }
        // Made meanwhile (or kept as deleted): the id is taken, so replace what is there.
        let answer = self.call(Method::PATCH, one, Some(body)).await?;
        if answer.status.is_success() { Ok(()) } else { Err(answer.refused()) }
    }

    async fn delete_event(&self, uid: &str) -> Result<(), CalendarError> {
        let id = event_id(uid)?;
        let answer = self.call(Method::DELETE, self.event_url(&[&id])?, None).await?;
        if answer.status.is_success() || matches!(answer.status, StatusCode::NOT_FOUND | StatusCode::GONE) {
            Ok(())
        } else {
            Err(answer.refused())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn an_event_id_is_the_lowercase_hex_of_the_uid_within_googles_length_limits() {
        assert_eq!(event_id("abc").unwrap(), "616263");
        assert!(matches!(event_id("ab"), Err(CalendarError::Invalid(_))));
        assert_eq!(event_id(&"u".repeat(512)).unwrap().len(), 1024);
        assert!(matches!(event_id(&"u".repeat(513)), Err(CalendarError::Invalid(_))));
    }

    #[test]
    fn windows_are_at_most_ninety_days_and_cover_the_range_exactly() {
        let range = Interval::new(ts("2027-01-01T00:00:00Z"), ts("2027-07-20T00:00:00Z")).unwrap();
        let w = windows(range);
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].start, range.start);
        assert_eq!(w[2].end, range.end);
        assert!(w.windows(2).all(|p| p[0].end == p[1].start));
        assert!(w.iter().all(|i| i.duration() <= SignedDuration::from_hours(24 * MAX_WINDOW_DAYS)));
        let short = Interval::new(ts("2027-01-01T00:00:00Z"), ts("2027-01-02T00:00:00Z")).unwrap();
        assert_eq!(windows(short), vec![short]);
    }

    #[test]
    fn base_urls_with_a_trailing_slash_or_a_path_join_cleanly() {
        let url = endpoint("http://127.0.0.1:9/", &["calendar", "v3", "freeBusy"]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/calendar/v3/freeBusy");
        let url = endpoint("http://127.0.0.1:9/google", &["calendars", "a#b@group", "events"]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/google/calendars/a%23b@group/events");
        assert!(matches!(endpoint("ftp://x", &["token"]), Err(CalendarError::Invalid(_))));
    }
}
