//! The manage page in a real browser: headless Debian `chromium` driven by npm `playwright-core`
//! (`scripts/browser/manage.mjs`), against slotd on loopback with the demo organization and a
//! booking like one an attendee would get. The script changes the zone, picks a day and a time
//! and submits; then, with a time booked by someone else between loading and clicking, it sees
//! "That time was just taken" and rebooks with one of the offered times. This side checks every
//! outcome through the API, and that no manage token reached the request log.
//!
//! It needs `/usr/bin/chromium` (or `SLOTD_TEST_CHROMIUM`), `node`, and
//! `scripts/browser/node_modules` (`npm ci --prefix scripts/browser`); `scripts/test` installs
//! them. Without them the test fails with that message; it never skips. Screenshots at 375 and
//! 1280 px land in `target/screenshots/` at the workspace root.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, TestApp, read, spawn_app};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// How long the whole browser run may take.
const RUN_LIMIT: Duration = Duration::from_secs(180);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// Chromium and node, or why the test cannot run (in words, with the fix).
fn prerequisites(root: &Path) -> Result<(PathBuf, String), String> {
    let fix = "run scripts/test (it installs them), or: apt-get install -y chromium && npm ci --prefix scripts/browser";
    let chromium = PathBuf::from(std::env::var("SLOTD_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if !chromium.exists() {
        return Err(format!("the browser test needs Debian chromium at {}: {fix}", chromium.display()));
    }
    let node = std::env::var("SLOTD_TEST_NODE").unwrap_or_else(|_| "node".into());
    if !std::process::Command::new(&node).arg("--version").output().is_ok_and(|o| o.status.success()) {
        return Err(format!("the browser test needs node ({node}): {fix}"));
    }
    if !root.join("scripts/browser/node_modules/playwright-core").exists() {
        return Err(format!("the browser test needs scripts/browser/node_modules/playwright-core: {fix}"));
    }
    Ok((chromium, node))
}

/// Everything the app logs at debug level for requests, kept to look for tokens in it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,tower_http=debug,sqlx=warn"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test binary");
    captured
}

/// The next weekday at least two days ahead, 10:00 in London (the demo host's office hours).
fn demo_start() -> Timestamp {
    let london = TimeZone::get("Europe/London").unwrap();
    let mut date = Timestamp::now().to_zoned(london.clone()).date().checked_add(2.days()).unwrap();
    while matches!(date.weekday(), jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday) {
        date = date.tomorrow().unwrap();
    }
    date.at(10, 0, 0, 0).to_zoned(london).unwrap().timestamp()
}

async fn book(app: &TestApp, key: &str, event_type: &str, start: &str, name: &str) -> Value {
    let body = json!({ "event_type_id": event_type, "start": start,
        "attendee": { "name": name, "email": "grace@example.com", "time_zone": "America/New_York" } });
    read(app.call_as(key, Method::POST, "/v1/bookings", Some(body)).await, 201, "book").await
}

#[tokio::test]
async fn an_attendee_reschedules_in_a_real_browser_and_rebooks_a_taken_time_from_the_offered_ones() {
    let root = workspace_root();
    let (chromium, node) = prerequisites(&root).unwrap_or_else(|why| panic!("{why}"));
    let logs = capture_logs();
    let app = spawn_app(Backend::Sqlite).await;
    let demo = slotd::demo::seed(&app.db.store).await.unwrap();
    let (key, event_type) = (demo.api_key, demo.event_type_id.to_string());
    let booking = book(&app, &key, &event_type, &demo_start().to_string(), "Grace Hopper").await;
    let manage_url = booking["links"]["manage"].as_str().unwrap().to_owned();
    let token = manage_url.rsplit('/').next().unwrap().to_owned();
    let booking_path = format!("/v1/bookings/{}", booking["id"].as_str().unwrap());

    let mut child = tokio::process::Command::new(node)
        .arg(root.join("scripts/browser/manage.mjs"))
        .arg(&manage_url)
        .arg(root.join("target/screenshots"))
        .env("CHROMIUM", chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let mut seen = Vec::new();
    let run = async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            let (what, start) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            match what {
                "RESCHEDULED" => {
                    let moved = read(app.call_as(&key, Method::GET, &booking_path, None).await, 200, "booking").await;
                    assert_eq!(moved["starts_at"], start, "the API has the time picked in the browser: {moved}");
                    assert_eq!(moved["version"], 2);
                    assert_eq!(moved["history"][0]["by"], "attendee");
                    assert_eq!(moved["history"][0]["reason"], "Picked in a browser");
                }
                "TAKE" => {
                    book(&app, &key, &event_type, start, "Someone else").await;
                    stdin.write_all(b"GO\n").await.unwrap();
                    stdin.flush().await.unwrap();
                }
                "REBOOKED" => {
                    let moved = read(app.call_as(&key, Method::GET, &booking_path, None).await, 200, "booking").await;
                    assert_eq!(moved["starts_at"], start, "the API has the offered time clicked: {moved}");
                    assert_eq!(moved["version"], 3, "the taken attempt changed nothing");
                }
                _ => {}
            }
            seen.push(what.to_owned());
        }
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(RUN_LIMIT, run).await.expect("the browser run finishes in time");
    let stderr = stderr.await.unwrap();
    assert!(status.success(), "manage.mjs failed ({status}):\n{stderr}");
    assert_eq!(seen, ["RESCHEDULED", "TAKE", "REBOOKED"], "{stderr}");
    for shot in ["manage", "taken", "success"] {
        for width in [375, 1280] {
            let path = root.join(format!("target/screenshots/{shot}-{width}.png"));
            assert!(std::fs::metadata(&path).is_ok_and(|m| m.len() > 1000), "{}", path.display());
        }
    }

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("path=/manage/[token]/reschedule"), "requests are logged, redacted:\n{logs}");
    assert!(!logs.contains(&token), "no manage token in the log");
    app.stop().await;
}
