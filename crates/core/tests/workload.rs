//! The shared bench workload, run once as a test: pins the slot count for seed 1 so the
//! criterion bench measures a known-correct computation.

#[path = "../benches/support/workload.rs"]
mod workload;

use jiff::civil::{Weekday, time};
use slotd_core::{Interval, compute_slots};
use workload::Workload;

#[test]
fn the_seed_1_workload_lists_209_round_robin_slots() {
    let w = Workload::seed_1();
    assert_eq!(w.busy.len(), 2000);
    let slots = compute_slots(&w.rules, &w.schedules(&w.busy), &w.query());
    // Cal.com's slot computation finds 209 for this workload too.
    assert_eq!(slots.len(), 209);
    for slot in &slots {
        let local = slot.start.to_zoned(w.zones[0].clone());
        assert!(!matches!(local.weekday(), Weekday::Saturday | Weekday::Sunday), "{local}");
        assert!(time(9, 0, 0, 0) <= local.time() && local.time() <= time(16, 30, 0, 0), "{local}");
        assert!(!slot.hosts.is_empty() && slot.hosts.windows(2).all(|p| p[0] < p[1]));
        let booking = Interval::new(slot.start, slot.end).unwrap();
        for &h in &slot.hosts {
            assert!(w.busy[w.host_busy[h].clone()].iter().all(|b| !b.overlaps(&booking)));
        }
    }
    assert!(slots.windows(2).all(|p| p[0].start < p[1].start));
}
