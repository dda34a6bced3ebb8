//! `GET /v1/events`: the organization's event log (the outbox), in the webhook envelope shape.

use axum::Json;
use axum::extract::State;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use slotd_store::Event;
use utoipa::{IntoParams, ToSchema};

use super::{ListResponse, PageParams};
use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiQuery, Caller};

/// The envelope every event is delivered in.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventEnvelope {
    /// Stable id (`evt_…`), the same in every delivery of this event.
    #[schema(example = "evt_01JD2Z6S5V5ZB1Q3X9T0M4N7PK")]
    id: String,
    /// For example `host.created`.
    #[serde(rename = "type")]
    event_type: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// The resource as it was after the change.
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

impl From<Event> for EventEnvelope {
    fn from(e: Event) -> EventEnvelope {
        EventEnvelope { id: e.id, event_type: e.event_type, created_at: e.created_at, data: e.data }
    }
}

/// `GET /v1/events` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Only events of this type, e.g. `host.created`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    /// Only events created at or after this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(default, with = "crate::extract::instant::option")]
    since: Option<Timestamp>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List events, oldest first.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventParams),
    responses((status = 200, description = "A page of events", body = ListResponse<EventEnvelope>)))]
pub async fn list_events(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiQuery(params): ApiQuery<EventParams>,
) -> Result<Json<ListResponse<EventEnvelope>>, ApiError> {
    let page = PageParams { limit: params.limit, cursor: params.cursor }.to_request()?;
    let events = state.store.list_events(org, params.event_type.as_deref(), params.since, &page).await?;
    Ok(Json(ListResponse::from_page(events, EventEnvelope::from)))
}
