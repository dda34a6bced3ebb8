//! slotd behind PgBouncer in transaction mode (a real PgBouncer, see `common::pgbouncer`), told so
//! by `statement-cache-capacity=0` in its database URL: processes starting at once migrate one
//! empty database (over the direct URL, and through the pooler alone), serve slots and bookings,
//! and a `slotd worker` delivers webhooks through it; the delivery worker's settings hold for its
//! own transactions and never reach another client's. (The racing-bookings test through PgBouncer
//! is in `tests/concurrency.rs`.) PostgreSQL only: there is no pooler in front of SQLite.

mod common;

use std::time::Duration;

use common::pgbouncer::{self, PgBouncer};
use common::process::{self, Process};
use common::receiver::Receiver;
use reqwest::Client;
use serde_json::{Value, json};
use slotd_store::testing::TestDatabase;
use slotd_store::{Plan, Store};

const SECRET: &str = "pgbouncer-test-secret-0123456789abcdef";

/// Starts `slotd serve` processes with these arguments all at once (each on its own thread) and
/// waits until every one listens.
fn serve_at_once(url: &str, args: &[&[&str]]) -> Vec<(Process, String)> {
    let starting: Vec<_> = args
        .iter()
        .enumerate()
        .map(|(n, args)| {
            let url = url.to_owned();
            let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            std::thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                process::serve(&format!("serve-{n}"), &url, &args)
            })
        })
        .collect();
    starting.into_iter().map(|t| t.join().expect("a slotd process started")).collect()
}

async fn send(client: &Client, method: reqwest::Method, url: String, key: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = client.request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Through the two processes in turn: a host with availability and an event type, its slots,
/// a booking on one of them, and that booking read back from the other process.
async fn slots_and_bookings_work_across(store: &Store, bases: [&str; 2]) {
    let org = store.create_organization("Pooled", Plan::Growth).await.unwrap().id;
    let key = slotd::keys::create_api_key(store, org).await.unwrap();
    let client = Client::new();
    let post = |base: &str, path: &str, body: Value| {
        send(&client, reqwest::Method::POST, format!("{base}{path}"), &key, Some(body))
    };
    let (status, host) =
        post(bases[0], "/v1/hosts", json!({ "name": "Ada", "email": "ada@example.com", "time_zone": "UTC" })).await;
    assert_eq!(status, 201, "{host}");
    let host_id = host["id"].as_str().unwrap().to_owned();
    let day = json!([{ "start": "09:00", "end": "17:00" }]);
    let week = json!({ "monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day });
    let (status, body) = send(
        &client,
        reqwest::Method::PUT,
        format!("{}/v1/hosts/{host_id}/availability", bases[1]),
        &key,
        Some(json!({ "weekly": week })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, event_type) = post(
        bases[0],
        "/v1/event-types",
        json!({ "slug": "intro", "title": "Intro", "duration_minutes": 30, "slot_interval_minutes": 30,
                "booking_window_days": 3650,
                "hosts": [host_id] }),
    )
    .await;
    assert_eq!(status, 201, "{event_type}");
    let event_type_id = event_type["id"].as_str().unwrap().to_owned();

    let (status, slots) = send(
        &client,
        reqwest::Method::GET,
        format!(
            "{}/v1/slots?event_type_id={event_type_id}&start=2027-03-01T00%3A00%3A00Z&end=2027-03-03T00%3A00%3A00Z",
            bases[1]
        ),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{slots}");
    let starts: Vec<&str> =
        slots["slots"].as_array().expect("slots").iter().filter_map(|s| s["start"].as_str()).collect();
    assert_eq!(starts.len(), 2 * 16, "two working days of 30-minute slots, 09:00 to 17:00: {slots}");
    assert_eq!(starts[0], "2027-03-01T09:00:00Z");

    let (status, booking) = post(
        bases[1],
        "/v1/bookings",
        json!({ "event_type_id": event_type_id, "start": starts[0],
                "attendee": { "name": "Grace", "email": "grace@example.com", "time_zone": "UTC" } }),
    )
    .await;
    assert_eq!(status, 201, "{booking}");
    let booking_id = booking["id"].as_str().unwrap();
    let (status, read) =
        send(&client, reqwest::Method::GET, format!("{}/v1/bookings/{booking_id}", bases[0]), &key, None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["starts_at"], starts[0]);
    let (status, taken) = post(
        bases[0],
        "/v1/bookings",
        json!({ "event_type_id": event_type_id, "start": starts[0],
                "attendee": { "name": "Linus", "email": "linus@example.com", "time_zone": "UTC" } }),
    )
    .await;
    assert_eq!((status, taken["code"].as_str()), (409, Some("slot_taken")), "{taken}");
}

/// The process's "slotd listening" line says `behind_pooler: true` (its log is read on another
/// thread: give it a moment).
fn says_it_is_behind_a_pooler(server: &Process) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !server.log_text().contains("\"behind_pooler\":true") {
        assert!(std::time::Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn migrations_ran_once_each(applied: &[(i64, i64)]) {
    assert!(applied.len() >= 6, "every migration applied: {applied:?}");
    assert!(
        applied.iter().enumerate().all(|(i, &(version, times))| version == i as i64 + 1 && times == 1),
        "{applied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_starting_at_once_behind_pgbouncer_migrate_over_the_direct_url_and_serve_slots_and_bookings() {
    let Some(bouncer) = PgBouncer::start() else { return };
    let db = TestDatabase::postgres_unmigrated().await;
    let url = bouncer.url(pgbouncer::database_name(&db.url));
    let args: &[&str] = &["--secret-key", SECRET, "--database-direct-url", &db.url];
    let servers = serve_at_once(&url, &[args, args]);
    for (server, _) in &servers {
        says_it_is_behind_a_pooler(server);
    }
    migrations_ran_once_each(&db.store.applied_migrations_for_test().await.unwrap());
    slots_and_bookings_work_across(&db.store, [&servers[0].1, &servers[1].1]).await;
    drop(servers);
    drop(bouncer);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_starting_at_once_through_pgbouncer_alone_migrate_once_and_serve() {
    // No direct URL: the migrations' lock is transaction-scoped, so it holds through the pooler.
    let Some(bouncer) = PgBouncer::start() else { return };
    let db = TestDatabase::postgres_unmigrated().await;
    let url = bouncer.url(pgbouncer::database_name(&db.url));
    let args: &[&str] = &["--secret-key", SECRET];
    let servers = serve_at_once(&url, &[args, args]);
    migrations_ran_once_each(&db.store.applied_migrations_for_test().await.unwrap());
    slots_and_bookings_work_across(&db.store, [&servers[0].1, &servers[1].1]).await;
    drop(servers);
    drop(bouncer);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slotd_worker_behind_pgbouncer_delivers_every_webhook() {
    let Some(bouncer) = PgBouncer::start() else { return };
    let db = TestDatabase::postgres().await;
    let url = bouncer.url(pgbouncer::database_name(&db.url));
    let org = db.store.create_organization("Hooks", Plan::Growth).await.unwrap().id;
    let key = slotd::keys::create_api_key(&db.store, org).await.unwrap();
    let (api, base) =
        process::serve("api", &url, &["--secret-key", SECRET, "--allow-private-webhooks", "--no-delivery-worker"]);
    let (worker, _) = Process::start(
        "worker",
        &url,
        &[
            "worker",
            "--secret-key",
            SECRET,
            "--allow-private-webhooks",
            "--webhook-poll-interval",
            "20ms",
            "--database-direct-url",
            &db.url,
        ],
        "slotd delivery worker running",
    );
    let receiver = Receiver::ok().await;
    let client = Client::new();
    let (status, endpoint) = send(
        &client,
        reqwest::Method::POST,
        format!("{base}/v1/webhooks"),
        &key,
        Some(json!({ "url": receiver.url, "description": "through the pooler" })),
    )
    .await;
    assert_eq!(status, 201, "{endpoint}");
    const HOSTS: usize = 20;
    for i in 0..HOSTS {
        let body = json!({ "name": format!("Host {i}"), "email": format!("h{i}@example.com"), "time_zone": "UTC" });
        let (status, host) = send(&client, reqwest::Method::POST, format!("{base}/v1/hosts"), &key, Some(body)).await;
        assert_eq!(status, 201, "{host}");
    }
    let received = receiver.wait_for(HOSTS, Duration::from_secs(30)).await;
    let mut names: Vec<String> =
        received.iter().map(|r| r.json()["data"]["name"].as_str().unwrap_or_default().to_owned()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), HOSTS, "one host.created per host: {names:?}");
    assert!(received.iter().all(|r| r.json()["type"] == "host.created"));
    // Every outcome is recorded: nothing left to deliver.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db.store.pending_delivery_count().await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries still pending\n{}\n{}\n{}",
            api.log_text(),
            worker.log_text(),
            bouncer.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop((api, worker));
    drop(bouncer);
    db.cleanup().await;
}

#[tokio::test]
async fn behind_pgbouncer_the_delivery_workers_settings_hold_in_its_transactions_and_never_reach_other_clients() {
    let Some(bouncer) = PgBouncer::start() else { return };
    let db = TestDatabase::postgres().await;
    let pooled = Store::connect(&bouncer.url(pgbouncer::database_name(&db.url))).await.unwrap();
    assert!(pooled.behind_pooler());
    let worker = pooled.for_delivery_worker().await.unwrap();
    // Round-robin over the pooler's few server connections: each of them serves the worker a
    // few times, and then the API's store.
    let rounds = 4 * pgbouncer::POOL_SIZE as usize;
    for _ in 0..rounds {
        for (setting, value) in [("synchronous_commit", "off"), ("enable_seqscan", "off"), ("jit", "off")] {
            assert_eq!(worker.setting_for_test(setting).await.unwrap(), value, "the worker's {setting}");
        }
    }
    for _ in 0..rounds {
        for (setting, value) in [("synchronous_commit", "on"), ("enable_seqscan", "on")] {
            assert_eq!(pooled.setting_for_test(setting).await.unwrap(), value, "another client's {setting}");
        }
    }
    worker.close().await;
    pooled.close().await;
    drop(bouncer);
    db.cleanup().await;
}
