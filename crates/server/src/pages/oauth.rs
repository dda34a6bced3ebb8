//! `GET /oauth/google/callback`: where Google sends a host's browser after consent. The signed
//! `state` (sealed by `GET /v1/hosts/{id}/calendars/google/authorize-url`) says which
//! organization, host and calendars; the `code` is traded for a refresh token, the calendars are
//! read once, and the connection is stored. The page says "connected", or in words why not. No
//! API key: the state is the credential, and it expires.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use maud::html;
use slotd_calendar::CalendarError;
use slotd_store::{CalendarKind, NewCalendarConnection, OnError, OrgId};
use uuid::Uuid;

use super::layout::page;
use crate::api::calendars::{OAuthState, connect, redirect_uri, seal};
use crate::app::AppState;
use crate::calendars::Credentials;
use crate::error::ApiError;

/// Longest `code` or `state` read.
const MAX_PARAM: usize = 8192;

fn failed(status: StatusCode, what: &str) -> Response {
    page(
        status,
        "Google Calendar was not connected",
        html! {
            p { (what) }
            p { "Ask for a new connect link and try again." }
        },
    )
}

/// The callback page.
pub async fn google_callback(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let (mut code, mut sealed, mut error) = (None, None, None);
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if value.len() > MAX_PARAM {
            return failed(StatusCode::BAD_REQUEST, "The link is too long to be one of slotd's.");
        }
        match key.as_ref() {
            "code" if code.is_none() => code = Some(value.into_owned()),
            "state" if sealed.is_none() => sealed = Some(value.into_owned()),
            "error" if error.is_none() => error = Some(value.into_owned()),
            _ => {}
        }
    }
    if let Some(error) = error {
        let what = match error.as_str() {
            "access_denied" => "Access to the calendar was not granted.".to_owned(),
            other => format!("Google answered: {}.", other.chars().take(80).collect::<String>()),
        };
        return failed(StatusCode::BAD_REQUEST, &what);
    }
    let opened: Option<OAuthState> =
        sealed.as_deref().and_then(|s| state.sealer.open(s)).and_then(|json| serde_json::from_str(&json).ok());
    let Some(grant) = opened else {
        return failed(StatusCode::BAD_REQUEST, "This link was not made by this slotd, or it was altered.");
    };
    if Timestamp::now().as_second() > grant.expires {
        return failed(StatusCode::BAD_REQUEST, "This connect link has expired (they work for 30 minutes).");
    }
    let Some(code) = code.filter(|c| !c.is_empty()) else {
        return failed(StatusCode::BAD_REQUEST, "Google sent no authorization code.");
    };
    let settings = state.calendars.settings();
    let (Some(client_id), Some(client_secret)) = (&settings.google_client_id, &settings.google_client_secret) else {
        return failed(StatusCode::BAD_REQUEST, "This slotd has no Google OAuth client configured any more.");
    };
    let exchanged = slotd_calendar::google::exchange_code(
        state.calendars.client(),
        settings.google_token_base(),
        client_id,
        client_secret,
        &code,
        &redirect_uri(&state),
    )
    .await;
    let refresh_token = match exchanged {
        Ok(token) => token,
        Err(CalendarError::Unreachable(_)) => {
            let mut response = failed(StatusCode::SERVICE_UNAVAILABLE, "Google could not be reached just now.");
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(30));
            return response;
        }
        Err(e) => {
            tracing::warn!(error = %e, "Google did not accept an authorization code");
            return failed(
                StatusCode::BAD_REQUEST,
                "Google did not accept the authorization (it may have been used already).",
            );
        }
    };
    let org = OrgId(grant.org);
    let credentials = Credentials::Google { client_id: None, client_secret: None, refresh_token };
    let new = NewCalendarConnection {
        kind: CalendarKind::Google,
        url: String::new(),
        calendar_ids: grant.calendar_ids.clone(),
        credentials_sealed: seal(&state, &credentials),
        write_back: grant.write_back,
        on_error: OnError::parse(&grant.on_error).unwrap_or(OnError::Fail),
    };
    match connect(&state, org, grant.host, new, "").await {
        Ok(connection) => connected(&state, org, grant.host, connection.id, &grant.calendar_ids).await,
        Err(ApiError::NotFound(_)) => {
            failed(StatusCode::NOT_FOUND, "The host this link was made for no longer exists.")
        }
        Err(ApiError::Validation(errors)) => {
            let detail = errors.first().map(|e| e.detail.clone()).unwrap_or_default();
            failed(StatusCode::BAD_REQUEST, &detail)
        }
        Err(other) => other.into_response(),
    }
}

async fn connected(state: &AppState, org: OrgId, host: Uuid, id: Uuid, calendars: &[String]) -> Response {
    let name = match state.store.host(org, host).await {
        Ok(Some(host)) => host.name,
        _ => String::new(),
    };
    page(
        StatusCode::OK,
        "Google Calendar connected",
        html! {
            p {
                @if name.is_empty() { "The calendar is connected." }
                @else { "The calendar of " strong { (name) } " is connected." }
                " Its busy time now keeps those times from being booked."
            }
            p { "Calendars: " (calendars.join(", ")) }
            p class="muted" { "Connection " code { (id) } ". You can close this page." }
        },
    )
}
