//! At-least-once webhook delivery through a crash, on PostgreSQL: 10,000 events are queued for
//! one endpoint while no worker runs, then two `slotd worker` processes deliver them to a
//! loopback receiver. Mid-burst one worker is killed with SIGKILL and started again. Every event
//! must reach the receiver at least once, nothing unknown may arrive, and every request (a
//! redelivery included) must carry the event's id as both its `webhook-id` and its body `id`.
//! The run prints its counts (see them with `--nocapture`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::process::{self, Process};
use reqwest::Client;
use serde_json::{Value, json};
use slotd_store::Plan;
use slotd_store::testing::TestDatabase;

const SECRET: &str = "delivery-crash-test-secret-0123456789abcdef";
const EVENTS: usize = 10_000;
const CREATE_CONCURRENCY: usize = 32;
/// Kill worker A once the receiver has seen this many distinct events.
const KILL_AFTER: usize = 2_500;
/// Deadline for the delivery phase (from starting the workers to nothing pending).
const DELIVERY_DEADLINE: Duration = Duration::from_secs(120);

fn start_worker(name: &str, database_url: &str) -> Process {
    let args = [
        "worker",
        "--secret-key",
        SECRET,
        "--allow-private-webhooks",
        "--webhook-timeout",
        "1s",
        "--webhook-retry-schedule",
        "0,1s,1s,1s",
    ];
    Process::start(name, database_url, &args, "slotd delivery worker running").0
}

/// What the receiver saw: every request's `webhook-id` header and body `id`, in arrival order.
#[derive(Default)]
struct Received {
    requests: Mutex<Vec<(String, String)>>,
    per_id: Mutex<HashMap<String, usize>>,
    distinct: AtomicUsize,
}

async fn receive(State(seen): State<Arc<Received>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let webhook_id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("<missing>").to_owned();
    let body_id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "<unparsable body>".to_owned());
    {
        let mut per_id = seen.per_id.lock().unwrap();
        let count = per_id.entry(webhook_id.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            seen.distinct.fetch_add(1, Ordering::SeqCst);
        }
    }
    seen.requests.lock().unwrap().push((webhook_id, body_id));
    StatusCode::NO_CONTENT
}

async fn get_json(client: &Client, url: &str, key: &str) -> Value {
    let response = client.get(url).bearer_auth(key).send().await.expect("GET");
    let status = response.status();
    let body: Value = response.json().await.expect("JSON answer");
    assert!(status.is_success(), "GET {url}: {status} {body}");
    body
}

/// Every event of the organization, oldest first: (id, type).
async fn all_events(client: &Client, base: &str, key: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/events?limit=100");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = get_json(client, &url, key).await;
        for e in page["data"].as_array().expect("data") {
            out.push((e["id"].as_str().unwrap().to_owned(), e["type"].as_str().unwrap().to_owned()));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn all_logs(processes: &[&Process]) -> String {
    processes.iter().map(|p| p.log_text()).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_events_survive_a_killed_worker_on_postgresql() {
    let started = Instant::now();
    let db = TestDatabase::postgres().await;
    let org = db.store.create_organization("Crash", Plan::Growth).await.unwrap().id;
    let key = slotd::keys::create_api_key(&db.store, org).await.unwrap();

    // The API alone: no delivery happens until the workers start.
    let (api, base) =
        process::serve("api", &db.url, &["--secret-key", SECRET, "--allow-private-webhooks", "--no-delivery-worker"]);

    // The receiver: loopback, answers 204 at once.
    let received = Arc::new(Received::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_address = listener.local_addr().unwrap();
    let app = Router::new().route("/hook", post(receive)).with_state(received.clone());
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = Client::builder().pool_max_idle_per_host(CREATE_CONCURRENCY).build().unwrap();
    let response = client
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({ "url": format!("http://{receiver_address}/hook"), "description": "crash test" }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let endpoint: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{endpoint}");
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();

    // 10,000 host.created events, 32 requests in flight.
    let next = Arc::new(AtomicUsize::new(0));
    let mut creators = Vec::new();
    for _ in 0..CREATE_CONCURRENCY {
        let (client, base, key, next) = (client.clone(), base.clone(), key.clone(), next.clone());
        creators.push(tokio::spawn(async move {
            let mut created = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= EVENTS {
                    return created;
                }
                let body = json!({ "name": format!("Host {i}"), "email": format!("h{i}@example.com"),
                                   "time_zone": "UTC", "availability": { "weekly": {} } });
                let response = client.post(format!("{base}/v1/hosts")).bearer_auth(&key).json(&body).send().await;
                let response = response.unwrap_or_else(|e| panic!("POST /v1/hosts #{i}: {e}"));
                let status = response.status();
                if status != 201 {
                    panic!("POST /v1/hosts #{i}: {status} {}", response.text().await.unwrap_or_default());
                }
                created += 1;
            }
        }));
    }
    let mut created = 0;
    for creator in creators {
        created += creator.await.expect("creator task");
    }
    assert_eq!(created, EVENTS);
    let created_secs = started.elapsed().as_secs_f64();

    let events = all_events(&client, &base, &key).await;
    assert_eq!(events.len(), EVENTS, "exactly one event per created host");
    assert!(events.iter().all(|(_, t)| t == "host.created"), "only host.created events");
    let event_ids: HashSet<String> = events.into_iter().map(|(id, _)| id).collect();
    assert_eq!(event_ids.len(), EVENTS, "event ids are unique");
    assert_eq!(db.store.pending_delivery_count().await.unwrap(), EVENTS as i64, "one pending delivery per event");
    assert_eq!(received.requests.lock().unwrap().len(), 0, "nothing delivered without a worker");

    // Two workers; kill A with SIGKILL mid-burst and start it again.
    let delivery_started = Instant::now();
    let deadline = delivery_started + DELIVERY_DEADLINE;
    let mut worker_a = start_worker("worker A", &db.url);
    let worker_b = start_worker("worker B", &db.url);
    let counts =
        |received: &Received| (received.requests.lock().unwrap().len(), received.distinct.load(Ordering::SeqCst));
    while received.distinct.load(Ordering::SeqCst) < KILL_AFTER {
        if Instant::now() > deadline {
            let (requests, distinct) = counts(&received);
            panic!(
                "deliveries never reached {KILL_AFTER} before the deadline: requests={requests} distinct={distinct}\n{}",
                all_logs(&[&api, &worker_a, &worker_b])
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    worker_a.kill();
    let (requests_at_kill, killed_after) = counts(&received);
    let killed_at = delivery_started.elapsed().as_secs_f64();
    let pending_at_kill = db.store.pending_delivery_count().await.unwrap();
    let old_a_log = worker_a.log_text();
    drop(worker_a);
    let worker_a = start_worker("worker A (restarted)", &db.url);

    // Until every event has arrived and nothing is pending.
    let mut pending;
    loop {
        pending = db.store.pending_delivery_count().await.unwrap();
        let (requests, distinct) = counts(&received);
        if distinct >= EVENTS && pending == 0 {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "not done after {DELIVERY_DEADLINE:?}: events={EVENTS} received_requests={requests} \
                 distinct={distinct} pending={pending} killed_after={killed_after}\n{old_a_log}\n{}",
                all_logs(&[&api, &worker_a, &worker_b])
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered_secs = delivery_started.elapsed().as_secs_f64();
    // Anything still in flight when the last pending row was recorded has arrived by now.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The database's own view: nothing failed.
    let failed =
        get_json(&client, &format!("{base}/v1/webhooks/{endpoint_id}/deliveries?status=failed&limit=100"), &key).await;
    let failed = failed["data"].as_array().unwrap().len();

    let requests = received.requests.lock().unwrap().clone();
    let per_id = received.per_id.lock().unwrap().clone();
    let received_ids: HashSet<String> = per_id.keys().cloned().collect();
    let lost: Vec<&String> = event_ids.difference(&received_ids).take(10).collect();
    let unknown: Vec<&String> = received_ids.difference(&event_ids).take(10).collect();
    let mismatched: Vec<&(String, String)> = requests.iter().filter(|(header, body)| header != body).take(10).collect();
    let duplicates = requests.len() - received_ids.len();
    let duplicated_events = per_id.values().filter(|&&n| n > 1).count();
    let most = per_id.values().copied().max().unwrap_or(0);
    println!(
        "crash: events={EVENTS} received_requests={} distinct={} duplicates={duplicates} \
         duplicated_events={duplicated_events} max_per_event={most} killed_after={killed_after} \
         (requests_at_kill={requests_at_kill} pending_at_kill={pending_at_kill} at={killed_at:.1}s) \
         failed={failed} pending={pending} create={created_secs:.1}s deliver={delivered_secs:.1}s",
        requests.len(),
        received_ids.len(),
    );
    assert!(lost.is_empty(), "events never delivered (first 10): {lost:?}");
    assert!(unknown.is_empty(), "webhook-ids of no created event (first 10): {unknown:?}");
    assert!(mismatched.is_empty(), "body id differs from webhook-id (first 10): {mismatched:?}");
    assert_eq!(received_ids.len(), EVENTS);
    assert_eq!(failed, 0, "no delivery failed");

    drop((worker_a, worker_b, api));
    receiver.abort();
    db.cleanup().await;
}
