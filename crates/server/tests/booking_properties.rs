//! Model-based property test of bookings: random sequences of create, cancel and reschedule
//! through the real API, checked step by step against a tiny model (a set of 30-minute
//! bookings on a 15-minute grid). After every sequence the database holds no overlapping
//! blocking bookings and `/v1/slots` lists exactly the starts the bookings table leaves free.

mod common;

use common::{Backend, TestApp, spawn_app};
use proptest::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Starts on the grid of the tested morning (15-minute steps from 09:00 UTC; with 09:00–13:00
/// hours the last 30-minute slot starts at 12:30, step 14).
const GRID: u8 = 15;
const DAY: &str = "2027-03-01";

#[derive(Clone, Debug)]
enum Op {
    Create(u8),
    Cancel(usize),
    Reschedule(usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..GRID).prop_map(Op::Create),
        1 => any::<usize>().prop_map(Op::Cancel),
        2 => (any::<usize>(), 0..GRID).prop_map(|(i, s)| Op::Reschedule(i, s)),
    ]
}

fn start(step: u8) -> String {
    let minutes = 9 * 60 + 15 * u32::from(step);
    format!("{DAY}T{:02}:{:02}:00Z", minutes / 60, minutes % 60)
}

/// 30-minute bookings at grid steps `a` and `b` overlap when they are less than 2 steps apart.
fn overlaps(a: u8, b: u8) -> bool {
    a.abs_diff(b) < 2
}

/// One case: a fresh host and event type in the shared app, the ops applied through the API
/// and through the model side by side.
async fn check(app: &TestApp, case: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let host = app
        .expect(
            Method::POST,
            "/v1/hosts",
            Some(json!({ "name": "Ada", "email": "ada@example.com", "time_zone": "UTC",
                "availability": { "weekly": { "monday": [{ "start": "09:00", "end": "13:00" }] } } })),
            201,
        )
        .await;
    let host = host["id"].as_str().unwrap();
    let event_type = app
        .expect(
            Method::POST,
            "/v1/event-types",
            Some(json!({ "slug": format!("p{case}"), "title": "P", "duration_minutes": 30,
                "slot_interval_minutes": 15, "booking_window_days": 3650, "hosts": [host] })),
            201,
        )
        .await;
    let event_type = event_type["id"].as_str().unwrap();
    // Model: (booking id, grid step) of live bookings, in creation order.
    let mut live: Vec<(String, u8)> = Vec::new();
    for op in ops {
        match *op {
            Op::Create(step) => {
                let free = live.iter().all(|&(_, s)| !overlaps(s, step));
                let response = app
                    .call(
                        Method::POST,
                        "/v1/bookings",
                        Some(json!({ "event_type_id": event_type, "start": start(step),
                            "attendee": { "name": "G", "email": "g@example.com", "time_zone": "UTC" } })),
                    )
                    .await;
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                prop_assert_eq!(status, if free { 201 } else { 409 }, "create at {}: {}", start(step), body);
                if free {
                    live.push((body["id"].as_str().unwrap().to_owned(), step));
                }
            }
            Op::Cancel(i) if !live.is_empty() => {
                let (id, _) = live.remove(i % live.len());
                let path = format!("/v1/bookings/{id}/cancel");
                let response = app.call(Method::POST, &path, Some(json!({}))).await;
                prop_assert_eq!(response.status().as_u16(), 200);
            }
            Op::Reschedule(i, step) if !live.is_empty() => {
                let index = i % live.len();
                let free = live.iter().enumerate().all(|(j, &(_, s))| j == index || !overlaps(s, step));
                let path = format!("/v1/bookings/{}/reschedule", live[index].0);
                let response = app.call(Method::POST, &path, Some(json!({ "start": start(step) }))).await;
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                // Moving a booking to the start it already has is no change: refused (422).
                let same = live[index].1 == step;
                let expected = if same {
                    422
                } else if free {
                    200
                } else {
                    409
                };
                prop_assert_eq!(status, expected, "reschedule to {}: {}", start(step), body);
                if free && !same {
                    live[index].1 = step;
                }
            }
            Op::Cancel(_) | Op::Reschedule(..) => {}
        }
    }
    prop_assert_eq!(app.db.store.count_overlapping_blocking_bookings().await.unwrap(), 0);

    // The slot API agrees with the bookings table, read back through the API.
    let path = format!("/v1/bookings?status=confirmed&host_id={host}&limit=100");
    let booked = app.expect(Method::GET, &path, None, 200).await;
    let booked: Vec<String> =
        booked["data"].as_array().unwrap().iter().map(|b| b["starts_at"].as_str().unwrap().to_owned()).collect();
    let mut expected_booked: Vec<String> = live.iter().map(|&(_, s)| start(s)).collect();
    let mut booked_sorted = booked.clone();
    booked_sorted.sort();
    expected_booked.sort();
    prop_assert_eq!(&booked_sorted, &expected_booked);
    let path = format!("/v1/slots?event_type_id={event_type}&start={DAY}T00:00:00Z&end={DAY}T23:59:59Z");
    let slots = app.expect(Method::GET, &path, None, 200).await;
    let listed: Vec<String> =
        slots["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = (0..GRID).filter(|&s| live.iter().all(|&(_, b)| !overlaps(s, b))).map(start).collect();
    prop_assert_eq!(listed, expected);
    Ok(())
}

fn run(backend: Backend, cases: u32) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app(backend));
    let case = std::sync::atomic::AtomicUsize::new(0);
    let config = ProptestConfig { cases, ..ProptestConfig::default() };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..25))| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runtime.block_on(check(&app, n, &ops))?;
    });
    runtime.block_on(app.stop());
}

#[test]
fn random_create_cancel_reschedule_sequences_never_overlap_and_slots_match_bookings_on_sqlite() {
    run(Backend::Sqlite, 40);
}

#[test]
fn random_create_cancel_reschedule_sequences_never_overlap_and_slots_match_bookings_on_postgres() {
    run(Backend::Postgres, 40);
}
