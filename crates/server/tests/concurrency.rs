//! The no-double-booking guarantee under real concurrency: several `slotd` processes on one
//! database, hundreds of simultaneous creates and reschedules aimed at overlapping slots of one
//! host. Every request must either win or answer `409 slot_taken`, and a final SQL check over
//! the database must find no two blocking bookings of the host whose blocks overlap.
//!
//! PostgreSQL runs three processes (the exclusion constraint decides), once connected straight
//! to it and once through PgBouncer in transaction mode (see `common::pgbouncer`); SQLite runs
//! one process (its write lock decides). Each run prints its figures.

mod common;

use common::pgbouncer::{self, PgBouncer};
use common::process::{self, Process};
use futures_like::join_all;
use reqwest::Client;
use serde_json::{Value, json};
use slotd_store::Plan;
use slotd_store::testing::TestDatabase;

const SECRET: &str = "concurrency-test-secret-0123456789abcdef";
/// The contested morning: 30-minute bookings on a 15-minute grid, so neighbouring starts overlap.
const WINDOW_START: &str = "2027-03-01T09:00:00Z";
const CONTESTED_STARTS: i64 = 12;
const REQUESTS: usize = 200;
const RESCHEDULES: usize = 50;

/// Tiny join_all so the test needs no extra crate.
mod futures_like {
    pub async fn join_all<F>(futures: Vec<F>) -> Vec<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            out.push(handle.await.expect("request task"));
        }
        out
    }
}

fn at(offset_minutes: i64) -> String {
    let start: jiff::Timestamp = WINDOW_START.parse().unwrap();
    (start + jiff::SignedDuration::from_mins(offset_minutes)).to_string()
}

/// Outcome of one request: `Ok(true)` won, `Ok(false)` answered 409 slot_taken.
async fn send(client: Client, url: String, key: String, body: Value) -> Result<bool, String> {
    let response = client.post(&url).bearer_auth(&key).json(&body).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let answer: Value = response.json().await.map_err(|e| e.to_string())?;
    match status {
        200 | 201 => Ok(true),
        409 if answer["code"] == "slot_taken" => Ok(false),
        other => Err(format!("{other} {answer}")),
    }
}

/// Races `processes` slotd processes on `db`, connected to it directly or `through` a pooler.
async fn run(db: TestDatabase, processes: usize, label: &str, through: Option<&PgBouncer>) {
    let org = db.store.create_organization("Race", Plan::Growth).await.unwrap().id;
    let key = slotd::keys::create_api_key(&db.store, org).await.unwrap();
    let url = match through {
        None => db.url.clone(),
        Some(bouncer) => bouncer.url(pgbouncer::database_name(&db.url)),
    };
    let mut args = vec!["--secret-key", SECRET];
    if through.is_some() {
        args.extend(["--database-direct-url", db.url.as_str()]);
    }
    let servers: Vec<(Process, String)> =
        (0..processes).map(|n| process::serve(&format!("serve-{n}"), &url, &args)).collect();
    let client = Client::new();
    let base = &servers[0].1;
    let post = |path: &str, body: Value| {
        let request = client.post(format!("{base}{path}")).bearer_auth(&key).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert!(status.is_success(), "{status} {body}");
            body
        }
    };
    let host = post("/v1/hosts", json!({ "name": "Ada", "email": "ada@example.com", "time_zone": "UTC" })).await;
    let host_id = host["id"].as_str().unwrap().to_owned();
    let all_day = json!([{ "start": "00:00", "end": "24:00" }]);
    let week = json!({ "monday": all_day, "tuesday": all_day, "wednesday": all_day, "thursday": all_day,
                       "friday": all_day, "saturday": all_day, "sunday": all_day });
    let response = client
        .put(format!("{base}/v1/hosts/{host_id}/availability"))
        .bearer_auth(&key)
        .json(&json!({ "weekly": week }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let event_type = post(
        "/v1/event-types",
        json!({ "slug": "race", "title": "Race", "duration_minutes": 30, "slot_interval_minutes": 15,
                "buffer_after_minutes": 0, "booking_window_days": 3650, "hosts": [host_id] }),
    )
    .await;
    let event_type_id = event_type["id"].as_str().unwrap().to_owned();
    // Bookings far from the contested morning, to be rescheduled into it.
    let mut movable = Vec::new();
    for i in 0..RESCHEDULES as i64 {
        let booking = post(
            "/v1/bookings",
            json!({ "event_type_id": event_type_id, "start": at(24 * 60 + i * 30),
                    "attendee": { "name": "Mover", "email": "m@example.com", "time_zone": "UTC" } }),
        )
        .await;
        movable.push(booking["id"].as_str().unwrap().to_owned());
    }

    // 200 requests at once, spread over the processes: creates and reschedules aimed at 12
    // overlapping starts (each 30-minute slot overlaps its neighbours on the 15-minute grid).
    let mut requests = Vec::new();
    let mut targets = Vec::new();
    for i in 0..REQUESTS {
        let server = &servers[i % servers.len()].1;
        let offset = 15 * ((i as i64 * 7) % CONTESTED_STARTS);
        let (url, body) = if i % 4 == 0 {
            let id = &movable[i / 4];
            (format!("{server}/v1/bookings/{id}/reschedule"), json!({ "start": at(offset), "reason": "race" }))
        } else {
            let body = json!({ "event_type_id": event_type_id, "start": at(offset),
                "attendee": { "name": format!("Racer {i}"), "email": "r@example.com", "time_zone": "UTC" } });
            (format!("{server}/v1/bookings"), body)
        };
        targets.push(offset);
        requests.push(send(client.clone(), url, key.clone(), body));
    }
    let outcomes = join_all(requests).await;
    let failures: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    if !failures.is_empty() {
        let logs: Vec<String> = servers.iter().map(|(server, _)| server.log_text()).collect();
        let bouncer = through.map(PgBouncer::log).unwrap_or_default();
        panic!("every request wins or answers 409 slot_taken; got {failures:?}\n{}\n{bouncer}", logs.join("\n"));
    }
    let winners = outcomes.iter().filter(|o| matches!(o, Ok(true))).count();
    let taken = outcomes.iter().filter(|o| matches!(o, Ok(false))).count();

    // The database's own view: blocking booking-host rows of one host whose blocks overlap.
    let overlaps = db.store.count_overlapping_blocking_bookings().await.expect("overlap query");
    // Every loser lost to a real booking: the slot it asked for overlaps a winner.
    let held = db.store.held_blocks_for_test(org).await.unwrap();
    for (outcome, offset) in outcomes.iter().zip(&targets) {
        if matches!(outcome, Ok(false)) {
            let (start, end) = (at(*offset).parse::<jiff::Timestamp>().unwrap(), at(offset + 30).parse().unwrap());
            assert!(
                held.iter().any(|b| b.start < end && start < b.end),
                "a 409 for {} without any booking there",
                at(*offset)
            );
        }
    }
    println!(
        "{label}: processes={processes} requests={REQUESTS} winners={winners} slot_taken={taken} \
         overlapping_blocking_bookings={overlaps}"
    );
    assert_eq!(overlaps, 0);
    assert!(winners >= 4, "the morning holds at least 6 disjoint 30-minute bookings; some must win");
    assert_eq!(winners + taken, REQUESTS);
    drop(servers);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_on_postgresql_never_double_book_under_200_racing_requests() {
    run(TestDatabase::postgres().await, 3, "postgres", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_through_pgbouncer_in_transaction_mode_never_double_book_under_200_racing_requests() {
    let Some(bouncer) = PgBouncer::start() else { return };
    run(TestDatabase::postgres().await, 3, "postgres through pgbouncer", Some(&bouncer)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_process_on_sqlite_never_double_books_under_200_racing_requests() {
    run(TestDatabase::sqlite().await, 1, "sqlite", None).await;
}
