//! Slots are never stale across processes: two `slotd` processes share one database, each with
//! its own in-memory copy of hosts' busy blocks. Whatever one process changes (a busy block
//! added or deleted, a booking made or cancelled, a host's hours changed), the very next slot
//! request through the other process reflects it.
//!
//! Runs on PostgreSQL (straight and through PgBouncer in transaction mode) and on one SQLite file
//! shared by both processes.

mod common;

use common::pgbouncer::{self, PgBouncer};
use common::process::{self, Process};
use jiff::{SignedDuration, Timestamp};
use reqwest::Client;
use serde_json::{Value, json};
use slotd_store::Plan;
use slotd_store::testing::TestDatabase;

const SECRET: &str = "freshness-test-secret-0123456789abcdef";
/// A Monday far enough ahead for any notice.
const DAY: &str = "2027-03-01";
/// Rounds of add-then-delete of a busy block at a different slot each time.
const ROUNDS: i64 = 12;

#[tokio::test]
async fn postgres_slots_through_one_process_follow_changes_through_another() {
    let db = TestDatabase::postgres().await;
    run(&db, &db.url.clone(), &[]).await;
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_behind_pgbouncer_slots_through_one_process_follow_changes_through_another() {
    let Some(bouncer) = PgBouncer::start() else { return };
    let db = TestDatabase::postgres().await;
    let url = bouncer.url(pgbouncer::database_name(&db.url));
    run(&db, &url, &["--database-direct-url", db.url.as_str()]).await;
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_slots_through_one_process_follow_changes_through_another() {
    let db = TestDatabase::sqlite().await;
    run(&db, &db.url.clone(), &[]).await;
    db.cleanup().await;
}

struct Api {
    client: Client,
    base: String,
    key: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let got = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
    }

    /// The slot starts of the day, as this process lists them.
    async fn starts(&self, event_type: &str) -> Vec<String> {
        let path = format!("/v1/slots?event_type_id={event_type}&start={DAY}T00:00:00Z&end={DAY}T23:59:59Z");
        let slots = self.call(reqwest::Method::GET, &path, None, 200).await;
        slots["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap().to_owned()).collect()
    }
}

fn at(hour: i64, minute: i64) -> String {
    let day: Timestamp = format!("{DAY}T00:00:00Z").parse().unwrap();
    (day + SignedDuration::from_mins(hour * 60 + minute)).to_string()
}

async fn run(db: &TestDatabase, url: &str, extra: &[&str]) {
    use reqwest::Method;
    let org = db.store.create_organization("Fresh", Plan::Growth).await.unwrap().id;
    let key = slotd::keys::create_api_key(&db.store, org).await.unwrap();
    let mut args = vec!["--secret-key", SECRET, "--no-delivery-worker"];
    args.extend_from_slice(extra);
    let servers: Vec<(Process, String)> = (0..2).map(|n| process::serve(&format!("serve-{n}"), url, &args)).collect();
    let client = Client::new();
    let writer = Api { client: client.clone(), base: servers[0].1.clone(), key: key.clone() };
    let reader = Api { client, base: servers[1].1.clone(), key };

    let hours = json!({ "weekly": { "monday": [{ "start": "09:00", "end": "17:00" }] } });
    let host = writer
        .call(
            Method::POST,
            "/v1/hosts",
            Some(json!({ "name": "Ada", "email": "ada@example.com", "time_zone": "UTC", "availability": hours })),
            201,
        )
        .await;
    let host = host["id"].as_str().unwrap().to_owned();
    let event_type = writer
        .call(
            Method::POST,
            "/v1/event-types",
            Some(json!({ "slug": "call", "title": "Call", "duration_minutes": 30, "booking_window_days": 3650,
                "hosts": [host] })),
            201,
        )
        .await;
    let event_type = event_type["id"].as_str().unwrap().to_owned();
    let all: Vec<String> = (0..16).map(|n| at(9 + n / 2, 30 * (n % 2))).collect();
    assert_eq!(reader.starts(&event_type).await, all, "the reader lists the day (and keeps its copy)");

    // Busy blocks added and deleted through the writer, one slot after another.
    for round in 0..ROUNDS {
        let slot = (round * 5) % 16;
        let start = at(9 + slot / 2, 30 * (slot % 2));
        let end = at(9 + slot / 2, 30 * (slot % 2) + 30);
        let block = writer
            .call(Method::POST, &format!("/v1/hosts/{host}/busy"), Some(json!({ "start": start, "end": end })), 201)
            .await;
        let listed = reader.starts(&event_type).await;
        assert!(
            !listed.contains(&start),
            "round {round}: a busy block added through the other process is seen at once"
        );
        assert_eq!(listed.len(), 15, "round {round}: {listed:?}");
        let path = format!("/v1/hosts/{host}/busy/{}", block["id"].as_str().unwrap());
        writer.call(Method::DELETE, &path, None, 204).await;
        assert_eq!(reader.starts(&event_type).await, all, "round {round}: a deleted busy block is gone at once");
    }

    // A booking made, then cancelled, through the writer.
    let booked = at(11, 0);
    let booking = writer
        .call(
            Method::POST,
            "/v1/bookings",
            Some(json!({ "event_type_id": event_type, "start": booked,
                "attendee": { "name": "Grace", "email": "grace@example.com", "time_zone": "UTC" } })),
            201,
        )
        .await;
    assert!(!reader.starts(&event_type).await.contains(&booked), "a booking is seen at once");
    let path = format!("/v1/bookings/{}/cancel", booking["id"].as_str().unwrap());
    writer.call(Method::POST, &path, Some(json!({})), 200).await;
    assert_eq!(reader.starts(&event_type).await, all, "a cancelled booking frees its slot at once");

    // The host's hours changed through the writer.
    let mornings = json!({ "weekly": { "monday": [{ "start": "09:00", "end": "12:00" }] } });
    writer.call(Method::PUT, &format!("/v1/hosts/{host}/availability"), Some(mornings), 200).await;
    assert_eq!(reader.starts(&event_type).await, all[..6].to_vec(), "changed hours are seen at once");
}
