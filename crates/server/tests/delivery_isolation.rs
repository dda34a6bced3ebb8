//! Delivery isolation: one webhook endpoint that takes 30 s to answer must not slow down another
//! endpoint's deliveries. A real `slotd serve` process (with its delivery worker at the default
//! 10 s time limit and 16 attempts per endpoint) on a fresh PostgreSQL database sends to two
//! in-process receivers on loopback: a healthy one that answers 204 at once and a slow one that
//! sleeps 30 s. The healthy endpoint's delivery latency (receive time − the event's `created_at`)
//! is measured under a steady stream of changes, first alone (baseline), then with the slow
//! endpoint subscribed to every event too (it saturates its 16 places at once, builds a backlog of
//! the rest, and its attempts time out in waves). Its p99 must stay within 1.5× of the baseline
//! p99. Each run prints both distributions and the worst latency of every second of each phase.
//! Commits on the test's database do not wait for the WAL flush, so disk stalls stay out of it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::process;
use jiff::Timestamp;
use reqwest::Client;
use serde_json::{Value, json};
use slotd_store::testing::TestDatabase;
use slotd_store::{Plan, Store};

const SECRET: &str = "isolation-test-secret-0123456789abcdef";
/// Changes per second during a measured phase.
const RATE: u64 = 100;
/// Length of a measured phase. Longer than slotd's 10 s time limit, so phase B also covers the
/// first wave of the slow endpoint's attempts timing out and its places being claimed again.
const PHASE_SECONDS: u64 = 15;
/// Unmeasured changes sent first (connections, caches, prepared statements warm up).
const WARMUP_EVENTS: usize = 200;
/// How long the slow receiver takes to answer.
const SLOW_SLEEP: Duration = Duration::from_secs(30);
/// Millisecond-scale p99s are mostly scheduler noise on a 2-core machine that runs the test, slotd
/// and PostgreSQL at once, so the baseline p99 is floored at 10 ms before the 1.5× comparison:
/// the assertion is p99_B <= 1.5 × max(p99_A, 10 ms). Both raw figures are printed.
const BASELINE_FLOOR_MS: f64 = 10.0;
const MAX_RATIO: f64 = 1.5;

/// What the healthy receiver saw: per webhook-id, the phase tag (from the host's name) and the
/// latency in milliseconds; plus how many deliveries repeated an id already seen.
#[derive(Default)]
struct Healthy {
    seen: Mutex<HashMap<String, Sample>>,
    repeats: AtomicUsize,
}

/// One first delivery to the healthy endpoint.
#[derive(Clone, Copy)]
struct Sample {
    phase: char,
    created: Timestamp,
    latency_ms: f64,
}

impl Healthy {
    fn count(&self, phase: char) -> usize {
        self.seen.lock().unwrap().values().filter(|s| s.phase == phase).count()
    }

    fn samples(&self, phase: char) -> Vec<Sample> {
        self.seen.lock().unwrap().values().filter(|s| s.phase == phase).copied().collect()
    }
}

/// The latencies of `samples`, sorted.
fn sorted_latencies(samples: &[Sample]) -> Vec<f64> {
    let mut out: Vec<f64> = samples.iter().map(|s| s.latency_ms).collect();
    out.sort_by(f64::total_cmp);
    out
}

/// The worst latency of each second of a phase (by event creation time), for the log: shows
/// whether a tail is spread out (noise) or bunched at one moment (e.g. a timeout wave).
fn worst_per_second(samples: &[Sample]) -> String {
    let Some(start) = samples.iter().map(|s| s.created).min() else { return String::new() };
    let mut worst: Vec<f64> = Vec::new();
    for sample in samples {
        let second = usize::try_from(sample.created.duration_since(start).as_secs()).unwrap_or(0);
        if worst.len() <= second {
            worst.resize(second + 1, 0.0);
        }
        worst[second] = worst[second].max(sample.latency_ms);
    }
    worst.iter().map(|w| format!("{w:.0}")).collect::<Vec<_>>().join(" ")
}

async fn healthy_hook(State(state): State<Arc<Healthy>>, headers: HeaderMap, body: String) -> StatusCode {
    let received = Timestamp::now();
    let envelope: Value = serde_json::from_str(&body).expect("the delivery body is JSON");
    let created: Timestamp = envelope["created_at"].as_str().expect("created_at").parse().expect("RFC 3339 created_at");
    let latency_ms = received.duration_since(created).as_secs_f64() * 1000.0;
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).expect("webhook-id header").to_owned();
    // The phase is the host name's tag: "iso-W-…", "iso-A-…", "iso-B-…"; anything else is '?'.
    let data = envelope["data"].to_string();
    let phase = ['W', 'A', 'B'].into_iter().find(|p| data.contains(&format!("\"iso-{p}-"))).unwrap_or('?');
    match state.seen.lock().unwrap().entry(id) {
        Entry::Occupied(_) => {
            state.repeats.fetch_add(1, Ordering::Relaxed);
        }
        Entry::Vacant(slot) => {
            slot.insert(Sample { phase, created, latency_ms });
        }
    }
    StatusCode::NO_CONTENT
}

async fn slow_hook(State(hits): State<Arc<AtomicUsize>>) -> StatusCode {
    hits.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(SLOW_SLEEP).await;
    StatusCode::NO_CONTENT
}

/// Serves `router` on a fresh loopback port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty());
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Creates `count` hosts named `iso-{phase}-{i}` at `RATE` per second (each request in its own
/// task, so a slow answer never delays the next one), then waits for every answer.
async fn generate(client: &Client, base: &str, key: &str, phase: char, count: usize) {
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let mut requests = Vec::with_capacity(count);
    for i in 0..count {
        ticks.tick().await;
        let request = client.post(format!("{base}/v1/hosts")).bearer_auth(key).json(&json!({
            "name": format!("iso-{phase}-{i}"), "email": "h@example.com", "time_zone": "UTC",
            "availability": { "weekly": {} }
        }));
        requests.push(tokio::spawn(async move {
            let response = request.send().await.expect("create host");
            response.status().as_u16()
        }));
    }
    for request in requests {
        assert_eq!(request.await.unwrap(), 201, "every host is created");
    }
}

/// Waits until the healthy receiver holds `count` deliveries of `phase`.
async fn arrive(healthy: &Healthy, phase: char, count: usize) {
    let started = Instant::now();
    loop {
        let got = healthy.count(phase);
        if got >= count {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "phase {phase}: only {got} of {count} deliveries reached the healthy endpoint within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create_endpoint(client: &Client, base: &str, key: &str, url: &str, description: &str) -> String {
    let response = client
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(key)
        .json(&json!({ "url": url, "description": description }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn run(url: String, store: Store) {
    let org = store.create_organization("Isolation", Plan::Growth).await.unwrap().id;
    let key = slotd::keys::create_api_key(&store, org).await.unwrap();
    // An event's clock starts before its commit, and on a virtual machine a WAL flush now and
    // then takes 30–80 ms (seen in PostgreSQL's log as several API COMMITs that slow at one
    // instant). Such a stall lands in either phase at random and can decide a p99 of 1,500
    // samples on its own. What is compared here is the worker, not the disk: slotd's commits on
    // this database do not wait for the flush.
    store.commit_without_flush_wait_for_test().await.unwrap();
    let (server, base) = process::serve("slotd", &url, &["--secret-key", SECRET, "--allow-private-webhooks"]);
    let client = Client::new();

    let healthy = Arc::new(Healthy::default());
    let healthy_url = serve(Router::new().route("/healthy", post(healthy_hook)).with_state(healthy.clone())).await;
    let slow_hits = Arc::new(AtomicUsize::new(0));
    let slow_url = serve(Router::new().route("/slow", post(slow_hook)).with_state(slow_hits.clone())).await;

    create_endpoint(&client, &base, &key, &format!("{healthy_url}/healthy"), "healthy").await;
    let per_phase = usize::try_from(RATE * PHASE_SECONDS).unwrap();

    // Warm-up (unmeasured), then phase A: the healthy endpoint alone.
    generate(&client, &base, &key, 'W', WARMUP_EVENTS).await;
    arrive(&healthy, 'W', WARMUP_EVENTS).await;
    generate(&client, &base, &key, 'A', per_phase).await;
    arrive(&healthy, 'A', per_phase).await;
    let samples_a = healthy.samples('A');
    let a = sorted_latencies(&samples_a);

    // Phase B: the slow endpoint subscribes to every event as well, then the same load again.
    let slow_id = create_endpoint(&client, &base, &key, &format!("{slow_url}/slow"), "slow").await;
    let b_started = Instant::now();
    generate(&client, &base, &key, 'B', per_phase).await;
    arrive(&healthy, 'B', per_phase).await;
    let b_took = b_started.elapsed();
    let samples_b = healthy.samples('B');
    let b = sorted_latencies(&samples_b);

    // What the slow endpoint's deliveries look like at the end of phase B.
    let mut failed = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{base}/v1/webhooks/{slow_id}/deliveries?status=failed&limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client.get(path).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
        failed += page["data"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }

    let (p50_a, p99_a, max_a) = (percentile(&a, 50.0), percentile(&a, 99.0), a[a.len() - 1]);
    let (p50_b, p99_b, max_b) = (percentile(&b, 50.0), percentile(&b, 99.0), b[b.len() - 1]);
    let floored = p99_a.max(BASELINE_FLOOR_MS);
    let ratio = p99_b / floored;
    println!(
        "isolation: baseline p50={p50_a:.1}ms p99={p99_a:.1}ms max={max_a:.1}ms | with slow endpoint \
         p50={p50_b:.1}ms p99={p99_b:.1}ms max={max_b:.1}ms ratio={ratio:.2} (p99_B / max(p99_A, \
         {BASELINE_FLOOR_MS} ms); raw p99_B/p99_A={:.2})",
        p99_b / p99_a
    );
    println!(
        "isolation: {per_phase} events per phase at {RATE}/s; phase B took {:.1}s to deliver to the healthy \
         endpoint; slow endpoint received {} requests (failed attempts recorded: {failed}); healthy repeats={}",
        b_took.as_secs_f64(),
        slow_hits.load(Ordering::Relaxed),
        healthy.repeats.load(Ordering::Relaxed),
    );
    println!("isolation: worst latency (ms) per second, baseline:           {}", worst_per_second(&samples_a));
    println!("isolation: worst latency (ms) per second, with slow endpoint: {}", worst_per_second(&samples_b));
    assert!(slow_hits.load(Ordering::Relaxed) >= 16, "the slow endpoint was saturated during phase B");
    assert_eq!(healthy.count('?'), 0, "the healthy endpoint got only the test's events");
    assert!(
        p99_b <= MAX_RATIO * floored,
        "the healthy endpoint's p99 with a slow endpoint present ({p99_b:.1} ms) exceeds {MAX_RATIO}× its \
         baseline p99 ({p99_a:.1} ms, floored at {BASELINE_FLOOR_MS} ms)"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30s_endpoint_does_not_slow_a_healthy_one_on_postgresql() {
    let db = TestDatabase::postgres().await;
    // Run in a task so a failed assertion still drops the database (the server guard kills
    // slotd as the task unwinds).
    let outcome = tokio::spawn(run(db.url.clone(), db.store.clone())).await;
    db.cleanup().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
