//! The webhook delivery worker: claims due attempts from the store, POSTs them, and records what
//! happened. It runs inside `slotd serve` (unless `--no-delivery-worker`) and alone as
//! `slotd worker`; any number of workers may share one PostgreSQL database.
//!
//! Each endpoint has a lane in the worker: up to `endpoint_concurrency` runners POST its attempts
//! one after another, from a queue the claimer keeps topped up (up to as many again, claimed
//! ahead), so the next attempt starts the moment one finishes, without a database round trip.
//!
//! Isolation: a claim takes no more of an endpoint than its lane has room for, and skips full
//! lanes altogether, so a slow or dead endpoint holds only its own share and never a place in
//! line ahead of other endpoints' deliveries. Outcomes go to one recorder task that writes them
//! in batches.
//!
//! Sinks by kind: a webhook endpoint gets the signed event envelope; a Slack channel gets a
//! message built by [`slack`] from the event, posted to its sealed URL. A Slack channel's lane
//! has one place and starts its attempts at least [`SLACK_PACE`] apart (Slack takes about one
//! message per second per channel); the pacing is per worker process.

pub mod send;
pub mod slack;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use slotd_core::webhook::{RetrySchedule, SigningSecret, signature_header};
use slotd_store::{AttemptOutcome, ClaimedDelivery, SinkKind, Store};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::sealing::Sealer;
pub use send::Sender;

/// How a worker behaves.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Time limit of one POST (connect to last byte of the answer).
    pub timeout: Duration,
    /// When attempts are made.
    pub schedule: RetrySchedule,
    /// An endpoint whose every attempt failed for this long is disabled.
    pub disable_after: Duration,
    /// Attempts this worker holds at once (in flight, or claimed ahead to start next).
    pub concurrency: usize,
    /// Attempts in flight at once to one endpoint in this worker.
    pub endpoint_concurrency: usize,
    /// How often an idle worker looks for due attempts queued by other processes (this
    /// process's own changes wake it at once).
    pub poll_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> WorkerConfig {
        WorkerConfig {
            timeout: Duration::from_secs(10),
            schedule: RetrySchedule::default(),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            concurrency: 256,
            endpoint_concurrency: 16,
            poll_interval: Duration::from_millis(100),
        }
    }
}

impl WorkerConfig {
    /// How long a claim holds an attempt: long enough for the POST and the recording, after
    /// which a crashed worker's attempts are someone else's.
    pub fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(5)
    }
}

/// One endpoint's share of a worker: attempts claimed for it and not started yet, and how many
/// runners are making its attempts right now.
#[derive(Default)]
struct Lane {
    queue: VecDeque<(ClaimedDelivery, Instant)>,
    running: usize,
    /// Its last attempt took over a second: claim no further ahead than one attempt per place.
    slow: bool,
    /// A Slack channel's lane: one place, paced.
    slack: bool,
}

/// Everything a delivery needs, shared by the worker's tasks.
struct Shared {
    store: Store,
    sealer: Arc<Sealer>,
    /// Calendar write-back (deliveries to calendar sinks fail without it).
    calendars: Option<Arc<crate::calendars::Calendars>>,
    sender: Sender,
    config: WorkerConfig,
    /// Per endpoint: claimed attempts waiting, and runners at work.
    lanes: Mutex<HashMap<Uuid, Lane>>,
    /// Attempts this worker holds (claimed and not finished).
    held: AtomicUsize,
    /// Signalled when a lane runs low or the worker can hold more: time to claim.
    freed: Notify,
    /// Opened secrets by their sealed form (opening costs an AEAD decryption per delivery).
    secrets: Mutex<HashMap<String, Option<SigningSecret>>>,
    /// Per Slack channel: when its next attempt may start (outlives the channel's lane).
    slack_pace: Mutex<HashMap<Uuid, Instant>>,
}

/// A delivery worker.
pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    /// A worker over `store`, opening secrets with `sealer` and posting with `sender`.
    pub fn new(store: Store, sealer: Arc<Sealer>, sender: Sender, config: WorkerConfig) -> Worker {
        Worker {
            shared: Arc::new(Shared {
                store,
                sealer,
                calendars: None,
                sender,
                config,
                lanes: Mutex::new(HashMap::new()),
                held: AtomicUsize::new(0),
                freed: Notify::new(),
                secrets: Mutex::new(HashMap::new()),
                slack_pace: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The same worker, writing bookings back to calendar connections through `calendars`.
    pub fn with_calendars(mut self, calendars: Arc<crate::calendars::Calendars>) -> Worker {
        Arc::get_mut(&mut self.shared).expect("a worker is not shared before it runs").calendars = Some(calendars);
        self
    }

    /// Delivers until `shutdown` resolves, then hands back the attempts it claimed but had not
    /// started, lets the ones in flight finish (each within the time limit) and records them.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let shared = self.shared;
        let config = shared.config.clone();
        let (outcomes, received) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(record(shared.store.clone(), received, config.disable_after));
        let mut wakeups = shared.store.delivery_wakeups();
        let mut runners: JoinSet<()> = JoinSet::new();
        let lane_cap = shared.lane_capacity();
        tokio::pin!(shutdown);
        loop {
            while runners.try_join_next().is_some() {}
            let room = config.concurrency.saturating_sub(shared.held.load(Ordering::Acquire));
            let mut more_due = false;
            if room > 0 {
                let want = u32::try_from(room.min(MAX_CLAIM)).unwrap_or(1);
                match shared
                    .store
                    .claim_deliveries_within(want, config.lease(), lane_cap, SLACK_LANE_CAPACITY, &shared.lane_room())
                    .await
                {
                    Ok(claim) => {
                        // Took all it asked for, or another worker claimed some of what this
                        // claim chose at the same instant: there may be more due right now.
                        more_due = claim.deliveries.len() == want as usize || claim.contended > 0;
                        shared.held.fetch_add(claim.deliveries.len(), Ordering::AcqRel);
                        for endpoint in shared.enqueue(claim.deliveries) {
                            let shared = shared.clone();
                            let outcomes = outcomes.clone();
                            runners.spawn(async move { shared.run_lane(endpoint, outcomes).await });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim webhook deliveries; trying again in 1 s");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                }
            }
            if more_due && shared.held.load(Ordering::Acquire) < config.concurrency {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break,
                _ = wakeups.changed() => {
                    // Let changes committed in the same instant share one claim.
                    tokio::time::sleep(COALESCE).await;
                }
                () = shared.freed.notified() => {}
                () = tokio::time::sleep(config.poll_interval) => {}
            }
        }
        // Attempts claimed but not started go back to the queue for other workers at once.
        let unstarted: Vec<(i64, i64)> = {
            let mut lanes = shared.lanes.lock().expect("lanes");
            lanes.values_mut().flat_map(|lane| lane.queue.drain(..)).map(|(job, _)| (job.id, job.claims)).collect()
        };
        if !unstarted.is_empty() {
            shared.held.fetch_sub(unstarted.len(), Ordering::AcqRel);
            if let Err(e) = shared.store.release_deliveries(&unstarted).await {
                tracing::warn!(error = %e, "could not hand back unstarted deliveries (they return when their lease ends)");
            }
        }
        while runners.join_next().await.is_some() {}
        drop(outcomes);
        let _ = recorder.await;
    }
}

/// Most attempts one claim takes.
const MAX_CLAIM: usize = 200;
/// How long a woken worker waits for more changes before it claims.
const COALESCE: Duration = Duration::from_millis(2);
/// Attempts claimed ahead per place in flight.
const AHEAD: usize = 4;
/// Least time between the starts of two attempts to one Slack channel (in one worker).
pub const SLACK_PACE: Duration = Duration::from_secs(1);
/// Attempts of one Slack channel a worker holds: the one being made and the next.
const SLACK_LANE_CAPACITY: u32 = 2;

impl Shared {
    /// How many attempts of one endpoint a worker holds at most: its places in flight, and four
    /// times as many claimed ahead so the next attempt starts the moment a place frees. (One
    /// that waits so long that its lease could end before it finishes is not sent: see
    /// [`Shared::run_lane`].)
    fn lane_capacity(&self) -> u32 {
        u32::try_from(self.config.endpoint_concurrency.saturating_mul(1 + AHEAD)).unwrap_or(u32::MAX)
    }

    /// What each endpoint with a lane may still take in a claim (0: skip it).
    fn lane_room(&self) -> Vec<(Uuid, u32)> {
        let places = self.config.endpoint_concurrency;
        let lanes = self.lanes.lock().expect("lanes");
        lanes
            .iter()
            .map(|(id, lane)| {
                let cap = if lane.slack {
                    SLACK_LANE_CAPACITY as usize
                } else {
                    places * if lane.slow { 2 } else { 1 + AHEAD }
                };
                (*id, u32::try_from(cap.saturating_sub(lane.queue.len() + lane.running)).unwrap_or(0))
            })
            .collect()
    }

    /// Queues claimed attempts in their lanes; answers one endpoint per runner to start.
    fn enqueue(&self, claimed: Vec<ClaimedDelivery>) -> Vec<Uuid> {
        let mut lanes = self.lanes.lock().expect("lanes");
        let mut touched = Vec::new();
        for job in claimed {
            let endpoint = job.endpoint_id;
            let lane = lanes.entry(endpoint).or_default();
            lane.slack = job.kind == SinkKind::Slack;
            lane.queue.push_back((job, Instant::now()));
            if !touched.contains(&endpoint) {
                touched.push(endpoint);
            }
        }
        let mut start = Vec::new();
        for endpoint in touched {
            let lane = lanes.get_mut(&endpoint).expect("lane just filled");
            let places = if lane.slack { 1 } else { self.config.endpoint_concurrency };
            let new_runners = places.saturating_sub(lane.running).min(lane.queue.len());
            lane.running += new_runners;
            start.extend(std::iter::repeat_n(endpoint, new_runners));
        }
        start
    }

    /// A runner: makes the lane's queued attempts one after another until none is left.
    async fn run_lane(&self, endpoint: Uuid, outcomes: mpsc::UnboundedSender<AttemptOutcome>) {
        let low_water = self.config.endpoint_concurrency * AHEAD / 2;
        // An attempt must be able to finish (time limit plus a margin for recording it) before
        // its claim's lease ends; one that waited longer is left to fall due again unsent.
        let latest_start = self.config.lease().saturating_sub(self.config.timeout + Duration::from_secs(2));
        loop {
            let (job, claimed_at, running_low) = {
                let mut lanes = self.lanes.lock().expect("lanes");
                let lane = lanes.entry(endpoint).or_default();
                let low_water = if lane.slack { 0 } else { low_water };
                match lane.queue.pop_front() {
                    Some((job, claimed_at)) => (job, claimed_at, lane.queue.len() == low_water),
                    None => {
                        lane.running -= 1;
                        if lane.running == 0 {
                            lanes.remove(&endpoint);
                        }
                        break;
                    }
                }
            };
            if running_low {
                self.freed.notify_one();
            }
            if job.kind == SinkKind::Slack {
                self.pace_slack(endpoint, claimed_at, latest_start).await;
            }
            if claimed_at.elapsed() <= latest_start {
                let started = Instant::now();
                let outcome = self.deliver(job).await;
                let _ = outcomes.send(outcome);
                let slow = started.elapsed() > Duration::from_secs(1);
                if let Some(lane) = self.lanes.lock().expect("lanes").get_mut(&endpoint) {
                    lane.slow = slow;
                }
            } else {
                metrics::counter!("webhook_attempts_total", "outcome" => "lease_expired_unsent").increment(1);
            }
            let held = self.held.fetch_sub(1, Ordering::AcqRel);
            if held >= self.config.concurrency {
                self.freed.notify_one();
            }
        }
        // The lane has room again (it may have been skipped while full).
        self.freed.notify_one();
    }

    /// Waits until the Slack channel's next attempt may start, and books the slot after it (unless
    /// the attempt has waited so long that it will not be sent).
    async fn pace_slack(&self, channel: Uuid, claimed_at: Instant, latest_start: Duration) {
        let deadline = claimed_at + latest_start;
        // Looked up again after each wait: a 429 meanwhile may have pushed the channel's next
        // start further out (see `hold_slack_channel`).
        loop {
            let next = self.slack_pace.lock().expect("slack pace").get(&channel).copied();
            match next {
                Some(next) if next > Instant::now() => {
                    if next > deadline {
                        // It would start after its lease: leave it unsent for a later claim.
                        tokio::time::sleep_until(deadline.into()).await;
                        return;
                    }
                    tokio::time::sleep_until(next.into()).await;
                }
                _ => break,
            }
        }
        if claimed_at.elapsed() <= latest_start {
            let mut pace = self.slack_pace.lock().expect("slack pace");
            let now = Instant::now();
            if pace.len() > 10_000 {
                pace.retain(|_, at| *at > now);
            }
            pace.insert(channel, now + SLACK_PACE);
        }
    }

    /// After a Slack `429`, no message of this channel starts before its `Retry-After` is over:
    /// the channel's other queued messages would only meet the same 429 and spend a retry each.
    fn hold_slack_channel(&self, channel: Uuid, wait: Duration) {
        let until = Instant::now() + wait;
        let mut pace = self.slack_pace.lock().expect("slack pace");
        let next = pace.entry(channel).or_insert(until);
        *next = (*next).max(until);
    }

    /// The secret a sealed value opens to (cached); `None` when this server's key cannot open it.
    fn secret(&self, sealed: &str) -> Option<SigningSecret> {
        let mut cache = self.secrets.lock().expect("secret cache");
        if let Some(secret) = cache.get(sealed) {
            return secret.clone();
        }
        let secret = self.sealer.open(sealed).and_then(|s| SigningSecret::parse(&s).ok());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(sealed.to_owned(), secret.clone());
        secret
    }

    /// Makes one attempt and says what happened.
    async fn deliver(&self, job: ClaimedDelivery) -> AttemptOutcome {
        let is_test = job.origin == "test";
        let mut outcome = AttemptOutcome {
            id: job.id,
            claims: job.claims,
            org: job.org,
            endpoint_id: job.endpoint_id,
            event_id: job.event_id.clone(),
            attempt: job.attempt,
            run_attempt: job.run_attempt,
            succeeded: false,
            response_status: None,
            response_body: None,
            duration_ms: 0,
            error: None,
            retry_at: None,
            gone: false,
            disable_reason: None,
            counts_for_health: !is_test,
        };
        if !job.endpoint_live && !is_test {
            outcome.error = Some("not sent: the endpoint is disabled or deleted".into());
            outcome.counts_for_health = false;
            metrics::counter!("webhook_attempts_total", "outcome" => "skipped").increment(1);
            return outcome;
        }
        let posted = match job.kind {
            SinkKind::Webhook => self.post_webhook(&job).await,
            SinkKind::Slack => self.post_slack(&job).await,
            SinkKind::Calendar => self.write_calendar(&job).await,
        };
        let (response, took) = match posted {
            Ok(posted) => posted,
            Err(not_sent) => {
                outcome.error = Some(not_sent);
                outcome.counts_for_health = false;
                return outcome;
            }
        };
        outcome.succeeded = response.succeeded;
        outcome.response_status = response.status;
        outcome.duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        outcome.error = response.error;
        let jitter: f64 = rand::random();
        let run_attempts = usize::try_from(job.run_attempt).unwrap_or(usize::MAX);
        match job.kind {
            SinkKind::Webhook | SinkKind::Calendar => {
                outcome.gone = response.gone && !is_test;
                if !outcome.succeeded && !outcome.gone && !is_test {
                    outcome.retry_at = self
                        .config
                        .schedule
                        .next_attempt_delay_ms(run_attempts, jitter, response.retry_after_ms)
                        .map(|ms| Timestamp::now() + Duration::from_millis(ms));
                }
            }
            SinkKind::Slack => match slack::verdict(response.succeeded, response.status, response.body.as_deref()) {
                slack::Verdict::Delivered => {}
                slack::Verdict::Refused => {
                    // Slack refused the message itself: slotd's bug, not the channel's fault, and
                    // sending it again would only be refused again.
                    tracing::error!(
                        channel = %job.endpoint_id,
                        event = %job.event_id,
                        answer = response.body.as_deref().unwrap_or(""),
                        "Slack refused a message as invalid (400); not retried"
                    );
                    outcome.counts_for_health = false;
                }
                slack::Verdict::ChannelGone(reason) => {
                    if !is_test {
                        outcome.gone = true;
                        outcome.disable_reason = Some(reason);
                    }
                }
                slack::Verdict::Retry => {
                    if let Some(ms) = response.retry_after_ms {
                        self.hold_slack_channel(
                            job.endpoint_id,
                            Duration::from_millis(ms.min(slack::MAX_RETRY_AFTER_MS)),
                        );
                    }
                    if !is_test {
                        outcome.retry_at =
                            slack::retry_delay_ms(&self.config.schedule, run_attempts, jitter, response.retry_after_ms)
                                .map(|ms| Timestamp::now() + Duration::from_millis(ms));
                    }
                }
            },
        }
        outcome.response_body = response.body;
        let label = if outcome.succeeded { "succeeded" } else { "failed" };
        metrics::counter!("webhook_attempts_total", "outcome" => label).increment(1);
        if outcome.succeeded && job.attempt == 1 {
            let lag = Timestamp::now().duration_since(job.event_created_at);
            metrics::histogram!("webhook_delivery_lag_seconds").record(lag.as_secs_f64());
        }
        outcome
    }

    /// POSTs the signed event envelope to a webhook endpoint; `Err` says why it was not sent.
    async fn post_webhook(&self, job: &ClaimedDelivery) -> Result<(send::Response, Duration), String> {
        let now = Timestamp::now();
        let mut secrets = Vec::with_capacity(2);
        match self.secret(&job.secret_sealed) {
            Some(secret) => secrets.push(secret),
            None => {
                return Err("not sent: the signing secret cannot be opened with this server's --secret-key".into());
            }
        }
        if let (Some(previous), Some(until)) = (&job.previous_secret_sealed, job.previous_secret_until)
            && until > now
            && let Some(secret) = self.secret(previous)
        {
            secrets.push(secret);
        }
        let body = envelope(job);
        let timestamp = now.as_second();
        let signature =
            signature_header(&secrets.iter().collect::<Vec<_>>(), &job.event_id, timestamp, body.as_bytes());
        let headers = [
            ("webhook-id", job.event_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        Ok(self.sender.post(&job.url, &headers, body).await)
    }

    /// POSTs the event's Slack message to the channel's (sealed) URL; `Err` says why it was not
    /// sent.
    async fn post_slack(&self, job: &ClaimedDelivery) -> Result<(send::Response, Duration), String> {
        let Some(url) = self.sealer.open(&job.secret_sealed) else {
            return Err("not sent: the Slack webhook URL cannot be opened with this server's --secret-key".into());
        };
        let data: serde_json::Value = serde_json::from_str(&job.event_data).unwrap_or_default();
        let zone = self.slack_zone(job, &data).await;
        let body = slack::message(&job.event_type, &data, &zone).to_string();
        Ok(self.sender.post(&url, &[], body).await)
    }

    /// Makes the connection's calendar match the booking of the event as it is now (see
    /// `calendars::Calendars::write_back`); `Err` says why nothing was attempted.
    async fn write_calendar(&self, job: &ClaimedDelivery) -> Result<(send::Response, Duration), String> {
        let Some(calendars) = &self.calendars else {
            return Err("not sent: this worker was started without calendar write-back".into());
        };
        let started = Instant::now();
        let connection = match self.store.calendar_connection(job.org, job.endpoint_id).await {
            Ok(Some(connection)) => connection,
            Ok(None) => return Err("not sent: the calendar connection was deleted".into()),
            Err(e) => {
                return Ok((send::Response::failed(format!("could not read the connection: {e}")), started.elapsed()));
            }
        };
        let data: serde_json::Value = serde_json::from_str(&job.event_data).unwrap_or_default();
        let Some(booking_id) = data.get("id").and_then(|id| id.as_str()).and_then(|id| id.parse::<Uuid>().ok()) else {
            return Err(format!("not sent: a {} event names no booking", job.event_type));
        };
        let title = data.pointer("/event_type/title").and_then(|t| t.as_str()).unwrap_or("Booking").to_owned();
        // The booking may change while its event is written: write again until the booking read
        // after a write is the one the write was made from.
        let mut written_from = None;
        let mut done = "nothing to do";
        let mut settled = false;
        for _ in 0..3 {
            let booking = match self.store.booking(job.org, booking_id).await {
                Ok(booking) => booking,
                Err(e) => {
                    return Ok((send::Response::failed(format!("could not read the booking: {e}")), started.elapsed()));
                }
            };
            let seen = booking.as_ref().map(|b| b.version);
            if written_from.is_some() && seen == written_from {
                settled = true;
                break;
            }
            let written = calendars
                .write_back(&connection, &jiff::tz::TimeZone::UTC, booking.as_ref(), |b| calendar_event(b, &title))
                .await;
            match written {
                Ok(what) => done = what,
                Err(e) => return Ok((send::Response::failed(e), started.elapsed())),
            }
            written_from = seen;
        }
        if !settled {
            let error = "the booking kept changing while its event was written; trying again";
            return Ok((send::Response::failed(error), started.elapsed()));
        }
        let response = send::Response {
            succeeded: true,
            body: Some(format!("{done} (booking version {})", written_from.unwrap_or_default())),
            connected: true,
            ..send::Response::default()
        };
        Ok((response, started.elapsed()))
    }

    /// The zone a Slack message states times in: the channel's, else the booking's first host's
    /// (as the host is now), else UTC.
    async fn slack_zone(&self, job: &ClaimedDelivery, data: &serde_json::Value) -> jiff::tz::TimeZone {
        if let Some(zone) = job.time_zone.as_deref().and_then(|name| slotd_core::zone::time_zone(name).ok()) {
            return zone;
        }
        let first_host = data.pointer("/hosts/0/id").and_then(|id| id.as_str()).and_then(|id| id.parse::<Uuid>().ok());
        if let Some(host) = first_host {
            match self.store.host(job.org, host).await {
                Ok(Some(host)) => {
                    if let Ok(zone) = slotd_core::zone::time_zone(&host.time_zone) {
                        return zone;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not read a booking's host for its Slack message; using UTC")
                }
            }
        }
        jiff::tz::TimeZone::UTC
    }
}

/// The calendar event of a booking: its meeting time, the event type's title and the attendees'
/// names (never the attendee's manage link).
fn calendar_event(booking: &slotd_store::Booking, title: &str) -> slotd_calendar::CalendarEvent {
    let names: Vec<&str> = booking.attendees.iter().map(|a| a.name.as_str()).collect();
    let summary = if names.is_empty() { title.to_owned() } else { format!("{title} with {}", names.join(", ")) };
    let mut description = format!("Booked through slotd ({}).", booking.human_id);
    for attendee in &booking.attendees {
        description.push_str(&format!("\nAttendee: {} <{}>", attendee.name, attendee.email));
    }
    slotd_calendar::CalendarEvent {
        uid: crate::calendars::event_uid(booking.id),
        sequence: u32::try_from(booking.version).unwrap_or(u32::MAX),
        interval: booking.interval,
        summary,
        description,
    }
}

/// The body of a delivery: the event envelope, with the stored payload spliced in as is.
fn envelope(job: &ClaimedDelivery) -> String {
    let id = serde_json::to_string(&job.event_id).expect("strings serialise");
    let kind = serde_json::to_string(&job.event_type).expect("strings serialise");
    let created = serde_json::to_string(&job.event_created_at).expect("timestamps serialise");
    format!("{{\"id\":{id},\"type\":{kind},\"created_at\":{created},\"data\":{}}}", job.event_data)
}

/// Writes outcomes in batches (whatever arrived while the previous batch was being written).
/// A batch that cannot be written after a few tries is dropped: its attempts are still pending
/// in the database and are made again when their lease ends, so nothing is lost.
async fn record(store: Store, mut received: mpsc::UnboundedReceiver<AttemptOutcome>, disable_after: Duration) {
    let mut batch = Vec::new();
    while received.recv_many(&mut batch, 1000).await > 0 {
        for attempt in 1..=5u32 {
            match store.record_outcomes(&batch, disable_after).await {
                Ok(effects) => {
                    for endpoint in &effects.disabled {
                        tracing::warn!(%endpoint, "disabled a delivery endpoint or Slack channel (gone, or failing for too long)");
                    }
                    if effects.stale > 0 {
                        tracing::info!(
                            stale = effects.stale,
                            "outcomes of attempts whose lease had ended were not recorded"
                        );
                    }
                    break;
                }
                Err(e) if attempt < 5 => {
                    tracing::warn!(error = %e, attempt, "could not record delivery outcomes; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, count = batch.len(), "gave up recording delivery outcomes; they will be attempted again");
                }
            }
        }
        batch.clear();
    }
}
