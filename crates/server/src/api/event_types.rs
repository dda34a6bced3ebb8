//! `/v1/event-types`: what can be booked, its rules, hosts and booking questions.
//!
//! Create and update share one path to a valid event type: the body becomes an
//! [`EventTypeDraft`] (create fills defaults, update starts from the stored one), and
//! [`EventTypeDraft::validate`] checks the whole result, so the rules are written once.

use std::collections::HashSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use slotd_core::slots::{Assignment, MAX_BUFFER_MINUTES, MAX_DURATION_MINUTES};
use slotd_store::{EventType, EventTypeSettings, NewEventType, OrgId, Question, QuestionType, StoreError};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ListResponse, PageParams, parse_path_id};
use crate::app::AppState;
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};

/// An event type as the API shows it (and as `event_type.*` payloads carry it).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    id: Uuid,
    slug: String,
    title: String,
    description: Option<String>,
    duration_minutes: u32,
    slot_interval_minutes: u32,
    buffer_before_minutes: u32,
    buffer_after_minutes: u32,
    min_notice_minutes: u32,
    booking_window_days: u32,
    reschedule_cutoff_minutes: u32,
    cancel_cutoff_minutes: u32,
    requires_confirmation: bool,
    pending_blocks: bool,
    reschedule_reason_required: bool,
    seats: u32,
    hosts: Vec<Uuid>,
    #[schema(value_type = AssignmentSchema)]
    assignment: Assignment,
    #[schema(value_type = Vec<QuestionSchema>)]
    questions: Vec<Question>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl From<&EventType> for EventTypeView {
    fn from(e: &EventType) -> EventTypeView {
        let s = &e.settings;
        EventTypeView {
            id: e.id,
            slug: e.slug.clone(),
            title: e.title.clone(),
            description: e.description.clone(),
            duration_minutes: s.duration_minutes,
            slot_interval_minutes: s.slot_interval_minutes,
            buffer_before_minutes: s.buffer_before_minutes,
            buffer_after_minutes: s.buffer_after_minutes,
            min_notice_minutes: s.min_notice_minutes,
            booking_window_days: s.booking_window_days,
            reschedule_cutoff_minutes: s.reschedule_cutoff_minutes,
            cancel_cutoff_minutes: s.cancel_cutoff_minutes,
            requires_confirmation: s.requires_confirmation,
            pending_blocks: s.pending_blocks,
            reschedule_reason_required: s.reschedule_reason_required,
            seats: s.seats,
            hosts: e.host_ids.clone(),
            assignment: s.assignment,
            questions: s.questions.clone(),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// The payload of `event_type.*` events.
pub fn event_type_event(event_type: &EventType) -> serde_json::Value {
    serde_json::to_value(EventTypeView::from(event_type)).expect("event type views serialise")
}

/// How hosts are assigned: `single` (exactly one host), `round_robin` (any one free host),
/// `collective` (all hosts together).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum AssignmentSchema {
    Single,
    RoundRobin,
    Collective,
}

/// Answer type of a booking question.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum QuestionTypeSchema {
    Text,
    LongText,
    Email,
    Phone,
    Number,
    Select,
    Checkbox,
}

/// A custom booking question.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionSchema {
    /// Answer key: lower-case letters, digits and `_`, starting with a letter.
    #[schema(example = "company")]
    key: String,
    #[schema(example = "Company")]
    label: String,
    #[serde(rename = "type")]
    #[schema(value_type = QuestionTypeSchema)]
    kind: QuestionType,
    #[serde(default)]
    required: bool,
    /// Choices (for `select` only).
    #[serde(default)]
    options: Vec<String>,
}

/// `POST /v1/event-types` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventType {
    #[schema(example = "intro-call", pattern = r"^[a-z0-9]+(-[a-z0-9]+)*$", min_length = 1, max_length = 100)]
    slug: String,
    #[schema(example = "Intro call")]
    title: String,
    description: Option<String>,
    #[schema(example = 30)]
    #[schema(minimum = 1, maximum = 1440)]
    duration_minutes: i64,
    #[schema(minimum = 1, maximum = 1440)]
    slot_interval_minutes: Option<i64>,
    #[schema(minimum = 0, maximum = 43200)]
    buffer_before_minutes: Option<i64>,
    #[schema(minimum = 0, maximum = 43200)]
    buffer_after_minutes: Option<i64>,
    #[schema(minimum = 0, maximum = 43200)]
    min_notice_minutes: Option<i64>,
    #[schema(minimum = 1, maximum = 3650)]
    booking_window_days: Option<i64>,
    #[schema(minimum = 0, maximum = 43200)]
    reschedule_cutoff_minutes: Option<i64>,
    #[schema(minimum = 0, maximum = 43200)]
    cancel_cutoff_minutes: Option<i64>,
    requires_confirmation: Option<bool>,
    pending_blocks: Option<bool>,
    reschedule_reason_required: Option<bool>,
    #[schema(minimum = 1, maximum = 1000)]
    seats: Option<i64>,
    /// Host ids.
    #[schema(value_type = Vec<Uuid>, min_items = 1, max_items = 100)]
    hosts: Vec<String>,
    #[schema(value_type = Option<AssignmentSchema>)]
    assignment: Option<Assignment>,
    questions: Option<Vec<QuestionSchema>>,
}

/// `PATCH /v1/event-types/{id}` body; fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEventType {
    slug: Option<String>,
    title: Option<String>,
    description: Option<String>,
    #[schema(minimum = 1, maximum = 1440)]
    duration_minutes: Option<i64>,
    #[schema(minimum = 1, maximum = 1440)]
    slot_interval_minutes: Option<i64>,
    #[schema(minimum = 0, maximum = 43200)]
    buffer_before_minutes: Option<i64>,
    #[schema(minimum = 0, maximum = 43200)]
    buffer_after_minutes: Option<i64>,
    #[schema(minimum = 0, maximum = 43200)]
    min_notice_minutes: Option<i64>,
    #[schema(minimum = 1, maximum = 3650)]
    booking_window_days: Option<i64>,
    #[schema(minimum = 0, maximum = 43200)]
    reschedule_cutoff_minutes: Option<i64>,
    #[schema(minimum = 0, maximum = 43200)]
    cancel_cutoff_minutes: Option<i64>,
    requires_confirmation: Option<bool>,
    pending_blocks: Option<bool>,
    reschedule_reason_required: Option<bool>,
    #[schema(minimum = 1, maximum = 1000)]
    seats: Option<i64>,
    #[schema(value_type = Option<Vec<Uuid>>, min_items = 1, max_items = 100)]
    hosts: Option<Vec<String>>,
    #[schema(value_type = Option<AssignmentSchema>)]
    assignment: Option<Assignment>,
    questions: Option<Vec<QuestionSchema>>,
}

/// An event type before validation: every field present, numbers still as the client sent them.
struct EventTypeDraft {
    slug: String,
    title: String,
    description: Option<String>,
    duration_minutes: i64,
    slot_interval_minutes: Option<i64>,
    buffer_before_minutes: i64,
    buffer_after_minutes: i64,
    min_notice_minutes: i64,
    booking_window_days: i64,
    reschedule_cutoff_minutes: i64,
    cancel_cutoff_minutes: i64,
    requires_confirmation: bool,
    pending_blocks: bool,
    reschedule_reason_required: bool,
    seats: i64,
    hosts: Vec<String>,
    assignment: Assignment,
    questions: Vec<QuestionSchema>,
}

impl From<CreateEventType> for EventTypeDraft {
    fn from(b: CreateEventType) -> EventTypeDraft {
        EventTypeDraft {
            slug: b.slug,
            title: b.title,
            description: b.description,
            duration_minutes: b.duration_minutes,
            slot_interval_minutes: b.slot_interval_minutes,
            buffer_before_minutes: b.buffer_before_minutes.unwrap_or(0),
            buffer_after_minutes: b.buffer_after_minutes.unwrap_or(0),
            min_notice_minutes: b.min_notice_minutes.unwrap_or(0),
            booking_window_days: b.booking_window_days.unwrap_or(60),
            reschedule_cutoff_minutes: b.reschedule_cutoff_minutes.unwrap_or(0),
            cancel_cutoff_minutes: b.cancel_cutoff_minutes.unwrap_or(0),
            requires_confirmation: b.requires_confirmation.unwrap_or(false),
            pending_blocks: b.pending_blocks.unwrap_or(true),
            reschedule_reason_required: b.reschedule_reason_required.unwrap_or(false),
            seats: b.seats.unwrap_or(1),
            hosts: b.hosts,
            assignment: b.assignment.unwrap_or(Assignment::Single),
            questions: b.questions.unwrap_or_default(),
        }
    }
}

impl EventTypeDraft {
    /// The stored event type with `patch` applied on top.
    fn patched(current: &EventType, p: UpdateEventType) -> EventTypeDraft {
        let s = &current.settings;
        EventTypeDraft {
            slug: p.slug.unwrap_or_else(|| current.slug.clone()),
            title: p.title.unwrap_or_else(|| current.title.clone()),
            description: p.description.or_else(|| current.description.clone()),
            duration_minutes: p.duration_minutes.unwrap_or(s.duration_minutes.into()),
            slot_interval_minutes: Some(p.slot_interval_minutes.unwrap_or(s.slot_interval_minutes.into())),
            buffer_before_minutes: p.buffer_before_minutes.unwrap_or(s.buffer_before_minutes.into()),
            buffer_after_minutes: p.buffer_after_minutes.unwrap_or(s.buffer_after_minutes.into()),
            min_notice_minutes: p.min_notice_minutes.unwrap_or(s.min_notice_minutes.into()),
            booking_window_days: p.booking_window_days.unwrap_or(s.booking_window_days.into()),
            reschedule_cutoff_minutes: p.reschedule_cutoff_minutes.unwrap_or(s.reschedule_cutoff_minutes.into()),
            cancel_cutoff_minutes: p.cancel_cutoff_minutes.unwrap_or(s.cancel_cutoff_minutes.into()),
            requires_confirmation: p.requires_confirmation.unwrap_or(s.requires_confirmation),
            pending_blocks: p.pending_blocks.unwrap_or(s.pending_blocks),
            reschedule_reason_required: p.reschedule_reason_required.unwrap_or(s.reschedule_reason_required),
            seats: p.seats.unwrap_or(s.seats.into()),
            hosts: p.hosts.unwrap_or_else(|| current.host_ids.iter().map(Uuid::to_string).collect()),
            assignment: p.assignment.unwrap_or(s.assignment),
            questions: p.questions.unwrap_or_else(|| {
                s.questions
                    .iter()
                    .map(|q| QuestionSchema {
                        key: q.key.clone(),
                        label: q.label.clone(),
                        kind: q.kind,
                        required: q.required,
                        options: q.options.clone(),
                    })
                    .collect()
            }),
        }
    }

    /// Checks every rule and yields what the store takes, or every invalid field.
    fn validate(self) -> Result<NewEventType, ApiError> {
        let mut errors = Vec::new();
        if !is_slug(&self.slug) {
            errors.push(FieldError::new(
                "/slug",
                "must be 1–100 lower-case letters, digits and single dashes, like 'intro-call'",
            ));
        }
        super::hosts::check_name("/title", &self.title, &mut errors);
        if let Some(description) = &self.description
            && description.chars().count() > 5000
        {
            errors.push(FieldError::new("/description", "must be at most 5000 characters"));
        }
        let mut minutes = |pointer: &str, value: i64, min: i64, max: i64| -> u32 {
            if (min..=max).contains(&value) {
                value as u32
            } else {
                errors.push(FieldError::new(pointer, format!("must be a whole number from {min} to {max}")));
                0
            }
        };
        let (max_duration, max_buffer) = (i64::from(MAX_DURATION_MINUTES), i64::from(MAX_BUFFER_MINUTES));
        let duration_minutes = minutes("/duration_minutes", self.duration_minutes, 1, max_duration);
        let slot_interval_minutes =
            minutes("/slot_interval_minutes", self.slot_interval_minutes.unwrap_or(self.duration_minutes), 1, 1440);
        let buffer_before_minutes = minutes("/buffer_before_minutes", self.buffer_before_minutes, 0, max_buffer);
        let buffer_after_minutes = minutes("/buffer_after_minutes", self.buffer_after_minutes, 0, max_buffer);
        let min_notice_minutes = minutes("/min_notice_minutes", self.min_notice_minutes, 0, 43_200);
        let booking_window_days = minutes("/booking_window_days", self.booking_window_days, 1, 3650);
        let reschedule_cutoff_minutes =
            minutes("/reschedule_cutoff_minutes", self.reschedule_cutoff_minutes, 0, 43_200);
        let cancel_cutoff_minutes = minutes("/cancel_cutoff_minutes", self.cancel_cutoff_minutes, 0, 43_200);
        let seats = minutes("/seats", self.seats, 1, 1000);

        let mut host_ids = Vec::with_capacity(self.hosts.len());
        for (i, raw) in self.hosts.iter().enumerate() {
            match Uuid::parse_str(raw) {
                Ok(id) if host_ids.contains(&id) => {
                    errors.push(FieldError::new(format!("/hosts/{i}"), "is listed twice"))
                }
                Ok(id) => host_ids.push(id),
                Err(_) => errors.push(FieldError::new(format!("/hosts/{i}"), format!("'{raw}' is not a host id"))),
            }
        }
        match self.assignment {
            Assignment::Single if self.hosts.len() != 1 => {
                errors.push(FieldError::new("/hosts", "assignment 'single' needs exactly one host"))
            }
            _ if self.hosts.is_empty() => errors.push(FieldError::new("/hosts", "needs at least one host")),
            _ if self.hosts.len() > 100 => errors.push(FieldError::new("/hosts", "at most 100 hosts")),
            _ => {}
        }
        let questions = validate_questions(self.questions, &mut errors);
        ApiError::check(errors)?;
        Ok(NewEventType {
            slug: self.slug,
            title: self.title.trim().to_owned(),
            description: self.description,
            settings: EventTypeSettings {
                duration_minutes,
                slot_interval_minutes,
                buffer_before_minutes,
                buffer_after_minutes,
                min_notice_minutes,
                booking_window_days,
                reschedule_cutoff_minutes,
                cancel_cutoff_minutes,
                requires_confirmation: self.requires_confirmation,
                pending_blocks: self.pending_blocks,
                reschedule_reason_required: self.reschedule_reason_required,
                seats,
                assignment: self.assignment,
                questions,
            },
            host_ids,
        })
    }
}

fn is_slug(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

fn validate_questions(questions: Vec<QuestionSchema>, errors: &mut Vec<FieldError>) -> Vec<Question> {
    if questions.len() > 50 {
        errors.push(FieldError::new("/questions", "at most 50 questions"));
    }
    let mut keys = HashSet::new();
    let mut out = Vec::with_capacity(questions.len());
    for (i, q) in questions.into_iter().enumerate() {
        let at = |field: &str| format!("/questions/{i}/{field}");
        let key_ok = (1..=64).contains(&q.key.len())
            && q.key.starts_with(|c: char| c.is_ascii_lowercase())
            && q.key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok {
            errors.push(FieldError::new(at("key"), "must be 1–64 of a-z, 0-9 and _, starting with a letter"));
        } else if q.key == "name" || q.key == "email" {
            errors.push(FieldError::new(at("key"), "name and email are always asked; choose another key"));
        } else if !keys.insert(q.key.clone()) {
            errors.push(FieldError::new(at("key"), format!("key '{}' is used twice", q.key)));
        }
        super::hosts::check_name(&at("label"), &q.label, errors);
        match q.kind {
            QuestionType::Select => {
                let distinct: HashSet<&String> = q.options.iter().collect();
                if q.options.is_empty() || q.options.len() > 100 {
                    errors.push(FieldError::new(at("options"), "a select question needs 1–100 options"));
                } else if distinct.len() != q.options.len() {
                    errors.push(FieldError::new(at("options"), "options must be distinct"));
                } else if let Some(j) = q.options.iter().position(|o| o.trim().is_empty() || o.chars().count() > 200) {
                    errors.push(FieldError::new(format!("/questions/{i}/options/{j}"), "must be 1–200 characters"));
                }
            }
            _ if !q.options.is_empty() => {
                errors.push(FieldError::new(at("options"), "only select questions have options"))
            }
            _ => {}
        }
        out.push(Question {
            key: q.key,
            label: q.label.trim().to_owned(),
            kind: q.kind,
            required: q.required,
            options: q.options,
        });
    }
    out
}

/// Checks that every host exists, naming the first missing one by its index.
async fn check_hosts_exist(state: &AppState, org: OrgId, new: &NewEventType) -> Result<(), ApiError> {
    let found = state.store.hosts_by_ids(org, &new.host_ids).await?;
    let errors: Vec<FieldError> = new
        .host_ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !found.iter().any(|h| h.id == **id))
        .map(|(i, id)| FieldError::new(format!("/hosts/{i}"), format!("no host with id {id}")))
        .collect();
    ApiError::check(errors)
}

/// A host deleted between the check and the write.
fn missing_host(e: StoreError) -> ApiError {
    match e {
        StoreError::MissingReference(detail) => ApiError::field("/hosts", detail),
        other => other.into(),
    }
}

fn event_type_not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no event type with id {id}"))
}

/// Create an event type.
#[utoipa::path(post, path = "/v1/event-types", tag = "event types", request_body = CreateEventType,
    responses((status = 201, description = "Created", body = EventTypeView),
        (status = 409, description = "Slug already used", body = crate::error::Problem,
         content_type = "application/problem+json")))]
pub async fn create_event_type(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiJson(body): ApiJson<CreateEventType>,
) -> Result<(StatusCode, Json<EventTypeView>), ApiError> {
    let new = EventTypeDraft::from(body).validate()?;
    check_hosts_exist(&state, org, &new).await?;
    let event_type = state.store.create_event_type(org, new, event_type_event).await.map_err(missing_host)?;
    Ok((StatusCode::CREATED, Json(EventTypeView::from(&event_type))))
}

/// List event types.
#[utoipa::path(get, path = "/v1/event-types", tag = "event types", params(PageParams),
    responses((status = 200, description = "A page of event types", body = ListResponse<EventTypeView>)))]
pub async fn list_event_types(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<ListResponse<EventTypeView>>, ApiError> {
    let page = state.store.list_event_types(org, &params.to_request()?).await?;
    Ok(Json(ListResponse::from_page(page, |e| EventTypeView::from(&e))))
}

/// Get an event type.
#[utoipa::path(get, path = "/v1/event-types/{id}", tag = "event types",
    params(("id" = Uuid, Path, description = "Event type id")),
    responses((status = 200, description = "The event type", body = EventTypeView)))]
pub async fn get_event_type(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EventTypeView>, ApiError> {
    let id = parse_path_id(&id, "event type")?;
    let event_type = state.store.event_type(org, id).await?.ok_or_else(|| event_type_not_found(id))?;
    Ok(Json(EventTypeView::from(&event_type)))
}

/// Update an event type.
#[utoipa::path(patch, path = "/v1/event-types/{id}", tag = "event types", request_body = UpdateEventType,
    params(("id" = Uuid, Path, description = "Event type id")),
    responses((status = 200, description = "The updated event type", body = EventTypeView),
        (status = 409, description = "Slug already used, or changed concurrently", body = crate::error::Problem,
         content_type = "application/problem+json")))]
pub async fn update_event_type(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateEventType>,
) -> Result<Json<EventTypeView>, ApiError> {
    let id = parse_path_id(&id, "event type")?;
    let current = state.store.event_type(org, id).await?.ok_or_else(|| event_type_not_found(id))?;
    let new = EventTypeDraft::patched(&current, body).validate()?;
    check_hosts_exist(&state, org, &new).await?;
    let event_type = state
        .store
        .replace_event_type(org, id, current.updated_at, new, event_type_event)
        .await
        .map_err(missing_host)?
        .ok_or_else(|| event_type_not_found(id))?;
    Ok(Json(EventTypeView::from(&event_type)))
}

/// Delete an event type.
#[utoipa::path(delete, path = "/v1/event-types/{id}", tag = "event types",
    params(("id" = Uuid, Path, description = "Event type id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_event_type(
    State(state): State<AppState>,
    Caller(org): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_path_id(&id, "event type")?;
    state.store.delete_event_type(org, id, event_type_event).await?.ok_or_else(|| event_type_not_found(id))?;
    Ok(StatusCode::NO_CONTENT)
}
