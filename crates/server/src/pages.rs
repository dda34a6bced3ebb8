//! The hosted manage page, `/manage/{token}`: a small server-rendered page (no JavaScript,
//! readable on a phone) where an attendee sees the booking, picks a new time among live slots
//! in their own time zone, or cancels, with a reason. Forms post to the same commands as the
//! self-service API; errors are shown in words, not codes.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use slotd_core::booking::BookingAction;
use slotd_core::interval::Interval;
use slotd_store::Actor;

use crate::api::manage::{attendee_zone, booking_for_token, manage_view, slots_for_booking};
use crate::app::AppState;
use crate::booking::{self, ChangeInput};
use crate::error::ApiError;
use crate::extract::ApiPath;

/// How far ahead the page offers new times.
const OFFER_DAYS: i64 = 14;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:1rem auto;max-width:36rem;padding:0 1rem;line-height:1.5}}\
         fieldset{{border:1px solid #ccc;border-radius:.5rem;margin:1rem 0}}label.slot{{display:inline-block;margin:.2rem .4rem}}\
         button{{font-size:1rem;padding:.5rem 1rem;margin-top:.5rem}}textarea,input[type=text]{{width:100%;font-size:1rem}}\
         .notice{{background:#eef6ee;padding:.5rem 1rem;border-radius:.5rem}}.error{{background:#fbeaea;padding:.5rem 1rem;border-radius:.5rem}}</style>\
         </head><body><h1>{title}</h1>{body}</body></html>",
        title = escape(title)
    );
    (status, Html(html)).into_response()
}

/// `?done=` after a successful change, `?error=` is never used: errors are rendered directly.
#[derive(Debug, Deserialize)]
pub struct PageParams {
    done: Option<String>,
}

fn when(t: Timestamp, zone: &jiff::tz::TimeZone) -> String {
    t.to_zoned(zone.clone()).strftime("%A %-d %B %Y, %H:%M (%Z)").to_string()
}

/// The page for a failure that is not the attendee's: the database is unavailable (503, with
/// `Retry-After`) or a bug (500).
fn try_again_page(e: &ApiError) -> Response {
    let (status, text) = match e {
        ApiError::Unavailable(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "The service is briefly unavailable. Please try again in a moment.")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side. Please try again later."),
    };
    let mut response = page(status, "Please try again", &format!("<p>{}</p>", escape(text)));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(crate::error::UNAVAILABLE_RETRY_AFTER_SECS),
        );
    }
    response
}

/// Renders the page for a token, with an optional message on top.
async fn render(state: &AppState, token: &str, message: Option<(&str, &str)>) -> Response {
    let booking = match booking_for_token(state, token).await {
        Ok(b) => b,
        Err(e @ (ApiError::Unavailable(_) | ApiError::Internal(_))) => return try_again_page(&e),
        Err(_) => {
            return page(
                StatusCode::NOT_FOUND,
                "Link not valid",
                "<p>This link does not open a booking. It may have been replaced by a newer link: please use \
                 the most recent message you received.</p>",
            );
        }
    };
    let zone = attendee_zone(&booking);
    let context = match booking::context(state, booking.clone()).await {
        Ok(c) => c,
        Err(e) => return try_again_page(&e),
    };
    let view = manage_view(state, &context);
    let mut body = String::new();
    if let Some((class, text)) = message {
        body.push_str(&format!("<p class=\"{class}\">{}</p>", escape(text)));
    }
    let hosts: Vec<String> = context.hosts.iter().map(|h| escape(&h.name)).collect();
    body.push_str(&format!(
        "<p><strong>{}</strong> with {}<br>{} – {}<br>Reference {} · status <strong>{}</strong></p>",
        escape(&context.event_type.title),
        hosts.join(", "),
        escape(&when(booking.interval.start, &zone)),
        escape(&booking.interval.end.to_zoned(zone.clone()).strftime("%H:%M").to_string()),
        escape(&booking.human_id),
        booking.status.as_str(),
    ));
    let over = booking.interval.end <= Timestamp::now();
    if view.can_reschedule && !over {
        let now = Timestamp::now();
        let window = Interval { start: now, end: now + SignedDuration::from_hours(24 * OFFER_DAYS) };
        match slots_for_booking(state, &booking, context.event_type.clone(), window, &zone).await {
            Ok(slots) => {
                let mut options = String::new();
                let mut day = String::new();
                for slot in &slots.slots {
                    let start = slot.start;
                    let local = start.to_zoned(zone.clone());
                    let this_day = local.strftime("%A %-d %B").to_string();
                    if this_day != day {
                        options.push_str(&format!("<h3>{}</h3>", escape(&this_day)));
                        day = this_day;
                    }
                    options.push_str(&format!(
                        "<label class=\"slot\"><input type=\"radio\" name=\"start\" value=\"{start}\" required> {}</label>",
                        local.strftime("%H:%M")
                    ));
                }
                if options.is_empty() {
                    options.push_str("<p>No other times are free in the next two weeks.</p>");
                }
                let reason_required = if view.reschedule_reason_required { " required" } else { "" };
                body.push_str(&format!(
                    "<form id=\"reschedule\" method=\"post\" action=\"/manage/{token}/reschedule\"><fieldset><legend>Pick a new time \
                     (times in {})</legend>{options}<p><label>Reason<input type=\"text\" name=\"reason\" maxlength=\"1000\"{reason_required}></label></p>\
                     <button type=\"submit\">Reschedule</button></fieldset></form>",
                    escape(zone.iana_name().unwrap_or("UTC")),
                ));
            }
            Err(e) => body.push_str(&format!("<p class=\"error\">{}</p>", escape(&e.to_string()))),
        }
    }
    if view.can_cancel && !over {
        body.push_str(&format!(
            "<form id=\"cancel\" method=\"post\" action=\"/manage/{token}/cancel\"><fieldset><legend>Cancel this booking</legend>\
             <p><label>Reason (optional)<textarea name=\"reason\" rows=\"2\" maxlength=\"1000\"></textarea></label></p>\
             <button type=\"submit\">Cancel booking</button></fieldset></form>"
        ));
    }
    if !view.can_reschedule && !view.can_cancel {
        body.push_str("<p>This booking can no longer be changed here. Please contact your host.</p>");
    }
    body.push_str(&format!("<p><a href=\"/b/{token}.ics\">Add to calendar (.ics)</a></p>"));
    page(StatusCode::OK, "Your booking", &body)
}

/// `GET /manage/{token}`.
pub async fn manage_page(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    Query(params): Query<PageParams>,
) -> Response {
    let message = match params.done.as_deref() {
        Some("rescheduled") => Some(("notice", "Done: your booking has been moved.")),
        Some("cancelled") => Some(("notice", "Done: your booking has been cancelled.")),
        _ => None,
    };
    render(&state, &token, message).await
}

#[derive(Debug, Deserialize)]
struct FormFields {
    start: Option<String>,
    reason: Option<String>,
}

/// Words for an attendee instead of a problem code.
fn in_words(e: &ApiError) -> String {
    match e {
        ApiError::SlotTaken { .. } => "Sorry, that time was just taken. Please pick another one.".to_owned(),
        ApiError::Validation(errors) => errors.iter().map(|e| e.detail.clone()).collect::<Vec<_>>().join("; "),
        ApiError::InvalidTransition(detail) | ApiError::Gone(detail) => {
            format!("This booking cannot be changed: {detail}.")
        }
        other => format!("Something went wrong: {other}. Please try again."),
    }
}

async fn form_command(state: &AppState, token: &str, body: &Bytes, action: BookingAction) -> Response {
    let fields: FormFields = match serde_urlencoded::from_bytes(body) {
        Ok(f) => f,
        Err(_) => return render(state, token, Some(("error", "The form could not be read. Please try again."))).await,
    };
    let booking = match booking_for_token(state, token).await {
        Ok(b) => b,
        Err(_) => return render(state, token, None).await,
    };
    let start = match (action, fields.start.as_deref().map(crate::extract::instant::parse)) {
        (BookingAction::Reschedule, Some(Some(t))) => Some(t),
        (BookingAction::Reschedule, _) => {
            return render(state, token, Some(("error", "Please pick a new time."))).await;
        }
        _ => None,
    };
    let reason = fields.reason.filter(|r| !r.trim().is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > crate::booking::validate::REASON_MAX_CHARS) {
        return render(state, token, Some(("error", "The reason is too long."))).await;
    }
    let input = ChangeInput { action, by: Actor::Attendee, reason, start };
    match booking::change(state, booking.organization_id, booking.id, input, None).await {
        Ok(_) => Redirect::to(&format!("/manage/{token}?done={}", action.past_tense())).into_response(),
        Err(e) => {
            let text = in_words(&e);
            let mut response = render(state, token, Some(("error", &text))).await;
            if response.status() == StatusCode::OK {
                *response.status_mut() = e.status();
                if let ApiError::Unavailable(_) = e {
                    response.headers_mut().insert(
                        axum::http::header::RETRY_AFTER,
                        axum::http::HeaderValue::from(crate::error::UNAVAILABLE_RETRY_AFTER_SECS),
                    );
                }
            }
            response
        }
    }
}

/// `POST /manage/{token}/reschedule` (form: `start`, `reason`).
pub async fn reschedule_form(State(state): State<AppState>, ApiPath(token): ApiPath<String>, body: Bytes) -> Response {
    form_command(&state, &token, &body, BookingAction::Reschedule).await
}

/// `POST /manage/{token}/cancel` (form: `reason`).
pub async fn cancel_form(State(state): State<AppState>, ApiPath(token): ApiPath<String>, body: Bytes) -> Response {
    form_command(&state, &token, &body, BookingAction::Cancel).await
}
