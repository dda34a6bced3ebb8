//! PostgreSQL stopped and started again under load: a lost database is unavailability (503 with
//! `Retry-After`), never a 500, and a client that retries with the same `Idempotency-Key` ends
//! up with exactly one booking per key, each in the event log and delivered to its webhook.
//!
//! The test owns its PostgreSQL: a cluster made with `initdb` in a temporary directory, on its
//! own loopback port (run as the `postgres` user through `runuser` when the test runs as root,
//! since the server refuses to run as root), stopped on every exit path by [`PrivatePostgres`]'s
//! `Drop`. Eight writers create bookings through a `slotd serve` process while the cluster is
//! stopped with `pg_ctl stop -m fast` (every backend gets SQLSTATE 57P01, "terminating
//! connection due to administrator command") and started again. Without `initdb` the test
//! says so and passes, except with `CI=true`, where that is a failure.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process;
use common::receiver::Receiver;
use reqwest::Client;
use serde_json::{Value, json};
use slotd_store::{Plan, Store};

const SECRET: &str = "database-outage-test-secret-0123456789abcdef";
const WRITERS: usize = 8;
/// How long the cluster stays down.
const OUTAGE: Duration = Duration::from_secs(3);

/// A PostgreSQL cluster of this test's own, in a temporary directory; stopped when dropped.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Run the server's commands as `postgres` (we are root).
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Makes and starts a cluster, or `None` when PostgreSQL's server binaries are not installed.
    fn start() -> Option<PrivatePostgres> {
        let bin = server_binaries()?;
        let dir = tempfile::Builder::new().prefix("slotd-outage-pg-").tempdir().expect("temporary directory");
        let as_postgres = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        if as_postgres {
            let id = |flag: &str| -> u32 {
                let out = Command::new("id").args([flag, "postgres"]).output().expect("id postgres");
                assert!(out.status.success(), "no postgres user to run PostgreSQL as (the test runs as root)");
                String::from_utf8_lossy(&out.stdout).trim().parse().expect("a numeric id")
            };
            std::os::unix::fs::chown(dir.path(), Some(id("-u")), Some(id("-g"))).expect("chown to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cluster = PrivatePostgres { bin, dir, port, as_postgres };
        let data = cluster.data_dir();
        cluster.run("initdb", &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
        cluster.start_server();
        Some(cluster)
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.args(args).current_dir(self.dir.path());
        command
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program, args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Starts the server and waits until it accepts connections.
    fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data_dir(), "-l", &log, "-o", &options, "-w", "-t", "60", "start"]);
    }

    /// `pg_ctl stop -m fast`: open transactions are rolled back and every backend is told
    /// 57P01 before the server exits.
    fn stop_fast(&self) {
        self.run("pg_ctl", &["-D", &self.data_dir(), "-m", "fast", "-w", "-t", "60", "stop"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Whatever happened, the cluster goes (a stopped one makes this a harmless error).
        let _ = self.command("pg_ctl", &["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"]).output();
    }
}

/// The directory of `initdb` and `pg_ctl`: on PATH, else Debian's newest
/// `/usr/lib/postgresql/<version>/bin`.
fn server_binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file());
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// What the writers saw.
#[derive(Default)]
struct Tally {
    /// Answers by status.
    statuses: Mutex<BTreeMap<u16, usize>>,
    /// Bodies of answers that must never happen (a 500, anything but 200/201/409/503).
    unexpected: Mutex<Vec<String>>,
    /// 503s without a Retry-After header.
    missing_retry_after: AtomicUsize,
    /// Requests that got no HTTP answer at all.
    transport_errors: Mutex<Vec<String>>,
    /// (Idempotency-Key, booking id) of every acknowledged booking.
    acknowledged: Mutex<Vec<(String, String)>>,
}

/// One writer: books its own starts one after the other, each under its own key, retrying a
/// 503 with the same key until it is acknowledged, and reads the slots of the week ahead
/// before each; stops after `stop` is set.
async fn writer(
    writer: usize,
    client: Client,
    base: String,
    key: String,
    event_type: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let first: jiff::Timestamp = "2027-02-01T00:00:00Z".parse().unwrap();
    for i in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let slot = i64::try_from(writer + WRITERS * i).unwrap();
        let start = first + jiff::SignedDuration::from_mins(15 * slot);
        let idempotency_key = format!("outage-{writer}-{i}");
        // A read without a key between writes: its failures are answered as they are (no
        // replay lookup stands between a lost connection and the answer).
        let window = format!("start={}&end={}", start, start + jiff::SignedDuration::from_hours(24 * 7));
        let slots = format!("{base}/v1/slots?event_type_id={event_type}&{}", window.replace(':', "%3A"));
        match client.get(slots).bearer_auth(&key).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                *tally.statuses.lock().unwrap().entry(status).or_default() += 1;
                if status == 503 && !response.headers().contains_key("retry-after") {
                    tally.missing_retry_after.fetch_add(1, Ordering::SeqCst);
                }
                if status != 200 && status != 503 {
                    let text = response.text().await.unwrap_or_default();
                    tally.unexpected.lock().unwrap().push(format!("GET /v1/slots: {status} {text}"));
                }
            }
            Err(e) => tally.transport_errors.lock().unwrap().push(format!("GET /v1/slots: {e}")),
        }
        let body = json!({ "event_type_id": event_type, "start": start.to_string(),
                           "attendee": { "name": "Grace", "email": "grace@example.com", "time_zone": "UTC" } });
        loop {
            let sent = client
                .post(format!("{base}/v1/bookings"))
                .bearer_auth(&key)
                .header("idempotency-key", &idempotency_key)
                .json(&body)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(e) => {
                    tally.transport_errors.lock().unwrap().push(format!("{idempotency_key}: {e}"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            *tally.statuses.lock().unwrap().entry(status).or_default() += 1;
            let has_retry_after = response.headers().contains_key("retry-after");
            let text = response.text().await.unwrap_or_default();
            match status {
                201 => {
                    let booking: Value = serde_json::from_str(&text).unwrap();
                    let id = booking["id"].as_str().unwrap().to_owned();
                    tally.acknowledged.lock().unwrap().push((idempotency_key.clone(), id));
                    break;
                }
                // Not expected (every writer has its own starts), but not wrong either.
                409 => break,
                503 => {
                    if !has_retry_after {
                        tally.missing_retry_after.fetch_add(1, Ordering::SeqCst);
                    }
                    // A short wait instead of the whole Retry-After keeps the test quick.
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                _ => {
                    tally.unexpected.lock().unwrap().push(format!("{idempotency_key}: {status} {text}"));
                    break;
                }
            }
        }
    }
}

async fn readyz(client: &Client, base: &str) -> Option<u16> {
    client.get(format!("{base}/readyz")).send().await.ok().map(|r| r.status().as_u16())
}

/// Polls `/readyz` until it answers `status` (panics after `within`).
async fn wait_for_readyz(client: &Client, base: &str, status: u16, within: Duration, log: impl Fn() -> String) {
    let deadline = Instant::now() + within;
    while readyz(client, base).await != Some(status) {
        assert!(Instant::now() < deadline, "/readyz did not answer {status} within {within:?}\n{}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn all_events(client: &Client, base: &str, key: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/events?limit=100");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client.get(url).bearer_auth(key).send().await.unwrap().json().await.unwrap();
        events.extend(page["data"].as_array().unwrap_or_else(|| panic!("{page}")).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return events,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_postgresql_mid_load_answers_503_never_500_and_retried_keys_lose_and_double_nothing() {
    let Some(postgres) = PrivatePostgres::start().map(Arc::new) else {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "CI=true: PostgreSQL's initdb/pg_ctl are required for this test (apt-get install postgresql)");
        eprintln!("skipped: no initdb/pg_ctl (install PostgreSQL's server package to run this test)");
        return;
    };
    let url = postgres.url();
    let store = Store::connect(&url).await.expect("connect to the private PostgreSQL");
    store.migrate().await.unwrap();
    let org = store.create_organization("Outage", Plan::Growth).await.unwrap().id;
    let key = slotd::keys::create_api_key(&store, org).await.unwrap();
    store.close().await;

    let receiver = Receiver::ok().await;
    let (server, base) = process::serve(
        "slotd",
        &url,
        &[
            "--secret-key",
            SECRET,
            "--allow-private-webhooks",
            "--webhook-timeout",
            "2s",
            "--webhook-retry-schedule",
            "0,500ms,1s,1s,1s,1s,1s",
        ],
    );
    let log = || format!("{}\n--- postgresql ---\n{}", server.log_text(), postgres.log());
    let client = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).bearer_auth(&key).json(&body).send();
    let webhook = post("/v1/webhooks", json!({ "url": receiver.url, "events": ["booking.confirmed"] })).await.unwrap();
    assert_eq!(webhook.status(), 201, "{}", webhook.text().await.unwrap());
    let days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    let weekly: serde_json::Map<String, Value> =
        days.iter().map(|d| ((*d).to_owned(), json!([{ "start": "00:00", "end": "24:00" }]))).collect();
    let host: Value = post(
        "/v1/hosts",
        json!({ "name": "Ada", "email": "ada@example.com", "time_zone": "UTC", "availability": { "weekly": weekly } }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let event_type: Value = post(
        "/v1/event-types",
        json!({ "slug": "call", "title": "Call", "duration_minutes": 15, "slot_interval_minutes": 15,
                "min_notice_minutes": 0, "booking_window_days": 3650, "hosts": [host["id"]] }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let event_type = event_type["id"].as_str().unwrap_or_else(|| panic!("{event_type}")).to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let args = (client.clone(), base.clone(), key.clone(), event_type.clone(), stop.clone(), tally.clone());
            tokio::spawn(writer(w, args.0, args.1, args.2, args.3, args.4, args.5))
        })
        .collect();
    let acknowledged = || tally.acknowledged.lock().unwrap().len();

    // Load first, then the outage in the middle of it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged() < 40 {
        assert!(Instant::now() < deadline, "bookings are too slow before the outage\n{}", log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cluster = postgres.clone();
    tokio::task::spawn_blocking(move || cluster.stop_fast()).await.unwrap();
    let before_outage = acknowledged();
    wait_for_readyz(&client, &base, 503, Duration::from_secs(10), &log).await;
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert!(ready.headers().contains_key("retry-after"), "/readyz's 503 says when to retry");
    tokio::time::sleep(OUTAGE).await;
    assert_eq!(readyz(&client, &base).await, Some(503), "still down: /readyz follows the database");
    let cluster = postgres.clone();
    tokio::task::spawn_blocking(move || cluster.start_server()).await.unwrap();
    wait_for_readyz(&client, &base, 200, Duration::from_secs(30), &log).await;

    // Load after the outage, then the writers finish what they started.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged() < before_outage + 40 {
        assert!(Instant::now() < deadline, "bookings did not resume after the outage\n{}", log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        tokio::time::timeout(Duration::from_secs(60), w).await.expect("writers finish").unwrap();
    }

    let statuses = tally.statuses.lock().unwrap().clone();
    eprintln!("answers by status: {statuses:?}; acknowledged {}", acknowledged());
    let unexpected = tally.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "answers other than 200/201/409/503: {unexpected:#?}\n{}", log());
    assert!(statuses.keys().all(|s| [200, 201, 409, 503].contains(s)), "{statuses:?}");
    assert!(statuses.get(&503).copied().unwrap_or(0) > 0, "the writers met the outage: {statuses:?}");
    assert_eq!(tally.missing_retry_after.load(Ordering::SeqCst), 0, "every 503 carries Retry-After");
    let transport_errors = tally.transport_errors.lock().unwrap().clone();
    assert!(transport_errors.is_empty(), "requests without an answer: {transport_errors:#?}");
    assert!(!server.log_text().contains("internal error"), "no internal error was logged\n{}", log());

    // One booking per key: a retried key never made a second booking, and every
    // acknowledged one is in the event log, once.
    let acknowledged: Vec<(String, String)> = tally.acknowledged.lock().unwrap().clone();
    let ids: HashSet<&str> = acknowledged.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), acknowledged.len(), "each key acknowledged its own booking");
    let events = all_events(&client, &base, &key).await;
    let created: Vec<&Value> = events.iter().filter(|e| e["type"] == "booking.confirmed").collect();
    let created_ids: HashSet<&str> = created.iter().map(|e| e["data"]["id"].as_str().unwrap()).collect();
    assert_eq!(created.len(), created_ids.len(), "one booking.confirmed per booking");
    assert_eq!(created_ids, ids, "the event log holds exactly the acknowledged bookings");

    // And each was delivered to the webhook (at least once, with its event id).
    let event_ids: HashSet<String> = created.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let delivered: HashSet<String> =
            receiver.received().iter().filter_map(|r| r.header("webhook-id").map(str::to_owned)).collect();
        let missing = event_ids.difference(&delivered).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} bookings never reached the webhook\n{}",
            event_ids.len(),
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
}
