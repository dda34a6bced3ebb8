//! What the benchmark load clients share: a tally of the answers to their requests, and
//! nearest-rank quantiles.

use std::collections::BTreeMap;
use std::time::Duration;

/// How many bodies of each unexpected status are kept for the report.
const SAMPLES_PER_STATUS: usize = 3;

/// Answers to a client's requests.
#[derive(Default)]
pub struct Tally {
    /// `201 Created` answers.
    pub created: u64,
    /// Latency of every answered request, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Non-201 answers by status (0: transport error), with the first bodies.
    other: BTreeMap<u16, (u64, Vec<String>)>,
}

impl Tally {
    /// Counts one answer that took `took`; `body` is asked for only when the answer is not a
    /// `201` and its body is still kept.
    pub fn add(&mut self, status: u16, took: Duration, body: impl FnOnce() -> String) {
        self.latencies_us.push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        if status == 201 {
            self.created += 1;
            return;
        }
        let entry = self.other.entry(status).or_default();
        entry.0 += 1;
        if entry.1.len() < SAMPLES_PER_STATUS {
            entry.1.push(body());
        }
    }

    /// Adds another client's tally to this one.
    pub fn merge(&mut self, other: Tally) {
        self.created += other.created;
        self.latencies_us.extend(other.latencies_us);
        for (status, (count, bodies)) in other.other {
            let entry = self.other.entry(status).or_default();
            entry.0 += count;
            let room = SAMPLES_PER_STATUS.saturating_sub(entry.1.len());
            entry.1.extend(bodies.into_iter().take(room));
        }
    }

    /// Non-201 answers, after printing them on stderr with their first bodies.
    pub fn report_other(&self) -> u64 {
        for (status, (count, bodies)) in &self.other {
            let label = if *status == 0 { "transport error".to_owned() } else { format!("status {status}") };
            eprintln!("{label}: {count} answers; first bodies:");
            for body in bodies {
                eprintln!("  {body}");
            }
        }
        self.other.values().map(|(count, _)| count).sum()
    }

    /// The request latencies in microseconds, sorted (for [`quantile_ms`]).
    pub fn sorted_latencies_us(&self) -> Vec<f64> {
        sorted(self.latencies_us.iter().map(|&us| us as f64).collect())
    }
}

/// The values, sorted.
pub fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_unstable_by(f64::total_cmp);
    values
}

/// The `q` quantile (0..=1) of sorted microsecond values, nearest rank, in milliseconds.
pub fn quantile_ms(sorted_us: &[f64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] / 1000.0
}

/// The largest of sorted microsecond values, in milliseconds.
pub fn max_ms(sorted_us: &[f64]) -> f64 {
    sorted_us.last().map_or(0.0, |&us| us / 1000.0)
}
