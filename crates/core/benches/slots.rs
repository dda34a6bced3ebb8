//! Criterion benches of the slot engine on the shared seed-1 workload (5 hosts,
//! 2,000 busy intervals, 30 days, round robin), against a baseline measured in the same
//! run: cloning and sorting the same 2,000 busy intervals. Report the ratio, not the
//! absolute figures; machines here are noisy.

#[path = "support/workload.rs"]
mod workload;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use slotd_core::compute_slots;
use workload::Workload;

fn slots(c: &mut Criterion) {
    let w = Workload::seed_1();
    let query = w.query();
    let mut group = c.benchmark_group("slots");
    group.bench_function("round_robin_30_days_5_hosts_2000_busy", |b| {
        b.iter(|| {
            // Cloned like the baseline's input, and handed over unsorted as given.
            let busy = black_box(&w.busy).clone();
            let hosts = w.schedules(&busy);
            compute_slots(black_box(&w.rules), &hosts, black_box(&query))
        })
    });
    group.bench_function("sort_2000_busy_intervals", |b| {
        b.iter(|| {
            let mut busy = black_box(&w.busy).clone();
            busy.sort_unstable();
            busy
        })
    });
    group.finish();
}

criterion_group!(benches, slots);
criterion_main!(benches);
