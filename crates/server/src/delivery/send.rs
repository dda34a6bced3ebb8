//! One webhook POST: the SSRF guard at connect time, the time limit, no redirects, and a bounded
//! read of the answer, turned into a [`Response`] with a sentence for every way it can fail.
//!
//! Host names are resolved by [`GuardedResolver`], which refuses the whole name when any of its
//! addresses is not public (unless private targets are allowed), so the connection is only ever
//! made to an address that was vetted in the same step. IP-literal URLs never reach a resolver
//! and are vetted in [`Sender::post`] before anything is sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use slotd_core::webhook::check_webhook_url;

use crate::ssrf::{self, Resolver, vet};

/// Largest event body slotd sends.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Largest answer slotd reads; a longer one fails the attempt.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How much of an answer is kept in the attempt log.
pub const STORED_RESPONSE_BYTES: usize = 4 * 1024;

/// What came of one POST.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The receiver took it (2xx within the time limit, with a readable answer).
    pub succeeded: bool,
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    /// The first 4 KB of the answer (lossy UTF-8).
    pub body: Option<String>,
    /// Why it failed, in words.
    pub error: Option<String>,
    /// A 429/503's `Retry-After`, in milliseconds.
    pub retry_after_ms: Option<u64>,
    /// The receiver answered 410 Gone.
    pub gone: bool,
    /// Whether a connection was attempted at all (false when a guard refused first).
    pub connected: bool,
}

impl Response {
    fn refused(error: String) -> Response {
        Response { error: Some(error), ..Response::default() }
    }

    /// An attempt that failed for `error` (retried like any failed attempt).
    pub fn failed(error: impl Into<String>) -> Response {
        Response { error: Some(error.into()), connected: true, ..Response::default() }
    }
}

/// Why the guarded resolver refused a name (found again in reqwest's error chain).
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves webhook hosts and lets through only public addresses (or any, when allowed).
struct GuardedResolver {
    resolver: Resolver,
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.resolver.clone();
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses =
                ssrf::resolve_vetted(&resolver, &host, 0, allow_private).await.map_err(|e| Box::new(Refused(e)))?;
            let addrs: Addrs = Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// An HTTP client that connects only to addresses the SSRF guard vetted (any address with
/// `allow_private`), follows no redirects and uses no proxy. IP-literal URLs never reach its
/// resolver: callers vet those first ([`ssrf::check`]).
pub fn guarded_client(resolver: Resolver, allow_private: bool, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("slotd/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        // A proxy from the environment would connect on our behalf to addresses we never vetted.
        .no_proxy()
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(Duration::from_secs(30))
        .dns_resolver(Arc::new(GuardedResolver { resolver, allow_private }))
        .build()
        .expect("the guarded HTTP client builds (TLS roots load)")
}

/// Sends webhook POSTs; cheap to share (one connection pool per process).
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl Sender {
    /// A sender with the given resolver, guard setting and time limit.
    pub fn new(resolver: Resolver, allow_private: bool, timeout: Duration) -> Sender {
        Sender { client: guarded_client(resolver, allow_private, timeout), allow_private, timeout }
    }

    /// POSTs `body` to `url` with `headers`; never panics, never returns early without a reason.
    pub async fn post(&self, url: &str, headers: &[(&'static str, String)], body: String) -> (Response, Duration) {
        let started = Instant::now();
        let response = self.post_inner(url, headers, body).await;
        (response, started.elapsed())
    }

    async fn post_inner(&self, url: &str, headers: &[(&'static str, String)], body: String) -> Response {
        let target = match check_webhook_url(url) {
            Ok(target) => target,
            Err(e) => return Response::refused(format!("the endpoint URL is not acceptable: {e}")),
        };
        if let Some(ip) = target.is_ip_literal
            && let Err(e) = vet(&target.host, &[ip], self.allow_private)
        {
            return Response::refused(e);
        }
        if body.len() > MAX_PAYLOAD_BYTES {
            return Response::refused(format!(
                "the event is {} bytes, over the {} KiB payload limit",
                body.len(),
                MAX_PAYLOAD_BYTES / 1024
            ));
        }
        let mut request = self.client.post(url).header("content-type", "application/json").body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut answer = match request.send().await {
            Ok(answer) => answer,
            Err(e) => return Response { connected: !refused_by_guard(&e), ..Response::refused(self.describe(&e)) },
        };
        let status = answer.status();
        let mut response = Response { status: Some(status.as_u16()), connected: true, ..Response::default() };
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            response.retry_after_ms = answer
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after_ms);
        }
        let location = answer.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // Read at most MAX_RESPONSE_BYTES (+1 to notice a longer answer), chunk by chunk.
        let mut read = Vec::new();
        let too_long = answer.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64);
        if !too_long {
            loop {
                match answer.chunk().await {
                    Ok(Some(chunk)) => {
                        read.extend_from_slice(&chunk);
                        if read.len() > MAX_RESPONSE_BYTES {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        response.body = Some(keep(&read));
                        response.error = Some(format!("reading the answer failed: {}", self.describe(&e)));
                        return response;
                    }
                }
            }
        }
        response.body = Some(keep(&read));
        if too_long || read.len() > MAX_RESPONSE_BYTES {
            response.error = Some(format!(
                "the answer is larger than {} KiB; slotd reads no more than that",
                MAX_RESPONSE_BYTES / 1024
            ));
        } else if status.is_success() {
            response.succeeded = true;
        } else if status.is_redirection() {
            response.error = Some(match location {
                Some(to) => format!("HTTP {status}: redirect to {to} not followed (webhook redirects are refused)"),
                None => format!("HTTP {status}: redirects are not followed"),
            });
        } else {
            response.gone = status == reqwest::StatusCode::GONE;
            response.error = Some(format!("HTTP {status}"));
        }
        response
    }

    /// A sentence for a transport error.
    fn describe(&self, e: &reqwest::Error) -> String {
        if let Some(refused) = find_source::<Refused>(e) {
            return refused.0.clone();
        }
        if e.is_timeout() {
            return format!("no answer within {} s (timed out)", self.timeout.as_secs_f64());
        }
        let root = root_cause(e);
        if e.is_connect() {
            return format!("could not connect: {root}");
        }
        format!("the request failed: {root}")
    }
}

/// Whether the error is the SSRF guard's refusal (no connection was made).
fn refused_by_guard(e: &reqwest::Error) -> bool {
    find_source::<Refused>(e).is_some()
}

fn find_source<'a, T: std::error::Error + 'static>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// The stored part of an answer: its first bytes as text, with invalid UTF-8 and NUL characters
/// (which PostgreSQL text cannot hold) shown as U+FFFD.
fn keep(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(STORED_RESPONSE_BYTES)]).replace('\0', "\u{FFFD}")
}

/// `Retry-After` as delay-seconds or an HTTP date, in milliseconds from now.
pub fn parse_retry_after_ms(value: &str) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(value).ok()?;
    let ms = at.as_millisecond().saturating_sub(jiff::Timestamp::now().as_millisecond());
    Some(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(parse_retry_after_ms("120"), Some(120_000));
        assert_eq!(parse_retry_after_ms(" 0 "), Some(0));
        assert_eq!(parse_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT"), Some(0));
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
        let header = jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&soon).unwrap();
        let ms = parse_retry_after_ms(&header).unwrap();
        assert!((28_000..=30_000).contains(&ms), "{header} → {ms}");
        assert_eq!(parse_retry_after_ms("soon"), None);
    }

    #[test]
    fn vetting_refuses_any_private_address_unless_allowed() {
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let private: IpAddr = "10.0.0.5".parse().unwrap();
        assert!(vet("a", &[public], false).is_ok());
        assert!(vet("a", &[public, private], false).unwrap_err().contains("10.0.0.5"));
        assert!(vet("a", &[private], true).is_ok());
        assert!(vet("a", &[], true).is_err());
    }

    /// The PRODUCT.md matrix at delivery time: a name resolving to any of these is refused by the
    /// resolver the HTTP client connects through (so no connection can follow), unless allowed.
    /// Only the static table is consulted; nothing is looked up or contacted.
    #[tokio::test]
    async fn the_connecting_resolver_refuses_names_of_non_public_addresses() {
        use std::str::FromStr;
        let refused = [
            ("loopback.test", "127.0.0.1"),
            ("loopback6.test", "::1"),
            ("ten.test", "10.1.2.3"),
            ("one-seven-two.test", "172.16.5.4"),
            ("one-nine-two.test", "192.168.1.1"),
            ("metadata.test", "169.254.169.254"),
            ("zero.test", "0.0.0.0"),
            ("mapped.test", "::ffff:10.0.0.1"),
        ];
        let mut table: std::collections::HashMap<String, Vec<IpAddr>> =
            refused.iter().map(|(name, ip)| (name.to_string(), vec![ip.parse().unwrap()])).collect();
        table.insert("public.test".into(), vec!["93.184.216.34".parse().unwrap()]);
        table.insert("mixed.test".into(), vec!["93.184.216.34".parse().unwrap(), "10.0.0.1".parse().unwrap()]);
        let table = Arc::new(table);
        let guarded = GuardedResolver { resolver: Resolver::Static(table.clone()), allow_private: false };
        for (name, ip) in refused.iter().chain([&("mixed.test", "10.0.0.1")]) {
            let error = guarded.resolve(Name::from_str(name).unwrap()).await.err().expect(name).to_string();
            assert!(error.contains("refused by the SSRF guard") && error.contains(ip), "{name}: {error}");
        }
        let addrs: Vec<SocketAddr> = guarded.resolve(Name::from_str("public.test").unwrap()).await.unwrap().collect();
        assert_eq!(addrs, vec!["93.184.216.34:0".parse().unwrap()]);
        let error = guarded.resolve(Name::from_str("unknown.test").unwrap()).await.err().unwrap().to_string();
        assert!(error.contains("does not resolve"), "{error}");
        let open = GuardedResolver { resolver: Resolver::Static(table), allow_private: true };
        assert!(open.resolve(Name::from_str("ten.test").unwrap()).await.is_ok());
    }

    #[test]
    fn stored_answers_are_cut_to_4_kib() {
        assert_eq!(keep(&[b'a'; 10_000]).len(), STORED_RESPONSE_BYTES);
        assert_eq!(keep(b"ok"), "ok");
    }
}
