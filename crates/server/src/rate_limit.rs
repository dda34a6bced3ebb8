//! Rate limits, in this process's memory: per API key on the `/v1` routes (`--rate-limit`,
//! `--rate-burst`), and per client address on the token routes that need no key (`/manage/…`,
//! `/v1/manage/…`, `/b/…`; `--token-rate-limit`, `--token-rate-burst`). A request over its limit
//! answers `429 rate_limited` with `Retry-After`.
//!
//! Both are keyed GCRA limiters from `governor`. The API-key limiter is consulted only after the
//! key was confirmed, so a wrong key is a 401 and never spends a real key's budget. On the token
//! routes a token that does not verify (any 404 there) costs [`UNKNOWN_TOKEN_EXTRA_CELLS`] more
//! cells afterwards, so an address guessing tokens is throttled after its first couple of
//! guesses while other addresses are not affected. IPv6 clients are counted per /64 (one host
//! usually holds a whole /64). Keys whose state is back to fresh are forgotten every
//! [`SWEEP_INTERVAL`], so the limiters' memory follows the clients of the last few seconds, not
//! every client ever seen.
//!
//! The limits are per process: N `serve` processes behind a balancer allow N times the rate.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{NotUntil, Quota, RateLimiter};

use crate::error::ApiError;

/// Extra cells an address pays after a token route answered 404 (a token that does not verify).
pub const UNKNOWN_TOKEN_EXTRA_CELLS: u32 = 10;

/// How often keys whose state is indistinguishable from fresh are dropped.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// One limit: a steady rate and the burst allowed on top of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second, refilled continuously; 0 turns the limit off.
    pub per_second: u32,
    /// Requests that may arrive at once (at least 1 when the limit is on).
    pub burst: u32,
}

impl RateLimit {
    /// No limit.
    pub const OFF: RateLimit = RateLimit { per_second: 0, burst: 0 };

    fn quota(self) -> Option<Quota> {
        let per_second = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst).unwrap_or(per_second);
        Some(Quota::per_second(per_second).allow_burst(burst))
    }
}

type Limiter<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// The limiters of one process.
pub struct RateLimits {
    api_keys: Option<Limiter<String>>,
    addresses: Option<Limiter<IpAddr>>,
    clock: DefaultClock,
    started: Instant,
    /// Milliseconds after `started` when the next sweep is due.
    next_sweep_ms: AtomicU64,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("api_keys", &self.api_keys.is_some())
            .field("addresses", &self.addresses.is_some())
            .finish()
    }
}

impl RateLimits {
    /// Limiters for API keys and for client addresses on the token routes.
    pub fn new(api_keys: RateLimit, token_routes: RateLimit) -> RateLimits {
        RateLimits {
            api_keys: api_keys.quota().map(RateLimiter::keyed),
            addresses: token_routes.quota().map(RateLimiter::keyed),
            clock: DefaultClock::default(),
            started: Instant::now(),
            next_sweep_ms: AtomicU64::new(millis(SWEEP_INTERVAL)),
        }
    }

    /// No limits at all.
    pub fn off() -> RateLimits {
        RateLimits::new(RateLimit::OFF, RateLimit::OFF)
    }

    /// Spends one request of a confirmed API key (by its hash).
    pub fn check_api_key(&self, key_hash: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.api_keys else { return Ok(()) };
        self.sweep_if_due();
        limiter.check_key(&key_hash.to_owned()).map_err(|refused| self.refusal(&refused))
    }

    /// Spends one request of a client address on the token routes.
    pub fn check_address(&self, address: IpAddr) -> Result<(), ApiError> {
        let Some(limiter) = &self.addresses else { return Ok(()) };
        self.sweep_if_due();
        limiter.check_key(&client_key(address)).map_err(|refused| self.refusal(&refused))
    }

    /// Charges an address for a token that did not verify: up to [`UNKNOWN_TOKEN_EXTRA_CELLS`]
    /// more cells, as many as its budget still holds (so it is empty after a guess or two).
    pub fn charge_unknown_token(&self, address: IpAddr) {
        let Some(limiter) = &self.addresses else { return };
        let key = client_key(address);
        let extra = NonZeroU32::new(UNKNOWN_TOKEN_EXTRA_CELLS).expect("not zero");
        if matches!(limiter.check_key_n(&key, extra), Ok(Ok(()))) {
            return;
        }
        // Not that many left (or a burst smaller than the charge): take what is there.
        for _ in 0..UNKNOWN_TOKEN_EXTRA_CELLS {
            if limiter.check_key(&key).is_err() {
                break;
            }
        }
    }

    /// Keys remembered now (API keys, addresses).
    pub fn tracked(&self) -> (usize, usize) {
        (self.api_keys.as_ref().map_or(0, |l| l.len()), self.addresses.as_ref().map_or(0, |l| l.len()))
    }

    /// Forgets every key whose state is back to fresh, now.
    pub fn sweep(&self) {
        if let Some(limiter) = &self.api_keys {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.addresses {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Sweeps when [`SWEEP_INTERVAL`] has passed since the last sweep (one caller does it).
    fn sweep_if_due(&self) {
        let now_ms = millis(self.started.elapsed());
        let due = self.next_sweep_ms.load(Ordering::Relaxed);
        if now_ms >= due
            && self
                .next_sweep_ms
                .compare_exchange(due, now_ms + millis(SWEEP_INTERVAL), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep();
        }
    }

    fn refusal(&self, refused: &NotUntil<<DefaultClock as Clock>::Instant>) -> ApiError {
        let wait = refused.wait_time_from(self.clock.now());
        // Whole seconds, rounded up: waiting that long always finds the cell free again.
        let retry_after_secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        ApiError::RateLimited { retry_after_secs }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What an address is counted as: IPv4 as is (also when mapped into IPv6), IPv6 by its /64.
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// Middleware: the per-address limit on the token routes, and the charge for unknown tokens.
/// Requests without a known peer address (a router served without connect info) pass.
pub async fn limit_token_routes(State(limits): State<Arc<RateLimits>>, request: Request, next: Next) -> Response {
    if !crate::app::is_token_path(request.uri().path()) {
        return next.run(request).await;
    }
    let Some(address) = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip()) else {
        return next.run(request).await;
    };
    if let Err(refused) = limits.check_address(address) {
        return refused.into_response();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::NOT_FOUND {
        limits.charge_unknown_token(address);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_burst_over_the_limit_is_refused_with_a_whole_number_of_seconds() {
        let limits = RateLimits::new(RateLimit { per_second: 1, burst: 3 }, RateLimit::OFF);
        for _ in 0..3 {
            limits.check_api_key("k").unwrap();
        }
        match limits.check_api_key("k") {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected a refusal, got {other:?}"),
        }
        limits.check_api_key("other key").unwrap();
    }

    #[test]
    fn an_unknown_token_empties_the_budget_of_its_address_only() {
        let limits = RateLimits::new(RateLimit::OFF, RateLimit { per_second: 1, burst: 20 });
        let guesser: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        limits.check_address(guesser).unwrap();
        limits.charge_unknown_token(guesser);
        limits.check_address(guesser).unwrap();
        limits.charge_unknown_token(guesser);
        assert!(limits.check_address(guesser).is_err(), "two guesses spent the burst of 20");
        limits.check_address(other).unwrap();
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limits = RateLimits::off();
        for _ in 0..10_000 {
            limits.check_api_key("k").unwrap();
            limits.check_address("192.0.2.1".parse().unwrap()).unwrap();
        }
        assert_eq!(limits.tracked(), (0, 0));
    }

    #[test]
    fn a_sweep_forgets_keys_that_are_back_to_fresh() {
        let limits = RateLimits::new(RateLimit { per_second: 1000, burst: 1 }, RateLimit::OFF);
        for i in 0..500 {
            limits.check_api_key(&format!("key {i}")).unwrap();
        }
        assert_eq!(limits.tracked().0, 500);
        std::thread::sleep(Duration::from_millis(20));
        limits.sweep();
        assert_eq!(limits.tracked().0, 0);
    }
}
