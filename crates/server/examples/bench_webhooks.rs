//! Load client and receiver for `scripts/bench-webhooks`: webhook delivery throughput and
//! event-to-delivery latency against a running `slotd serve` on loopback.
//!
//! ```text
//! bench_webhooks throughput BASE_URL API_KEY EVENTS [CLIENTS=32] -- WORKER_COMMAND...
//! bench_webhooks latency BASE_URL API_KEY RATE_PER_S SECONDS [WARMUP_S=2]
//! ```
//!
//! Both modes run a receiver (axum on 127.0.0.1, a random port) that answers every POST `204` and
//! records, per request, the event id and the receive instant, and the event-to-delivery latency:
//! receive wall-clock time − the envelope's `created_at`. They register it as the organization's
//! only webhook endpoint (`POST /v1/webhooks`, every event) and make events with
//! `POST /v1/hosts` (one `host.created` event, so one delivery, each).
//!
//! - `throughput`: the server must run with `--no-delivery-worker`. EVENTS hosts are created from
//!   CLIENTS concurrent keep-alive clients (closed loop), so EVENTS deliveries wait in the queue;
//!   then WORKER_COMMAND (a `slotd worker`) is started and the drain is measured at the
//!   receiver: deliveries/s = distinct events ÷ (last receive − first receive). Afterwards it waits
//!   until the API lists no pending attempt (every outcome recorded) and stops the worker with
//!   SIGTERM.
//! - `latency`: the server runs its own delivery worker. Hosts are created at a steady
//!   RATE_PER_S (`tokio::time::interval`, each request in its own task), first for WARMUP_S
//!   seconds (connection pools, prepared statements and planner statistics of a fresh server and
//!   database; reported apart), then for SECONDS: the first delivery of each event created in that
//!   window gives p50/p99/max. Also printed on stderr: the p99 of each second of the run.
//!
//! Each mode prints one summary line of `key=value` fields on stdout (read by the script) and
//! progress and unexpected answers on stderr.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::task::JoinSet;

mod common;
use common::{Tally, max_ms, quantile_ms, sorted};

/// Give up waiting for deliveries after this long without a new one.
const STALL: Duration = Duration::from_secs(60);

/// One request the receiver took.
struct Receipt {
    /// The event id (empty when the body was not an envelope).
    id: String,
    at: Instant,
    /// The number of the request that made the event (from the host's name, `None` for other
    /// events) and receive time − the event's `created_at` in microseconds (`None`: the body was
    /// not an envelope).
    event: Option<(Option<u64>, i64)>,
}

#[derive(Default)]
struct Received {
    receipts: Vec<Receipt>,
    /// Bodies that were not an event envelope.
    unreadable: u64,
    /// Connections the receiver accepted (the sender's connection reuse).
    connections: u64,
}

type Receiver = Arc<Mutex<Received>>;

#[derive(Deserialize)]
struct Envelope {
    id: String,
    created_at: Timestamp,
    data: Option<EventData>,
}

#[derive(Deserialize)]
struct EventData {
    name: Option<String>,
}

/// Hosts are named after the number of the request that created them.
const HOST_NAME_PREFIX: &str = "Bench host ";

async fn receive(State(received): State<Receiver>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let now = Timestamp::now();
    let envelope: Option<Envelope> = serde_json::from_slice(&body).ok();
    let mut received = received.lock().expect("receiver state");
    match envelope {
        Some(envelope) => {
            let latency_us = now.duration_since(envelope.created_at).as_micros();
            let latency_us = i64::try_from(latency_us).unwrap_or(i64::MAX);
            let n = envelope.data.and_then(|d| d.name?.strip_prefix(HOST_NAME_PREFIX)?.parse().ok());
            received.receipts.push(Receipt { id: envelope.id, at, event: Some((n, latency_us)) });
        }
        None => {
            received.unreadable += 1;
            received.receipts.push(Receipt { id: String::new(), at, event: None });
        }
    }
    StatusCode::NO_CONTENT
}

/// Starts the receiver; returns its URL and what it records.
async fn start_receiver() -> anyhow::Result<(String, Receiver)> {
    let received: Receiver = Arc::default();
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the receiver")?;
    let address = listener.local_addr()?;
    let counter = received.clone();
    let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
        counter.lock().expect("receiver state").connections += 1;
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("receiver stopped: {e}");
        }
    });
    Ok((format!("http://{address}/hook"), received))
}

/// The API of the server under test.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn new(base: &str, key: &str) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().context("HTTP client")?;
        Ok(Api { http, base: base.trim_end_matches('/').to_owned(), key: key.to_owned() })
    }

    /// A call that must answer `expect`; returns the JSON body.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        ensure!(status == expect, "{method} {path} answered {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }

    /// Registers `url` as a webhook endpoint for every event; returns its id.
    async fn create_endpoint(&self, url: &str) -> anyhow::Result<String> {
        let body = json!({ "url": url, "description": "bench receiver" });
        let endpoint = self.call(reqwest::Method::POST, "/v1/webhooks", Some(body), 201).await?;
        Ok(endpoint["id"].as_str().context("endpoint id")?.to_owned())
    }

    /// Makes one event (`host.created`); returns the status (0: transport error) and the body
    /// when it was not 201.
    async fn make_event(&self, n: u64) -> (u16, Option<String>) {
        let body = json!({
            "name": format!("{HOST_NAME_PREFIX}{n}"),
            "email": format!("bench{n}@example.com"),
            "time_zone": "UTC",
            "availability": { "weekly": {} },
        });
        let answer = self.http.post(format!("{}/v1/hosts", self.base)).bearer_auth(&self.key).json(&body).send().await;
        match answer {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the whole body so the connection goes back to the pool.
                let text = response.text().await.unwrap_or_else(|e| format!("(body unreadable: {e})"));
                (status, (status != 201).then_some(text))
            }
            Err(e) => (0, Some(format!("transport error: {e}"))),
        }
    }

    /// Whether the endpoint still has pending attempts (queued, or made but not yet recorded).
    async fn pending(&self, endpoint: &str) -> anyhow::Result<bool> {
        let path = format!("/v1/webhooks/{endpoint}/deliveries?status=pending&limit=1");
        let page = self.call(reqwest::Method::GET, &path, None, 200).await?;
        Ok(page["data"].as_array().is_some_and(|data| !data.is_empty()))
    }
}

/// What the receiver saw.
struct Seen {
    received: usize,
    distinct: usize,
    unreadable: u64,
    connections: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Latency of the first delivery of each event, except those of requests numbered below the
    /// `from_n` given to [`seen`], in microseconds, sorted.
    latencies_us: Vec<f64>,
    /// The same for the requests numbered below `from_n` (the warm-up).
    before_us: Vec<f64>,
    /// The p99 latency (ms) of the first deliveries received in each second after the `began`
    /// given to [`seen`], to tell a steady tail from bursts.
    p99_per_second: Vec<f64>,
}

fn seen(received: &Receiver, from_n: u64, began: Instant) -> Seen {
    let received = received.lock().expect("receiver state");
    let mut first_seen: HashMap<&str, (Instant, Option<u64>, i64)> = HashMap::with_capacity(received.receipts.len());
    for receipt in &received.receipts {
        if let Some((n, latency_us)) = receipt.event {
            first_seen.entry(receipt.id.as_str()).or_insert((receipt.at, n, latency_us));
        }
    }
    let (mut latencies_us, mut before_us) = (Vec::new(), Vec::new());
    let mut seconds: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for (at, n, latency_us) in first_seen.values() {
        let latency_us = *latency_us as f64;
        if n.is_some_and(|n| n < from_n) {
            before_us.push(latency_us);
        } else {
            latencies_us.push(latency_us);
        }
        seconds.entry(at.saturating_duration_since(began).as_secs()).or_default().push(latency_us);
    }
    Seen {
        received: received.receipts.len(),
        distinct: first_seen.len(),
        unreadable: received.unreadable,
        connections: received.connections,
        first: received.receipts.iter().map(|r| r.at).min(),
        last: received.receipts.iter().map(|r| r.at).max(),
        latencies_us: sorted(latencies_us),
        before_us: sorted(before_us),
        p99_per_second: seconds.into_values().map(|lat| quantile_ms(&sorted(lat), 0.99)).collect(),
    }
}

/// Waits until `expected` distinct events arrived, or none arrived for [`STALL`]. Prints progress
/// every few seconds.
async fn await_deliveries(received: &Receiver, expected: usize) {
    let mut last_count = 0;
    let mut last_change = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let count = {
            let received = received.lock().expect("receiver state");
            received.receipts.len()
        };
        if count != last_count {
            last_count = count;
            last_change = Instant::now();
        }
        if count >= expected && seen(received, 0, Instant::now()).distinct >= expected {
            break;
        }
        if last_change.elapsed() > STALL {
            eprintln!("no delivery for {} s; giving up with {count} received", STALL.as_secs());
            break;
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            eprintln!("  … {count} of {expected} deliveries received");
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long to keep listening for duplicates after the last expected delivery.
const GRACE: Duration = Duration::from_millis(500);

/// Creates `events` hosts from `clients` closed-loop clients.
async fn make_events_closed_loop(api: &Api, events: u64, clients: usize) -> anyhow::Result<Tally> {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let api = api.clone();
        let next = next.clone();
        tasks.spawn(async move {
            let mut tally = Tally::default();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= events {
                    break tally;
                }
                let sent = Instant::now();
                let (status, body) = api.make_event(n).await;
                tally.add(status, sent.elapsed(), || body.unwrap_or_default());
            }
        });
    }
    let mut total = Tally::default();
    while let Some(tally) = tasks.join_next().await {
        total.merge(tally.context("client task panicked")?);
    }
    Ok(total)
}

/// Asks a child process to stop (SIGTERM), then kills it if it has not within 15 s.
async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    }
    match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
        Ok(_) => {}
        Err(_) => {
            eprintln!("the worker did not stop within 15 s of SIGTERM; killing it");
            let _ = child.kill().await;
        }
    }
}

async fn throughput(api: Api, events: u64, clients: usize, worker: &[String]) -> anyhow::Result<()> {
    let (url, received) = start_receiver().await?;
    let endpoint = api.create_endpoint(&url).await?;

    eprintln!("creating {events} events from {clients} clients (no worker running)…");
    let began = Instant::now();
    let tally = make_events_closed_loop(&api, events, clients).await?;
    let create_s = began.elapsed().as_secs_f64();
    let other = tally.report_other();
    {
        let received = received.lock().expect("receiver state");
        ensure!(
            received.receipts.is_empty(),
            "{} deliveries arrived before the worker started: is the server running with --no-delivery-worker?",
            received.receipts.len()
        );
    }
    let expected = usize::try_from(tally.created)?;
    // The command line without the server secret.
    let shown: Vec<&str> = worker
        .iter()
        .enumerate()
        .map(|(i, arg)| if i > 0 && worker[i - 1] == "--secret-key" { "…" } else { arg.as_str() })
        .collect();
    eprintln!("{expected} events queued in {create_s:.2} s; starting the worker: {}", shown.join(" "));

    let started = Instant::now();
    let mut child = tokio::process::Command::new(&worker[0])
        .args(&worker[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", worker[0]))?;
    eprintln!("worker pid {}", child.id().unwrap_or(0));
    await_deliveries(&received, expected).await;
    // Every outcome written: the API lists no pending attempt any more.
    let mut recorded_at = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if !api.pending(&endpoint).await? {
            recorded_at = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(GRACE).await;
    stop(&mut child).await;

    let seen = seen(&received, 0, started);
    let (first, last) = (seen.first.unwrap_or(started), seen.last.unwrap_or(started));
    let drain_s = last.duration_since(first).as_secs_f64();
    let recorded_s = recorded_at.map_or(f64::NAN, |at| at.duration_since(first).as_secs_f64());
    let lat = &seen.latencies_us;
    println!(
        "throughput: events={events} created={} other={other} create_s={create_s:.2} create_rate_per_s={:.1} \
         received={} distinct={} duplicates={} missing={} unreadable={} connections={} \
         first_receive_after_start_ms={:.1} drain_s={drain_s:.3} deliveries_per_s={:.1} \
         all_recorded_s={recorded_s:.3} recorded_per_s={:.1} queue_p50_ms={:.1} queue_max_ms={:.1}",
        tally.created,
        tally.created as f64 / create_s,
        seen.received,
        seen.distinct,
        seen.received - seen.distinct,
        expected.saturating_sub(seen.distinct),
        seen.unreadable,
        seen.connections,
        first.duration_since(started).as_secs_f64() * 1000.0,
        seen.distinct as f64 / drain_s,
        seen.distinct as f64 / recorded_s,
        quantile_ms(lat, 0.5),
        max_ms(lat),
    );
    Ok(())
}

async fn latency(api: Api, rate: u32, seconds: u32, warmup_s: u32) -> anyhow::Result<()> {
    let (url, received) = start_receiver().await?;
    api.create_endpoint(&url).await?;

    let warmup = u64::from(rate) * u64::from(warmup_s);
    let total = warmup + u64::from(rate) * u64::from(seconds);
    eprintln!(
        "creating events at {rate}/s for {warmup_s} s of warm-up (not counted), then for {seconds} s \
         (the server delivers as they come)…"
    );
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    // A late tick is made up at once, so the count per second stays at the rate.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = JoinSet::new();
    // Answers to the measured window's requests, and to the warm-up's.
    let (mut tally, mut warmup_tally) = (Tally::default(), Tally::default());
    let mut most_in_flight = 0;
    let began = Instant::now();
    let mut measure_began = began;
    for n in 0..total {
        ticks.tick().await;
        if n == warmup {
            measure_began = Instant::now();
        }
        let api = api.clone();
        tasks.spawn(async move {
            let sent = Instant::now();
            let (status, body) = api.make_event(n).await;
            (n < warmup, status, body, sent.elapsed())
        });
        most_in_flight = most_in_flight.max(tasks.len());
        while let Some(done) = tasks.try_join_next() {
            let (in_warmup, status, body, took) = done.context("request task panicked")?;
            if in_warmup { &mut warmup_tally } else { &mut tally }.add(status, took, || body.unwrap_or_default());
        }
    }
    let sent_s = measure_began.elapsed().as_secs_f64();
    while let Some(done) = tasks.join_next().await {
        let (in_warmup, status, body, took) = done.context("request task panicked")?;
        if in_warmup { &mut warmup_tally } else { &mut tally }.add(status, took, || body.unwrap_or_default());
    }
    let other = tally.report_other() + warmup_tally.report_other();
    let expected = usize::try_from(tally.created + warmup_tally.created)?;
    await_deliveries(&received, expected).await;
    tokio::time::sleep(GRACE).await;

    let seen = seen(&received, warmup, began);
    let per_second: Vec<String> = seen.p99_per_second.iter().map(|ms| format!("{ms:.0}")).collect();
    eprintln!("p99 latency (ms) of the deliveries received in each second of the run: {}", per_second.join(" "));
    let lat = &seen.latencies_us;
    let api_lat = tally.sorted_latencies_us();
    println!(
        "latency: rate={rate} seconds={seconds} warmup_s={warmup_s} sent={} created={} created_total={expected} \
         other={other} sent_s={sent_s:.3} achieved_rate_per_s={:.1} most_in_flight={most_in_flight} \
         api_p50_ms={:.2} api_p99_ms={:.2} received={} distinct={} duplicates={} missing={} unreadable={} \
         connections={} measured={} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} p999_ms={:.2} max_ms={:.2} \
         warmup_p99_ms={:.2} warmup_max_ms={:.2}",
        total - warmup,
        tally.created,
        (total - warmup) as f64 / sent_s,
        quantile_ms(&api_lat, 0.50),
        quantile_ms(&api_lat, 0.99),
        seen.received,
        seen.distinct,
        seen.received - seen.distinct,
        expected.saturating_sub(seen.distinct),
        seen.unreadable,
        seen.connections,
        lat.len(),
        quantile_ms(lat, 0.50),
        quantile_ms(lat, 0.90),
        quantile_ms(lat, 0.99),
        quantile_ms(lat, 0.999),
        max_ms(lat),
        quantile_ms(&seen.before_us, 0.99),
        max_ms(&seen.before_us),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench_webhooks throughput BASE_URL API_KEY EVENTS [CLIENTS=32] -- WORKER_COMMAND...\n       \
                 bench_webhooks latency BASE_URL API_KEY RATE_PER_S SECONDS [WARMUP_S=2]";
    match args.first().map(String::as_str) {
        Some("throughput") => {
            let split = args.iter().position(|a| a == "--").context(usage)?;
            let (own, worker) = (&args[1..split], &args[split + 1..]);
            if own.len() < 3 || own.len() > 4 || worker.is_empty() {
                bail!(usage);
            }
            let events: u64 = own[2].parse().context("EVENTS")?;
            let clients: usize = own.get(3).map_or(Ok(32), |s| s.parse()).context("CLIENTS")?;
            ensure!(events > 0 && clients > 0, "EVENTS and CLIENTS must be positive");
            throughput(Api::new(&own[0], &own[1])?, events, clients, worker).await
        }
        Some("latency") => {
            if args.len() < 5 || args.len() > 6 {
                bail!(usage);
            }
            let rate: u32 = args[3].parse().context("RATE_PER_S")?;
            let seconds: u32 = args[4].parse().context("SECONDS")?;
            let warmup_s: u32 = args.get(5).map_or(Ok(2), |s| s.parse()).context("WARMUP_S")?;
            ensure!(rate > 0 && seconds > 0, "RATE_PER_S and SECONDS must be positive");
            latency(Api::new(&args[1], &args[2])?, rate, seconds, warmup_s).await
        }
        _ => bail!(usage),
    }
}
