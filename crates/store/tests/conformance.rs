//! The store conformance suite: every test body runs once on SQLite and once on PostgreSQL
//! (`sqlite::…` and `postgres::…` in the test names), each on a fresh database.

use jiff::Timestamp;
use slotd_core::availability::{Availability, WallRange, WallTime, WeeklyHours};
use slotd_core::booking::{BookingAction, BookingStatus};
use slotd_core::interval::Interval;
use slotd_core::slots::Assignment;
use slotd_store::conformance;
use slotd_store::testing::TestDatabase;
use slotd_store::{
    Actor, Attendee, Booking, BookingChange, BookingFilter, ChangeOutputs, EventTypeSettings, HostDeletion, HostPatch,
    IdempotentRequest, NewBooking, NewEventType, NewHost, OrgId, PageRequest, Placement, Plan, Store, StoreError,
};
use uuid::Uuid;

conformance!(
    migrations_can_run_again_without_changing_anything,
    api_keys_open_their_organization_until_revoked,
    a_key_for_an_unknown_organization_is_refused,
    hosts_are_created_read_listed_updated_and_deleted_with_their_events,
    pages_cover_every_row_once_in_creation_order,
    another_organization_sees_none_of_it,
    event_types_keep_their_hosts_and_settings,
    a_slug_is_unique_per_organization_until_deleted,
    a_stale_update_is_refused_and_changes_nothing,
    a_host_in_use_cannot_be_deleted,
    a_failed_write_leaves_no_event,
    busy_intervals_are_those_that_overlap_the_range_half_open,
    busy_time_cached_by_one_store_follows_changes_made_through_another_at_once,
    the_store_itself_refuses_overlapping_blocking_bookings_of_a_host,
    a_stale_booking_change_is_refused_and_seats_fill_up_to_capacity,
    an_idempotency_key_stores_the_answer_with_the_booking_once,
);

fn ts(s: &str) -> Timestamp {
    s.parse().expect("valid timestamp")
}

fn office_hours() -> Availability {
    let range = WallRange { start: WallTime::parse("09:00").unwrap(), end: WallTime::parse("17:00").unwrap() };
    Availability {
        weekly: WeeklyHours { monday: vec![range], tuesday: vec![range], ..WeeklyHours::default() },
        overrides: Vec::new(),
    }
}

fn new_host(name: &str) -> NewHost {
    NewHost {
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        time_zone: "Europe/London".into(),
        availability: office_hours(),
    }
}

fn settings() -> EventTypeSettings {
    EventTypeSettings {
        duration_minutes: 30,
        slot_interval_minutes: 15,
        buffer_before_minutes: 5,
        buffer_after_minutes: 10,
        min_notice_minutes: 60,
        booking_window_days: 30,
        reschedule_cutoff_minutes: 1440,
        cancel_cutoff_minutes: 1440,
        requires_confirmation: false,
        pending_blocks: true,
        reschedule_reason_required: false,
        seats: 1,
        assignment: Assignment::Single,
        questions: Vec::new(),
    }
}

fn new_event_type(slug: &str, host_ids: Vec<Uuid>) -> NewEventType {
    NewEventType { slug: slug.into(), title: "Intro call".into(), description: None, settings: settings(), host_ids }
}

fn payload<T: std::fmt::Debug>(what: &str) -> impl FnOnce(&T) -> serde_json::Value + Send + use<'_, T> {
    move |row| serde_json::json!({ "what": what, "debug": format!("{row:?}") })
}

fn all() -> PageRequest {
    PageRequest { limit: 100, after: None }
}

async fn org(store: &Store) -> OrgId {
    store.create_organization("Acme", Plan::Starter).await.unwrap().id
}

async fn event_types_of(store: &Store, org: OrgId) -> Vec<String> {
    let events = store.list_events(org, None, None, &all()).await.unwrap();
    events.items.into_iter().map(|e| e.event_type).collect()
}

async fn migrations_can_run_again_without_changing_anything(db: &TestDatabase) {
    let org = org(&db.store).await;
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    assert!(db.store.organization(org).await.unwrap().is_some());
}

async fn api_keys_open_their_organization_until_revoked(db: &TestDatabase) {
    let org = org(&db.store).await;
    let stored = db.store.organization(org).await.unwrap().unwrap();
    assert_eq!(stored.plan, Plan::Starter);
    db.store.create_api_key(org, "hash-1", "sk_live_abcd").await.unwrap();
    assert_eq!(db.store.organization_for_key("hash-1").await.unwrap(), Some(org));
    assert_eq!(db.store.organization_for_key("hash-2").await.unwrap(), None);
    assert!(db.store.revoke_api_key("hash-1").await.unwrap());
    assert!(!db.store.revoke_api_key("hash-1").await.unwrap(), "revoking twice reports nothing done");
    assert_eq!(db.store.organization_for_key("hash-1").await.unwrap(), None);
}

async fn a_key_for_an_unknown_organization_is_refused(db: &TestDatabase) {
    let result = db.store.create_api_key(OrgId(Uuid::now_v7()), "hash", "sk_live_x").await;
    assert!(matches!(result, Err(StoreError::MissingReference(_))), "{result:?}");
}

async fn hosts_are_created_read_listed_updated_and_deleted_with_their_events(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let host = store.create_host(org, new_host("Ada"), payload("created")).await.unwrap();
    assert_eq!(store.host(org, host.id).await.unwrap().as_ref(), Some(&host));

    let patch =
        HostPatch { name: Some("Ada L.".into()), time_zone: Some("America/New_York".into()), ..HostPatch::default() };
    let updated = store.update_host(org, host.id, patch, payload("updated")).await.unwrap().unwrap();
    assert_eq!(updated.name, "Ada L.");
    assert_eq!(updated.time_zone, "America/New_York");
    assert_eq!(updated.email, host.email, "fields left out stay as they are");
    assert_eq!(updated.availability, host.availability);
    assert!(updated.updated_at >= host.updated_at);
    assert_eq!(store.host(org, host.id).await.unwrap(), Some(updated.clone()));

    let listed = store.list_hosts(org, &all()).await.unwrap();
    assert_eq!(listed.items, vec![updated.clone()]);
    assert_eq!(listed.next_after, None);

    assert!(matches!(store.delete_host(org, host.id, payload("deleted")).await.unwrap(), HostDeletion::Deleted(_)));
    assert_eq!(store.host(org, host.id).await.unwrap(), None);
    assert!(store.list_hosts(org, &all()).await.unwrap().items.is_empty());
    assert_eq!(store.delete_host(org, host.id, payload("again")).await.unwrap(), HostDeletion::NotFound);

    assert_eq!(event_types_of(store, org).await, ["host.created", "host.updated", "host.deleted"]);
    let created = store.list_events(org, Some("host.created"), None, &all()).await.unwrap();
    assert_eq!(created.items.len(), 1);
    assert_eq!(created.items[0].data["what"], "created");
}

async fn pages_cover_every_row_once_in_creation_order(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(store.create_host(org, new_host(&format!("H{i}")), payload("c")).await.unwrap().id);
    }
    let mut seen = Vec::new();
    let mut page = PageRequest { limit: 2, after: None };
    loop {
        let got = store.list_hosts(org, &page).await.unwrap();
        assert!(got.items.len() <= 2);
        seen.extend(got.items.iter().map(|h| h.id));
        match got.next_after {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    assert_eq!(seen, created);

    let events = store.list_events(org, None, None, &PageRequest { limit: 3, after: None }).await.unwrap();
    assert_eq!(events.items.len(), 3);
    let rest =
        store.list_events(org, None, None, &PageRequest { limit: 3, after: events.next_after.clone() }).await.unwrap();
    assert_eq!(rest.items.len(), 2);
    assert_eq!(rest.next_after, None);
    let later = store.list_events(org, None, Some(rest.items[0].created_at), &all()).await.unwrap();
    assert_eq!(later.items.len(), 2, "since is inclusive");
}

async fn another_organization_sees_none_of_it(db: &TestDatabase) {
    let store = &db.store;
    let (mine, theirs) = (org(store).await, org(store).await);
    let host = store.create_host(mine, new_host("Ada"), payload("c")).await.unwrap();
    let event_type = store.create_event_type(mine, new_event_type("intro", vec![host.id]), payload("c")).await.unwrap();
    let busy = Interval::new(ts("2026-12-01T10:00:00Z"), ts("2026-12-01T11:00:00Z")).unwrap();
    let block = store.add_busy_block(mine, host.id, busy, None).await.unwrap().unwrap();

    assert_eq!(store.host(theirs, host.id).await.unwrap(), None);
    assert!(store.list_hosts(theirs, &all()).await.unwrap().items.is_empty());
    assert_eq!(store.update_host(theirs, host.id, HostPatch::default(), payload("u")).await.unwrap(), None);
    assert_eq!(store.delete_host(theirs, host.id, payload("d")).await.unwrap(), HostDeletion::NotFound);
    assert_eq!(store.add_busy_block(theirs, host.id, busy, None).await.unwrap(), None);
    assert_eq!(store.list_busy_blocks(theirs, host.id, &all()).await.unwrap(), None);
    assert!(!store.delete_busy_block(theirs, host.id, block.id).await.unwrap());
    assert!(store.busy_time(theirs, &[host.id], busy).await.unwrap().blocks.is_empty());
    assert_eq!(store.event_type(theirs, event_type.id).await.unwrap(), None);
    assert!(store.list_event_types(theirs, &all()).await.unwrap().items.is_empty());
    assert_eq!(store.delete_event_type(theirs, event_type.id, payload("d")).await.unwrap(), None);
    assert!(store.hosts_by_ids(theirs, &[host.id]).await.unwrap().is_empty());
    assert!(store.list_events(theirs, None, None, &all()).await.unwrap().items.is_empty());
    let refused = store.create_event_type(theirs, new_event_type("intro", vec![host.id]), payload("c")).await;
    assert!(matches!(refused, Err(StoreError::MissingReference(_))), "{refused:?}");

    // Everything is still there for its owner.
    assert!(store.host(mine, host.id).await.unwrap().is_some());
    assert_eq!(store.list_busy_blocks(mine, host.id, &all()).await.unwrap().unwrap().items, vec![block]);
}

async fn event_types_keep_their_hosts_and_settings(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let a = store.create_host(org, new_host("Ada"), payload("c")).await.unwrap();
    let b = store.create_host(org, new_host("Bob"), payload("c")).await.unwrap();
    let mut new = new_event_type("team", vec![b.id, a.id]);
    new.settings.assignment = Assignment::RoundRobin;
    let created = store.create_event_type(org, new, payload("c")).await.unwrap();
    assert_eq!(created.host_ids, vec![b.id, a.id], "host order is kept");
    assert_eq!(store.event_type(org, created.id).await.unwrap().as_ref(), Some(&created));
    assert_eq!(store.list_event_types(org, &all()).await.unwrap().items, vec![created.clone()]);
    assert_eq!(store.hosts_by_ids(org, &created.host_ids).await.unwrap(), vec![b.clone(), a.clone()]);

    let mut changed = new_event_type("team-2", vec![a.id]);
    changed.settings.duration_minutes = 45;
    let replaced =
        store.replace_event_type(org, created.id, created.updated_at, changed, payload("u")).await.unwrap().unwrap();
    assert_eq!(replaced.slug, "team-2");
    assert_eq!(replaced.settings.duration_minutes, 45);
    assert_eq!(replaced.host_ids, vec![a.id]);
    assert_eq!(store.event_type(org, created.id).await.unwrap(), Some(replaced.clone()));

    let deleted = store.delete_event_type(org, created.id, payload("d")).await.unwrap();
    assert_eq!(deleted.map(|e| e.id), Some(created.id));
    assert_eq!(store.event_type(org, created.id).await.unwrap(), None);
    assert_eq!(store.delete_event_type(org, created.id, payload("d")).await.unwrap(), None);
    let types = event_types_of(store, org).await;
    assert_eq!(&types[2..], ["event_type.created", "event_type.updated", "event_type.deleted"]);
}

async fn a_slug_is_unique_per_organization_until_deleted(db: &TestDatabase) {
    let store = &db.store;
    let (org_a, org_b) = (org(store).await, org(store).await);
    let host_a = store.create_host(org_a, new_host("Ada"), payload("c")).await.unwrap();
    let host_b = store.create_host(org_b, new_host("Bob"), payload("c")).await.unwrap();
    let first = store.create_event_type(org_a, new_event_type("intro", vec![host_a.id]), payload("c")).await.unwrap();
    let duplicate = store.create_event_type(org_a, new_event_type("intro", vec![host_a.id]), payload("c")).await;
    assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "{duplicate:?}");
    store
        .create_event_type(org_b, new_event_type("intro", vec![host_b.id]), payload("c"))
        .await
        .expect("another organization may use the same slug");
    store.delete_event_type(org_a, first.id, payload("d")).await.unwrap();
    store
        .create_event_type(org_a, new_event_type("intro", vec![host_a.id]), payload("c"))
        .await
        .expect("a deleted event type frees its slug");
}

async fn a_stale_update_is_refused_and_changes_nothing(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let host = store.create_host(org, new_host("Ada"), payload("c")).await.unwrap();
    let created = store.create_event_type(org, new_event_type("intro", vec![host.id]), payload("c")).await.unwrap();
    store
        .replace_event_type(org, created.id, created.updated_at, new_event_type("first", vec![host.id]), payload("u"))
        .await
        .unwrap()
        .unwrap();
    let stale = store
        .replace_event_type(org, created.id, created.updated_at, new_event_type("second", vec![host.id]), payload("u"))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(store.event_type(org, created.id).await.unwrap().unwrap().slug, "first");
    assert_eq!(store.list_events(org, Some("event_type.updated"), None, &all()).await.unwrap().items.len(), 1);
}

async fn a_host_in_use_cannot_be_deleted(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let host = store.create_host(org, new_host("Ada"), payload("c")).await.unwrap();
    let event_type = store.create_event_type(org, new_event_type("intro", vec![host.id]), payload("c")).await.unwrap();
    assert_eq!(store.delete_host(org, host.id, payload("d")).await.unwrap(), HostDeletion::InUse(vec![event_type.id]));
    assert!(store.host(org, host.id).await.unwrap().is_some(), "nothing changed");
    store.delete_event_type(org, event_type.id, payload("d")).await.unwrap();
    assert!(matches!(store.delete_host(org, host.id, payload("d")).await.unwrap(), HostDeletion::Deleted(_)));
}

async fn a_failed_write_leaves_no_event(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let host = store.create_host(org, new_host("Ada"), payload("c")).await.unwrap();
    let result =
        store.create_event_type(org, new_event_type("intro", vec![host.id, Uuid::now_v7()]), payload("c")).await;
    assert!(matches!(result, Err(StoreError::MissingReference(_))), "{result:?}");
    assert!(store.list_event_types(org, &all()).await.unwrap().items.is_empty());
    assert_eq!(event_types_of(store, org).await, ["host.created"]);
}

async fn busy_intervals_are_those_that_overlap_the_range_half_open(db: &TestDatabase) {
    let store = &db.store;
    let org = org(store).await;
    let a = store.create_host(org, new_host("Ada"), payload("c")).await.unwrap();
    let b = store.create_host(org, new_host("Bob"), payload("c")).await.unwrap();
    let iv = |s: &str, e: &str| Interval::new(ts(s), ts(e)).unwrap();
    let before = iv("2026-12-01T08:00:00Z", "2026-12-01T09:00:00Z"); // touches the range start
    let inside = iv("2026-12-01T09:30:00Z", "2026-12-01T10:00:00Z");
    let across = iv("2026-12-01T11:30:00Z", "2026-12-01T13:00:00Z");
    let after = iv("2026-12-01T12:00:00Z", "2026-12-01T12:30:00Z"); // starts at the range end
    for interval in [before, inside, across, after] {
        store.add_busy_block(org, a.id, interval, Some("x".into())).await.unwrap().unwrap();
    }
    let bob_block = store.add_busy_block(org, b.id, inside, None).await.unwrap().unwrap();
    let range = iv("2026-12-01T09:00:00Z", "2026-12-01T12:00:00Z");

    let mut found = store.busy_time(org, &[a.id], range).await.unwrap().blocks;
    found.sort_by_key(|(_, i)| *i);
    assert_eq!(found, vec![(a.id, inside), (a.id, across)]);
    let both = store.busy_time(org, &[a.id, b.id], range).await.unwrap().blocks;
    assert_eq!(both.len(), 3);

    let listed = store.list_busy_blocks(org, a.id, &all()).await.unwrap().unwrap();
    assert_eq!(listed.items.len(), 4);
    assert_eq!(listed.items[0].title.as_deref(), Some("x"));
    assert!(store.delete_busy_block(org, b.id, bob_block.id).await.unwrap());
    assert!(!store.delete_busy_block(org, b.id, bob_block.id).await.unwrap());
    assert!(store.busy_time(org, &[b.id], range).await.unwrap().blocks.is_empty());
}

fn placement(host: Uuid, start: &str, minutes: i64, seat_group: Option<&str>, seats: u32) -> Placement {
    let start = ts(start);
    let end = start + jiff::SignedDuration::from_mins(minutes);
    let interval = Interval::new(start, end).unwrap();
    Placement { interval, block: interval, host_ids: vec![host], seat_group: seat_group.map(str::to_owned), seats }
}

/// A change of status only (no move) decided on `version`.
fn status_change(
    version: i64,
    action: BookingAction,
    status: BookingStatus,
    blocking: bool,
    by: Actor,
    reason: Option<&str>,
) -> BookingChange {
    BookingChange {
        expected_version: version,
        action,
        status,
        blocking,
        placement: None,
        seats: 1,
        by,
        reason: reason.map(str::to_owned),
    }
}

fn new_booking(event_type_id: Uuid, placement: Placement) -> NewBooking {
    NewBooking {
        event_type_id,
        status: BookingStatus::Confirmed,
        blocking: true,
        placement,
        attendees: vec![Attendee { name: "Grace".into(), email: "grace@example.com".into(), time_zone: "UTC".into() }],
        answers: serde_json::json!({}),
        metadata: serde_json::json!({}),
    }
}

fn outputs(event: &'static str) -> impl FnOnce(&Booking) -> ChangeOutputs + Send {
    move |b| ChangeOutputs {
        event_type: event,
        event_data: serde_json::json!({ "id": b.id }),
        answer: serde_json::json!({ "id": b.id }),
    }
}

async fn booking_setup(store: &Store) -> (OrgId, Uuid, Uuid) {
    let org = org(store).await;
    let host = store.create_host(org, new_host("Ada"), payload("created")).await.unwrap();
    let event_type = store.create_event_type(org, new_event_type("intro", vec![host.id]), payload("c")).await.unwrap();
    (org, host.id, event_type.id)
}

async fn the_store_itself_refuses_overlapping_blocking_bookings_of_a_host(db: &TestDatabase) {
    let store = &db.store;
    let (org, host, event_type) = booking_setup(store).await;
    let first = store
        .create_booking(
            org,
            new_booking(event_type, placement(host, "2027-01-04T10:00:00Z", 30, None, 1)),
            None,
            outputs("booking.confirmed"),
        )
        .await
        .unwrap();
    let events_before = event_types_of(store, org).await.len();
    // Straight to the store, past every check the API makes: the database still says no.
    let overlapping = placement(host, "2027-01-04T10:29:59Z", 30, None, 1);
    let refused =
        store.create_booking(org, new_booking(event_type, overlapping), None, outputs("booking.confirmed")).await;
    assert!(matches!(refused, Err(StoreError::SlotTaken)), "{refused:?}");
    assert_eq!(event_types_of(store, org).await.len(), events_before, "no event for a refused booking");
    // Touching is not overlapping; a non-blocking booking holds nothing.
    let touching = placement(host, "2027-01-04T10:30:00Z", 30, None, 1);
    store.create_booking(org, new_booking(event_type, touching), None, outputs("booking.confirmed")).await.unwrap();
    let mut pending = new_booking(event_type, placement(host, "2027-01-04T10:00:00Z", 30, None, 1));
    pending.status = BookingStatus::Pending;
    pending.blocking = false;
    let pending = store.create_booking(org, pending, None, outputs("booking.requested")).await.unwrap();
    // Confirming it would make it blocking on taken time: refused, nothing changed.
    let confirm = status_change(1, BookingAction::Confirm, BookingStatus::Confirmed, true, Actor::Api, None);
    let refused = store.change_booking(org, pending.id, confirm, None, outputs("booking.confirmed")).await;
    assert!(matches!(refused, Err(StoreError::SlotTaken)), "{refused:?}");
    assert_eq!(store.booking(org, pending.id).await.unwrap().unwrap().status, BookingStatus::Pending);
    // Cancelling the first frees its time for the pending one.
    let cancel = status_change(1, BookingAction::Cancel, BookingStatus::Cancelled, false, Actor::Attendee, Some("ill"));
    let cancelled =
        store.change_booking(org, first.id, cancel, None, outputs("booking.cancelled")).await.unwrap().unwrap();
    assert_eq!(cancelled.version, 2);
    assert_eq!(cancelled.history[0].reason.as_deref(), Some("ill"));
    let confirm = status_change(1, BookingAction::Confirm, BookingStatus::Confirmed, true, Actor::Api, None);
    store.change_booking(org, pending.id, confirm, None, outputs("booking.confirmed")).await.unwrap().unwrap();
    assert_eq!(store.count_overlapping_blocking_bookings().await.unwrap(), 0);
}

async fn a_stale_booking_change_is_refused_and_seats_fill_up_to_capacity(db: &TestDatabase) {
    let store = &db.store;
    let (org, host, event_type) = booking_setup(store).await;
    let seat = || placement(host, "2027-01-04T10:00:00Z", 30, Some("group-1"), 2);
    let a =
        store.create_booking(org, new_booking(event_type, seat()), None, outputs("booking.confirmed")).await.unwrap();
    store.create_booking(org, new_booking(event_type, seat()), None, outputs("booking.confirmed")).await.unwrap();
    let full = store.create_booking(org, new_booking(event_type, seat()), None, outputs("booking.confirmed")).await;
    assert!(matches!(full, Err(StoreError::SlotTaken)), "a third seat of two: {full:?}");
    // A one-seat booking overlapping the group is refused too.
    let single = placement(host, "2027-01-04T10:15:00Z", 30, None, 1);
    let refused = store.create_booking(org, new_booking(event_type, single), None, outputs("booking.confirmed")).await;
    assert!(matches!(refused, Err(StoreError::SlotTaken)), "{refused:?}");
    let stale = status_change(7, BookingAction::Cancel, BookingStatus::Cancelled, false, Actor::Api, None);
    let refused = store.change_booking(org, a.id, stale, None, outputs("booking.cancelled")).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    assert_eq!(store.booking(org, a.id).await.unwrap().unwrap().version, 1);
}

async fn an_idempotency_key_stores_the_answer_with_the_booking_once(db: &TestDatabase) {
    let store = &db.store;
    let (org, host, event_type) = booking_setup(store).await;
    let request = IdempotentRequest { key: "k-1".into(), request_hash: "h-1".into(), status_code: 201 };
    let made = store
        .create_booking(
            org,
            new_booking(event_type, placement(host, "2027-01-04T10:00:00Z", 30, None, 1)),
            Some(&request),
            outputs("booking.confirmed"),
        )
        .await
        .unwrap();
    let answer = store.stored_answer(org, "k-1").await.unwrap().unwrap();
    assert_eq!(answer.request_hash, "h-1");
    assert_eq!(answer.status_code, 201);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&answer.body).unwrap()["id"], made.id.to_string());
    // The key cannot be stored twice: a second booking under it is refused whole.
    let again = store
        .create_booking(
            org,
            new_booking(event_type, placement(host, "2027-01-04T12:00:00Z", 30, None, 1)),
            Some(&request),
            outputs("booking.confirmed"),
        )
        .await;
    assert!(matches!(again, Err(StoreError::IdempotencyKeyTaken)), "{again:?}");
    let all_bookings = store.list_bookings(org, &BookingFilter::default(), &all()).await.unwrap();
    assert_eq!(all_bookings.items.len(), 1);
    // Keys belong to their organization.
    let other = store.create_organization("Other", Plan::Free).await.unwrap().id;
    assert!(store.stored_answer(other, "k-1").await.unwrap().is_none());
    assert_eq!(store.expire_idempotency_keys().await.unwrap(), 0, "fresh keys are kept");
}

/// Two transactions that each insert a host row overlapping the other's wait for each other in
/// the exclusion constraint's check, and PostgreSQL aborts one of them to break the deadlock. A
/// booking so aborted is made again: it then comes second and finds the slot taken, never a
/// database error.
#[tokio::test]
async fn postgres_a_booking_aborted_to_break_a_deadlock_is_made_again() {
    use sqlx::Connection;
    let db = TestDatabase::postgres().await;
    let store = &db.store;
    let (org, host, event_type) = booking_setup(store).await;
    // Two bookings of another host, whose ids the other writer's rows below borrow.
    let elsewhere = store.create_host(org, new_host("Bob"), payload("created")).await.unwrap().id;
    let other_type =
        store.create_event_type(org, new_event_type("other", vec![elsewhere]), payload("c")).await.unwrap();
    let mut borrowed = Vec::new();
    for start in ["2027-01-04T15:00:00Z", "2027-01-04T16:00:00Z"] {
        let new = new_booking(other_type.id, placement(elsewhere, start, 30, None, 1));
        borrowed.push(store.create_booking(org, new, None, outputs("booking.confirmed")).await.unwrap().id);
    }
    let row = |booking: Uuid, start: &str| {
        let (start, end) = (ts(start).as_microsecond(), ts(start).as_microsecond() + 30 * 60_000_000);
        format!(
            "INSERT INTO booking_hosts (booking_id, organization_id, host_id, event_type_id, seat_group, start_us, \
             block_start_us, block_end_us, blocking) VALUES ('{booking}', '{}', '{host}', '{event_type}', \
             '{booking}', {start}, {start}, {end}, true)",
            org.0
        )
    };

    // The other writer holds 10:00–10:30 of `host`, uncommitted, and never gives up first.
    let mut other = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    for sql in ["BEGIN", "SET LOCAL deadlock_timeout = '30s'", &row(borrowed[0], "2027-01-04T10:00:00Z")] {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut other).await.unwrap();
    }
    // The booking (10:15–10:45) writes its row and waits for the other writer to finish.
    let booking = tokio::spawn({
        let store = store.clone();
        let new = new_booking(event_type, placement(host, "2027-01-04T10:15:00Z", 30, None, 1));
        async move { store.create_booking(org, new, None, outputs("booking.confirmed")).await }
    });
    let mut watcher = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(!booking.is_finished(), "the booking ended without waiting for the other writer");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Now the other writer takes 10:30–11:00, overlapping the booking's row: each waits for the
    // other, and the booking's transaction (the first to time out) is aborted.
    sqlx::query(sqlx::AssertSqlSafe(row(borrowed[1], "2027-01-04T10:30:00Z"))).execute(&mut other).await.unwrap();
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();

    let result = booking.await.unwrap();
    assert!(matches!(result, Err(StoreError::SlotTaken)), "{result:?}");
    assert_eq!(store.count_overlapping_blocking_bookings().await.unwrap(), 0);
    other.close().await.unwrap();
    watcher.close().await.unwrap();
    store.close().await;
    db.cleanup().await;
}

/// Two stores on one database stand for two slotd processes: each keeps its own copy of busy
/// blocks, and the very next read through one sees what the other just changed.
async fn busy_time_cached_by_one_store_follows_changes_made_through_another_at_once(db: &TestDatabase) {
    let reader = &db.store;
    let writer = Store::connect(&db.url).await.unwrap();
    let mine = org(reader).await;
    let a = reader.create_host(mine, new_host("Ada"), payload("c")).await.unwrap();
    let b = reader.create_host(mine, new_host("Bob"), payload("c")).await.unwrap();
    let iv = |s: &str, e: &str| Interval::new(ts(s), ts(e)).unwrap();
    let range = iv("2026-12-01T00:00:00Z", "2026-12-08T00:00:00Z");
    let busy = |hosts: Vec<Uuid>| async move {
        let mut found = reader.busy_time(mine, &hosts, range).await.unwrap().blocks;
        found.sort_by_key(|(h, i)| (*i, *h));
        found
    };
    let first = iv("2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z");
    writer.add_busy_block(mine, a.id, first, None).await.unwrap().unwrap();
    assert_eq!(busy(vec![a.id, b.id]).await, vec![(a.id, first)]);
    // Read again (now from the reader's copy): the same.
    assert_eq!(busy(vec![a.id, b.id]).await, vec![(a.id, first)]);

    // Added through the other store: seen at once, for that host only.
    let second = iv("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let bobs = writer.add_busy_block(mine, b.id, second, None).await.unwrap().unwrap();
    assert_eq!(busy(vec![a.id, b.id]).await, vec![(a.id, first), (b.id, second)]);
    // Deleted through the other store: gone at once.
    assert!(writer.delete_busy_block(mine, b.id, bobs.id).await.unwrap());
    assert_eq!(busy(vec![a.id, b.id]).await, vec![(a.id, first)]);
    // A block outside a narrower range is not answered, one inside a later range is.
    let narrow = iv("2026-12-01T11:00:00Z", "2026-12-02T00:00:00Z");
    assert!(reader.busy_time(mine, &[a.id], narrow).await.unwrap().blocks.is_empty());
    let later = iv("2027-03-01T10:00:00Z", "2027-03-01T11:00:00Z");
    writer.add_busy_block(mine, a.id, later, None).await.unwrap().unwrap();
    let far = iv("2027-03-01T00:00:00Z", "2027-03-02T00:00:00Z");
    assert_eq!(reader.busy_time(mine, &[a.id], far).await.unwrap().blocks, vec![(a.id, later)]);
    // Refused writes (another organization, an unknown block) change nothing anyone sees.
    let theirs = org(reader).await;

    assert!(writer.add_busy_block(theirs, a.id, second, None).await.unwrap().is_none());
    assert!(!writer.delete_busy_block(mine, a.id, Uuid::now_v7()).await.unwrap());
    assert_eq!(busy(vec![a.id, b.id]).await, vec![(a.id, first)]);
    // And another organization never sees this one's blocks, cached or not.
    assert!(reader.busy_time(theirs, &[a.id], range).await.unwrap().blocks.is_empty());
    writer.close().await;
}
