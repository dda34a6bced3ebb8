//! `/v1/hosts/{id}/calendars`: a host's calendar connections (CalDAV, ICS feeds, Google
//! Calendar), and the Google connect flow (`…/google/authorize-url` here, the callback page in
//! `pages::oauth`).
//!
//! A connection is created only when slotd could read it: CalDAV is discovered from whatever
//! address is given (server, principal or calendar) and read once, an ICS feed is fetched and
//! parsed once, Google's freeBusy is asked once. Credentials (and an ICS feed's URL, often a
//! secret address) are sealed with the server secret and never shown again. Every address goes
//! through the SSRF guard, as webhook targets do.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use slotd_calendar::caldav::CalDav;
use slotd_core::interval::Interval;
use slotd_store::{CalendarConnection, CalendarKind, NewCalendarConnection, OnError, OrgId, SinkKind};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ListResponse;
use super::deliveries::{self, DeliveryParams, DeliveryView};
use crate::app::AppState;
use crate::calendars::{Credentials, GOOGLE_SCOPES};
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, parse_path_id};

/// Longest URL, user name, password or token accepted.
const MAX_FIELD: usize = 4096;
/// Most Google calendars one connection reads.
const MAX_GOOGLE_CALENDARS: usize = 200;
/// How long a Google consent link works.
const STATE_LIFETIME: SignedDuration = SignedDuration::from_mins(30);

/// What kind of calendar a connection reads.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CalendarKindName {
    /// A CalDAV calendar (read and, with `write_back`, written).
    Caldav,
    /// An iCalendar feed (read only).
    Ics,
    /// Google Calendar.
    Google,
}

/// What a commit does when the calendar cannot be read.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnErrorName {
    /// Answer `503 calendar_unavailable` (the default).
    Fail,
    /// Go on without this calendar.
    Ignore,
}

/// How a connection's last read went.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatusName {
    /// Read successfully.
    Ok,
    /// The last read failed (`last_error` says why).
    Error,
    /// Not read yet.
    Pending,
}

/// A calendar connection as the API shows it (never its credentials).
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarView {
    id: Uuid,
    host_id: Uuid,
    /// `caldav`, `ics` or `google`.
    #[schema(value_type = CalendarKindName)]
    kind: &'static str,
    /// A CalDAV connection's calendar URL (as discovered); an ICS feed's URL, masked (a feed's
    /// address is often its secret); null for Google.
    #[schema(example = "https://dav.example.com/ada/work/")]
    url: Option<String>,
    /// Google calendar ids read for busy time (events are written into the first); empty for
    /// the other kinds.
    calendar_ids: Vec<String>,
    /// Whether the host's confirmed bookings are written into this calendar as events.
    write_back: bool,
    /// What a commit does when this calendar cannot be read: `fail` (answer 503
    /// calendar_unavailable) or `ignore` (go on without it).
    #[schema(value_type = OnErrorName)]
    on_error: &'static str,
    /// How the last read went: `ok`, `error` or `pending` (not read yet).
    #[schema(value_type = SyncStatusName)]
    status: &'static str,
    /// When it was last read successfully.
    #[schema(value_type = Option<String>, format = DateTime)]
    last_synced_at: Option<Timestamp>,
    /// Why the last read failed; null after a success.
    #[schema(example = json!(null))]
    last_error: Option<String>,
    /// Since when every attempt to write a booking into this calendar has failed (they go on
    /// being retried, and each booking change tries again; see `/deliveries` for why); null
    /// while writes succeed.
    #[schema(value_type = Option<String>, format = DateTime)]
    write_back_failing_since: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl CalendarView {
    /// The view of a stored connection.
    pub fn of(c: CalendarConnection) -> CalendarView {
        CalendarView {
            id: c.id,
            host_id: c.host_id,
            kind: c.kind.as_str(),
            url: (c.kind != CalendarKind::Google).then_some(c.url),
            calendar_ids: c.calendar_ids,
            write_back: c.write_back,
            on_error: c.on_error.as_str(),
            status: c.status.as_str(),
            last_synced_at: c.last_synced_at,
            last_error: c.last_error,
            write_back_failing_since: c.write_back_failing_since,
            created_at: c.created_at,
        }
    }
}

/// The list of a host's connections.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarList {
    /// Oldest first.
    data: Vec<CalendarView>,
}

/// `POST /v1/hosts/{id}/calendars` body. Which fields apply depends on `kind`:
/// `caldav` takes `url`, `username`, `password`; `ics` takes `url`; `google` takes
/// `refresh_token`, `calendar_ids` and optionally its own `client_id`/`client_secret`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCalendar {
    /// `caldav`, `ics` or `google`.
    #[schema(value_type = CalendarKindName)]
    kind: String,
    /// CalDAV: the server's, principal's or calendar's address (the calendar is discovered).
    /// ICS: the feed's address.
    #[schema(example = "https://dav.example.com/ada/work/")]
    url: Option<String>,
    /// CalDAV user.
    username: Option<String>,
    /// CalDAV password (or app password). Write-only.
    password: Option<String>,
    /// Google calendar ids (default `["primary"]`); events are written into the first.
    calendar_ids: Option<Vec<String>>,
    /// Google OAuth client id (default: the server's `--google-client-id`).
    client_id: Option<String>,
    /// Google OAuth client secret. Write-only.
    client_secret: Option<String>,
    /// Google refresh token of the account. Write-only.
    refresh_token: Option<String>,
    /// Write the host's confirmed bookings into this calendar (default false; not for ICS).
    write_back: Option<bool>,
    /// `fail` (default) or `ignore`: what a commit does when this calendar cannot be read.
    #[schema(value_type = Option<OnErrorName>)]
    on_error: Option<String>,
}

/// A text field that must be there and not blank.
fn required<'a>(value: &'a Option<String>, pointer: &str, errors: &mut Vec<FieldError>) -> Option<&'a str> {
    match value.as_deref() {
        None => {
            errors.push(FieldError::new(pointer, "is required for this kind"));
            None
        }
        Some(v) if v.trim().is_empty() => {
            errors.push(FieldError::new(pointer, "must not be empty"));
            None
        }
        Some(v) if v.len() > MAX_FIELD => {
            errors.push(FieldError::new(pointer, format!("is longer than {MAX_FIELD} bytes")));
            None
        }
        Some(v) => Some(v),
    }
}

/// Fields that do not belong to the kind.
fn not_for(kind: &str, fields: &[(&str, bool)], errors: &mut Vec<FieldError>) {
    for (name, present) in fields {
        if *present {
            errors.push(FieldError::new(format!("/{name}"), format!("does not apply to a {kind} connection")));
        }
    }
}

fn on_error_of(value: Option<&str>, errors: &mut Vec<FieldError>) -> OnError {
    match value.map(OnError::parse) {
        None => OnError::Fail,
        Some(Some(on_error)) => on_error,
        Some(None) => {
            errors.push(FieldError::new("/on_error", "must be 'fail' or 'ignore'"));
            OnError::Fail
        }
    }
}

fn google_calendar_ids(ids: Option<Vec<String>>, pointer: &str, errors: &mut Vec<FieldError>) -> Vec<String> {
    let ids = ids.unwrap_or_else(|| vec!["primary".to_owned()]);
    if ids.is_empty() {
        errors.push(FieldError::new(pointer, "name at least one calendar (e.g. \"primary\")"));
    }
    if ids.len() > MAX_GOOGLE_CALENDARS {
        errors.push(FieldError::new(pointer, format!("at most {MAX_GOOGLE_CALENDARS} calendars per connection")));
    }
    let mut kept: Vec<String> = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        if id.trim().is_empty() || id.len() > 1024 || id.chars().any(char::is_control) {
            errors.push(FieldError::new(format!("{pointer}/{i}"), "is not a Google calendar id"));
        } else if !kept.contains(&id) {
            kept.push(id);
        }
    }
    kept
}

/// A host id from the path that names a live host of the organization.
async fn live_host(state: &AppState, org: OrgId, raw: &str) -> Result<Uuid, ApiError> {
    let id = parse_path_id(raw, "host")?;
    match state.store.host(org, id).await? {
        Some(_) => Ok(id),
        None => Err(ApiError::NotFound(format!("no host with id {id}"))),
    }
}

/// The host's time zone (floating times of ICS feeds are in it).
async fn host_zone(state: &AppState, org: OrgId, host: Uuid) -> Result<jiff::tz::TimeZone, ApiError> {
    let host =
        state.store.host(org, host).await?.ok_or_else(|| ApiError::NotFound(format!("no host with id {host}")))?;
    slotd_core::zone::time_zone(&host.time_zone).map_err(|e| ApiError::Internal(format!("stored host zone: {e}")))
}

/// The next week, the range a connection's first read asks about.
fn first_range() -> Interval {
    let now = Timestamp::now();
    Interval { start: now, end: now + SignedDuration::from_hours(24 * 7) }
}

/// An ICS feed's URL as shown: scheme, host and the last 4 characters (the rest is often a secret).
fn mask_feed_url(url: &str) -> String {
    crate::delivery::slack::mask_url(url)
}

/// A CalDAV calendar to connect: the given address when it is a calendar, else the first
/// calendar found from it that takes events.
async fn discover_caldav(state: &AppState, url: &str, username: &str, password: &str) -> Result<String, ApiError> {
    let found = CalDav::discover(state.calendars.client(), url, username, password)
        .await
        .map_err(|e| ApiError::field("/url", format!("no CalDAV calendar could be found from this address: {e}")))?;
    let given = url.trim_end_matches('/');
    let chosen = found
        .iter()
        .find(|c| c.url.trim_end_matches('/') == given)
        .or_else(|| found.iter().find(|c| c.supports_events))
        .ok_or_else(|| ApiError::field("/url", "the CalDAV account has no calendar that takes events"))?;
    if let Err(detail) = state.calendars.check_url(&chosen.url).await {
        return Err(ApiError::field("/url", format!("the calendar found is at {}: {detail}", chosen.url)));
    }
    Ok(chosen.url.clone())
}

/// Stores a connection after reading it once: a connection that cannot be read is not created
/// (422 saying why).
pub async fn connect(
    state: &AppState,
    org: OrgId,
    host: Uuid,
    new: NewCalendarConnection,
    pointer: &str,
) -> Result<CalendarConnection, ApiError> {
    let zone = host_zone(state, org, host).await?;
    // A provisional connection (never stored) to read through the same code as stored ones.
    let provisional = CalendarConnection {
        id: Uuid::now_v7(),
        organization_id: org,
        host_id: host,
        kind: new.kind,
        url: new.url.clone(),
        calendar_ids: new.calendar_ids.clone(),
        credentials_sealed: new.credentials_sealed.clone(),
        write_back: new.write_back,
        on_error: new.on_error,
        status: slotd_store::SyncStatus::Pending,
        last_synced_at: None,
        last_error: None,
        write_back_failing_since: None,
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    };
    state.calendars.first_read(&provisional, &zone, first_range()).await.map_err(|detail| {
        ApiError::field(pointer, format!("slotd could not read this calendar, so it was not connected: {detail}"))
    })?;
    state
        .store
        .create_calendar_connection(org, host, new, Timestamp::now())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no host with id {host}")))
}

/// Connect a calendar to a host: its busy time blocks the host's slots, and with `write_back`
/// the host's confirmed bookings are written into it.
#[utoipa::path(post, path = "/v1/hosts/{id}/calendars", tag = "calendars", request_body = CreateCalendar,
    params(("id" = Uuid, Path, description = "Host id")),
    responses((status = 201, description = "Connected (read once successfully)", body = CalendarView)))]
pub async fn create_calendar(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateCalendar>,
) -> Result<(StatusCode, Json<CalendarView>), ApiError> {
    let host = live_host(&state, org, &id).await?;
    let mut errors = Vec::new();
    let on_error = on_error_of(body.on_error.as_deref(), &mut errors);
    let write_back = body.write_back.unwrap_or(false);
    let Some(kind) = CalendarKind::parse(&body.kind) else {
        errors.push(FieldError::new("/kind", "must be 'caldav', 'ics' or 'google'"));
        return Err(ApiError::Validation(errors));
    };
    let (new, pointer) = match kind {
        CalendarKind::CalDav => {
            not_for(
                "caldav",
                &[
                    ("calendar_ids", body.calendar_ids.is_some()),
                    ("client_id", body.client_id.is_some()),
                    ("client_secret", body.client_secret.is_some()),
                    ("refresh_token", body.refresh_token.is_some()),
                ],
                &mut errors,
            );
            let url = required(&body.url, "/url", &mut errors);
            let username = required(&body.username, "/username", &mut errors);
            let password = match &body.password {
                None => {
                    errors.push(FieldError::new("/password", "is required for this kind"));
                    None
                }
                Some(p) if p.len() > MAX_FIELD => {
                    errors.push(FieldError::new("/password", format!("is longer than {MAX_FIELD} bytes")));
                    None
                }
                Some(p) => Some(p.as_str()),
            };
            if let Some(url) = url
                && let Err(detail) = state.calendars.check_url(url).await
            {
                errors.push(FieldError::new("/url", detail));
            }
            ApiError::check(errors)?;
            let (url, username, password) =
                (url.expect("checked"), username.expect("checked"), password.expect("checked"));
            let calendar_url = discover_caldav(&state, url, username, password).await?;
            let credentials = Credentials::Caldav {
                url: calendar_url.clone(),
                username: username.to_owned(),
                password: password.to_owned(),
            };
            (
                NewCalendarConnection {
                    kind: CalendarKind::CalDav,
                    url: calendar_url,
                    calendar_ids: Vec::new(),
                    credentials_sealed: seal(&state, &credentials),
                    write_back,
                    on_error,
                },
                "/url",
            )
        }
        CalendarKind::Ics => {
            not_for(
                "ics",
                &[
                    ("username", body.username.is_some()),
                    ("password", body.password.is_some()),
                    ("calendar_ids", body.calendar_ids.is_some()),
                    ("client_id", body.client_id.is_some()),
                    ("client_secret", body.client_secret.is_some()),
                    ("refresh_token", body.refresh_token.is_some()),
                ],
                &mut errors,
            );
            if write_back {
                errors.push(FieldError::new("/write_back", "an ICS feed is read only: slotd cannot write into it"));
            }
            let url = required(&body.url, "/url", &mut errors);
            if let Some(url) = url
                && let Err(detail) = state.calendars.check_url(url).await
            {
                errors.push(FieldError::new("/url", detail));
            }
            ApiError::check(errors)?;
            let url = url.expect("checked");
            (
                NewCalendarConnection {
                    kind: CalendarKind::Ics,
                    url: mask_feed_url(url),
                    calendar_ids: Vec::new(),
                    credentials_sealed: seal(&state, &Credentials::Ics { url: url.to_owned() }),
                    write_back: false,
                    on_error,
                },
                "/url",
            )
        }
        CalendarKind::Google => {
            not_for(
                "google",
                &[
                    ("url", body.url.is_some()),
                    ("username", body.username.is_some()),
                    ("password", body.password.is_some()),
                ],
                &mut errors,
            );
            let calendar_ids = google_calendar_ids(body.calendar_ids, "/calendar_ids", &mut errors);
            let refresh_token = required(&body.refresh_token, "/refresh_token", &mut errors);
            match (&body.client_id, &body.client_secret) {
                (Some(_), None) => errors.push(FieldError::new("/client_secret", "is required with client_id")),
                (None, Some(_)) => errors.push(FieldError::new("/client_id", "is required with client_secret")),
                (None, None) if state.calendars.settings().google_client_id.is_none() => errors.push(FieldError::new(
                    "/client_id",
                    "is required: this slotd was started without --google-client-id",
                )),
                _ => {}
            }
            for (pointer, value) in [("/client_id", &body.client_id), ("/client_secret", &body.client_secret)] {
                if value.as_ref().is_some_and(|v| v.trim().is_empty() || v.len() > MAX_FIELD) {
                    errors.push(FieldError::new(pointer, "must be a non-empty text of at most 4096 bytes"));
                }
            }
            ApiError::check(errors)?;
            let credentials = Credentials::Google {
                client_id: body.client_id,
                client_secret: body.client_secret,
                refresh_token: refresh_token.expect("checked").to_owned(),
            };
            (
                NewCalendarConnection {
                    kind: CalendarKind::Google,
                    url: String::new(),
                    calendar_ids,
                    credentials_sealed: seal(&state, &credentials),
                    write_back,
                    on_error,
                },
                "/refresh_token",
            )
        }
    };
    let connection = connect(&state, org, host, new, pointer).await?;
    Ok((StatusCode::CREATED, Json(CalendarView::of(connection))))
}

/// Seals a connection's credentials.
pub fn seal(state: &AppState, credentials: &Credentials) -> String {
    state.sealer.seal(&serde_json::to_string(credentials).expect("credentials serialise"))
}

/// List a host's calendar connections, oldest first.
#[utoipa::path(get, path = "/v1/hosts/{id}/calendars", tag = "calendars",
    params(("id" = Uuid, Path, description = "Host id")),
    responses((status = 200, description = "The host's connections", body = CalendarList)))]
pub async fn list_calendars(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CalendarList>, ApiError> {
    let host = parse_path_id(&id, "host")?;
    let connections = state
        .store
        .list_calendar_connections(org, host)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no host with id {host}")))?;
    Ok(Json(CalendarList { data: connections.into_iter().map(CalendarView::of).collect() }))
}

/// The host's connection with the id in the path.
async fn connection(state: &AppState, org: OrgId, host: &str, id: &str) -> Result<CalendarConnection, ApiError> {
    let host = parse_path_id(host, "host")?;
    let id = parse_path_id(id, "calendar connection")?;
    match state.store.calendar_connection(org, id).await? {
        Some(c) if c.host_id == host && state.store.host(org, host).await?.is_some() => Ok(c),
        _ => Err(ApiError::NotFound(format!("no calendar connection with id {id} on host {host}"))),
    }
}

/// Read a calendar connection (its status says how its last read went).
#[utoipa::path(get, path = "/v1/hosts/{id}/calendars/{calendar_id}", tag = "calendars",
    params(("id" = Uuid, Path, description = "Host id"), ("calendar_id" = Uuid, Path, description = "Connection id")),
    responses((status = 200, description = "The connection", body = CalendarView)))]
pub async fn get_calendar(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath((id, calendar_id)): ApiPath<(String, String)>,
) -> Result<Json<CalendarView>, ApiError> {
    Ok(Json(CalendarView::of(connection(&state, org, &id, &calendar_id).await?)))
}

/// `PATCH /v1/hosts/{id}/calendars/{calendar_id}` body: fields left out stay as they are. (To
/// change a connection's address or credentials, connect it again and delete the old one.)
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCalendar {
    /// Write the host's confirmed bookings into this calendar from now on (not for ICS).
    write_back: Option<bool>,
    /// `fail` or `ignore`.
    #[schema(value_type = Option<OnErrorName>)]
    on_error: Option<String>,
}

/// Change whether a connection takes write-back, or what a commit does when it cannot be read.
#[utoipa::path(patch, path = "/v1/hosts/{id}/calendars/{calendar_id}", tag = "calendars", request_body = UpdateCalendar,
    params(("id" = Uuid, Path, description = "Host id"), ("calendar_id" = Uuid, Path, description = "Connection id")),
    responses((status = 200, description = "The updated connection", body = CalendarView)))]
pub async fn update_calendar(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath((id, calendar_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateCalendar>,
) -> Result<Json<CalendarView>, ApiError> {
    let found = connection(&state, org, &id, &calendar_id).await?;
    let mut errors = Vec::new();
    let on_error = body.on_error.as_deref().map(|v| on_error_of(Some(v), &mut errors));
    if body.write_back == Some(true) && found.kind == CalendarKind::Ics {
        errors.push(FieldError::new("/write_back", "an ICS feed is read only: slotd cannot write into it"));
    }
    ApiError::check(errors)?;
    let missing =
        || ApiError::NotFound(format!("no calendar connection with id {} on host {}", found.id, found.host_id));
    let updated = state
        .store
        .update_calendar_connection(org, found.host_id, found.id, body.write_back, on_error)
        .await?
        .ok_or_else(missing)?;
    Ok(Json(CalendarView::of(updated)))
}

/// Disconnect a calendar: its busy time stops counting at once; events slotd already wrote
/// into it stay there.
#[utoipa::path(delete, path = "/v1/hosts/{id}/calendars/{calendar_id}", tag = "calendars",
    params(("id" = Uuid, Path, description = "Host id"), ("calendar_id" = Uuid, Path, description = "Connection id")),
    responses((status = 204, description = "Disconnected")))]
pub async fn delete_calendar(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath((id, calendar_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let found = connection(&state, org, &id, &calendar_id).await?;
    if state.store.delete_calendar_connection(org, found.host_id, found.id).await? {
        state.calendars.invalidate(found.id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no calendar connection with id {} on host {}", found.id, found.host_id)))
    }
}

/// The write-back attempts of a connection, newest first (empty without `write_back`).
#[utoipa::path(get, path = "/v1/hosts/{id}/calendars/{calendar_id}/deliveries", tag = "calendars",
    params(("id" = Uuid, Path, description = "Host id"), ("calendar_id" = Uuid, Path, description = "Connection id"),
        DeliveryParams),
    responses((status = 200, description = "A page of write-back attempts", body = ListResponse<DeliveryView>)))]
pub async fn list_calendar_deliveries(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath((id, calendar_id)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> Result<Json<ListResponse<DeliveryView>>, ApiError> {
    let found = connection(&state, org, &id, &calendar_id).await?;
    if !found.write_back {
        return Ok(Json(ListResponse { data: Vec::new(), next_cursor: None }));
    }
    deliveries::list_sink_deliveries(&state, org, SinkKind::Calendar, &found.id.to_string(), params).await
}

/// `GET /v1/hosts/{id}/calendars/google/authorize-url` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeParams {
    /// Comma-separated Google calendar ids to read (default `primary`); events are written into
    /// the first.
    calendar_ids: Option<String>,
    /// Write the host's confirmed bookings into the calendar (default false).
    write_back: Option<bool>,
    /// `fail` (default) or `ignore`.
    #[param(value_type = Option<OnErrorName>)]
    on_error: Option<String>,
}

/// The consent link.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizeUrl {
    /// Google's consent page; after consent Google sends the browser to
    /// `{public_url}/oauth/google/callback`, which connects the calendar.
    url: String,
    /// When the link's signed `state` stops being accepted.
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
}

/// What the signed `state` of a consent link carries (sealed: it cannot be read or altered).
#[derive(Debug, Serialize, Deserialize)]
pub struct OAuthState {
    /// Organization.
    pub org: Uuid,
    /// Host.
    pub host: Uuid,
    /// Calendars to read.
    pub calendar_ids: Vec<String>,
    /// Write-back.
    pub write_back: bool,
    /// `fail` or `ignore`.
    pub on_error: String,
    /// Unix seconds after which it is refused.
    pub expires: i64,
}

/// Where Google sends the browser back.
pub fn redirect_uri(state: &AppState) -> String {
    format!("{}/oauth/google/callback", state.public_url)
}

/// Get a Google consent link that connects a host's Google calendars: send the host there;
/// after consent they land on slotd's "connected" page.
#[utoipa::path(get, path = "/v1/hosts/{id}/calendars/google/authorize-url", tag = "calendars",
    params(("id" = Uuid, Path, description = "Host id"), AuthorizeParams),
    responses((status = 200, description = "Google's consent URL with a signed state", body = AuthorizeUrl)))]
pub async fn google_authorize_url(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<AuthorizeParams>,
) -> Result<Json<AuthorizeUrl>, ApiError> {
    let host = live_host(&state, org, &id).await?;
    let mut errors = Vec::new();
    let ids = params.calendar_ids.map(|ids| ids.split(',').map(|s| s.trim().to_owned()).collect::<Vec<_>>());
    let calendar_ids = google_calendar_ids(ids, "/calendar_ids", &mut errors);
    let on_error = on_error_of(params.on_error.as_deref(), &mut errors);
    let settings = state.calendars.settings();
    let client_id = settings.google_client_id.clone();
    if client_id.is_none() || settings.google_client_secret.is_none() {
        errors.push(FieldError::new(
            "",
            "this slotd was started without --google-client-id and --google-client-secret, which the connect \
             flow needs; or create the connection with a refresh token (POST /v1/hosts/{id}/calendars)",
        ));
    }
    ApiError::check(errors)?;
    let expires_at = Timestamp::now() + STATE_LIFETIME;
    let payload = OAuthState {
        org: org.0,
        host,
        calendar_ids,
        write_back: params.write_back.unwrap_or(false),
        on_error: on_error.as_str().to_owned(),
        expires: expires_at.as_second(),
    };
    let sealed = state.sealer.seal(&serde_json::to_string(&payload).expect("state serialises"));
    let url = slotd_calendar::google::authorize_url(
        settings.google_consent_base(),
        client_id.as_deref().expect("checked"),
        &redirect_uri(&state),
        &sealed,
        &GOOGLE_SCOPES,
    )
    .map_err(|e| ApiError::Internal(format!("--google-oauth-base: {e}")))?;
    Ok(Json(AuthorizeUrl { url, expires_at }))
}
