//! Load client for `scripts/bench-bookings`: `POST /v1/bookings` on distinct slot starts from a
//! fixed number of concurrent clients for a fixed time.
//!
//! ```text
//! cargo run --release --example bench_bookings -- BASE_URL API_KEY EVENT_TYPE_ID [CLIENTS=16] [DURATION_S=20]
//!     [FIRST_START=2027-01-01T00:00:00Z] [STEP_MINUTES=15]
//! ```
//!
//! Every request takes the next start from one shared counter (`FIRST_START + n × STEP_MINUTES`),
//! so no two requests ask for the same slot: with an event type open around the clock every answer
//! should be `201`. Each client keeps one keep-alive connection and sends its next request as
//! soon as the previous answer arrived (closed loop). Requests still in flight at the deadline are
//! awaited and counted. Prints one summary line on stdout:
//!
//! ```text
//! bookings: created=N other=M duration_s=D rate_per_s=R p50_ms=… p99_ms=… max_ms=…
//! ```
//!
//! and, on stderr, every status other than `201` with its count and the first bodies seen.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jiff::{SignedDuration, Timestamp};

mod common;
use common::{Tally, max_ms, quantile_ms};

struct Config {
    url: String,
    key: String,
    event_type_id: String,
    first_start: Timestamp,
    step: SignedDuration,
    deadline: Instant,
}

async fn client(config: Arc<Config>, next: Arc<AtomicU64>) -> anyhow::Result<Tally> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let mut tally = Tally::default();
    while Instant::now() < config.deadline {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let step = config.step.checked_mul(i32::try_from(n).context("too many requests")?).context("start overflow")?;
        let start = config.first_start.checked_add(step).context("start out of range")?;
        let body = serde_json::json!({
            "event_type_id": config.event_type_id,
            "start": start.to_string(),
            "attendee": {
                "name": format!("Bench {n}"),
                "email": format!("bench{n}@example.com"),
                "time_zone": "UTC",
            },
            "metadata": { "bench": n },
        });
        let sent = Instant::now();
        let answer = http.post(&config.url).bearer_auth(&config.key).json(&body).send().await;
        let (status, text) = match answer {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the whole body so the connection goes back to the pool.
                let text = response.text().await.unwrap_or_else(|e| format!("(body unreadable: {e})"));
                (status, text)
            }
            Err(e) => (0, format!("transport error: {e}")),
        };
        tally.add(status, sent.elapsed(), || format!("start={start}: {text}"));
    }
    Ok(tally)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 || args.len() > 7 {
        bail!(
            "usage: bench_bookings BASE_URL API_KEY EVENT_TYPE_ID [CLIENTS=16] [DURATION_S=20] \
             [FIRST_START=2027-01-01T00:00:00Z] [STEP_MINUTES=15]"
        );
    }
    let clients: usize = args.get(3).map_or(Ok(16), |s| s.parse()).context("CLIENTS")?;
    let duration_s: f64 = args.get(4).map_or(Ok(20.0), |s| s.parse()).context("DURATION_S")?;
    let first_start: Timestamp =
        args.get(5).map_or("2027-01-01T00:00:00Z", String::as_str).parse().context("FIRST_START")?;
    let step_minutes: i64 = args.get(6).map_or(Ok(15), |s| s.parse()).context("STEP_MINUTES")?;
    if clients == 0 || !duration_s.is_finite() || duration_s <= 0.0 || step_minutes <= 0 {
        bail!("CLIENTS, DURATION_S and STEP_MINUTES must be positive");
    }

    let began = Instant::now();
    let config = Arc::new(Config {
        url: format!("{}/v1/bookings", args[0].trim_end_matches('/')),
        key: args[1].clone(),
        event_type_id: args[2].clone(),
        first_start,
        step: SignedDuration::from_mins(step_minutes),
        deadline: began + Duration::from_secs_f64(duration_s),
    });
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients).map(|_| tokio::spawn(client(config.clone(), next.clone()))).collect();
    let mut total = Tally::default();
    for task in tasks {
        total.merge(task.await.context("client task panicked")??);
    }
    let elapsed = began.elapsed().as_secs_f64();

    let other = total.report_other();
    let latencies = total.sorted_latencies_us();
    println!(
        "bookings: created={} other={} duration_s={:.2} rate_per_s={:.1} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        total.created,
        other,
        elapsed,
        total.created as f64 / elapsed,
        quantile_ms(&latencies, 0.50),
        quantile_ms(&latencies, 0.99),
        max_ms(&latencies),
    );
    Ok(())
}
