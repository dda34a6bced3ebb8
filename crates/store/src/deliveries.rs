//! Webhook deliveries: the queue the delivery workers claim from and the attempt log the API
//! shows, both in `webhook_attempts` (one row per HTTP attempt of one event to one endpoint).
//!
//! A worker *claims* due rows by setting their `lease_until_us` and bumping `claims`
//! (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so any number of workers share the queue without
//! waiting on each other; SQLite: the single writer does the same). If the worker dies, the rows
//! are claimable again when the lease runs out and another worker delivers them: at least once,
//! with the same `webhook-id`. The outcome is written only if the row is still at the claim the
//! worker made, so a worker that lost its lease cannot overwrite a newer attempt.
//!
//! Cost per delivery on PostgreSQL: the claim is a heap-only update (neither the lease nor the
//! claim count is indexed), the outcome one update by primary key; both statements keep one text
//! whatever the batch (lists travel as one JSON parameter), so each is planned once per
//! connection.

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use uuid::Uuid;

use crate::{Backend, OrgId, Result, SinkKind, Store, StoreError, from_us, now, parse_id, to_us};

/// Where an attempt stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptStatus {
    /// Waiting for its turn or being made right now.
    Pending,
    /// The receiver answered 2xx.
    Succeeded,
    /// It did not; see the error.
    Failed,
}

impl AttemptStatus {
    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Pending => "pending",
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<AttemptStatus> {
        match s {
            "pending" => Ok(AttemptStatus::Pending),
            "succeeded" => Ok(AttemptStatus::Succeeded),
            "failed" => Ok(AttemptStatus::Failed),
            other => Err(StoreError::Corrupt(format!("attempt status {other:?}"))),
        }
    }
}

/// One attempt as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryAttempt {
    /// Its id.
    pub id: i64,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The event (also the `webhook-id` header).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// 1, 2, 3, … over every attempt of this event to this endpoint.
    pub attempt: i64,
    /// Why it exists: `event`, `retry`, `manual`, `replay` or `test`.
    pub origin: String,
    /// Where it stands.
    pub status: AttemptStatus,
    /// For a pending attempt: when it is due (or its lease ends, while it is being made).
    pub due_at: Timestamp,
    /// The receiver's HTTP status, when it answered.
    pub response_status: Option<u16>,
    /// The first 4 KB of the receiver's answer.
    pub response_body: Option<String>,
    /// How long the attempt took.
    pub duration_ms: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
}

/// A claimed attempt with everything the worker needs to make it.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    /// The attempt's id.
    pub id: i64,
    /// The claim it was taken at (fencing token for the outcome).
    pub claims: i64,
    /// The organization.
    pub org: OrgId,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Attempt number over this event and endpoint.
    pub attempt: i64,
    /// Position in its retry run.
    pub run_attempt: i64,
    /// Why it exists.
    pub origin: String,
    /// The event id.
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// The event payload as stored (JSON text, sent as is).
    pub event_data: String,
    /// When the event happened.
    pub event_created_at: Timestamp,
    /// Webhook endpoint or Slack channel.
    pub kind: SinkKind,
    /// A Slack channel's time zone (`None`: the booking's first host's).
    pub time_zone: Option<String>,
    /// The endpoint's URL now (for a Slack channel: only a digest; the URL is the sealed secret).
    pub url: String,
    /// Whether the endpoint is enabled and not deleted.
    pub endpoint_live: bool,
    /// The signing secret (a Slack channel's URL), sealed.
    pub secret_sealed: String,
    /// The rotated-out secret that still signs, sealed.
    pub previous_secret_sealed: Option<String>,
    /// Until when the previous secret signs.
    pub previous_secret_until: Option<Timestamp>,
}

/// What happened to a claimed attempt.
#[derive(Clone, Debug)]
pub struct AttemptOutcome {
    /// The attempt's id.
    pub id: i64,
    /// The claim it was made under.
    pub claims: i64,
    /// Its organization.
    pub org: OrgId,
    /// Its endpoint.
    pub endpoint_id: Uuid,
    /// Its event.
    pub event_id: String,
    /// Its attempt number.
    pub attempt: i64,
    /// Its position in the retry run.
    pub run_attempt: i64,
    /// Whether the receiver took it.
    pub succeeded: bool,
    /// The receiver's status, if it answered.
    pub response_status: Option<u16>,
    /// The first 4 KB of the answer.
    pub response_body: Option<String>,
    /// How long it took.
    pub duration_ms: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// When the next attempt is due (a failure with retries left).
    pub retry_at: Option<Timestamp>,
    /// The receiver said 410 Gone (or, for a Slack channel, that it is gone for good): disable
    /// the endpoint.
    pub gone: bool,
    /// The reason a gone endpoint is disabled with (`None`: `gone`).
    pub disable_reason: Option<String>,
    /// Whether this attempt counts toward the endpoint's health (not for attempts that were never
    /// made because the endpoint is disabled, nor for test pings).
    pub counts_for_health: bool,
}

impl AttemptOutcome {
    /// Recording it touches nothing but the attempt and, when delivered, its endpoint's failure
    /// streak: no retry to queue, no streak to start, no endpoint to disable.
    fn settles_alone(&self) -> bool {
        self.retry_at.is_none() && !self.gone && (self.succeeded || !self.counts_for_health)
    }
}

/// What recording a batch of outcomes changed beyond the attempts themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutcomeEffects {
    /// Outcomes that were written.
    pub recorded: usize,
    /// Outcomes dropped because their claim had been superseded (a lost lease).
    pub stale: usize,
    /// Endpoints disabled by this batch (410 or sustained failure).
    pub disabled: Vec<Uuid>,
}

/// What a claim took.
#[derive(Clone, Debug, Default)]
pub struct Claim {
    /// The attempts now held, oldest due first.
    pub deliveries: Vec<ClaimedDelivery>,
    /// Attempts the claim chose but another worker claimed in the same instant: worth claiming
    /// again at once, as more may be waiting behind them.
    pub contended: usize,
}

/// `GET /v1/webhooks/{id}/deliveries` filters.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    /// Only attempts in this state.
    pub status: Option<AttemptStatus>,
    /// Only attempts of this event.
    pub event_id: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Continue below this attempt id (newest first).
    pub before: Option<i64>,
}

const CLAIMED_COLUMNS: &str = "a.id, a.claims, a.organization_id, a.endpoint_id, a.attempt, a.run_attempt, a.origin, \
     a.event_id, ev.type AS event_type, ev.data AS event_data, ev.created_us AS event_created_us, w.kind, w.time_zone, w.url, \
     CAST(CASE WHEN w.enabled AND w.deleted_us IS NULL THEN 1 ELSE 0 END AS BIGINT) AS live, w.secret_sealed, \
     w.previous_secret_sealed, w.previous_secret_until_us";

const ATTEMPT_COLUMNS: &str = "a.id, a.endpoint_id, a.event_id, ev.type AS event_type, a.attempt, a.origin, a.status, \
     CASE WHEN a.lease_until_us > a.due_us THEN a.lease_until_us ELSE a.due_us END AS due_us, a.response_status, a.response_body, a.duration_ms, a.error, a.created_us, a.finished_us";

fn claimed_from_row(row: &AnyRow) -> Result<ClaimedDelivery> {
    let live: i64 = row.try_get("live")?;
    let until: Option<i64> = row.try_get("previous_secret_until_us")?;
    Ok(ClaimedDelivery {
        id: row.try_get("id")?,
        claims: row.try_get("claims")?,
        org: OrgId(parse_id(row.try_get("organization_id")?)?),
        endpoint_id: parse_id(row.try_get("endpoint_id")?)?,
        attempt: row.try_get("attempt")?,
        run_attempt: row.try_get("run_attempt")?,
        origin: row.try_get("origin")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        event_data: row.try_get("event_data")?,
        event_created_at: from_us(row.try_get("event_created_us")?)?,
        kind: SinkKind::parse(row.try_get("kind")?)?,
        time_zone: row.try_get("time_zone")?,
        url: row.try_get("url")?,
        endpoint_live: live != 0,
        secret_sealed: row.try_get("secret_sealed")?,
        previous_secret_sealed: row.try_get("previous_secret_sealed")?,
        previous_secret_until: until.map(from_us).transpose()?,
    })
}

fn attempt_from_row(row: &AnyRow) -> Result<DeliveryAttempt> {
    let status: String = row.try_get("status")?;
    let response_status: Option<i64> = row.try_get("response_status")?;
    let duration_ms: Option<i64> = row.try_get("duration_ms")?;
    let finished: Option<i64> = row.try_get("finished_us")?;
    Ok(DeliveryAttempt {
        id: row.try_get("id")?,
        endpoint_id: parse_id(row.try_get("endpoint_id")?)?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        attempt: row.try_get("attempt")?,
        origin: row.try_get("origin")?,
        status: AttemptStatus::parse(&status)?,
        due_at: from_us(row.try_get("due_us")?)?,
        response_status: response_status.and_then(|s| u16::try_from(s).ok()),
        response_body: row.try_get("response_body")?,
        duration_ms: duration_ms.and_then(|d| u64::try_from(d).ok()),
        error: row.try_get("error")?,
        created_at: from_us(row.try_get("created_us")?)?,
        finished_at: finished.map(from_us).transpose()?,
    })
}

/// `$first, $first+1, …` for `n` binds.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Most attempts one recording statement carries (keeps every backend's bind limit far away).
const OUTCOME_CHUNK: usize = 500;

// Recording outcomes uses one statement text whatever the batch size (the batch is one JSON
// parameter, see [`outcome_batch`]), so the database plans it once per connection. "Not
// finished yet" is `finished_us IS NULL` rather than `status = 'pending'`, which would let the
// planner read the queue's partial indexes whole instead of looking each attempt up by its id.

/// The outcome batch `$2` as rows `v`, on PostgreSQL.
const POSTGRES_OUTCOMES: &str = "SELECT * FROM json_to_recordset(CAST($2 AS json)) AS r (id BIGINT, claims BIGINT, \
     status TEXT, response_status BIGINT, response_body TEXT, duration_ms BIGINT, error TEXT, heals BOOLEAN)";

/// The outcome batch `$2` as rows `v`, on SQLite.
const SQLITE_OUTCOMES: &str = "SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.claims') AS claims, \
     json_extract(value, '$.status') AS status, json_extract(value, '$.response_status') AS response_status, \
     json_extract(value, '$.response_body') AS response_body, json_extract(value, '$.duration_ms') AS duration_ms, \
     json_extract(value, '$.error') AS error FROM json_each($2)";

/// The outcome batch `$2` as rows (for `WITH v AS (…)`), and an `UPDATE` that finishes (at `$1`)
/// the attempts of rows `v` whose claim still stands, each looked up by its id. On PostgreSQL the
/// ids also reach the primary key as one array: joined to the batch alone, a plan made while the
/// table looked small (a prepared statement keeps its plan) reads the whole table on every batch.
fn finish_attempts_sql(backend: Backend) -> (&'static str, String) {
    let (values, by_id) = match backend {
        Backend::Postgres => (POSTGRES_OUTCOMES, "webhook_attempts.id = ANY (ARRAY(SELECT id FROM v)) AND "),
        Backend::Sqlite => (SQLITE_OUTCOMES, ""),
    };
    let update = format!(
        "UPDATE webhook_attempts SET status = v.status, response_status = v.response_status, \
         response_body = v.response_body, duration_ms = v.duration_ms, error = v.error, finished_us = $1 \
         FROM v WHERE {by_id}webhook_attempts.id = v.id AND webhook_attempts.claims = v.claims \
         AND webhook_attempts.finished_us IS NULL"
    );
    (values, update)
}

/// Finishes the attempts of the outcome batch (`$1`, `$2`) whose claim still stands and answers
/// their ids: the first step of recording a batch in a transaction.
fn finish_sql(backend: Backend) -> String {
    let (values, finish) = finish_attempts_sql(backend);
    format!("WITH v AS ({values}) {finish} RETURNING webhook_attempts.id")
}

/// PostgreSQL, for a batch whose every outcome [settles alone](AttemptOutcome::settles_alone):
/// [`finish_sql`] and the end of the failure streak of each endpoint that took an attempt, in one
/// statement.
fn settle_sql() -> String {
    let (values, finish) = finish_attempts_sql(Backend::Postgres);
    format!(
        "WITH v AS ({values}), done AS ({finish} RETURNING webhook_attempts.id, webhook_attempts.endpoint_id, \
         v.heals), healed AS (UPDATE webhook_endpoints SET failing_since_us = NULL WHERE failing_since_us IS NOT NULL \
         AND id IN (SELECT endpoint_id FROM done WHERE heals)) SELECT id FROM done"
    )
}

/// The statements that record outcomes on PostgreSQL (for tests of their plans).
pub(crate) fn postgres_outcome_statements() -> [String; 2] {
    [settle_sql(), finish_sql(Backend::Postgres)]
}

/// A batch of outcomes as one JSON parameter (`heals`: a delivered attempt that ends its
/// endpoint's failure streak).
fn outcome_batch(outcomes: &[AttemptOutcome]) -> String {
    serde_json::Value::Array(
        outcomes
            .iter()
            .map(|o| {
                let status = if o.succeeded { AttemptStatus::Succeeded } else { AttemptStatus::Failed };
                serde_json::json!({
                    "id": o.id,
                    "claims": o.claims,
                    "status": status.as_str(),
                    "response_status": o.response_status,
                    "response_body": o.response_body,
                    "duration_ms": i64::try_from(o.duration_ms).unwrap_or(i64::MAX),
                    "error": o.error,
                    "heals": o.succeeded && o.counts_for_health,
                })
            })
            .collect(),
    )
    .to_string()
}

impl Store {
    /// Claims up to `limit` due attempts for `lease` (they fall due again after it unless an
    /// outcome is recorded), skipping attempts other workers hold and those of the `skip`
    /// endpoints (ones this worker is already busy with). Oldest due first.
    pub async fn claim_deliveries(
        &self,
        limit: u32,
        lease: std::time::Duration,
        skip: &[Uuid],
    ) -> Result<Vec<ClaimedDelivery>> {
        let room: Vec<(Uuid, u32)> = skip.iter().map(|id| (*id, 0)).collect();
        Ok(self.claim_deliveries_within(limit, lease, limit, limit, &room).await?.deliveries)
    }

    /// Claims like [`Store::claim_deliveries`], taking at most `per_endpoint` attempts of any one
    /// webhook endpoint and `per_slack_channel` of any one Slack channel, or the number given for
    /// it in `room` (0: none). Among the `limit` oldest
    /// claimable attempts only those within their endpoint's room are chosen, so a worker never
    /// takes more of an endpoint than it can start now (and never has to hand attempts back).
    ///
    /// Only the chosen rows are locked (PostgreSQL: `FOR UPDATE SKIP LOCKED`), so a claim costs
    /// one row lock and one heap-only update per attempt it takes. A row another worker is
    /// claiming at the same instant is skipped and counted in [`Claim::contended`].
    pub async fn claim_deliveries_within(
        &self,
        limit: u32,
        lease: std::time::Duration,
        per_endpoint: u32,
        per_slack_channel: u32,
        room: &[(Uuid, u32)],
    ) -> Result<Claim> {
        let at = to_us(now());
        let lease_until = at.saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
        let room_json = serde_json::Value::Array(
            room.iter().map(|(id, n)| serde_json::json!({ "endpoint_id": id.to_string(), "n": n })).collect(),
        )
        .to_string();
        let joins = "JOIN events ev ON ev.id = a.event_id JOIN webhook_endpoints w ON w.id = a.endpoint_id";
        match self.backend {
            Backend::Postgres => {
                // Each endpoint's attempts are a queue of their own (the index on
                // (endpoint_id, due_us) of pending attempts). `queues` walks that index from one
                // endpoint to the next (one index descent per endpoint with pending attempts);
                // each endpoint gives its oldest claimable attempts, up to its room, and of those
                // the oldest `limit` are chosen. An endpoint with no room is not read at all, so
                // a dead endpoint's backlog costs a claim nothing and never stands in line ahead
                // of other endpoints' attempts.
                //
                // The chosen rows are then locked and checked again (a row another worker
                // claimed or is claiming right now is left out; "not finished" is tested as
                // `finished_us IS NULL`, which, unlike `status = 'pending'`, cannot lure the
                // planner into reading a partial index whole) and leased; the lease is not
                // indexed, so the update stays in the row's page (HOT).
                let sql = format!(
                    "WITH RECURSIVE room AS (SELECT endpoint_id, n FROM json_to_recordset(CAST($4 AS json)) \
                     AS r (endpoint_id TEXT, n BIGINT)), \
                     queues AS ((SELECT endpoint_id FROM webhook_attempts WHERE status = 'pending' \
                     ORDER BY endpoint_id LIMIT 1) UNION ALL SELECT (SELECT x.endpoint_id FROM webhook_attempts x \
                     WHERE x.status = 'pending' AND x.endpoint_id > q.endpoint_id ORDER BY x.endpoint_id LIMIT 1) \
                     FROM queues q WHERE q.endpoint_id IS NOT NULL), \
                     picked AS (SELECT p.id FROM queues q LEFT JOIN room ON room.endpoint_id = q.endpoint_id \
                     JOIN webhook_endpoints e ON e.id = q.endpoint_id \
                     CROSS JOIN LATERAL (SELECT a.id, a.due_us FROM webhook_attempts a \
                     WHERE a.endpoint_id = q.endpoint_id AND a.status = 'pending' AND a.due_us <= $2 \
                     AND a.lease_until_us <= $2 ORDER BY a.due_us \
                     LIMIT COALESCE(room.n, CASE WHEN e.kind = 'slack' THEN $6 ELSE $5 END)) p \
                     WHERE q.endpoint_id IS NOT NULL ORDER BY p.due_us LIMIT $3), \
                     locked AS (SELECT w.id FROM picked p JOIN webhook_attempts w ON w.id = p.id \
                     WHERE w.finished_us IS NULL AND w.lease_until_us <= $2 FOR UPDATE OF w SKIP LOCKED), \
                     a AS (UPDATE webhook_attempts SET lease_until_us = $1, claims = claims + 1 \
                     WHERE id IN (SELECT id FROM locked) RETURNING *) \
                     SELECT (SELECT COUNT(*) FROM picked) AS picked, {CLAIMED_COLUMNS} \
                     FROM (SELECT 1 AS one) one LEFT JOIN (a {joins}) ON TRUE ORDER BY a.due_us, a.id"
                );
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(lease_until)
                    .bind(at)
                    .bind(i64::from(limit))
                    .bind(room_json)
                    .bind(i64::from(per_endpoint))
                    .bind(i64::from(per_slack_channel))
                    .fetch_all(&self.pool)
                    .await?;
                let picked: i64 = match rows.first() {
                    Some(row) => row.try_get("picked")?,
                    None => 0,
                };
                let mut deliveries = Vec::with_capacity(rows.len());
                for row in &rows {
                    if row.try_get::<Option<i64>, _>("id")?.is_some() {
                        deliveries.push(claimed_from_row(row)?);
                    }
                }
                let contended = usize::try_from(picked).unwrap_or(0).saturating_sub(deliveries.len());
                Ok(Claim { deliveries, contended })
            }
            Backend::Sqlite => {
                // The single writer, for one host: the oldest `limit` claimable attempts,
                // numbered within their endpoint, as many of each endpoint as it has room for.
                // What is chosen is taken.
                let mut tx = self.begin_write().await?;
                let sql = "WITH room AS (SELECT json_extract(value, '$.endpoint_id') AS endpoint_id, \
                     json_extract(value, '$.n') AS n FROM json_each($4)), \
                     candidates AS (SELECT id, endpoint_id, due_us FROM webhook_attempts WHERE status = 'pending' \
                     AND due_us <= $2 AND lease_until_us <= $2 \
                     AND endpoint_id NOT IN (SELECT endpoint_id FROM room WHERE n = 0) ORDER BY due_us LIMIT $3), \
                     picked AS (SELECT c.id FROM (SELECT id, endpoint_id, row_number() OVER (PARTITION BY endpoint_id \
                     ORDER BY due_us, id) AS place FROM candidates) c LEFT JOIN room ON room.endpoint_id = c.endpoint_id \
                     JOIN webhook_endpoints e ON e.id = c.endpoint_id \
                     WHERE c.place <= COALESCE(room.n, CASE WHEN e.kind = 'slack' THEN $6 ELSE $5 END)) \
                     UPDATE webhook_attempts SET lease_until_us = $1, claims = claims + 1 \
                     WHERE id IN (SELECT id FROM picked) RETURNING id";
                let ids: Vec<i64> = sqlx::query(sql)
                    .bind(lease_until)
                    .bind(at)
                    .bind(i64::from(limit))
                    .bind(room_json)
                    .bind(i64::from(per_endpoint))
                    .bind(i64::from(per_slack_channel))
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<i64, _>("id"))
                    .collect::<std::result::Result<_, _>>()?;
                if ids.is_empty() {
                    tx.commit().await?;
                    return Ok(Claim::default());
                }
                let sql = format!(
                    "SELECT {CLAIMED_COLUMNS} FROM webhook_attempts a {joins} WHERE a.id IN ({}) ORDER BY a.due_us, a.id",
                    placeholders(1, ids.len())
                );
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for id in &ids {
                    query = query.bind(*id);
                }
                let rows = query.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                Ok(Claim { deliveries: rows.iter().map(claimed_from_row).collect::<Result<_>>()?, contended: 0 })
            }
        }
    }

    /// Gives claimed attempts back unmade (due now), e.g. when the worker is already at its
    /// limit for their endpoint. Attempts claimed again since are left alone.
    pub async fn release_deliveries(&self, claimed: &[(i64, i64)]) -> Result<()> {
        for chunk in claimed.chunks(OUTCOME_CHUNK) {
            let pairs: Vec<String> =
                (0..chunk.len()).map(|i| format!("(id = ${} AND claims = ${})", 1 + 2 * i, 2 + 2 * i)).collect();
            let sql = format!(
                "UPDATE webhook_attempts SET lease_until_us = 0 WHERE finished_us IS NULL AND ({})",
                pairs.join(" OR ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (id, claims) in chunk {
                query = query.bind(*id).bind(*claims);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Records a batch of outcomes in one transaction: finishes each attempt (unless its claim was
    /// superseded), queues the retries, keeps each endpoint's failure streak, and disables
    /// endpoints that answered 410 or have failed every attempt since `disable_after` ago,
    /// writing a `webhook.disabled` event for each.
    pub async fn record_outcomes(
        &self,
        outcomes: &[AttemptOutcome],
        disable_after: std::time::Duration,
    ) -> Result<OutcomeEffects> {
        let at = now();
        let at_us = to_us(at);
        let mut effects = OutcomeEffects::default();
        if self.backend == Backend::Postgres
            && outcomes.len() <= OUTCOME_CHUNK
            && outcomes.iter().all(AttemptOutcome::settles_alone)
        {
            // The usual batch (its attempts delivered): one statement, atomic on its own, that
            // finishes the attempts and ends their endpoints' failure streaks. No transaction,
            // no further round trips.
            let rows = sqlx::query(AssertSqlSafe(settle_sql()))
                .bind(at_us)
                .bind(outcome_batch(outcomes))
                .fetch_all(&self.pool)
                .await?;
            effects.recorded = rows.len();
            effects.stale = outcomes.len() - rows.len();
            return Ok(effects);
        }
        let mut tx = self.begin_write().await?;
        for chunk in outcomes.chunks(OUTCOME_CHUNK) {
            let applied = Self::finish_attempts(&mut tx, self.backend, chunk, at_us).await?;
            effects.recorded += applied.len();
            effects.stale += chunk.len() - applied.len();
            let applied: Vec<&AttemptOutcome> = chunk.iter().filter(|o| applied.contains(&o.id)).collect();
            Self::queue_retries(&mut tx, &applied, at_us).await?;
            let healthy: Vec<Uuid> =
                dedup(applied.iter().filter(|o| o.succeeded && o.counts_for_health).map(|o| o.endpoint_id));
            let failing: Vec<Uuid> =
                dedup(applied.iter().filter(|o| !o.succeeded && o.counts_for_health).map(|o| o.endpoint_id));
            let mut gone: Vec<(Uuid, &str)> = Vec::new();
            for o in applied.iter().filter(|o| o.gone) {
                if !gone.iter().any(|(id, _)| *id == o.endpoint_id) {
                    gone.push((o.endpoint_id, o.disable_reason.as_deref().unwrap_or("gone")));
                }
            }
            if !healthy.is_empty() {
                update_endpoints(&mut tx, "failing_since_us = NULL", "failing_since_us IS NOT NULL", &healthy, None)
                    .await?;
            }
            if !failing.is_empty() {
                update_endpoints(&mut tx, "failing_since_us = $1", "failing_since_us IS NULL", &failing, Some(at_us))
                    .await?;
                let threshold = at_us.saturating_sub(i64::try_from(disable_after.as_micros()).unwrap_or(i64::MAX));
                for (id, org, url, kind) in
                    disable_endpoints(&mut tx, &failing, "failing", Some(threshold), at_us).await?
                {
                    effects.disabled.push(id);
                    if kind != SinkKind::Webhook {
                        continue;
                    }
                    self.disabled_event(
                        &mut tx,
                        org,
                        id,
                        &url,
                        "failing",
                        "every delivery attempt failed for the configured period",
                    )
                    .await?;
                }
            }
            // One by one: each may have its own reason (a Slack channel's is Slack's answer).
            for (endpoint, reason) in gone {
                for (id, org, url, kind) in disable_endpoints(&mut tx, &[endpoint], reason, None, at_us).await? {
                    effects.disabled.push(id);
                    if kind == SinkKind::Webhook {
                        self.disabled_event(&mut tx, org, id, &url, "gone", "the endpoint answered 410 Gone").await?;
                    }
                }
            }
        }
        tx.commit().await?;
        if !effects.disabled.is_empty() {
            self.wake_delivery_workers();
        }
        Ok(effects)
    }

    /// Finishes the attempts whose claim still stands; returns their ids.
    async fn finish_attempts(
        tx: &mut Transaction<'static, Any>,
        backend: Backend,
        outcomes: &[AttemptOutcome],
        at_us: i64,
    ) -> Result<Vec<i64>> {
        let query = sqlx::query(AssertSqlSafe(finish_sql(backend))).bind(at_us).bind(outcome_batch(outcomes));
        let rows = query.fetch_all(&mut **tx).await?;
        rows.iter().map(|r| Ok(r.try_get::<i64, _>(0)?)).collect()
    }

    /// Queues the next attempt of every failure that has one.
    async fn queue_retries(tx: &mut Transaction<'static, Any>, applied: &[&AttemptOutcome], at_us: i64) -> Result<()> {
        let retries: Vec<(&AttemptOutcome, i64)> =
            applied.iter().filter_map(|o| o.retry_at.map(|t| (*o, to_us(t)))).collect();
        if retries.is_empty() {
            return Ok(());
        }
        const PER_ROW: usize = 6;
        let rows: Vec<String> = (0..retries.len())
            .map(|i| {
                let b = 2 + PER_ROW * i;
                format!("(${}, ${}, ${}, ${}, ${}, 'retry', 'pending', ${}, $1)", b, b + 1, b + 2, b + 3, b + 4, b + 5)
            })
            .collect();
        let sql = format!(
            "INSERT INTO webhook_attempts (organization_id, endpoint_id, event_id, attempt, run_attempt, origin, status, \
             due_us, created_us) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(at_us);
        for (o, due) in retries {
            query = query
                .bind(o.org.0.to_string())
                .bind(o.endpoint_id.to_string())
                .bind(o.event_id.clone())
                .bind(o.attempt + 1)
                .bind(o.run_attempt + 1)
                .bind(due);
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    /// Writes the `webhook.disabled` event (delivered to the organization's other endpoints; only
    /// for webhook endpoints: a Slack channel shows why it was disabled on its own resource).
    async fn disabled_event(
        &self,
        tx: &mut Transaction<'static, Any>,
        org: OrgId,
        id: Uuid,
        url: &str,
        reason: &str,
        detail: &str,
    ) -> Result<()> {
        let data = serde_json::json!({ "id": id, "url": url, "reason": reason, "detail": detail });
        self.insert_event(tx, org, "webhook.disabled", data).await?;
        Ok(())
    }

    /// The endpoint's attempts, newest first.
    pub async fn list_deliveries(
        &self,
        org: OrgId,
        endpoint_id: Uuid,
        filter: &DeliveryFilter,
    ) -> Result<(Vec<DeliveryAttempt>, Option<i64>)> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts a JOIN events ev ON ev.id = a.event_id \
             WHERE a.organization_id = $1 AND a.endpoint_id = $2 AND ($3 = '' OR a.status = $3) \
             AND ($4 = '' OR a.event_id = $4) AND a.id < $5 ORDER BY a.id DESC LIMIT $6"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(org.0.to_string())
            .bind(endpoint_id.to_string())
            .bind(filter.status.map_or("", AttemptStatus::as_str))
            .bind(filter.event_id.clone().unwrap_or_default())
            .bind(filter.before.unwrap_or(i64::MAX))
            .bind(i64::from(filter.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut attempts = rows.iter().map(attempt_from_row).collect::<Result<Vec<_>>>()?;
        let next = if attempts.len() > filter.limit as usize {
            attempts.truncate(filter.limit as usize);
            attempts.last().map(|a| a.id)
        } else {
            None
        };
        Ok((attempts, next))
    }

    /// One attempt of the endpoint.
    pub async fn delivery_attempt(&self, org: OrgId, endpoint_id: Uuid, id: i64) -> Result<Option<DeliveryAttempt>> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts a JOIN events ev ON ev.id = a.event_id \
             WHERE a.organization_id = $1 AND a.endpoint_id = $2 AND a.id = $3"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(org.0.to_string())
            .bind(endpoint_id.to_string())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(attempt_from_row).transpose()
    }

    /// Queues a new attempt of a failed attempt's event to its endpoint, due now and with a
    /// fresh retry run. `None` when there is no such attempt; [`StoreError::Conflict`] when it did
    /// not fail or the event already has a pending attempt to this endpoint.
    pub async fn retry_delivery(&self, org: OrgId, endpoint_id: Uuid, id: i64) -> Result<Option<DeliveryAttempt>> {
        let Some(failed) = self.delivery_attempt(org, endpoint_id, id).await? else { return Ok(None) };
        if failed.status != AttemptStatus::Failed {
            return Err(StoreError::Conflict(format!(
                "attempt {id} is {}; only a failed attempt can be retried",
                failed.status.as_str()
            )));
        }
        let at = to_us(now());
        let mut tx = self.begin_write().await?;
        let new_id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO webhook_attempts (organization_id, endpoint_id, event_id, attempt, run_attempt, origin, status, \
             due_us, created_us) SELECT $1, $2, $3, MAX(attempt) + 1, 1, 'manual', 'pending', $4, $4 \
             FROM webhook_attempts WHERE endpoint_id = $2 AND event_id = $3 AND NOT EXISTS (SELECT 1 \
             FROM webhook_attempts p WHERE p.endpoint_id = $2 AND p.event_id = $3 AND p.status = 'pending') \
             GROUP BY event_id RETURNING id",
        )
        .bind(org.0.to_string())
        .bind(endpoint_id.to_string())
        .bind(&failed.event_id)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(already_pending)?;
        let Some(new_id) = new_id else {
            return Err(StoreError::Conflict(format!(
                "event {} already has a pending attempt to this endpoint",
                failed.event_id
            )));
        };
        tx.commit().await?;
        self.wake_delivery_workers();
        self.delivery_attempt(org, endpoint_id, new_id).await
    }

    /// Queues the organization's events since `since` (that the endpoint subscribes to, oldest
    /// first, at most `limit`) for redelivery to the endpoint, skipping events already pending
    /// there. Returns how many were queued and the creation time of the last one queued; `None`
    /// when there is no such endpoint.
    pub async fn replay_events(
        &self,
        org: OrgId,
        endpoint_id: Uuid,
        since: Timestamp,
        limit: u32,
    ) -> Result<Option<(u64, Option<Timestamp>)>> {
        let at = to_us(now());
        let mut tx = self.begin_write().await?;
        let events: Option<String> = sqlx::query_scalar(
            "SELECT events FROM webhook_endpoints WHERE organization_id = $1 AND id = $2 AND deleted_us IS NULL",
        )
        .bind(org.0.to_string())
        .bind(endpoint_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(events) = events else { return Ok(None) };
        let subscribed: Vec<String> =
            serde_json::from_str(&events).map_err(|e| StoreError::Corrupt(format!("events: {e}")))?;
        let mut type_clause = String::new();
        if !subscribed.is_empty() {
            type_clause = format!("AND ev.type IN ({})", placeholders(6, subscribed.len()));
        }
        let sql = format!(
            "INSERT INTO webhook_attempts (organization_id, endpoint_id, event_id, attempt, run_attempt, origin, status, \
             due_us, created_us) SELECT $1, $2, ev.id, COALESCE((SELECT MAX(x.attempt) FROM webhook_attempts x \
             WHERE x.endpoint_id = $2 AND x.event_id = ev.id), 0) + 1, 1, 'replay', 'pending', $3, $3 \
             FROM events ev WHERE ev.organization_id = $1 AND ev.created_us >= $4 AND ev.type <> 'webhook.test' \
             {type_clause} AND NOT EXISTS (SELECT 1 FROM webhook_attempts p WHERE p.endpoint_id = $2 \
             AND p.event_id = ev.id AND p.status = 'pending') ORDER BY ev.id LIMIT $5 RETURNING event_id"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(org.0.to_string())
            .bind(endpoint_id.to_string())
            .bind(at)
            .bind(to_us(since))
            .bind(i64::from(limit));
        for t in &subscribed {
            query = query.bind(t.clone());
        }
        let queued: Vec<String> = query
            .fetch_all(&mut *tx)
            .await
            .map_err(already_pending)?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<std::result::Result<_, _>>()?;
        let last = match queued.iter().max() {
            Some(id) => {
                let us: i64 = sqlx::query_scalar("SELECT created_us FROM events WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                Some(from_us(us)?)
            }
            None => None,
        };
        tx.commit().await?;
        if !queued.is_empty() {
            self.wake_delivery_workers();
        }
        Ok(Some((queued.len() as u64, last)))
    }

    /// Writes a `webhook.test` event and queues it to this endpoint only (even when the
    /// endpoint is disabled, so it can be tried before it is turned on). `None` when there is no
    /// such endpoint.
    pub async fn send_test_event(&self, org: OrgId, endpoint_id: Uuid) -> Result<Option<(crate::Event, i64)>> {
        let mut tx = self.begin_write().await?;
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT id FROM webhook_endpoints WHERE organization_id = $1 AND id = $2 AND deleted_us IS NULL",
        )
        .bind(org.0.to_string())
        .bind(endpoint_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let event = crate::Event {
            id: crate::events::new_event_id(),
            event_type: "webhook.test".into(),
            data: serde_json::json!({ "webhook_id": endpoint_id, "message": "This is a test event from slotd." }),
            created_at: now(),
        };
        sqlx::query("INSERT INTO events (id, organization_id, type, data, created_us) VALUES ($1, $2, $3, $4, $5)")
            .bind(&event.id)
            .bind(org.0.to_string())
            .bind(&event.event_type)
            .bind(event.data.to_string())
            .bind(to_us(event.created_at))
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhook_attempts (organization_id, endpoint_id, event_id, attempt, run_attempt, origin, status, \
             due_us, created_us) VALUES ($1, $2, $3, 1, 1, 'test', 'pending', $4, $4) RETURNING id",
        )
        .bind(org.0.to_string())
        .bind(endpoint_id.to_string())
        .bind(&event.id)
        .bind(to_us(event.created_at))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.wake_delivery_workers();
        Ok(Some((event, id)))
    }

    /// Pending attempts over every organization (for tests and operations).
    pub async fn pending_delivery_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM webhook_attempts WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// A second pending attempt of one event to one endpoint (a concurrent retry or replay).
fn already_pending(e: sqlx::Error) -> StoreError {
    if StoreError::is_unique_violation(&e) {
        StoreError::Conflict("a delivery of this event to this endpoint is already pending".into())
    } else {
        e.into()
    }
}

/// The distinct values, in first-seen order.
fn dedup(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    let mut out: Vec<Uuid> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// `UPDATE webhook_endpoints SET {set} WHERE id IN ids AND {condition}`; `$1` is `value`.
async fn update_endpoints(
    tx: &mut Transaction<'static, Any>,
    set: &str,
    condition: &str,
    ids: &[Uuid],
    value: Option<i64>,
) -> Result<()> {
    let sql =
        format!("UPDATE webhook_endpoints SET {set} WHERE id IN ({}) AND {condition}", placeholders(2, ids.len()));
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(value.unwrap_or(0));
    for id in ids {
        query = query.bind(id.to_string());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Disables the enabled endpoints among `ids` (only those failing since before `threshold`,
/// when given); returns (id, organization, url, kind) of each one disabled. Calendar write-back
/// sinks are never disabled: every booking change tries again, and the connection shows since
/// when its writes fail.
async fn disable_endpoints(
    tx: &mut Transaction<'static, Any>,
    ids: &[Uuid],
    reason: &str,
    threshold: Option<i64>,
    at_us: i64,
) -> Result<Vec<(Uuid, OrgId, String, SinkKind)>> {
    let streak = if threshold.is_some() { "AND failing_since_us <= $3" } else { "" };
    let sql = format!(
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $1, updated_us = $2 WHERE id IN ({}) \
         AND enabled AND deleted_us IS NULL AND kind <> 'calendar' {streak} RETURNING id, organization_id, url, kind",
        placeholders(4, ids.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(reason).bind(at_us).bind(threshold.unwrap_or(0));
    for id in ids {
        query = query.bind(id.to_string());
    }
    query
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| {
            Ok((
                parse_id(r.try_get("id")?)?,
                OrgId(parse_id(r.try_get("organization_id")?)?),
                r.try_get("url")?,
                SinkKind::parse(r.try_get("kind")?)?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::subscription_pattern;

    #[test]
    fn placeholders_number_from_the_first() {
        assert_eq!(placeholders(4, 3), "$4, $5, $6");
        assert_eq!(placeholders(1, 0), "");
    }

    #[test]
    fn subscription_pattern_escapes_like_wildcards() {
        assert_eq!(subscription_pattern("event_type.created"), "%\"event\\_type.created\"%");
    }
}
