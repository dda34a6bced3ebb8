//! The webhook delivery worker: claims due attempts from the store, POSTs them, and records what
//! happened. It runs inside `slotd serve` (unless `--no-delivery-worker`) and alone as
//! `slotd worker`; any number of workers may share one PostgreSQL database.
//!
//! Isolation: a worker makes at most `endpoint_concurrency` attempts to one endpoint at a time
//! and, while an endpoint is at that limit, claims nothing more for it (the claim query skips
//! it), so a slow or dead endpoint holds only its own share and never a place in line ahead of
//! other endpoints' deliveries. Outcomes go to one recorder task that writes them in batches.

pub mod send;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use slotd_core::webhook::{RetrySchedule, SigningSecret, signature_header};
use slotd_store::{AttemptOutcome, ClaimedDelivery, Store};
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
    /// Attempts in flight at once in this worker.
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

/// Everything a delivery needs, shared by the worker's tasks.
struct Shared {
    store: Store,
    sealer: Arc<Sealer>,
    sender: Sender,
    config: WorkerConfig,
    /// Attempts in flight per endpoint.
    busy: Mutex<HashMap<Uuid, usize>>,
    /// Attempts in flight in all.
    in_flight: AtomicUsize,
    /// Signalled when an endpoint at its limit (or the worker at its own) frees a place.
    freed: Notify,
    /// Opened secrets by their sealed form (opening costs an AEAD decryption per delivery).
    secrets: Mutex<HashMap<String, Option<SigningSecret>>>,
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
                sender,
                config,
                busy: Mutex::new(HashMap::new()),
                in_flight: AtomicUsize::new(0),
                freed: Notify::new(),
                secrets: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Delivers until `shutdown` resolves, then lets the attempts in flight finish (each within
    /// the time limit) and records their outcomes.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let shared = self.shared;
        let config = shared.config.clone();
        let (outcomes, received) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(record(shared.store.clone(), received, config.disable_after));
        let mut wakeups = shared.store.delivery_wakeups();
        let mut tasks: JoinSet<()> = JoinSet::new();
        let batch = u32::try_from(config.concurrency.min(200)).unwrap_or(200);
        tokio::pin!(shutdown);
        loop {
            while tasks.try_join_next().is_some() {}
            let room = config.concurrency.saturating_sub(shared.in_flight.load(Ordering::Acquire));
            let mut more_due = false;
            if room > 0 {
                let skip: Vec<Uuid> = {
                    let busy = shared.busy.lock().expect("busy map");
                    busy.iter().filter(|(_, n)| **n >= config.endpoint_concurrency).map(|(id, _)| *id).collect()
                };
                let want = batch.min(u32::try_from(room).unwrap_or(batch));
                match shared.store.claim_deliveries(want, config.lease(), &skip).await {
                    Ok(claimed) => {
                        more_due = claimed.len() == want as usize;
                        let mut give_back = Vec::new();
                        for job in claimed {
                            if !shared.take_place(job.endpoint_id) {
                                give_back.push((job.id, job.claims));
                                continue;
                            }
                            let shared = shared.clone();
                            let outcomes = outcomes.clone();
                            tasks.spawn(async move {
                                let endpoint = job.endpoint_id;
                                let outcome = shared.deliver(job).await;
                                let _ = outcomes.send(outcome);
                                shared.give_place(endpoint);
                            });
                        }
                        if !give_back.is_empty()
                            && let Err(e) = shared.store.release_deliveries(&give_back).await
                        {
                            tracing::warn!(error = %e, "could not hand back claimed deliveries (they return when their lease ends)");
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
            if more_due && shared.in_flight.load(Ordering::Acquire) < config.concurrency {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break,
                _ = wakeups.changed() => {}
                () = shared.freed.notified() => {}
                () = tokio::time::sleep(config.poll_interval) => {}
            }
        }
        while tasks.join_next().await.is_some() {}
        drop(outcomes);
        let _ = recorder.await;
    }
}

impl Shared {
    /// Takes a place for `endpoint`; false when it is at its limit.
    fn take_place(&self, endpoint: Uuid) -> bool {
        let mut busy = self.busy.lock().expect("busy map");
        let n = busy.entry(endpoint).or_insert(0);
        if *n >= self.config.endpoint_concurrency {
            return false;
        }
        *n += 1;
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Gives a place back, waking the claimer when the endpoint had been at its limit.
    fn give_place(&self, endpoint: Uuid) {
        let was_full = {
            let mut busy = self.busy.lock().expect("busy map");
            let n = busy.entry(endpoint).or_insert(1);
            let was_full = *n >= self.config.endpoint_concurrency;
            *n -= 1;
            if *n == 0 {
                busy.remove(&endpoint);
            }
            was_full
        };
        let in_flight = self.in_flight.fetch_sub(1, Ordering::AcqRel);
        // The claimer needs waking only when something was at a limit.
        if was_full || in_flight >= self.config.concurrency {
            self.freed.notify_one();
        }
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
            counts_for_health: !is_test,
        };
        if !job.endpoint_live && !is_test {
            outcome.error = Some("not sent: the endpoint is disabled or deleted".into());
            outcome.counts_for_health = false;
            metrics::counter!("webhook_attempts_total", "outcome" => "skipped").increment(1);
            return outcome;
        }
        let now = Timestamp::now();
        let mut secrets = Vec::with_capacity(2);
        match self.secret(&job.secret_sealed) {
            Some(secret) => secrets.push(secret),
            None => {
                outcome.error =
                    Some("not sent: the signing secret cannot be opened with this server's --secret-key".into());
                outcome.counts_for_health = false;
                return outcome;
            }
        }
        if let (Some(previous), Some(until)) = (&job.previous_secret_sealed, job.previous_secret_until)
            && until > now
            && let Some(secret) = self.secret(previous)
        {
            secrets.push(secret);
        }
        let body = envelope(&job);
        let timestamp = now.as_second();
        let signature =
            signature_header(&secrets.iter().collect::<Vec<_>>(), &job.event_id, timestamp, body.as_bytes());
        let headers = [
            ("webhook-id", job.event_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        let (response, took) = self.sender.post(&job.url, &headers, body).await;
        outcome.succeeded = response.succeeded;
        outcome.response_status = response.status;
        outcome.response_body = response.body;
        outcome.duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        outcome.error = response.error;
        outcome.gone = response.gone && !is_test;
        if !outcome.succeeded && !outcome.gone && !is_test {
            let jitter: f64 = rand::random();
            let run_attempts = usize::try_from(job.run_attempt).unwrap_or(usize::MAX);
            outcome.retry_at = self
                .config
                .schedule
                .next_attempt_delay_ms(run_attempts, jitter, response.retry_after_ms)
                .map(|ms| Timestamp::now() + Duration::from_millis(ms));
        }
        let label = if outcome.succeeded { "succeeded" } else { "failed" };
        metrics::counter!("webhook_attempts_total", "outcome" => label).increment(1);
        if outcome.succeeded && job.attempt == 1 {
            let lag = Timestamp::now().duration_since(job.event_created_at);
            metrics::histogram!("webhook_delivery_lag_seconds").record(lag.as_secs_f64());
        }
        outcome
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
                        tracing::warn!(%endpoint, "disabled a webhook endpoint (410 Gone or failing for too long)");
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
