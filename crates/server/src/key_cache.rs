//! A short-lived, in-process memory of which API keys were valid, so a busy client does not
//! cost a database lookup per request. Only keys the database just confirmed are remembered,
//! and only for the configured time (`--api-key-cache-seconds`, default 5; 0 turns it off):
//! a revoked key stops working on every process within that time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use slotd_store::OrgId;

/// At most this many keys are remembered; beyond it the memory starts again empty.
const MAX_ENTRIES: usize = 10_000;

/// Recently confirmed key hashes and their organizations.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (OrgId, Instant)>>,
}

impl KeyCache {
    /// A cache that remembers confirmations for `ttl` (zero: never).
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The organization of a key hash confirmed less than `ttl` before `now`.
    pub fn get(&self, key_hash: &str, now: Instant) -> Option<OrgId> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key_hash).filter(|(_, at)| now.duration_since(*at) < self.ttl).map(|(org, _)| *org)
    }

    /// Remembers that the database confirmed `key_hash` at `now`.
    pub fn put(&self, key_hash: &str, org: OrgId, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key_hash.to_owned(), (org, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmed_key_is_remembered_for_the_ttl_only() {
        let cache = KeyCache::new(Duration::from_secs(5));
        let org = OrgId(uuid::Uuid::now_v7());
        let t0 = Instant::now();
        assert_eq!(cache.get("h", t0), None);
        cache.put("h", org, t0);
        assert_eq!(cache.get("h", t0 + Duration::from_secs(4)), Some(org));
        assert_eq!(cache.get("h", t0 + Duration::from_secs(5)), None, "expired: the database is asked again");
        assert_eq!(cache.get("other", t0), None);
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let cache = KeyCache::new(Duration::ZERO);
        let t0 = Instant::now();
        cache.put("h", OrgId(uuid::Uuid::now_v7()), t0);
        assert_eq!(cache.get("h", t0), None);
    }
}
