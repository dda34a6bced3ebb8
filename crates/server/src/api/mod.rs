//! The `/v1` API: one module per resource, each exporting its handlers, merged here into one
//! router whose OpenAPI document is generated from the same handler annotations (so the spec
//! cannot miss a route).

mod bookings;
pub mod calendars;
mod deliveries;
mod event_types;
mod events;
mod hosts;
pub mod manage;
mod reschedule_requests;
mod slack;
pub mod slots;
mod webhooks;

pub use event_types::event_type_event;
pub use hosts::host_event;

use axum::Router;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use slotd_store::{Page, PageRequest};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi as _, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, Problem};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "slotd",
        description = "Self-hosted scheduling engine: live conflict-free slots, race-free bookings, signed webhooks, Slack messages."
    ),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
    components(schemas(Problem))
)]
struct ApiDoc;

/// The API router and its OpenAPI document.
pub fn routes() -> (Router<AppState>, OpenApi) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(hosts::create_host, hosts::list_hosts))
        .routes(routes!(hosts::get_host, hosts::update_host, hosts::delete_host))
        .routes(routes!(hosts::put_availability))
        .routes(routes!(hosts::add_busy, hosts::list_busy))
        .routes(routes!(hosts::delete_busy))
        .routes(routes!(calendars::create_calendar, calendars::list_calendars))
        .routes(routes!(calendars::get_calendar, calendars::update_calendar, calendars::delete_calendar))
        .routes(routes!(calendars::list_calendar_deliveries))
        .routes(routes!(calendars::google_authorize_url))
        .routes(routes!(event_types::create_event_type, event_types::list_event_types))
        .routes(routes!(event_types::get_event_type, event_types::update_event_type, event_types::delete_event_type))
        .routes(routes!(slots::list_slots))
        .routes(routes!(bookings::create_booking, bookings::list_bookings))
        .routes(routes!(bookings::get_booking))
        .routes(routes!(bookings::confirm_booking))
        .routes(routes!(bookings::reject_booking))
        .routes(routes!(bookings::cancel_booking))
        .routes(routes!(bookings::reschedule_booking))
        .routes(routes!(bookings::rotate_manage_token))
        .routes(routes!(bookings::booking_ics))
        .routes(routes!(manage::get_manage))
        .routes(routes!(manage::manage_slots))
        .routes(routes!(manage::manage_reschedule))
        .routes(routes!(manage::manage_cancel))
        .routes(routes!(manage::ics_by_token))
        .routes(routes!(reschedule_requests::create_reschedule_request))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(webhooks::get_webhook, webhooks::update_webhook, webhooks::delete_webhook))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(deliveries::send_test))
        .routes(routes!(deliveries::list_deliveries))
        .routes(routes!(deliveries::retry_delivery))
        .routes(routes!(deliveries::replay))
        .routes(routes!(slack::create_slack_channel, slack::list_slack_channels))
        .routes(routes!(slack::get_slack_channel, slack::update_slack_channel, slack::delete_slack_channel))
        .routes(routes!(slack::send_slack_test))
        .routes(routes!(slack::list_slack_deliveries))
        .routes(routes!(slack::retry_slack_delivery))
        .routes(routes!(events::list_events))
        .split_for_parts();
    // After the merge: utoipa runs `modifiers(...)` before the routes' paths are added.
    ProblemResponses.modify(&mut openapi);
    (router, openapi)
}

/// Documents the `Authorization: Bearer sk_live_…` scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("sk_live_…").build()),
        );
    }
}

/// Adds the problem+json answers every `/v1` operation can give (bad JSON, no key, unknown
/// id, too large, invalid fields, rate limited, database unavailable) so each handler documents
/// only its own.
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        let common = [
            ("400", "Malformed request"),
            ("401", "Missing or invalid API key"),
            ("404", "No such resource in this organization"),
            ("409", "Conflict"),
            ("405", "Method not allowed"),
            ("413", "Body larger than 1 MB"),
            ("422", "Invalid fields"),
            ("429", "Too many requests from this API key (or, on the token routes, this client address)"),
            (
                "503",
                "`unavailable`: the database is unavailable or its connection was lost; \
                 `calendar_unavailable`: a host's calendar could not be read to confirm a time. Safe to retry \
                 after Retry-After (with the same Idempotency-Key)",
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            for operation in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                // A handler's own problem answers are documented with `body = Problem`, which
                // utoipa files under application/json: they are sent as problem+json.
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response
                        && response.content.get("application/json").is_some_and(|c| is_problem(c.schema.as_ref()))
                        && let Some(content) = response.content.shift_remove("application/json")
                    {
                        response.content.insert("application/problem+json".to_owned(), content);
                    }
                }
                for (status, description) in common {
                    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                        let mut response = ResponseBuilder::new().description(description).content(
                            "application/problem+json",
                            ContentBuilder::new().schema(Some(Problem::schema_ref())).build(),
                        );
                        if status == "429" || status == "503" {
                            response = response.header("Retry-After", retry_after_header());
                        }
                        RefOr::T(response.build())
                    });
                }
            }
        }
    }
}

/// A list of event type names in schemas: an array whose items are the enum `names`.
pub fn event_names_schema(names: &[&str]) -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names.iter().copied())))
        .build()
}

fn is_problem(schema: Option<&RefOr<utoipa::openapi::schema::Schema>>) -> bool {
    matches!(schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
}

/// `Retry-After`: whole seconds to wait before trying again.
fn retry_after_header() -> utoipa::openapi::header::Header {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
                .minimum(Some(1)),
        )
        .description(Some("Seconds to wait before trying again"))
        .build()
}

impl Problem {
    fn schema_ref() -> RefOr<utoipa::openapi::schema::Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem"))
    }
}

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// Validated store page request.
    pub fn to_request(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::field("/limit", "must be between 1 and 100"));
        }
        let after = match &self.cursor {
            None => None,
            Some(cursor) => Some(
                decode_cursor(cursor).ok_or_else(|| ApiError::field("/cursor", "not a cursor this API handed out"))?,
            ),
        };
        Ok(PageRequest { limit: limit as u32, after })
    }
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    (!text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then_some(text)
}

/// `{ "data": [...], "next_cursor": … }`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    /// Converts a store page, mapping each item to its API view.
    pub fn from_page<S>(page: Page<S>, view: impl FnMut(S) -> T) -> ListResponse<T> {
        ListResponse {
            data: page.items.into_iter().map(view).collect(),
            next_cursor: page.next_after.map(|id| URL_SAFE_NO_PAD.encode(id)),
        }
    }
}

/// Parses a path id, answering 404 for anything that is not a UUID.
pub use crate::extract::parse_path_id;
