//! The webhook delivery queue and attempt log: every test body runs once on SQLite and once on
//! PostgreSQL (`sqlite::…` and `postgres::…` in the test names), each on a fresh database.
//!
//! Everything goes through the real store: events come from ordinary store changes (creating a
//! host writes `host.created`), and the tests play the delivery worker's part by claiming
//! attempts and recording outcomes built from the claimed rows.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use slotd_core::availability::{Availability, WeeklyHours};
use slotd_store::conformance;
use slotd_store::testing::TestDatabase;
use slotd_store::{
    AttemptOutcome, AttemptStatus, ClaimedDelivery, DeliveryAttempt, DeliveryFilter, Event, NewHost,
    NewWebhookEndpoint, OrgId, PageRequest, Plan, SinkKind, Store, StoreError, WebhookPatch,
};
use uuid::Uuid;

conformance!(
    an_event_fans_out_to_each_live_subscribed_endpoint_of_its_organization_once,
    claimed_rows_carry_what_the_worker_needs,
    concurrent_claims_take_disjoint_rows_that_together_cover_the_queue,
    claims_respect_the_limit_and_never_hand_out_a_row_twice,
    a_claimed_row_comes_back_only_when_its_lease_ends_or_it_is_released,
    claims_skip_the_given_endpoints_and_rows_not_yet_due,
    a_claim_takes_no_more_of_an_endpoint_than_its_room,
    a_success_is_stored_with_its_answer,
    an_outcome_from_a_lost_lease_is_stale_and_changes_nothing,
    a_failure_with_a_retry_queues_the_next_attempt_and_one_without_does_not,
    deliveries_are_listed_newest_first_by_page_and_filter,
    a_410_disables_the_endpoint_and_tells_the_other_endpoints,
    sustained_failure_disables_the_endpoint_and_reenabling_clears_it,
    a_success_or_an_uncounted_failure_does_not_feed_the_failure_streak,
    a_batch_of_successes_alone_ends_the_failure_streak,
    a_manual_retry_requeues_only_a_failed_attempt_with_nothing_pending,
    a_replay_requeues_matching_events_since_the_instant_skipping_pending_ones,
    a_test_event_goes_to_its_endpoint_only_even_when_disabled,
    slack_channels_and_webhook_endpoints_are_kept_apart_by_kind,
    a_slack_channel_is_claimed_a_little_at_a_time_and_disabled_with_slacks_reason,
);

/// A lease long enough that a claimed row never comes back during a test.
const LONG: Duration = Duration::from_secs(60);

/// Plenty for every test's queue.
const ALL: u32 = 1000;

/// A generous disable period: nothing in a test reaches it.
const PATIENT: Duration = Duration::from_secs(3600);

fn all() -> PageRequest {
    PageRequest { limit: 100, after: None }
}

fn new_host(name: &str) -> NewHost {
    NewHost {
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        time_zone: "Europe/London".into(),
        availability: Availability { weekly: WeeklyHours::default(), overrides: Vec::new() },
    }
}

async fn org(store: &Store) -> OrgId {
    store.create_organization("Acme", Plan::Growth).await.unwrap().id
}

/// Creates a host, which writes one `host.created` event; returns that event.
async fn host_created(store: &Store, org: OrgId, name: &str) -> Event {
    let host = store.create_host(org, new_host(name), |h| serde_json::json!({ "id": h.id })).await.unwrap();
    let events = store.list_events(org, Some("host.created"), None, &all()).await.unwrap().items;
    events.into_iter().find(|e| e.data["id"] == host.id.to_string()).expect("the host's event")
}

async fn endpoint(store: &Store, org: OrgId, name: &str, events: &[&str], enabled: bool) -> Uuid {
    let new = NewWebhookEndpoint::webhook(
        format!("https://hooks.example.com/{name}"),
        name.into(),
        events.iter().map(|e| (*e).to_owned()).collect(),
        enabled,
        "x".into(),
    );
    store.create_webhook_endpoint(org, new, None).await.unwrap().id
}

/// Every attempt of the endpoint, newest first.
async fn attempts(store: &Store, org: OrgId, endpoint: Uuid) -> Vec<DeliveryAttempt> {
    let filter = DeliveryFilter { limit: 1000, ..DeliveryFilter::default() };
    let (attempts, next) = store.list_deliveries(org, endpoint, &filter).await.unwrap();
    assert_eq!(next, None);
    attempts
}

async fn pending(store: &Store, org: OrgId, endpoint: Uuid) -> Vec<DeliveryAttempt> {
    attempts(store, org, endpoint).await.into_iter().filter(|a| a.status == AttemptStatus::Pending).collect()
}

async fn claim(store: &Store) -> Vec<ClaimedDelivery> {
    store.claim_deliveries(ALL, LONG, &[]).await.unwrap()
}

/// The outcome a worker reports for a claimed attempt: 200 when it succeeded, 500 otherwise,
/// no retry, counted for the endpoint's health.
fn outcome(c: &ClaimedDelivery, succeeded: bool) -> AttemptOutcome {
    AttemptOutcome {
        id: c.id,
        claims: c.claims,
        org: c.org,
        endpoint_id: c.endpoint_id,
        event_id: c.event_id.clone(),
        attempt: c.attempt,
        run_attempt: c.run_attempt,
        succeeded,
        response_status: Some(if succeeded { 200 } else { 500 }),
        response_body: Some(if succeeded { "ok".into() } else { "boom".into() }),
        duration_ms: 7,
        error: (!succeeded).then(|| "the receiver answered 500".to_owned()),
        retry_at: None,
        gone: false,
        disable_reason: None,
        counts_for_health: true,
    }
}

fn ok(c: &ClaimedDelivery) -> AttemptOutcome {
    outcome(c, true)
}

fn failed(c: &ClaimedDelivery) -> AttemptOutcome {
    outcome(c, false)
}

/// A failure that does not count toward the endpoint's health.
fn uncounted(c: &ClaimedDelivery) -> AttemptOutcome {
    AttemptOutcome { counts_for_health: false, ..failed(c) }
}

fn ids(claimed: &[ClaimedDelivery]) -> BTreeSet<i64> {
    claimed.iter().map(|c| c.id).collect()
}

/// An instant at the microsecond precision the database keeps.
fn in_secs(secs: i64) -> Timestamp {
    let t = Timestamp::now() + SignedDuration::from_secs(secs);
    Timestamp::from_microsecond(t.as_microsecond()).unwrap()
}

fn is_conflict<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(_)))
}

async fn an_event_fans_out_to_each_live_subscribed_endpoint_of_its_organization_once(db: &TestDatabase) {
    let store = &db.store;
    let (mine, theirs) = (org(store).await, org(store).await);
    let hosts_only = endpoint(store, mine, "hosts", &["host.created"], true).await;
    let everything = endpoint(store, mine, "all", &[], true).await;
    let bookings_only = endpoint(store, mine, "bookings", &["booking.confirmed"], true).await;
    let disabled = endpoint(store, mine, "disabled", &[], false).await;
    let deleted = endpoint(store, mine, "deleted", &[], true).await;
    assert!(store.delete_webhook_endpoint(mine, deleted).await.unwrap());
    let their_all = endpoint(store, theirs, "all", &[], true).await;

    let event = host_created(store, mine, "Ada").await;
    for receiver in [hosts_only, everything] {
        let got = attempts(store, mine, receiver).await;
        assert_eq!(got.len(), 1, "{got:?}");
        let a = &got[0];
        assert_eq!(
            (a.endpoint_id, a.event_id.as_str(), a.event_type.as_str()),
            (receiver, event.id.as_str(), "host.created")
        );
        assert_eq!((a.attempt, a.origin.as_str(), a.status), (1, "event", AttemptStatus::Pending));
        assert_eq!(a.due_at, event.created_at, "due at once");
        assert_eq!(a.created_at, event.created_at);
        assert_eq!(
            (a.response_status, &a.response_body, a.duration_ms, &a.error, a.finished_at),
            (None, &None, None, &None, None)
        );
    }
    for silent in [bookings_only, disabled, deleted] {
        assert!(attempts(store, mine, silent).await.is_empty(), "nothing for {silent}");
    }
    assert!(attempts(store, theirs, their_all).await.is_empty(), "another organization's event is not theirs");
    assert_eq!(store.pending_delivery_count().await.unwrap(), 2);

    // Their event goes to their endpoint only.
    let their_event = host_created(store, theirs, "Bob").await;
    let got = attempts(store, theirs, their_all).await;
    assert_eq!(got.iter().map(|a| a.event_id.as_str()).collect::<Vec<_>>(), [their_event.id.as_str()]);
    for receiver in [hosts_only, everything] {
        assert_eq!(attempts(store, mine, receiver).await.len(), 1);
    }
    for silent in [bookings_only, disabled, deleted] {
        assert!(attempts(store, mine, silent).await.is_empty());
    }
    // The attempt log is scoped to its organization too.
    assert!(attempts(store, theirs, hosts_only).await.is_empty());
    assert_eq!(store.pending_delivery_count().await.unwrap(), 3);

    // An event no endpoint wants queues nothing; a subscribed one reaches its endpoint.
    let host = store.list_hosts(mine, &all()).await.unwrap().items.remove(0);
    store.delete_host(mine, host.id, |_| serde_json::json!({})).await.unwrap();
    assert_eq!(attempts(store, mine, hosts_only).await.len(), 1, "host.deleted is not host.created");
    assert_eq!(attempts(store, mine, everything).await.len(), 2, "an empty filter takes every event");
    assert!(attempts(store, mine, bookings_only).await.is_empty());
}

async fn claimed_rows_carry_what_the_worker_needs(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let ep = endpoint(store, org, "a", &[], true).await;
    let event = host_created(store, org, "Ada").await;
    let claimed = claim(store).await;
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!(c.id, attempts(store, org, ep).await[0].id);
    assert_eq!((c.claims, c.org, c.endpoint_id, c.attempt, c.run_attempt), (1, org, ep, 1, 1));
    assert_eq!(
        (c.origin.as_str(), c.event_id.as_str(), c.event_type.as_str()),
        ("event", event.id.as_str(), "host.created")
    );
    assert_eq!(serde_json::from_str::<serde_json::Value>(&c.event_data).unwrap(), event.data);
    assert_eq!(c.event_created_at, event.created_at);
    assert_eq!(c.url, "https://hooks.example.com/a");
    assert!(c.endpoint_live);
    assert_eq!(c.secret_sealed, "x");
    assert_eq!((&c.previous_secret_sealed, c.previous_secret_until), (&None, None));

    // After a rotation the previous secret comes along until it expires.
    let until = in_secs(3600);
    store.rotate_webhook_secret(org, ep, "y", until).await.unwrap().unwrap();
    host_created(store, org, "Bob").await;
    let claimed = claim(store).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].secret_sealed, "y");
    assert_eq!(claimed[0].previous_secret_sealed.as_deref(), Some("x"));
    assert_eq!(claimed[0].previous_secret_until, Some(until));

    // A row whose endpoint was disabled after it was queued is still handed out, marked not live.
    host_created(store, org, "Cy").await;
    let patch = WebhookPatch { enabled: Some(false), ..WebhookPatch::default() };
    store.update_webhook_endpoint(org, ep, patch).await.unwrap().unwrap();
    let claimed = claim(store).await;
    assert_eq!(claimed.len(), 1);
    assert!(!claimed[0].endpoint_live);

    // Likewise when the endpoint was deleted.
    let other = endpoint(store, org, "b", &[], true).await;
    host_created(store, org, "Dee").await;
    assert!(store.delete_webhook_endpoint(org, other).await.unwrap());
    let claimed = claim(store).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].endpoint_id, other);
    assert!(!claimed[0].endpoint_live);
}

async fn concurrent_claims_take_disjoint_rows_that_together_cover_the_queue(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let a = endpoint(store, org, "a", &[], true).await;
    let b = endpoint(store, org, "b", &[], true).await;
    for i in 0..10 {
        host_created(store, org, &format!("H{i}")).await;
    }
    let mut due: BTreeSet<i64> = attempts(store, org, a).await.iter().map(|x| x.id).collect();
    due.extend(attempts(store, org, b).await.iter().map(|x| x.id));
    assert_eq!(due.len(), 20);

    let (first, second) = tokio::join!(store.claim_deliveries(ALL, LONG, &[]), store.claim_deliveries(ALL, LONG, &[]));
    let (first, second) = (first.unwrap(), second.unwrap());
    let (first_ids, second_ids) = (ids(&first), ids(&second));
    assert_eq!(first_ids.len(), first.len(), "no row twice in one claim");
    assert_eq!(second_ids.len(), second.len(), "no row twice in one claim");
    assert!(first_ids.is_disjoint(&second_ids), "{first_ids:?} and {second_ids:?} overlap");
    let union: BTreeSet<i64> = first_ids.union(&second_ids).copied().collect();
    assert_eq!(union, due);
    assert!(first.iter().chain(&second).all(|c| c.claims == 1));
    assert!(claim(store).await.is_empty(), "everything is held");
    assert_eq!(store.pending_delivery_count().await.unwrap(), 20, "claimed rows stay pending");
}

async fn claims_respect_the_limit_and_never_hand_out_a_row_twice(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    for name in ["a", "b", "c"] {
        endpoint(store, org, name, &[], true).await;
    }
    for i in 0..10 {
        host_created(store, org, &format!("H{i}")).await;
    }
    let one = store.claim_deliveries(1, LONG, &[]).await.unwrap();
    assert_eq!(one.len(), 1);
    let mut seen = ids(&one);
    let (x, y, z) = tokio::join!(
        store.claim_deliveries(4, LONG, &[]),
        store.claim_deliveries(4, LONG, &[]),
        store.claim_deliveries(4, LONG, &[]),
    );
    for batch in [x.unwrap(), y.unwrap(), z.unwrap()] {
        assert!(batch.len() <= 4, "limit 4, got {}", batch.len());
        for c in batch {
            assert!(seen.insert(c.id), "attempt {} handed out twice", c.id);
        }
    }
    loop {
        let batch = store.claim_deliveries(4, LONG, &[]).await.unwrap();
        assert!(batch.len() <= 4, "limit 4, got {}", batch.len());
        if batch.is_empty() {
            break;
        }
        for c in batch {
            assert!(seen.insert(c.id), "attempt {} handed out twice", c.id);
        }
    }
    assert_eq!(seen.len(), 30);
}

async fn a_claimed_row_comes_back_only_when_its_lease_ends_or_it_is_released(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let ep = endpoint(store, org, "a", &[], true).await;
    host_created(store, org, "Ada").await;

    let before = Timestamp::now();
    let first = store.claim_deliveries(10, Duration::from_millis(200), &[]).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].claims, 1);
    let held = &attempts(store, org, ep).await[0];
    assert_eq!(held.status, AttemptStatus::Pending);
    assert!(held.due_at >= before + SignedDuration::from_millis(200), "due at the lease's end: {held:?}");
    assert!(claim(store).await.is_empty(), "held during the lease");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = claim(store).await;
    assert_eq!(again.len(), 1, "the lease ran out");
    assert_eq!((again[0].id, again[0].claims), (first[0].id, 2));
    assert!(claim(store).await.is_empty());

    // Released: due at once, for the next claim.
    store.release_deliveries(&[(again[0].id, again[0].claims)]).await.unwrap();
    let third = claim(store).await;
    assert_eq!(third.len(), 1);
    assert_eq!((third[0].id, third[0].claims), (first[0].id, 3));
    // A release under a superseded claim is ignored.
    store.release_deliveries(&[(again[0].id, again[0].claims)]).await.unwrap();
    assert!(claim(store).await.is_empty(), "the third claim still holds it");
    // A finished row is not brought back by a release.
    store.record_outcomes(&[ok(&third[0])], PATIENT).await.unwrap();
    store.release_deliveries(&[(third[0].id, third[0].claims)]).await.unwrap();
    assert!(claim(store).await.is_empty());
    assert_eq!(attempts(store, org, ep).await[0].status, AttemptStatus::Succeeded);
    store.release_deliveries(&[]).await.unwrap();
}

async fn claims_skip_the_given_endpoints_and_rows_not_yet_due(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let a = endpoint(store, org, "a", &[], true).await;
    let b = endpoint(store, org, "b", &[], true).await;
    let c = endpoint(store, org, "c", &[], true).await;
    host_created(store, org, "Ada").await;

    assert!(store.claim_deliveries(ALL, LONG, &[a, b, c]).await.unwrap().is_empty());
    let only_b = store.claim_deliveries(ALL, LONG, &[a, c]).await.unwrap();
    assert_eq!(only_b.iter().map(|x| x.endpoint_id).collect::<Vec<_>>(), [b]);
    let only_c = store.claim_deliveries(ALL, LONG, &[a]).await.unwrap();
    assert_eq!(only_c.iter().map(|x| x.endpoint_id).collect::<Vec<_>>(), [c], "b's row is held");

    // b's attempt fails and its retry is due in an hour: not claimable before then.
    let retry_at = in_secs(3600);
    let effects = store
        .record_outcomes(&[AttemptOutcome { retry_at: Some(retry_at), ..failed(&only_b[0]) }], PATIENT)
        .await
        .unwrap();
    assert_eq!(effects.recorded, 1);
    let waiting = pending(store, org, b).await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].due_at, retry_at);
    let rest = claim(store).await;
    assert_eq!(rest.iter().map(|x| x.endpoint_id).collect::<Vec<_>>(), [a], "only a's row is due");
    assert!(claim(store).await.is_empty());
    assert_eq!(store.pending_delivery_count().await.unwrap(), 3, "a and c held, b's retry waiting");

    // A retry due in the past is claimable at once.
    let effects = store
        .record_outcomes(&[AttemptOutcome { retry_at: Some(in_secs(-1)), ..failed(&only_c[0]) }], PATIENT)
        .await
        .unwrap();
    assert_eq!(effects.recorded, 1);
    let retried = claim(store).await;
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].endpoint_id, retried[0].attempt, retried[0].origin.as_str()), (c, 2, "retry"));
}

async fn a_claim_takes_no_more_of_an_endpoint_than_its_room(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let slow = endpoint(store, org, "slow", &[], true).await;
    let quick = endpoint(store, org, "quick", &[], true).await;
    let idle = endpoint(store, org, "idle", &[], true).await;
    for n in 0..5 {
        host_created(store, org, &format!("Host {n}")).await;
    }
    // Room: one more for `slow`, none for `idle`, and at most two for any other endpoint.
    let within = store.claim_deliveries_within(ALL, LONG, 2, 2, &[(slow, 1), (idle, 0)]).await.unwrap();
    assert_eq!(within.contended, 0, "no other worker claims here");
    let claimed = within.deliveries;
    let count = |endpoint: Uuid| claimed.iter().filter(|c| c.endpoint_id == endpoint).count();
    assert_eq!((count(slow), count(quick), count(idle)), (1, 2, 0));
    // The oldest of each endpoint were taken, and what was not taken is still due.
    let oldest = |endpoint: Uuid| claimed.iter().filter(|c| c.endpoint_id == endpoint).map(|c| c.id).min();
    let slow_pending: Vec<i64> = pending(store, org, slow).await.iter().map(|a| a.id).collect();
    assert_eq!(oldest(slow), slow_pending.iter().min().copied());
    let rest = claim(store).await;
    assert_eq!(rest.len(), 15 - 3, "every other attempt was left due");
}

async fn a_success_is_stored_with_its_answer(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let ep = endpoint(store, org, "a", &[], true).await;
    let event = host_created(store, org, "Ada").await;
    let claimed = claim(store).await;
    let before = Timestamp::now();
    let outcome = AttemptOutcome {
        response_status: Some(204),
        response_body: Some("thanks".into()),
        duration_ms: 42,
        ..ok(&claimed[0])
    };
    let effects = store.record_outcomes(&[outcome], PATIENT).await.unwrap();
    assert_eq!((effects.recorded, effects.stale, effects.disabled), (1, 0, Vec::<Uuid>::new()));

    let got = attempts(store, org, ep).await;
    assert_eq!(got.len(), 1, "a success queues nothing more");
    let a = &got[0];
    assert_eq!((a.id, a.event_id.as_str(), a.attempt), (claimed[0].id, event.id.as_str(), 1));
    assert_eq!(a.status, AttemptStatus::Succeeded);
    assert_eq!(a.response_status, Some(204));
    assert_eq!(a.response_body.as_deref(), Some("thanks"));
    assert_eq!(a.duration_ms, Some(42));
    assert_eq!(a.error, None);
    let finished = a.finished_at.expect("finished");
    assert!(finished >= before - SignedDuration::from_millis(1) && finished <= Timestamp::now(), "{finished}");
    assert_eq!(store.delivery_attempt(org, ep, a.id).await.unwrap().as_ref(), Some(a));
    assert_eq!(store.pending_delivery_count().await.unwrap(), 0);
    assert!(claim(store).await.is_empty());

    // Recording it again is stale: it is no longer pending.
    let effects = store.record_outcomes(&[failed(&claimed[0])], PATIENT).await.unwrap();
    assert_eq!((effects.recorded, effects.stale), (0, 1));
    assert_eq!(attempts(store, org, ep).await, got);

    // The attempt is only visible to its endpoint and organization.
    let other_org = self::org(store).await;
    assert_eq!(store.delivery_attempt(other_org, ep, a.id).await.unwrap(), None);
    let other_ep = endpoint(store, org, "b", &[], true).await;
    assert_eq!(store.delivery_attempt(org, other_ep, a.id).await.unwrap(), None);
    assert_eq!(store.delivery_attempt(org, ep, a.id + 1000).await.unwrap(), None);
    assert!(attempts(store, other_org, ep).await.is_empty());
}

async fn an_outcome_from_a_lost_lease_is_stale_and_changes_nothing(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let ep = endpoint(store, org, "a", &[], true).await;
    host_created(store, org, "Ada").await;

    let lost = store.claim_deliveries(10, Duration::from_millis(200), &[]).await.unwrap();
    assert_eq!(lost.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let current = claim(store).await;
    assert_eq!(current.len(), 1);
    assert_eq!((current[0].id, current[0].claims), (lost[0].id, 2));
    let held = attempts(store, org, ep).await;

    // The first worker's late answer (a failure that would retry and disable) is dropped.
    let late = AttemptOutcome { retry_at: Some(in_secs(-1)), gone: true, ..failed(&lost[0]) };
    let effects = store.record_outcomes(&[late], Duration::ZERO).await.unwrap();
    assert_eq!((effects.recorded, effects.stale, effects.disabled), (0, 1, Vec::<Uuid>::new()));
    assert_eq!(attempts(store, org, ep).await, held, "nothing changed");
    let endpoint = store.webhook_endpoint(org, ep).await.unwrap().unwrap();
    assert!(endpoint.enabled);
    assert_eq!(endpoint.disabled_reason, None);
    assert!(store.list_events(org, Some("webhook.disabled"), None, &all()).await.unwrap().items.is_empty());

    // The current claim's outcome counts, also in a batch with the stale one.
    let effects = store.record_outcomes(&[ok(&lost[0]), ok(&current[0])], PATIENT).await.unwrap();
    assert_eq!((effects.recorded, effects.stale), (1, 1));
    let got = attempts(store, org, ep).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].status, AttemptStatus::Succeeded);
}

async fn a_failure_with_a_retry_queues_the_next_attempt_and_one_without_does_not(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let ep = endpoint(store, org, "a", &[], true).await;
    let event = host_created(store, org, "Ada").await;

    let first = claim(store).await;
    let retry_at = in_secs(-1);
    let outcome = AttemptOutcome {
        response_status: Some(503),
        response_body: Some("later".into()),
        error: Some("the receiver answered 503".into()),
        retry_at: Some(retry_at),
        ..failed(&first[0])
    };
    let effects = store.record_outcomes(&[outcome], PATIENT).await.unwrap();
    assert_eq!((effects.recorded, effects.stale, effects.disabled), (1, 0, Vec::<Uuid>::new()));

    let got = attempts(store, org, ep).await;
    assert_eq!(got.len(), 2);
    let (retry, failure) = (&got[0], &got[1]);
    assert_eq!(failure.id, first[0].id);
    assert_eq!(failure.status, AttemptStatus::Failed);
    assert_eq!((failure.response_status, failure.response_body.as_deref()), (Some(503), Some("later")));
    assert_eq!(failure.error.as_deref(), Some("the receiver answered 503"));
    assert!(failure.finished_at.is_some());
    assert_eq!((retry.event_id.as_str(), retry.attempt, retry.origin.as_str()), (event.id.as_str(), 2, "retry"));
    assert_eq!((retry.status, retry.due_at), (AttemptStatus::Pending, retry_at));
    assert_eq!((retry.response_status, retry.finished_at), (None, None));

    let second = claim(store).await;
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].id, second[0].attempt, second[0].run_attempt, second[0].claims), (retry.id, 2, 2, 1));
    assert_eq!(second[0].origin, "retry");

    // Out of retries: it stays failed and nothing more is queued.
    let effects = store.record_outcomes(&[failed(&second[0])], PATIENT).await.unwrap();
    assert_eq!(effects.recorded, 1);
    let got = attempts(store, org, ep).await;
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|a| a.status == AttemptStatus::Failed), "{got:?}");
    assert!(pending(store, org, ep).await.is_empty());
    assert_eq!(store.pending_delivery_count().await.unwrap(), 0);
    assert!(claim(store).await.is_empty());
    assert!(
        store.webhook_endpoint(org, ep).await.unwrap().unwrap().enabled,
        "failures within the period disable nothing"
    );
}

async fn deliveries_are_listed_newest_first_by_page_and_filter(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let ep = endpoint(store, org, "a", &[], true).await;
    let events =
        [host_created(store, org, "A").await, host_created(store, org, "B").await, host_created(store, org, "C").await];
    let claimed = claim(store).await;
    let of = |event: &Event| claimed.iter().find(|c| c.event_id == event.id).unwrap().clone();
    store.record_outcomes(&[ok(&of(&events[0])), failed(&of(&events[1]))], PATIENT).await.unwrap();

    let every = attempts(store, org, ep).await;
    assert_eq!(
        every.iter().map(|a| a.event_id.as_str()).collect::<Vec<_>>(),
        [&events[2].id, &events[1].id, &events[0].id]
    );
    assert!(every.windows(2).all(|w| w[0].id > w[1].id));

    let page = DeliveryFilter { limit: 2, ..DeliveryFilter::default() };
    let (first, next) = store.list_deliveries(org, ep, &page).await.unwrap();
    assert_eq!(first, every[..2]);
    assert_eq!(next, Some(every[1].id));
    let (rest, next) = store.list_deliveries(org, ep, &DeliveryFilter { before: next, ..page.clone() }).await.unwrap();
    assert_eq!((rest.as_slice(), next), (&every[2..], None));

    let by_status = |status| DeliveryFilter { status: Some(status), limit: 10, ..DeliveryFilter::default() };
    for (status, event) in [
        (AttemptStatus::Pending, &events[2]),
        (AttemptStatus::Failed, &events[1]),
        (AttemptStatus::Succeeded, &events[0]),
    ] {
        let (got, _) = store.list_deliveries(org, ep, &by_status(status)).await.unwrap();
        assert_eq!(
            got.iter().map(|a| (a.status, a.event_id.as_str())).collect::<Vec<_>>(),
            [(status, event.id.as_str())]
        );
    }
    let by_event = DeliveryFilter { event_id: Some(events[1].id.clone()), limit: 10, ..DeliveryFilter::default() };
    let (got, next) = store.list_deliveries(org, ep, &by_event).await.unwrap();
    assert_eq!((got.len(), next), (1, None));
    assert_eq!(got[0].event_id, events[1].id);
}

async fn a_410_disables_the_endpoint_and_tells_the_other_endpoints(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let gone = endpoint(store, org, "gone", &[], true).await;
    let watcher = endpoint(store, org, "watcher", &["webhook.disabled"], true).await;
    let hosts_only = endpoint(store, org, "hosts", &["host.created"], true).await;
    let first = host_created(store, org, "Ada").await;
    host_created(store, org, "Bob").await;
    assert!(attempts(store, org, watcher).await.is_empty());

    let claimed = claim(store).await;
    assert_eq!(claimed.len(), 4);
    let to_gone: Vec<&ClaimedDelivery> = claimed.iter().filter(|c| c.endpoint_id == gone).collect();
    let answered_410 = AttemptOutcome {
        response_status: Some(410),
        gone: true,
        ..failed(to_gone.iter().find(|c| c.event_id == first.id).unwrap())
    };
    let others: Vec<AttemptOutcome> = claimed.iter().filter(|c| c.endpoint_id == hosts_only).map(ok).collect();
    let effects = store.record_outcomes(&[vec![answered_410], others].concat(), PATIENT).await.unwrap();
    assert_eq!((effects.recorded, effects.stale, effects.disabled.clone()), (3, 0, vec![gone]));

    let disabled = store.webhook_endpoint(org, gone).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("gone"));
    let notices = store.list_events(org, Some("webhook.disabled"), None, &all()).await.unwrap().items;
    assert_eq!(notices.len(), 1);
    let notice = &notices[0];
    assert_eq!(notice.data["id"], gone.to_string());
    assert_eq!(notice.data["url"], "https://hooks.example.com/gone");
    assert_eq!(notice.data["reason"], "gone");

    // The watcher is told; the endpoint filtering on host.created and the disabled one are not.
    let told = pending(store, org, watcher).await;
    assert_eq!(told.len(), 1);
    assert_eq!((told[0].event_id.as_str(), told[0].event_type.as_str()), (notice.id.as_str(), "webhook.disabled"));
    assert_eq!((told[0].attempt, told[0].origin.as_str()), (1, "event"));
    assert!(pending(store, org, hosts_only).await.is_empty());
    assert!(!attempts(store, org, gone).await.iter().any(|a| a.event_id == notice.id));
    // No retry was asked for: only the second event's attempt is left.
    assert_eq!(
        pending(store, org, gone).await.iter().map(|a| a.id).collect::<Vec<_>>(),
        [to_gone.iter().find(|c| c.event_id != first.id).unwrap().id]
    );

    // A second 410 for the already disabled endpoint disables nothing more and says nothing more.
    let second = to_gone.iter().find(|c| c.event_id != first.id).unwrap();
    let effects = store
        .record_outcomes(&[AttemptOutcome { response_status: Some(410), gone: true, ..failed(second) }], PATIENT)
        .await
        .unwrap();
    assert_eq!((effects.recorded, effects.disabled), (1, Vec::<Uuid>::new()));
    assert_eq!(store.list_events(org, Some("webhook.disabled"), None, &all()).await.unwrap().items.len(), 1);

    // New events no longer reach it.
    host_created(store, org, "Cy").await;
    assert!(pending(store, org, gone).await.is_empty());
    assert_eq!(pending(store, org, hosts_only).await.len(), 1);

    // Turning it back on clears the reason.
    let patch = WebhookPatch { enabled: Some(true), ..WebhookPatch::default() };
    let enabled = store.update_webhook_endpoint(org, gone, patch).await.unwrap().unwrap();
    assert!(enabled.enabled);
    assert_eq!(enabled.disabled_reason, None);
    assert_eq!(store.webhook_endpoint(org, gone).await.unwrap(), Some(enabled));
}

/// Claims everything due and returns the rows of one endpoint (the others stay held).
async fn claim_for(store: &Store, endpoint: Uuid) -> Vec<ClaimedDelivery> {
    claim(store).await.into_iter().filter(|c| c.endpoint_id == endpoint).collect()
}

async fn sustained_failure_disables_the_endpoint_and_reenabling_clears_it(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let period = Duration::from_millis(150);
    let ep = endpoint(store, org, "flaky", &[], true).await;
    let watcher = endpoint(store, org, "watcher", &["webhook.disabled"], true).await;

    host_created(store, org, "A").await;
    let claimed = claim_for(store, ep).await;
    let effects = store.record_outcomes(&[failed(&claimed[0])], period).await.unwrap();
    assert_eq!((effects.recorded, effects.disabled), (1, Vec::<Uuid>::new()), "the streak has just begun");
    assert!(store.webhook_endpoint(org, ep).await.unwrap().unwrap().enabled);

    tokio::time::sleep(Duration::from_millis(250)).await;
    host_created(store, org, "B").await;
    let claimed = claim_for(store, ep).await;
    let effects = store.record_outcomes(&[failed(&claimed[0])], period).await.unwrap();
    assert_eq!((effects.recorded, effects.disabled), (1, vec![ep]), "failing for longer than the period");
    let disabled = store.webhook_endpoint(org, ep).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("failing"));
    let notices = store.list_events(org, Some("webhook.disabled"), None, &all()).await.unwrap().items;
    assert_eq!(notices.len(), 1);
    assert_eq!(
        (notices[0].data["id"].as_str(), notices[0].data["reason"].as_str()),
        (Some(ep.to_string().as_str()), Some("failing"))
    );
    let told = pending(store, org, watcher).await;
    assert_eq!(told.iter().map(|a| a.event_id.as_str()).collect::<Vec<_>>(), [notices[0].id.as_str()]);

    // Re-enabling clears the reason and the streak: one more failure does not disable it again.
    let patch = WebhookPatch { enabled: Some(true), ..WebhookPatch::default() };
    let enabled = store.update_webhook_endpoint(org, ep, patch).await.unwrap().unwrap();
    assert!(enabled.enabled);
    assert_eq!(enabled.disabled_reason, None);
    assert_eq!(store.webhook_endpoint(org, ep).await.unwrap(), Some(enabled));
    host_created(store, org, "C").await;
    let claimed = claim_for(store, ep).await;
    let effects = store.record_outcomes(&[failed(&claimed[0])], period).await.unwrap();
    assert_eq!((effects.recorded, effects.disabled), (1, Vec::<Uuid>::new()), "a new streak");
    assert!(store.webhook_endpoint(org, ep).await.unwrap().unwrap().enabled);

    // Disabling through the API is not a reason slotd gave.
    let patch = WebhookPatch { enabled: Some(false), ..WebhookPatch::default() };
    let off = store.update_webhook_endpoint(org, ep, patch).await.unwrap().unwrap();
    assert_eq!((off.enabled, off.disabled_reason), (false, None));
    assert_eq!(store.list_events(org, Some("webhook.disabled"), None, &all()).await.unwrap().items.len(), 1);
}

async fn a_success_or_an_uncounted_failure_does_not_feed_the_failure_streak(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let period = Duration::from_millis(150);
    let a = endpoint(store, org, "a", &[], true).await;
    let b = endpoint(store, org, "b", &[], true).await;
    let round = |a_outcome: fn(&ClaimedDelivery) -> AttemptOutcome,
                 b_outcome: fn(&ClaimedDelivery) -> AttemptOutcome| async move {
        let name = format!("H{}", Uuid::now_v7().simple());
        host_created(store, org, &name).await;
        let claimed = claim(store).await;
        assert_eq!(claimed.len(), 2);
        let outcomes: Vec<AttemptOutcome> =
            claimed.iter().map(|c| if c.endpoint_id == a { a_outcome(c) } else { b_outcome(c) }).collect();
        store.record_outcomes(&outcomes, period).await.unwrap()
    };

    // a fails (counted), b fails without it counting (say, a test ping).
    assert_eq!(round(failed, uncounted).await.disabled, Vec::<Uuid>::new());
    tokio::time::sleep(Duration::from_millis(250)).await;
    // a succeeds, ending its streak; b's first counted failure begins one.
    assert_eq!(round(ok, failed).await.disabled, Vec::<Uuid>::new());
    // a's failure begins a new streak; b's is still young.
    assert_eq!(round(failed, failed).await.disabled, Vec::<Uuid>::new());
    for ep in [a, b] {
        let endpoint = store.webhook_endpoint(org, ep).await.unwrap().unwrap();
        assert!(endpoint.enabled);
        assert_eq!(endpoint.disabled_reason, None);
    }
    assert!(store.list_events(org, Some("webhook.disabled"), None, &all()).await.unwrap().items.is_empty());

    // Both streaks now outlast the period: the next failures disable both.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let effects = round(failed, failed).await;
    assert_eq!(effects.disabled.iter().copied().collect::<BTreeSet<_>>(), BTreeSet::from([a, b]));
    for ep in [a, b] {
        assert_eq!(store.webhook_endpoint(org, ep).await.unwrap().unwrap().disabled_reason.as_deref(), Some("failing"));
    }
    // Each one's notice went to the other... which was disabled in the same batch, so nowhere.
    assert_eq!(store.list_events(org, Some("webhook.disabled"), None, &all()).await.unwrap().items.len(), 2);
}

/// A batch in which every attempt was delivered (and a skipped attempt, which does not count) is
/// recorded on its own path on PostgreSQL; it must still end the endpoints' failure streaks.
async fn a_batch_of_successes_alone_ends_the_failure_streak(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let period = Duration::from_millis(150);
    let ep = endpoint(store, org, "a", &[], true).await;
    let round = |outcome: fn(&ClaimedDelivery) -> AttemptOutcome| async move {
        let name = format!("H{}", Uuid::now_v7().simple());
        host_created(store, org, &name).await;
        host_created(store, org, &format!("{name} too")).await;
        let claimed = claim(store).await;
        assert_eq!(claimed.len(), 2);
        // The second attempt of each round does not count (say, it was never sent).
        let outcomes = vec![outcome(&claimed[0]), uncounted(&claimed[1])];
        store.record_outcomes(&outcomes, period).await.unwrap()
    };

    // A counted failure begins a streak that then outlasts the period.
    assert_eq!(round(failed).await.recorded, 2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Successes (and the uncounted failure) end it.
    let effects = round(ok).await;
    assert_eq!((effects.recorded, effects.stale, effects.disabled), (2, 0, Vec::<Uuid>::new()));
    // So this failure begins a new streak instead of disabling the endpoint.
    assert_eq!(round(failed).await.disabled, Vec::<Uuid>::new());
    let endpoint = store.webhook_endpoint(org, ep).await.unwrap().unwrap();
    assert!(endpoint.enabled);
    assert_eq!(endpoint.disabled_reason, None);
}

async fn a_manual_retry_requeues_only_a_failed_attempt_with_nothing_pending(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let ep = endpoint(store, org, "a", &[], true).await;

    // Pending, then succeeded: neither can be retried.
    host_created(store, org, "A").await;
    let first = attempts(store, org, ep).await.remove(0);
    let refused = store.retry_delivery(org, ep, first.id).await;
    assert!(is_conflict(&refused), "a pending attempt: {refused:?}");
    let claimed = claim(store).await;
    store.record_outcomes(&[ok(&claimed[0])], PATIENT).await.unwrap();
    let refused = store.retry_delivery(org, ep, first.id).await;
    assert!(is_conflict(&refused), "a succeeded attempt: {refused:?}");

    // A failure whose automatic retry is waiting: the retry is pending, so no manual one.
    host_created(store, org, "B").await;
    let claimed = claim(store).await;
    store
        .record_outcomes(&[AttemptOutcome { retry_at: Some(in_secs(3600)), ..failed(&claimed[0]) }], PATIENT)
        .await
        .unwrap();
    let refused = store.retry_delivery(org, ep, claimed[0].id).await;
    assert!(is_conflict(&refused), "its retry is pending: {refused:?}");

    // A failure with nothing pending: retried as the next attempt, due now, in a new run.
    let event = host_created(store, org, "C").await;
    let claimed = claim(store).await;
    assert_eq!(claimed.len(), 1);
    store.record_outcomes(&[failed(&claimed[0])], PATIENT).await.unwrap();
    let before = Timestamp::now();
    let manual = store.retry_delivery(org, ep, claimed[0].id).await.unwrap().expect("retried");
    assert_eq!((manual.event_id.as_str(), manual.endpoint_id), (event.id.as_str(), ep));
    assert_eq!((manual.attempt, manual.origin.as_str(), manual.status), (2, "manual", AttemptStatus::Pending));
    assert!(manual.due_at >= before - SignedDuration::from_millis(1) && manual.due_at <= Timestamp::now());
    assert_eq!(store.delivery_attempt(org, ep, manual.id).await.unwrap(), Some(manual.clone()));
    let refused = store.retry_delivery(org, ep, claimed[0].id).await;
    assert!(is_conflict(&refused), "the manual retry is pending: {refused:?}");
    assert_eq!(pending(store, org, ep).await.iter().filter(|a| a.event_id == event.id).count(), 1);

    let again = claim(store).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id, again[0].attempt, again[0].run_attempt, again[0].origin.as_str()),
        (manual.id, 2, 1, "manual")
    );
    let refused = store.retry_delivery(org, ep, manual.id).await;
    assert!(is_conflict(&refused), "being made is still pending: {refused:?}");
    store.record_outcomes(&[failed(&again[0])], PATIENT).await.unwrap();
    // Any failed attempt of the event may be retried; the number continues.
    let third = store.retry_delivery(org, ep, claimed[0].id).await.unwrap().expect("retried");
    assert_eq!((third.attempt, third.origin.as_str()), (3, "manual"));

    // Unknown attempts, and attempts seen from elsewhere, are not there.
    assert_eq!(store.retry_delivery(org, ep, third.id + 1000).await.unwrap(), None);
    let other_org = self::org(store).await;
    assert_eq!(store.retry_delivery(other_org, ep, claimed[0].id).await.unwrap(), None);
    let other_ep = endpoint(store, org, "b", &[], true).await;
    assert_eq!(store.retry_delivery(org, other_ep, claimed[0].id).await.unwrap(), None);
}

async fn a_replay_requeues_matching_events_since_the_instant_skipping_pending_ones(db: &TestDatabase) {
    let store = &db.store;
    let (org, theirs) = (org(store).await, org(store).await);
    let hosts = endpoint(store, org, "hosts", &["host.created"], true).await;
    let every = endpoint(store, org, "every", &[], true).await;
    let gap = || tokio::time::sleep(Duration::from_millis(3));

    let e1 = host_created(store, org, "A").await;
    gap().await;
    let e2 = host_created(store, org, "B").await;
    gap().await;
    let host_b = store.list_hosts(org, &all()).await.unwrap().items.remove(1);
    let patch = slotd_store::HostPatch { name: Some("B2".into()), ..slotd_store::HostPatch::default() };
    store.update_host(org, host_b.id, patch, |_| serde_json::json!({})).await.unwrap().unwrap();
    let e3 = store.list_events(org, Some("host.updated"), None, &all()).await.unwrap().items.remove(0);
    gap().await;
    let e4 = host_created(store, org, "C").await;
    host_created(store, theirs, "Theirs").await;
    assert!(e1.created_at < e2.created_at && e2.created_at < e3.created_at && e3.created_at < e4.created_at);

    // Everything is delivered except e4 to `hosts`, which is still being made.
    let claimed = claim(store).await;
    assert_eq!(claimed.len(), 7);
    let done: Vec<AttemptOutcome> =
        claimed.iter().filter(|c| !(c.endpoint_id == hosts && c.event_id == e4.id)).map(ok).collect();
    assert_eq!(store.record_outcomes(&done, PATIENT).await.unwrap().recorded, 6);

    let since = e2.created_at;
    let before = Timestamp::now();
    let replayed = store.replay_events(org, hosts, since, 100).await.unwrap();
    assert_eq!(replayed, Some((1, Some(e2.created_at))), "e1 is older, e3 is filtered out, e4 is pending");
    let queued = pending(store, org, hosts).await;
    assert_eq!(queued.len(), 2);
    let replay = queued.iter().find(|a| a.event_id == e2.id).expect("e2 queued");
    assert_eq!((replay.attempt, replay.origin.as_str()), (2, "replay"));
    assert!(replay.due_at >= before - SignedDuration::from_millis(1) && replay.due_at <= Timestamp::now(), "due now");
    let e4_row = queued.iter().find(|a| a.event_id == e4.id).expect("e4 still pending");
    assert_eq!((e4_row.attempt, e4_row.origin.as_str()), (1, "event"));
    assert_eq!(store.replay_events(org, hosts, since, 100).await.unwrap(), Some((0, None)), "all pending now");

    let again = claim(store).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id, again[0].attempt, again[0].run_attempt, again[0].origin.as_str()),
        (replay.id, 2, 1, "replay")
    );

    // Test pings are never replayed, and the limit takes the oldest first.
    store.send_test_event(org, every).await.unwrap().unwrap();
    let ping = claim(store).await;
    assert_eq!(ping.len(), 1);
    store.record_outcomes(&[AttemptOutcome { counts_for_health: false, ..ok(&ping[0]) }], PATIENT).await.unwrap();
    assert_eq!(store.replay_events(org, every, since, 2).await.unwrap(), Some((2, Some(e3.created_at))));
    assert_eq!(store.replay_events(org, every, since, 100).await.unwrap(), Some((1, Some(e4.created_at))));
    let queued = pending(store, org, every).await;
    let mut queued_events: Vec<&str> = queued.iter().map(|a| a.event_id.as_str()).collect();
    queued_events.sort_unstable();
    assert_eq!(queued_events, [e2.id.as_str(), e3.id.as_str(), e4.id.as_str()]);
    assert!(queued.iter().all(|a| a.origin == "replay" && a.attempt == 2), "{queued:?}");
    assert_eq!(store.replay_events(org, every, e1.created_at, 100).await.unwrap(), Some((1, Some(e1.created_at))));
    assert_eq!(store.replay_events(org, every, in_secs(60), 100).await.unwrap(), Some((0, None)));

    // No such endpoint here.
    assert_eq!(store.replay_events(org, Uuid::now_v7(), since, 100).await.unwrap(), None);
    assert_eq!(store.replay_events(theirs, hosts, since, 100).await.unwrap(), None);
    assert!(store.delete_webhook_endpoint(org, every).await.unwrap());
    assert_eq!(store.replay_events(org, every, since, 100).await.unwrap(), None);
}

async fn a_test_event_goes_to_its_endpoint_only_even_when_disabled(db: &TestDatabase) {
    let store = &db.store;
    let (org, theirs) = (org(store).await, org(store).await);
    let off = endpoint(store, org, "off", &["host.created"], false).await;
    let on = endpoint(store, org, "on", &[], true).await;
    let watcher = endpoint(store, org, "watcher", &["webhook.test"], true).await;

    let (event, id) = store.send_test_event(org, off).await.unwrap().expect("the endpoint exists");
    assert_eq!(event.event_type, "webhook.test");
    assert_eq!(event.data["webhook_id"], off.to_string());
    let logged = store.list_events(org, Some("webhook.test"), None, &all()).await.unwrap().items;
    assert_eq!(logged, vec![event.clone()]);

    let got = attempts(store, org, off).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].id, got[0].event_id.as_str(), got[0].event_type.as_str()),
        (id, event.id.as_str(), "webhook.test")
    );
    assert_eq!((got[0].attempt, got[0].origin.as_str(), got[0].status), (1, "test", AttemptStatus::Pending));
    assert!(attempts(store, org, on).await.is_empty(), "a test event is not fanned out");
    assert!(attempts(store, org, watcher).await.is_empty(), "not even to an endpoint subscribed to webhook.test");
    assert_eq!(store.pending_delivery_count().await.unwrap(), 1);

    let claimed = claim(store).await;
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!((c.id, c.endpoint_id, c.origin.as_str(), c.event_type.as_str()), (id, off, "test", "webhook.test"));
    assert!(!c.endpoint_live);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&c.event_data).unwrap(), event.data);

    let (second, second_id) = store.send_test_event(org, on).await.unwrap().unwrap();
    assert_ne!(second.id, event.id);
    assert_eq!(
        attempts(store, org, on).await.iter().map(|a| (a.id, a.origin.as_str())).collect::<Vec<_>>(),
        [(second_id, "test")]
    );
    assert_eq!(attempts(store, org, off).await.len(), 1);

    assert_eq!(store.send_test_event(org, Uuid::now_v7()).await.unwrap().map(|(e, _)| e), None);
    assert_eq!(store.send_test_event(theirs, off).await.unwrap().map(|(e, _)| e), None);
    assert!(store.delete_webhook_endpoint(org, on).await.unwrap());
    assert_eq!(store.send_test_event(org, on).await.unwrap().map(|(e, _)| e), None);
    assert_eq!(store.list_events(org, Some("webhook.test"), None, &all()).await.unwrap().items.len(), 2);
    assert!(store.list_events(theirs, None, None, &all()).await.unwrap().items.is_empty());
}

/// On PostgreSQL a claim reads each endpoint's queue on its own, so an endpoint's backlog, however
/// long and however much older, never stands in line ahead of another endpoint's attempts: not
/// when that endpoint has a little room, and not when it has none.
#[tokio::test]
async fn postgres_claims_reach_each_endpoint_past_another_endpoints_backlog() {
    let db = TestDatabase::postgres().await;
    // The worker's own connections, with their planner settings.
    let store = &db.store.for_delivery_worker().await.unwrap();
    let org = org(store).await;
    let busy = endpoint(store, org, "busy", &[], true).await;
    for n in 0..30 {
        host_created(store, org, &format!("Host {n}")).await;
    }
    // Created after the backlog: only the last event goes to `quiet`.
    let quiet = endpoint(store, org, "quiet", &[], true).await;
    host_created(store, org, "Late").await;

    // `busy` has room for one; the claim may take five in all, and `busy` has 31 due.
    let claimed = store.claim_deliveries_within(5, LONG, 5, 5, &[(busy, 1)]).await.unwrap().deliveries;
    let count =
        |claimed: &[ClaimedDelivery], endpoint: Uuid| claimed.iter().filter(|c| c.endpoint_id == endpoint).count();
    assert_eq!((count(&claimed, busy), count(&claimed, quiet)), (1, 1), "{claimed:#?}");

    // Another `quiet` event while `busy` has no room at all: claimed, `busy` untouched.
    host_created(store, org, "Later").await;
    let claimed = store.claim_deliveries_within(5, LONG, 5, 5, &[(busy, 0)]).await.unwrap().deliveries;
    assert_eq!((count(&claimed, busy), count(&claimed, quiet)), (0, 1), "{claimed:#?}");
    assert_eq!(pending(store, org, busy).await.len(), 32, "the backlog is still there");
    store.close().await;
    db.cleanup().await;
}

/// A prepared statement may keep the plan it made first, when the attempts table looked empty.
/// Even that plan must look each attempt of an outcome batch up by its id: one that reads the
/// table whole and joins it to the batch makes every recording cost as much as the whole table
/// (seen in the latency benchmark: 10,000 index pages per batch of two after 20,000 events).
#[tokio::test]
async fn postgres_outcome_writes_look_attempts_up_by_id_in_any_plan() {
    let db = TestDatabase::postgres().await;
    let store = &db.store.for_delivery_worker().await.unwrap();
    for plan in store.outcome_write_generic_plans_for_test().await.unwrap() {
        let lines: Vec<&str> = plan.lines().collect();
        let scans: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains(" on webhook_attempts") && !lines[i].contains("Update on"))
            .collect();
        assert!(!scans.is_empty(), "{plan}");
        for i in scans {
            assert!(
                lines.get(i + 1).is_some_and(|next| next.contains("Index Cond: (id = ")),
                "reads webhook_attempts other than by id:\n{plan}"
            );
        }
    }
    store.close().await;
    db.cleanup().await;
}

/// A Slack channel row as the API makes it: a digest in `url`, the URL itself sealed.
async fn slack_channel(store: &Store, org: OrgId, name: &str, events: &[&str]) -> Uuid {
    let new = NewWebhookEndpoint {
        kind: SinkKind::Slack,
        url: format!("slack:{name}"),
        description: String::new(),
        time_zone: Some("Asia/Tokyo".into()),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        enabled: true,
        secret_sealed: format!("sealed {name}"),
    };
    store.create_webhook_endpoint(org, new, None).await.unwrap().id
}

async fn slack_channels_and_webhook_endpoints_are_kept_apart_by_kind(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let channel = slack_channel(store, org, "one", &["host.created"]).await;
    let second = slack_channel(store, org, "two", &["host.created"]).await;
    // Channels do not count against a webhook limit: one webhook endpoint fits a limit of one.
    let new = NewWebhookEndpoint::webhook("https://hooks.example.com/w".into(), "w".into(), vec![], true, "x".into());
    let webhook = store.create_webhook_endpoint(org, new.clone(), Some(1)).await.unwrap().id;
    let refused = store.create_webhook_endpoint(org, new, Some(2)).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    let new = NewWebhookEndpoint::webhook("https://hooks.example.com/x".into(), "x".into(), vec![], true, "x".into());
    assert!(matches!(store.create_webhook_endpoint(org, new, Some(1)).await, Err(StoreError::PlanLimit(1))));
    // The same Slack URL (digest) twice in one organization is a conflict; in another, it is not.
    let twice = NewWebhookEndpoint {
        kind: SinkKind::Slack,
        url: "slack:one".into(),
        description: String::new(),
        time_zone: None,
        events: vec!["host.created".into()],
        enabled: true,
        secret_sealed: "s".into(),
    };
    let conflict = store.create_webhook_endpoint(org, twice.clone(), None).await;
    assert!(matches!(&conflict, Err(StoreError::Conflict(m)) if !m.contains("slack:one")), "{conflict:?}");
    let theirs = store.create_organization("Other", Plan::Free).await.unwrap().id;
    store.create_webhook_endpoint(theirs, twice, None).await.unwrap();

    // Each kind reads, lists, changes and deletes only its own.
    let found = store.sink(org, SinkKind::Slack, channel).await.unwrap().unwrap();
    assert_eq!(
        (found.kind, found.time_zone.as_deref(), found.url.as_str()),
        (SinkKind::Slack, Some("Asia/Tokyo"), "slack:one")
    );
    assert_eq!(store.webhook_endpoint(org, channel).await.unwrap(), None);
    assert_eq!(store.sink(org, SinkKind::Slack, webhook).await.unwrap(), None);
    assert_eq!(store.sink(theirs, SinkKind::Slack, channel).await.unwrap(), None);
    let webhooks: Vec<Uuid> =
        store.list_webhook_endpoints(org, &all()).await.unwrap().items.iter().map(|e| e.id).collect();
    assert_eq!(webhooks, vec![webhook]);
    let channels: Vec<Uuid> =
        store.list_sinks(org, SinkKind::Slack, &all()).await.unwrap().items.iter().map(|e| e.id).collect();
    assert_eq!(channels, vec![channel, second]);
    let patch = WebhookPatch { enabled: Some(false), ..WebhookPatch::default() };
    assert_eq!(store.update_webhook_endpoint(org, channel, patch.clone()).await.unwrap(), None);
    assert_eq!(store.update_sink(org, SinkKind::Slack, webhook, patch).await.unwrap(), None);
    assert!(!store.delete_webhook_endpoint(org, channel).await.unwrap());
    assert!(!store.delete_sink(org, SinkKind::Slack, webhook).await.unwrap());
    assert!(store.rotate_webhook_secret(org, channel, "new", Timestamp::now()).await.unwrap().is_none());
    assert!(store.sink(org, SinkKind::Slack, channel).await.unwrap().unwrap().enabled, "unchanged");

    // A patch changes the zone (or clears it) and the sealed URL with its digest.
    let patch = WebhookPatch {
        url: Some("slack:moved".into()),
        secret_sealed: Some("sealed moved".into()),
        time_zone: Some(None),
        ..WebhookPatch::default()
    };
    let moved = store.update_sink(org, SinkKind::Slack, second, patch).await.unwrap().unwrap();
    assert_eq!(
        (moved.url.as_str(), moved.secret_sealed.as_str(), moved.time_zone.as_deref()),
        ("slack:moved", "sealed moved", None)
    );
    assert_eq!(store.sink(org, SinkKind::Slack, second).await.unwrap(), Some(moved));
    let patch = WebhookPatch { url: Some("slack:one".into()), ..WebhookPatch::default() };
    assert!(matches!(store.update_sink(org, SinkKind::Slack, second, patch).await, Err(StoreError::Conflict(_))));
    assert!(store.delete_sink(org, SinkKind::Slack, second).await.unwrap());
    assert_eq!(store.sink(org, SinkKind::Slack, second).await.unwrap(), None);
}

async fn a_slack_channel_is_claimed_a_little_at_a_time_and_disabled_with_slacks_reason(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let channel = slack_channel(store, org, "team", &["host.created"]).await;
    let webhook = endpoint(store, org, "w", &["host.created", "webhook.disabled"], true).await;
    for n in 0..4 {
        host_created(store, org, &format!("Host {n}")).await;
    }
    // At most one of the channel per claim (the per-channel default), as many of the webhook as asked.
    let claimed = store.claim_deliveries_within(ALL, LONG, 10, 1, &[]).await.unwrap().deliveries;
    let of = |endpoint: Uuid| claimed.iter().filter(|c| c.endpoint_id == endpoint).collect::<Vec<_>>();
    assert_eq!((of(channel).len(), of(webhook).len()), (1, 4), "{claimed:#?}");
    let to_channel = of(channel)[0].clone();
    assert_eq!((to_channel.kind, to_channel.time_zone.as_deref()), (SinkKind::Slack, Some("Asia/Tokyo")));
    assert_eq!(to_channel.secret_sealed, "sealed team");
    assert_eq!(of(webhook)[0].kind, SinkKind::Webhook);
    // Room given for the channel wins over the default.
    let more = store.claim_deliveries_within(ALL, LONG, 10, 1, &[(channel, 2)]).await.unwrap().deliveries;
    assert_eq!(more.len(), 2);

    // Slack says the channel is archived: disabled with that reason, and no webhook.disabled event.
    let archived = AttemptOutcome {
        response_status: Some(410),
        gone: true,
        disable_reason: Some("channel_is_archived".into()),
        ..failed(&to_channel)
    };
    let effects = store.record_outcomes(&[archived], PATIENT).await.unwrap();
    assert_eq!(effects.disabled, vec![channel]);
    let disabled = store.sink(org, SinkKind::Slack, channel).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("channel_is_archived"));
    assert!(store.list_events(org, Some("webhook.disabled"), None, &all()).await.unwrap().items.is_empty());
    // Later events queue nothing for it.
    let before = attempts(store, org, channel).await.len();
    host_created(store, org, "Later").await;
    assert_eq!(attempts(store, org, channel).await.len(), before);
    assert_eq!(pending(store, org, webhook).await.len(), 5);
}
