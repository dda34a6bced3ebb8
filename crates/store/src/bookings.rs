//! Bookings: their rows, the hosts' time they hold, their history, and the commit that keeps
//! two blocking bookings of one host from overlapping.
//!
//! Every booking has one `booking_hosts` row per host carrying its **block** (the meeting plus
//! its event type's buffers) and whether it currently holds that time (`blocking`). On
//! PostgreSQL an exclusion constraint on those rows is the guarantee: whatever the number of
//! slotd processes, two overlapping blocking rows of one host cannot both commit (SQLSTATE
//! 23P01 → [`StoreError::SlotTaken`]). On SQLite the same check runs as a query inside the
//! `BEGIN IMMEDIATE` transaction that then writes, so no other writer can slip in between.
//!
//! Seated slots (several bookings of one event type at one start) share a **seat group**; the
//! constraint lets rows of one group overlap, and capacity is counted while the group's
//! `seat_slots` row is locked.
//!
//! Changes are optimistic: a lifecycle change names the `version` it was decided on, and the
//! update only applies if the row still has it ([`StoreError::Conflict`] otherwise), so two
//! concurrent changes never both apply. Every change writes its event, a history entry and,
//! when the caller sent an `Idempotency-Key`, the stored answer, all in one transaction.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use slotd_core::booking::{BookingAction, BookingStatus};
use slotd_core::interval::Interval;
use slotd_core::slots::{MAX_BUFFER_MINUTES, MAX_DURATION_MINUTES};
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use uuid::Uuid;

use crate::hosts::placeholders;
use crate::{Backend, OrgId, Page, PageRequest, Result, Store, StoreError, from_us, now, parse_id, to_us};

/// The longest block a booking can have: the longest meeting plus the longest buffers on both
/// sides, in microseconds (the migration's CHECK on `booking_hosts` holds rows to it). Bounding
/// block starts by it lets SQLite's overlap queries read an index range instead of every
/// earlier booking of a host.
pub(crate) const MAX_BLOCK_US: i64 = (MAX_DURATION_MINUTES as i64 + 2 * MAX_BUFFER_MINUTES as i64) * 60 * 1_000_000;

/// How long an idempotency key's answer is kept: 24 hours, in microseconds.
const IDEMPOTENCY_TTL_US: i64 = 24 * 3600 * 1_000_000;

/// Crockford's base32 alphabet (no I, L, O, U): human ids survive being read out loud.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// One attendee of a booking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: String,
    /// IANA zone the attendee sees times in.
    pub time_zone: String,
}

/// Who made a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The attendee, through a manage link.
    Attendee,
    /// A host (an API call that overrides the cut-off notice acts for the host).
    Host,
    /// An API caller.
    Api,
}

impl Actor {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Attendee => "attendee",
            Actor::Host => "host",
            Actor::Api => "api",
        }
    }

    fn parse(s: &str) -> Result<Actor> {
        match s {
            "attendee" => Ok(Actor::Attendee),
            "host" => Ok(Actor::Host),
            "api" => Ok(Actor::Api),
            other => Err(StoreError::Corrupt(format!("actor {other:?}"))),
        }
    }
}

/// One entry of a booking's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub action: BookingAction,
    /// Who did it.
    pub by: Actor,
    /// Why, when given.
    pub reason: Option<String>,
    /// The times before a reschedule.
    pub previous: Option<Interval>,
}

/// A booking with its hosts and history.
#[derive(Clone, Debug, PartialEq)]
pub struct Booking {
    /// Its id (UUIDv7).
    pub id: Uuid,
    /// The organization it belongs to.
    pub organization_id: OrgId,
    /// Short reference for people (`BK-7Q4M2X`).
    pub human_id: String,
    /// What was booked.
    pub event_type_id: Uuid,
    /// Where it is in its lifecycle.
    pub status: BookingStatus,
    /// Increases on every change.
    pub version: i64,
    /// The meeting (buffers not included).
    pub interval: Interval,
    /// The hosts, in the event type's order.
    pub host_ids: Vec<Uuid>,
    /// Bookings of one seated slot share it; otherwise the booking's own id.
    pub seat_group: String,
    /// Who attends.
    pub attendees: Vec<Attendee>,
    /// Answers to the event type's questions (a JSON object).
    pub answers: serde_json::Value,
    /// The API caller's free-form object.
    pub metadata: serde_json::Value,
    /// Bumped to invalidate manage links.
    pub token_generation: i64,
    /// Every change after creation, oldest first.
    pub history: Vec<HistoryEntry>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Booking {
    /// The last history entry for `action`, if any.
    pub fn last(&self, action: BookingAction) -> Option<&HistoryEntry> {
        self.history.iter().rev().find(|h| h.action == action)
    }
}

/// Where a booking sits and which hosts' time it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The meeting.
    pub interval: Interval,
    /// The meeting widened by the event type's buffers.
    pub block: Interval,
    /// The hosts it takes.
    pub host_ids: Vec<Uuid>,
    /// Its seat group (`None` for a one-seat event type: the booking's own id is used).
    pub seat_group: Option<String>,
    /// Capacity of the seat group (1 for one-seat event types).
    pub seats: u32,
}

/// What a new booking is made of (validated by the caller).
#[derive(Clone, Debug)]
pub struct NewBooking {
    /// What is booked.
    pub event_type_id: Uuid,
    /// `pending` or `confirmed`.
    pub status: BookingStatus,
    /// Whether it holds its hosts' time from the start.
    pub blocking: bool,
    /// Where it goes.
    pub placement: Placement,
    /// Who attends.
    pub attendees: Vec<Attendee>,
    /// Answers (a JSON object).
    pub answers: serde_json::Value,
    /// Caller metadata (a JSON object).
    pub metadata: serde_json::Value,
}

/// A lifecycle change decided by the caller on the booking at `expected_version`.
#[derive(Clone, Debug)]
pub struct BookingChange {
    /// The version the decision was made on.
    pub expected_version: i64,
    /// What is done.
    pub action: BookingAction,
    /// The status afterwards.
    pub status: BookingStatus,
    /// Whether it holds its hosts' time afterwards.
    pub blocking: bool,
    /// The new place of a reschedule.
    pub placement: Option<Placement>,
    /// The event type's seats per slot (capacity re-checked when a seat starts blocking).
    pub seats: u32,
    /// Who does it.
    pub by: Actor,
    /// Why.
    pub reason: Option<String>,
}

/// An `Idempotency-Key` request whose answer is stored with the change.
#[derive(Clone, Debug)]
pub struct IdempotentRequest {
    /// The client's key.
    pub key: String,
    /// Hash of the route and the request body.
    pub request_hash: String,
    /// The HTTP status the answer will have.
    pub status_code: u16,
}

/// A stored answer to an `Idempotency-Key` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAnswer {
    /// Hash of the first request's route and body.
    pub request_hash: String,
    /// Its HTTP status.
    pub status_code: u16,
    /// Its JSON body.
    pub body: String,
}

/// What a committed change produces: its event and (for idempotent requests) its answer.
pub struct ChangeOutputs {
    /// Event type, e.g. `booking.confirmed`.
    pub event_type: &'static str,
    /// Event payload.
    pub event_data: serde_json::Value,
    /// The answer to store with the idempotency key (ignored without one).
    pub answer: serde_json::Value,
}

/// Filters of the booking list.
#[derive(Clone, Debug, Default)]
pub struct BookingFilter {
    /// Only this status.
    pub status: Option<BookingStatus>,
    /// Only bookings of this host.
    pub host_id: Option<Uuid>,
    /// Starts at or after.
    pub from: Option<Timestamp>,
    /// Starts before.
    pub to: Option<Timestamp>,
}

/// A blocking booking's block on one host, as the slot engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldBlock {
    /// The host.
    pub host_id: Uuid,
    /// The booking.
    pub booking_id: Uuid,
    /// The booking's event type.
    pub event_type_id: Uuid,
    /// The booking's start.
    pub start: Timestamp,
    /// Its block.
    pub block: Interval,
}

/// How busy a round-robin host is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostLoad {
    /// The host.
    pub host_id: Uuid,
    /// Blocking bookings starting at or after now.
    pub upcoming: i64,
    /// When the host was last given a booking.
    pub last_booked: Option<Timestamp>,
}

const BOOKING_COLUMNS: &str = "id, organization_id, human_id, event_type_id, status, version, start_us, end_us, \
     seat_group, attendees, answers, metadata, token_generation, created_us, updated_us";

/// `BK-` and six base32 characters from the random tail of the booking id.
fn human_id_for(id: Uuid) -> String {
    let bits = id.as_u128();
    let mut out = String::from("BK-");
    for i in (0..6).rev() {
        out.push(CROCKFORD[((bits >> (i * 5)) & 0x1f) as usize] as char);
    }
    out
}

fn json_column(row: &AnyRow, name: &str) -> Result<serde_json::Value> {
    let text: String = row.try_get(name)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}

fn booking_from_row(row: &AnyRow) -> Result<Booking> {
    let status: String = row.try_get("status")?;
    let interval = Interval::new(from_us(row.try_get("start_us")?)?, from_us(row.try_get("end_us")?)?)
        .ok_or_else(|| StoreError::Corrupt("booking with start >= end".into()))?;
    Ok(Booking {
        id: parse_id(row.try_get("id")?)?,
        organization_id: OrgId(parse_id(row.try_get("organization_id")?)?),
        human_id: row.try_get("human_id")?,
        event_type_id: parse_id(row.try_get("event_type_id")?)?,
        status: BookingStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?,
        version: row.try_get("version")?,
        interval,
        host_ids: Vec::new(),
        seat_group: row.try_get("seat_group")?,
        attendees: serde_json::from_value(json_column(row, "attendees")?)
            .map_err(|e| StoreError::Corrupt(format!("attendees: {e}")))?,
        answers: json_column(row, "answers")?,
        metadata: json_column(row, "metadata")?,
        token_generation: row.try_get("token_generation")?,
        history: Vec::new(),
        created_at: from_us(row.try_get("created_us")?)?,
        updated_at: from_us(row.try_get("updated_us")?)?,
    })
}

fn action_parse(s: &str) -> Result<BookingAction> {
    Ok(match s {
        "confirmed" => BookingAction::Confirm,
        "rejected" => BookingAction::Reject,
        "cancelled" => BookingAction::Cancel,
        "rescheduled" => BookingAction::Reschedule,
        other => return Err(StoreError::Corrupt(format!("history action {other:?}"))),
    })
}

/// Whether a database error is the no-overlap exclusion constraint refusing a row.
fn is_exclusion_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23P01"))
}

fn map_slot_taken(e: sqlx::Error) -> StoreError {
    if is_exclusion_violation(&e) { StoreError::SlotTaken } else { e.into() }
}

/// How many times a booking write is made when PostgreSQL keeps breaking deadlocks by aborting it.
/// With many writers racing for one slot, a writer can be the one aborted several rounds in a
/// row (ten at once were seen losing three rounds, which answered 500); each round leaves fewer
/// racers, so a few more tries end the race.
const DEADLOCK_TRIES: u32 = 8;

/// Runs `write` (which opens its own transaction) again when PostgreSQL aborted it to break a
/// deadlock. Two transactions that each insert a host row overlapping the other's each wait, in
/// the exclusion constraint's check, for the other to commit; the database aborts one of them.
/// Nothing of that try was written; made again, it waits for the survivor and then succeeds or
/// finds the slot taken, as if it had come second.
async fn retry_deadlocks<T, F, Fut>(mut write: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match write().await {
            Err(e) if e.is_deadlock() && tries < DEADLOCK_TRIES => tries += 1,
            done => return done,
        }
    }
}

/// Writes the booking's host rows. A blocking row is only written if no manual busy block of
/// its host overlaps the block (checked in the same statement); otherwise the slot is taken.
async fn insert_host_rows(
    tx: &mut Transaction<'static, Any>,
    org: OrgId,
    booking_id: Uuid,
    event_type_id: Uuid,
    seat_group: &str,
    placement: &Placement,
    blocking: bool,
) -> Result<()> {
    let guard = if blocking {
        " WHERE NOT EXISTS (SELECT 1 FROM busy_blocks WHERE organization_id = $2 AND host_id = $3 \
         AND start_us < $8 AND end_us > $7)"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO booking_hosts (booking_id, organization_id, host_id, event_type_id, seat_group, start_us, \
         block_start_us, block_end_us, blocking) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9{guard}"
    );
    for host_id in &placement.host_ids {
        let done = sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(booking_id.to_string())
            .bind(org.0.to_string())
            .bind(host_id.to_string())
            .bind(event_type_id.to_string())
            .bind(seat_group)
            .bind(to_us(placement.interval.start))
            .bind(to_us(placement.block.start))
            .bind(to_us(placement.block.end))
            .bind(blocking)
            .execute(&mut **tx)
            .await
            .map_err(map_slot_taken)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::SlotTaken);
        }
    }
    Ok(())
}

/// Refuses a placement whose block overlaps a manual busy block of one of its hosts.
async fn check_busy_blocks(tx: &mut Transaction<'static, Any>, org: OrgId, placement: &Placement) -> Result<()> {
    let hosts = &placement.host_ids;
    let sql = format!(
        "SELECT 1 FROM busy_blocks WHERE organization_id = $1 AND start_us < $2 AND end_us > $3 \
         AND host_id IN ({}) LIMIT 1",
        placeholders(4, hosts.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql))
        .bind(org.0.to_string())
        .bind(to_us(placement.block.end))
        .bind(to_us(placement.block.start));
    for host in hosts {
        query = query.bind(host.to_string());
    }
    if query.fetch_optional(&mut **tx).await?.is_some() {
        return Err(StoreError::SlotTaken);
    }
    Ok(())
}

impl Store {
    /// Checks, inside the writing transaction, what the database must re-validate before a
    /// booking takes `placement`: no manual busy block overlaps the block; the seat group has
    /// room; and on SQLite no other blocking booking overlaps (PostgreSQL's constraint does
    /// that one at insert time).
    async fn check_placement(
        &self,
        tx: &mut Transaction<'static, Any>,
        org: OrgId,
        booking_id: Uuid,
        seat_group: &str,
        placement: &Placement,
        check_busy: bool,
    ) -> Result<()> {
        let hosts = &placement.host_ids;
        if check_busy {
            check_busy_blocks(tx, org, placement).await?;
        }
        if self.backend == Backend::Sqlite {
            let sql = format!(
                "SELECT 1 FROM booking_hosts WHERE blocking AND organization_id = $1 AND block_start_us < $2 \
                 AND block_end_us > $3 AND block_start_us > $3 - {MAX_BLOCK_US} AND seat_group <> $4 \
                 AND booking_id <> $5 AND host_id IN ({}) LIMIT 1",
                placeholders(6, hosts.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql))
                .bind(org.0.to_string())
                .bind(to_us(placement.block.end))
                .bind(to_us(placement.block.start))
                .bind(seat_group)
                .bind(booking_id.to_string());
            for host in hosts {
                query = query.bind(host.to_string());
            }
            if query.fetch_optional(&mut **tx).await?.is_some() {
                return Err(StoreError::SlotTaken);
            }
        }
        if placement.seat_group.is_some() {
            // The upsert takes the group row's lock (PostgreSQL) until commit: seat counts of one
            // slot are made one transaction at a time.
            sqlx::query(
                "INSERT INTO seat_slots (seat_group) VALUES ($1) \
                 ON CONFLICT (seat_group) DO UPDATE SET seat_group = excluded.seat_group",
            )
            .bind(seat_group)
            .execute(&mut **tx)
            .await?;
            let taken: i64 = sqlx::query_scalar(
                "SELECT COUNT(DISTINCT booking_id) FROM booking_hosts \
                 WHERE seat_group = $1 AND blocking AND booking_id <> $2",
            )
            .bind(seat_group)
            .bind(booking_id.to_string())
            .fetch_one(&mut **tx)
            .await?;
            if taken >= i64::from(placement.seats) {
                return Err(StoreError::SlotTaken);
            }
        }
        Ok(())
    }

    /// Stores the answer of an idempotent request; a key already taken (also by a concurrent
    /// request that committed first) is [`StoreError::IdempotencyKeyTaken`].
    async fn insert_answer(
        tx: &mut Transaction<'static, Any>,
        org: OrgId,
        request: &IdempotentRequest,
        answer: &serde_json::Value,
    ) -> Result<()> {
        // A key older than 24 hours is forgotten (lookups no longer see it); its row may still
        // wait for the hourly clean-up, so it is replaced here rather than refused.
        sqlx::query("DELETE FROM idempotency_keys WHERE organization_id = $1 AND key = $2 AND created_us < $3")
            .bind(org.0.to_string())
            .bind(&request.key)
            .bind(to_us(now()) - IDEMPOTENCY_TTL_US)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO idempotency_keys (organization_id, key, request_hash, status_code, response, created_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(org.0.to_string())
        .bind(&request.key)
        .bind(&request.request_hash)
        .bind(i64::from(request.status_code))
        .bind(answer.to_string())
        .bind(to_us(now()))
        .execute(&mut **tx)
        .await
        .map_err(|e| if StoreError::is_unique_violation(&e) { StoreError::IdempotencyKeyTaken } else { e.into() })?;
        Ok(())
    }

    /// The stored answer for an idempotency key used within the last 24 hours.
    pub async fn stored_answer(&self, org: OrgId, key: &str) -> Result<Option<StoredAnswer>> {
        let since = to_us(now()) - IDEMPOTENCY_TTL_US;
        let row = sqlx::query(
            "SELECT request_hash, status_code, response FROM idempotency_keys \
             WHERE organization_id = $1 AND key = $2 AND created_us >= $3",
        )
        .bind(org.0.to_string())
        .bind(key)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let status: i64 = row.try_get("status_code")?;
            Ok(StoredAnswer {
                request_hash: row.try_get("request_hash")?,
                status_code: u16::try_from(status).map_err(|_| StoreError::Corrupt(format!("status {status}")))?,
                body: row.try_get("response")?,
            })
        })
        .transpose()
    }

    /// Forgets idempotency keys older than 24 hours; answers how many.
    pub async fn expire_idempotency_keys(&self) -> Result<u64> {
        let before = to_us(now()) - IDEMPOTENCY_TTL_US;
        let done =
            sqlx::query("DELETE FROM idempotency_keys WHERE created_us < $1").bind(before).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// Creates a booking if its place is still free, with its event (and stored answer).
    pub async fn create_booking(
        &self,
        org: OrgId,
        new: NewBooking,
        idempotency: Option<&IdempotentRequest>,
        outputs: impl FnOnce(&Booking) -> ChangeOutputs + Send,
    ) -> Result<Booking> {
        let (tx, booking) = retry_deadlocks(|| self.write_booking(org, &new)).await?;
        self.commit_booking_write(tx, org, &booking, &[], idempotency, outputs).await?;
        Ok(booking)
    }

    /// Ends a booking write: its stored answer (for an idempotent request), its event, the
    /// write-back to its hosts' calendars (and to `previous_hosts`', which a reschedule may have
    /// left), then the commit.
    async fn commit_booking_write(
        &self,
        mut tx: Transaction<'static, Any>,
        org: OrgId,
        booking: &Booking,
        previous_hosts: &[Uuid],
        idempotency: Option<&IdempotentRequest>,
        outputs: impl FnOnce(&Booking) -> ChangeOutputs + Send,
    ) -> Result<()> {
        let out = outputs(booking);
        if let Some(request) = idempotency {
            Self::insert_answer(&mut tx, org, request, &out.answer).await?;
        }
        let (event_id, mut queued) = self.insert_event(&mut tx, org, out.event_type, out.event_data).await?;
        let mut hosts = booking.host_ids.clone();
        hosts.extend(previous_hosts.iter().filter(|h| !booking.host_ids.contains(h)));
        queued |= Self::queue_calendar_writes(&mut tx, org, &event_id, &hosts).await?;
        tx.commit().await.map_err(map_slot_taken)?;
        if queued {
            self.wake_delivery_workers();
        }
        Ok(())
    }

    /// Opens a new booking's transaction and writes its row and its host rows: the part where
    /// concurrent bookings of one host meet.
    async fn write_booking(&self, org: OrgId, new: &NewBooking) -> Result<(Transaction<'static, Any>, Booking)> {
        let at = now();
        let mut tx = self.begin_write().await?;
        // The human id comes from the booking id's random tail; a collision within the
        // organization is rare (30 bits) and simply draws another id.
        let mut booking = Booking {
            id: Uuid::nil(),
            organization_id: org,
            human_id: String::new(),
            event_type_id: new.event_type_id,
            status: new.status,
            version: 1,
            interval: new.placement.interval,
            host_ids: new.placement.host_ids.clone(),
            seat_group: String::new(),
            attendees: new.attendees.clone(),
            answers: new.answers.clone(),
            metadata: new.metadata.clone(),
            token_generation: 0,
            history: Vec::new(),
            created_at: at,
            updated_at: at,
        };
        let mut inserted = false;
        for _ in 0..5 {
            booking.id = Uuid::now_v7();
            booking.human_id = human_id_for(booking.id);
            booking.seat_group = new.placement.seat_group.clone().unwrap_or_else(|| booking.id.to_string());
            let done = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO bookings ({BOOKING_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                 $13, $14, $14) ON CONFLICT (organization_id, human_id) DO NOTHING"
            )))
            .bind(booking.id.to_string())
            .bind(org.0.to_string())
            .bind(&booking.human_id)
            .bind(booking.event_type_id.to_string())
            .bind(booking.status.as_str())
            .bind(booking.version)
            .bind(to_us(booking.interval.start))
            .bind(to_us(booking.interval.end))
            .bind(&booking.seat_group)
            .bind(serde_json::to_string(&booking.attendees).expect("attendees serialise"))
            .bind(booking.answers.to_string())
            .bind(booking.metadata.to_string())
            .bind(booking.token_generation)
            .bind(to_us(at))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                inserted = true;
                break;
            }
        }
        if !inserted {
            return Err(StoreError::Conflict("could not draw a free human id; try again".into()));
        }
        if new.blocking {
            self.check_placement(&mut tx, org, booking.id, &booking.seat_group, &new.placement, false).await?;
        }
        insert_host_rows(
            &mut tx,
            org,
            booking.id,
            booking.event_type_id,
            &booking.seat_group,
            &new.placement,
            new.blocking,
        )
        .await?;
        Ok((tx, booking))
    }

    /// Applies a lifecycle change if the booking is still at `change.expected_version`.
    /// `None` when there is no such booking; [`StoreError::Conflict`] when it changed meanwhile;
    /// [`StoreError::SlotTaken`] when a reschedule or confirm meets another booking.
    pub async fn change_booking(
        &self,
        org: OrgId,
        id: Uuid,
        change: BookingChange,
        idempotency: Option<&IdempotentRequest>,
        outputs: impl FnOnce(&Booking) -> ChangeOutputs + Send,
    ) -> Result<Option<Booking>> {
        let Some((tx, booking, previous_hosts)) = retry_deadlocks(|| self.write_change(org, id, &change)).await? else {
            return Ok(None);
        };
        self.commit_booking_write(tx, org, &booking, &previous_hosts, idempotency, outputs).await?;
        Ok(Some(booking))
    }

    /// Opens a lifecycle change's transaction and writes the booking, its host rows and its
    /// history entry (`None`: no such booking); also answers the hosts it had before.
    async fn write_change(
        &self,
        org: OrgId,
        id: Uuid,
        change: &BookingChange,
    ) -> Result<Option<(Transaction<'static, Any>, Booking, Vec<Uuid>)>> {
        let Some(mut booking) = self.booking(org, id).await? else { return Ok(None) };
        if booking.version != change.expected_version {
            return Err(StoreError::Conflict("the booking was changed by another request; read it again".into()));
        }
        let at = now();
        let mut tx = self.begin_write().await?;
        let previous = booking.interval;
        let previous_hosts = booking.host_ids.clone();
        if let Some(placement) = &change.placement {
            booking.seat_group = placement.seat_group.clone().unwrap_or_else(|| id.to_string());
            booking.interval = placement.interval;
            booking.host_ids = placement.host_ids.clone();
        }
        let done = sqlx::query(
            "UPDATE bookings SET status = $3, version = version + 1, start_us = $4, end_us = $5, seat_group = $6, \
             updated_us = $7 WHERE organization_id = $1 AND id = $2 AND version = $8",
        )
        .bind(org.0.to_string())
        .bind(id.to_string())
        .bind(change.status.as_str())
        .bind(to_us(booking.interval.start))
        .bind(to_us(booking.interval.end))
        .bind(&booking.seat_group)
        .bind(to_us(at))
        .bind(change.expected_version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict("the booking was changed by another request; read it again".into()));
        }
        match &change.placement {
            Some(placement) => {
                sqlx::query("DELETE FROM booking_hosts WHERE booking_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                if change.blocking {
                    self.check_placement(&mut tx, org, id, &booking.seat_group, placement, false).await?;
                }
                insert_host_rows(
                    &mut tx,
                    org,
                    id,
                    booking.event_type_id,
                    &booking.seat_group,
                    placement,
                    change.blocking,
                )
                .await?;
            }
            None => {
                if change.blocking {
                    // Becoming blocking (a confirm when pending does not block) re-checks the place.
                    let current = self.placement_of(&mut tx, &booking, change.seats).await?;
                    self.check_placement(&mut tx, org, id, &booking.seat_group, &current, true).await?;
                }
                sqlx::query("UPDATE booking_hosts SET blocking = $2 WHERE booking_id = $1")
                    .bind(id.to_string())
                    .bind(change.blocking)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_slot_taken)?;
            }
        }
        let entry = HistoryEntry {
            at,
            action: change.action,
            by: change.by,
            reason: change.reason.clone(),
            previous: change.placement.as_ref().map(|_| previous),
        };
        sqlx::query(
            "INSERT INTO booking_history (id, booking_id, at_us, action, actor, reason, previous_start_us, \
             previous_end_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(id.to_string())
        .bind(to_us(at))
        .bind(entry.action.past_tense())
        .bind(entry.by.as_str())
        .bind(entry.reason.clone())
        .bind(entry.previous.map(|p| to_us(p.start)))
        .bind(entry.previous.map(|p| to_us(p.end)))
        .execute(&mut *tx)
        .await?;
        booking.status = change.status;
        booking.version += 1;
        booking.updated_at = at;
        booking.history.push(entry);
        Ok(Some((tx, booking, previous_hosts)))
    }

    /// The block a booking's host rows hold now.
    async fn placement_of(
        &self,
        tx: &mut Transaction<'static, Any>,
        booking: &Booking,
        seats: u32,
    ) -> Result<Placement> {
        let row = sqlx::query("SELECT block_start_us, block_end_us FROM booking_hosts WHERE booking_id = $1 LIMIT 1")
            .bind(booking.id.to_string())
            .fetch_one(&mut **tx)
            .await?;
        let block = Interval::new(from_us(row.try_get("block_start_us")?)?, from_us(row.try_get("block_end_us")?)?)
            .ok_or_else(|| StoreError::Corrupt("block with start >= end".into()))?;
        let seated = booking.seat_group != booking.id.to_string();
        Ok(Placement {
            interval: booking.interval,
            block,
            host_ids: booking.host_ids.clone(),
            seat_group: seated.then(|| booking.seat_group.clone()),
            seats: seats.max(1),
        })
    }

    /// Bumps the booking's token generation, killing its manage links. `None` if no such booking.
    pub async fn rotate_manage_token(&self, org: OrgId, id: Uuid) -> Result<Option<Booking>> {
        let done = sqlx::query(
            "UPDATE bookings SET token_generation = token_generation + 1 WHERE organization_id = $1 AND id = $2",
        )
        .bind(org.0.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        self.booking(org, id).await
    }

    /// One booking of the organization with its hosts and history.
    pub async fn booking(&self, org: OrgId, id: Uuid) -> Result<Option<Booking>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {BOOKING_COLUMNS} FROM bookings WHERE organization_id = $1 AND id = $2"
        )))
        .bind(org.0.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        self.complete_one(row).await
    }

    /// One booking of the organization by its human id (`BK-…`, case-insensitive).
    pub async fn booking_by_human_id(&self, org: OrgId, human_id: &str) -> Result<Option<Booking>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {BOOKING_COLUMNS} FROM bookings WHERE organization_id = $1 AND human_id = $2"
        )))
        .bind(org.0.to_string())
        .bind(human_id.to_ascii_uppercase())
        .fetch_optional(&self.pool)
        .await?;
        self.complete_one(row).await
    }

    /// A booking found by id alone, for manage links: the link's MAC is the credential, and
    /// the booking's own organization scopes everything done with it afterwards.
    pub async fn booking_for_manage_link(&self, id: Uuid) -> Result<Option<Booking>> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        self.complete_one(row).await
    }

    async fn complete_one(&self, row: Option<AnyRow>) -> Result<Option<Booking>> {
        let Some(row) = row else { return Ok(None) };
        let mut bookings = vec![booking_from_row(&row)?];
        self.attach_booking_details(&mut bookings).await?;
        Ok(bookings.pop())
    }

    /// Lists bookings, oldest first, with filters.
    pub async fn list_bookings(&self, org: OrgId, filter: &BookingFilter, page: &PageRequest) -> Result<Page<Booking>> {
        let columns = BOOKING_COLUMNS.split(", ").map(|c| format!("b.{c}")).collect::<Vec<_>>().join(", ");
        let host_clause = if filter.host_id.is_some() {
            " AND EXISTS (SELECT 1 FROM booking_hosts bh WHERE bh.booking_id = b.id AND bh.host_id = $7)"
        } else {
            " AND $7 = ''"
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {columns} FROM bookings b WHERE b.organization_id = $1 AND b.id > $2 \
             AND ($3 = '' OR b.status = $3) AND b.start_us >= $4 AND b.start_us < $5{host_clause} \
             ORDER BY b.id LIMIT $6"
        )))
        .bind(org.0.to_string())
        .bind(page.after_bound())
        .bind(filter.status.map_or("", |s| s.as_str()))
        .bind(filter.from.map_or(i64::MIN, to_us))
        .bind(filter.to.map_or(i64::MAX, to_us))
        .bind(page.fetch_limit())
        .bind(filter.host_id.map(|h| h.to_string()).unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        let mut bookings = rows.iter().map(booking_from_row).collect::<Result<Vec<_>>>()?;
        self.attach_booking_details(&mut bookings).await?;
        Ok(page.finish(bookings, |b| b.id.to_string()))
    }

    /// Fills in hosts and history with one query each.
    async fn attach_booking_details(&self, bookings: &mut [Booking]) -> Result<()> {
        if bookings.is_empty() {
            return Ok(());
        }
        let ids = placeholders(1, bookings.len());
        let mut hosts_query = sqlx::query(AssertSqlSafe(format!(
            "SELECT bh.booking_id, bh.host_id FROM booking_hosts bh \
             JOIN bookings b ON b.id = bh.booking_id \
             LEFT JOIN event_type_hosts eh ON eh.event_type_id = b.event_type_id AND eh.host_id = bh.host_id \
             WHERE bh.booking_id IN ({ids}) ORDER BY bh.booking_id, eh.position, bh.host_id"
        )));
        let mut history_query = sqlx::query(AssertSqlSafe(format!(
            "SELECT booking_id, at_us, action, actor, reason, previous_start_us, previous_end_us \
             FROM booking_history WHERE booking_id IN ({ids}) ORDER BY booking_id, id"
        )));
        for booking in bookings.iter() {
            hosts_query = hosts_query.bind(booking.id.to_string());
            history_query = history_query.bind(booking.id.to_string());
        }
        let mut hosts_of: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for row in hosts_query.fetch_all(&self.pool).await? {
            hosts_of.entry(parse_id(row.try_get("booking_id")?)?).or_default().push(parse_id(row.try_get("host_id")?)?);
        }
        let mut history_of: HashMap<Uuid, Vec<HistoryEntry>> = HashMap::new();
        for row in history_query.fetch_all(&self.pool).await? {
            let previous = match (
                row.try_get::<Option<i64>, _>("previous_start_us")?,
                row.try_get::<Option<i64>, _>("previous_end_us")?,
            ) {
                (Some(s), Some(e)) => Interval::new(from_us(s)?, from_us(e)?),
                _ => None,
            };
            let action: String = row.try_get("action")?;
            let actor: String = row.try_get("actor")?;
            history_of.entry(parse_id(row.try_get("booking_id")?)?).or_default().push(HistoryEntry {
                at: from_us(row.try_get("at_us")?)?,
                action: action_parse(&action)?,
                by: Actor::parse(&actor)?,
                reason: row.try_get("reason")?,
                previous,
            });
        }
        for booking in bookings {
            booking.host_ids = hosts_of.remove(&booking.id).unwrap_or_default();
            booking.history = history_of.remove(&booking.id).unwrap_or_default();
        }
        Ok(())
    }

    /// The hosts of a seat group's blocking bookings (a new seat joins them).
    pub async fn seat_group_hosts(&self, org: OrgId, seat_group: &str) -> Result<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT DISTINCT host_id FROM booking_hosts WHERE organization_id = $1 AND seat_group = $2 AND blocking \
             ORDER BY host_id",
        )
        .bind(org.0.to_string())
        .bind(seat_group)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| parse_id(row.try_get("host_id")?)).collect()
    }

    /// The hosts holding blocking bookings of this event type that start exactly at `start`
    /// (round-robin group sessions already under way).
    pub async fn seated_hosts_at(&self, org: OrgId, event_type_id: Uuid, start: Timestamp) -> Result<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT DISTINCT host_id FROM booking_hosts WHERE organization_id = $1 AND event_type_id = $2 \
             AND start_us = $3 AND blocking ORDER BY host_id",
        )
        .bind(org.0.to_string())
        .bind(event_type_id.to_string())
        .bind(to_us(start))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| parse_id(row.try_get("host_id")?)).collect()
    }

    /// How loaded each host is, for round-robin assignment.
    pub async fn host_loads(&self, org: OrgId, host_ids: &[Uuid], at: Timestamp) -> Result<Vec<HostLoad>> {
        if host_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT bh.host_id, SUM(CASE WHEN bh.start_us >= $2 THEN 1 ELSE 0 END) AS upcoming, \
             MAX(b.created_us) AS last_booked FROM booking_hosts bh JOIN bookings b ON b.id = bh.booking_id \
             WHERE bh.blocking AND bh.organization_id = $1 AND bh.host_id IN ({}) GROUP BY bh.host_id",
            placeholders(3, host_ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(org.0.to_string()).bind(to_us(at));
        for id in host_ids {
            query = query.bind(id.to_string());
        }
        let mut loads: HashMap<Uuid, HostLoad> = HashMap::new();
        for row in query.fetch_all(&self.pool).await? {
            let host_id = parse_id(row.try_get("host_id")?)?;
            let last: Option<i64> = row.try_get("last_booked")?;
            loads.insert(
                host_id,
                HostLoad { host_id, upcoming: row.try_get("upcoming")?, last_booked: last.map(from_us).transpose()? },
            );
        }
        Ok(host_ids
            .iter()
            .map(|&host_id| loads.remove(&host_id).unwrap_or(HostLoad { host_id, upcoming: 0, last_booked: None }))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_block_matches_the_migrations_check() {
        assert_eq!(MAX_BLOCK_US, 5_270_400_000_000);
    }

    #[test]
    fn human_ids_are_bk_and_six_crockford_characters() {
        let id = human_id_for(Uuid::now_v7());
        assert_eq!(id.len(), 9);
        assert!(id.starts_with("BK-"));
        assert!(id[3..].bytes().all(|c| CROCKFORD.contains(&c)));
    }
}
