//! The one error type of the HTTP layer. Every failure a client can cause or see becomes an
//! RFC 9457 `application/problem+json` answer with a stable `code`; store errors are mapped
//! here, in one place, and nothing else in the server builds an error response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use slotd_store::StoreError;
use utoipa::ToSchema;

/// One invalid field: where it is (a JSON pointer into the body, or `/name` of a query
/// parameter) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer to the field, e.g. `/weekly/monday/0/end`.
    pub pointer: String,
    /// What is wrong, in words.
    pub detail: String,
}

impl FieldError {
    /// A field error at `pointer`.
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError { pointer: pointer.into(), detail: detail.into() }
    }
}

impl From<slotd_core::availability::FieldError> for FieldError {
    fn from(e: slotd_core::availability::FieldError) -> FieldError {
        FieldError::new(e.pointer, e.detail)
    }
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all, or a header is unusable.
    #[error("{0}")]
    Malformed(String),
    /// No valid API key (never says whether a key exists).
    #[error("a valid API key is required: send Authorization: Bearer sk_live_…")]
    Unauthorized,
    /// No such resource in the caller's organization.
    #[error("{0}")]
    NotFound(String),
    /// The method is not allowed on this path.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// A duplicate or a concurrent change.
    #[error("{0}")]
    Conflict(String),
    /// The time asked for is no longer free; `alternatives` are the nearest free slots.
    #[error("{detail}")]
    SlotTaken {
        /// What was taken.
        detail: String,
        /// Up to 5 nearest free slots.
        alternatives: Vec<Alternative>,
    },
    /// The booking's status does not allow this action.
    #[error("{0}")]
    InvalidTransition(String),
    /// The organization's plan allows no more of a resource.
    #[error("the organization's plan allows at most {limit} {resource}; upgrade the plan or delete one")]
    PlanLimit {
        /// What is limited, e.g. "webhook endpoints".
        resource: &'static str,
        /// The plan's limit.
        limit: u32,
    },
    /// The resource existed but is no longer usable (a cancelled booking's manage link).
    #[error("{0}")]
    Gone(String),
    /// A short-lived manage link whose time is up (`410 link_expired`).
    #[error("{0}")]
    LinkExpired(String),
    /// The body exceeds the 1 MB limit.
    #[error("the request body exceeds the limit of 1 MB")]
    PayloadTooLarge,
    /// Fields failed validation.
    #[error("{} invalid", plural(.0.len()))]
    Validation(Vec<FieldError>),
    /// Too many requests from this API key or client address; try again after `retry_after_secs`.
    #[error("too many requests; try again in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a request will be accepted again (sent as `Retry-After`).
        retry_after_secs: u64,
    },
    /// The database is unreachable, saturated, or lost its connection mid-request; try again
    /// (after `Retry-After`; with the same `Idempotency-Key` for creating requests).
    #[error("the service is temporarily unavailable: {0}")]
    Unavailable(String),
    /// A host's calendar could not be read at commit, so the start cannot be confirmed free
    /// (`503 calendar_unavailable`, with `calendar_id`); try again after `Retry-After`.
    #[error("{detail}")]
    CalendarUnavailable {
        /// The connection that could not be read.
        calendar_id: uuid::Uuid,
        /// What went wrong.
        detail: String,
    },
    /// A bug: logged in full, answered without detail.
    #[error("internal error")]
    Internal(String),
}

fn plural(n: usize) -> String {
    if n == 1 { "1 field is".to_owned() } else { format!("{n} fields are") }
}

impl ApiError {
    /// A validation failure of one field.
    pub fn field(pointer: impl Into<String>, detail: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![FieldError::new(pointer, detail)])
    }

    /// `Validation` if there are errors, else `Ok`.
    pub fn check(errors: Vec<FieldError>) -> Result<(), ApiError> {
        if errors.is_empty() { Ok(()) } else { Err(ApiError::Validation(errors)) }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status_code_title().0
    }

    fn status_code_title(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_request", "Malformed request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::SlotTaken { .. } => (StatusCode::CONFLICT, "slot_taken", "Slot taken"),
            ApiError::InvalidTransition(_) => (StatusCode::CONFLICT, "invalid_transition", "Invalid transition"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone", "Gone"),
            ApiError::LinkExpired(_) => (StatusCode::GONE, "link_expired", "Link expired"),
            ApiError::PlanLimit { .. } => (StatusCode::FORBIDDEN, "plan_limit", "Plan limit reached"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large"),
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "Invalid request"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many requests"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            ApiError::CalendarUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "calendar_unavailable", "Calendar unavailable")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal error"),
        }
    }
}

/// `Retry-After` of every `503 unavailable`: a restarted or failed-over database usually
/// answers again within seconds.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;
/// `Retry-After` of a `503 calendar_unavailable`: a calendar server back from a hiccup.
pub const CALENDAR_RETRY_AFTER_SECS: u64 = 30;

/// The RFC 9457 body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:slotd:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened in this case.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// Invalid fields (validation problems only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// Nearest free slots (`slot_taken` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alternatives: Option<Vec<Alternative>>,
    /// The plan's limit (`plan_limit` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The calendar connection that could not be read (`calendar_unavailable` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calendar_id: Option<uuid::Uuid>,
}

/// A free slot offered instead of a taken one.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Alternative {
    /// Start (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub start: jiff::Timestamp,
    /// End (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub end: jiff::Timestamp,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.status_code_title();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let retry_after_secs = match &self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Unavailable(cause) => {
                tracing::warn!(%cause, "answered 503: the database is unavailable");
                Some(UNAVAILABLE_RETRY_AFTER_SECS)
            }
            ApiError::CalendarUnavailable { calendar_id, detail } => {
                tracing::warn!(calendar = %calendar_id, %detail, "answered 503: a calendar could not be read at commit");
                Some(CALENDAR_RETRY_AFTER_SECS)
            }
            _ => None,
        };
        let errors = match &self {
            ApiError::Validation(errors) => Some(errors.clone()),
            _ => None,
        };
        let alternatives = match &self {
            ApiError::SlotTaken { alternatives, .. } => Some(alternatives.clone()),
            _ => None,
        };
        let problem = Problem {
            problem_type: format!("urn:slotd:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: code.to_owned(),
            errors,
            alternatives,
            limit: match &self {
                ApiError::PlanLimit { limit, .. } => Some(*limit),
                _ => None,
            },
            calendar_id: match &self {
                ApiError::CalendarUnavailable { calendar_id, .. } => Some(*calendar_id),
                _ => None,
            },
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict(detail) => ApiError::Conflict(detail),
            StoreError::SlotTaken => {
                ApiError::SlotTaken { detail: "the slot is no longer available".into(), alternatives: Vec::new() }
            }
            StoreError::Unavailable(detail) => ApiError::Unavailable(detail),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
