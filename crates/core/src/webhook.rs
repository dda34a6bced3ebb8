//! Webhook delivery rules that need no I/O: Standard Webhooks signing, the retry schedule, and the
//! static half of the SSRF guard (PRODUCT.md, "Webhooks").
//!
//! The server's outbox worker does the sending; this module decides what it sends and when. It
//! signs each delivery (`webhook-signature`, one `v1,` entry per secret while a rotated secret is
//! in grace), works out how long to wait before the next attempt (schedule, jitter, `Retry-After`),
//! and checks a webhook URL and any IP address before a connection is made. DNS resolution, the
//! clock and randomness are the caller's: the resolved address goes through [`is_public_unicast`]
//! and the random jitter comes in as a number, so everything here is a pure function and testable
//! as such. `--allow-private-webhooks` is the caller's business too: it skips the address check,
//! never [`check_webhook_url`]'s syntax checks.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The text in front of the base64 key in a secret's string form.
const SECRET_PREFIX: &str = "whsec_";
/// Fewest key bytes a secret may hold (PRODUCT.md: 24–64 random bytes).
const MIN_SECRET_BYTES: usize = 24;
/// Most key bytes a secret may hold.
const MAX_SECRET_BYTES: usize = 64;
/// Standard base64 that accepts the key with or without `=` padding, since both spellings circulate
/// (the Standard Webhooks test vector needs none). Non-zero trailing bits are still rejected.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// Length of one encoded HMAC-SHA256 signature: 32 bytes in padded standard base64.
const SIGNATURE_CHARS: usize = 44;

/// Longest webhook URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

/// An endpoint's signing key (the raw bytes behind a `whsec_…` string).
#[derive(Clone)]
pub struct SigningSecret {
    key: Vec<u8>,
}

/// Why a signing secret was refused. Messages never quote the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The text does not start with `whsec_`.
    #[error("a webhook secret starts with \"whsec_\"")]
    MissingPrefix,
    /// The part after `whsec_` is not standard base64.
    #[error("a webhook secret is \"whsec_\" followed by standard base64")]
    InvalidBase64,
    /// The key is shorter than 24 or longer than 64 bytes.
    #[error("a webhook secret holds 24 to 64 bytes, got {len}")]
    InvalidLength {
        /// Number of key bytes found.
        len: usize,
    },
}

impl SigningSecret {
    /// Parses the `whsec_` + standard base64 form (padding optional) of a 24–64 byte key.
    pub fn parse(s: &str) -> Result<SigningSecret, SecretError> {
        let encoded = s.strip_prefix(SECRET_PREFIX).ok_or(SecretError::MissingPrefix)?;
        let key = SECRET_BASE64.decode(encoded).map_err(|_| SecretError::InvalidBase64)?;
        SigningSecret::from_bytes(&key)
    }

    /// Wraps raw key bytes (24–64 of them); new secrets come from the caller's CSPRNG through here.
    pub fn from_bytes(bytes: &[u8]) -> Result<SigningSecret, SecretError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(SecretError::InvalidLength { len: bytes.len() });
        }
        Ok(SigningSecret { key: bytes.to_vec() })
    }

    /// The `whsec_…` text shown to the user once and stored (encrypted) by the server.
    pub fn to_string_form(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// The keyed MAC over the signed content `"{id}.{timestamp}.{body}"`, ready to finalize.
    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        // HMAC hashes or pads keys of any length, so this cannot fail.
        let mut mac = match <HmacSha256 as Mac>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key must never reach logs, so Debug shows only that one exists.
        f.write_str("SigningSecret(<redacted>)")
    }
}

/// One `webhook-signature` entry: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
pub fn sign(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", STANDARD.encode(secret.mac(msg_id, timestamp, body).finalize().into_bytes()))
}

/// The whole `webhook-signature` header: one `v1,` entry per secret, space-separated (rotation grace).
pub fn signature_header(secrets: &[&SigningSecret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|secret| sign(secret, msg_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Whether any `v1,` entry of a `webhook-signature` header is `secret`'s signature, compared in constant time.
///
/// Only the signature is checked; whether `timestamp` is recent enough is the caller's policy.
pub fn verify(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    // The body is hashed once; each entry then costs only a clone and the final HMAC block.
    let mac = secret.mac(msg_id, timestamp, body);
    header.split_ascii_whitespace().any(|entry| {
        let Some(encoded) = entry.strip_prefix("v1,") else {
            // Other schemes (e.g. `v1a,` asymmetric signatures) are not ours to check.
            return false;
        };
        // Checking the length first bounds the work done on a hostile header.
        if encoded.len() != SIGNATURE_CHARS {
            return false;
        }
        match STANDARD.decode(encoded) {
            Ok(expected) => mac.clone().verify_slice(&expected).is_ok(),
            Err(_) => false,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Retry schedule
// ---------------------------------------------------------------------------------------------

/// When delivery attempts happen: `delays_ms[i]` is the wait before attempt `i + 1`, counted from the
/// previous attempt's failure (from the event for the first attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays_ms: Vec<u64>,
}

/// Why a retry schedule did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The text holds no delays at all.
    #[error("a retry schedule lists at least one delay, e.g. \"0,5m,60m\"")]
    Empty,
    /// One comma-separated item is not a duration.
    #[error("retry delay {position} ({item:?}) is invalid: {reason}")]
    BadItem {
        /// 1-based position of the item in the list.
        position: usize,
        /// The item as written (trimmed).
        item: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Default for RetrySchedule {
    /// PRODUCT.md's schedule: immediately, then 5 minutes, then 60 minutes; failed after the third attempt.
    fn default() -> RetrySchedule {
        RetrySchedule { delays_ms: vec![0, 300_000, 3_600_000] }
    }
}

impl RetrySchedule {
    /// Parses a comma-separated list of delays such as `0,5m,60m` (units ms, s, m, h, d; a bare number is ms).
    pub fn parse(s: &str) -> Result<RetrySchedule, ScheduleError> {
        if s.trim().is_empty() {
            return Err(ScheduleError::Empty);
        }
        let delays_ms = s
            .split(',')
            .enumerate()
            .map(|(i, item)| {
                let item = item.trim();
                parse_delay_ms(item).map_err(|reason| ScheduleError::BadItem {
                    position: i + 1,
                    item: item.to_owned(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RetrySchedule { delays_ms })
    }

    /// The scheduled delays in milliseconds, one per attempt.
    pub fn delays_ms(&self) -> &[u64] {
        &self.delays_ms
    }

    /// How many attempts a delivery gets before it is `failed`.
    pub fn attempts(&self) -> usize {
        self.delays_ms.len()
    }

    /// The longest scheduled delay; also the cap on a receiver's `Retry-After`.
    pub fn max_delay_ms(&self) -> u64 {
        self.delays_ms.iter().copied().max().unwrap_or(0)
    }

    /// How long to wait before the next attempt after `attempts_made` attempts, or `None` when none remain.
    ///
    /// The scheduled delay gets ±10 % jitter (`jitter_unit` in `[0, 1)` maps linearly onto −10 %..+10 %;
    /// out-of-range values are clamped and NaN means no jitter). A `Retry-After` from a 429/503 can
    /// lengthen the wait up to [`max_delay_ms`](Self::max_delay_ms) but never shorten the schedule.
    pub fn next_attempt_delay_ms(
        &self,
        attempts_made: usize,
        jitter_unit: f64,
        retry_after_ms: Option<u64>,
    ) -> Option<u64> {
        let scheduled = *self.delays_ms.get(attempts_made)?;
        let unit = if jitter_unit.is_nan() { 0.5 } else { jitter_unit.clamp(0.0, 1.0) };
        // Jitter spreads retries from many deliveries that failed together (an endpoint outage)
        // so they do not all land on the endpoint in the same instant when it comes back.
        // Float-to-int `as` saturates, so even absurd delays cannot wrap.
        let jittered = (scheduled as f64 * (0.9 + 0.2 * unit)).round() as u64;
        // The cap applies to the receiver's request, not to the jittered schedule: a receiver may
        // ask us to back off (up to our own longest wait) but cannot make us come back sooner.
        let requested = retry_after_ms.map_or(0, |ms| ms.min(self.max_delay_ms()));
        Some(jittered.max(requested))
    }
}

impl FromStr for RetrySchedule {
    type Err = ScheduleError;

    /// Same as [`RetrySchedule::parse`], so CLI flags can take a schedule directly.
    fn from_str(s: &str) -> Result<RetrySchedule, ScheduleError> {
        RetrySchedule::parse(s)
    }
}

/// A duration such as `10s`, `5m`, `120h` or `5d` (a bare number is milliseconds), in
/// milliseconds, or why it is not one. Used by the retry schedule and the worker's flags.
pub fn parse_duration_ms(item: &str) -> Result<u64, &'static str> {
    parse_delay_ms(item.trim())
}

/// One delay (`5m`, `10ms`, `0`, …) in milliseconds, or why it is not one.
fn parse_delay_ms(item: &str) -> Result<u64, &'static str> {
    if item.is_empty() {
        return Err("empty item");
    }
    let digits_end = item.find(|c: char| !c.is_ascii_digit()).unwrap_or(item.len());
    let (number, unit) = item.split_at(digits_end);
    // `u64::from_str` would also take a leading `+`; requiring digits keeps one spelling per value.
    if number.is_empty() {
        return Err("expected a whole number followed by ms, s, m, h or d");
    }
    let per_unit: u64 = match unit {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err("unknown unit (use ms, s, m, h or d)"),
    };
    number.parse::<u64>().ok().and_then(|n| n.checked_mul(per_unit)).ok_or("delay too large")
}

// ---------------------------------------------------------------------------------------------
// SSRF guard: addresses
// ---------------------------------------------------------------------------------------------

/// IPv4 ranges that are not global unicast, as (network, prefix length). Anything else is allowed.
const REFUSED_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network", incl. the unspecified 0.0.0.0
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // carrier-grade NAT (shared address space)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, incl. the 169.254.169.254 cloud metadata service
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast; never a legitimate receiver
    ([192, 168, 0, 0], 16),  // private
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, incl. the broadcast 255.255.255.255
];

/// The only IPv6 block IANA allocates global unicast from (2000::/3); everything outside it is refused.
const GLOBAL_UNICAST_V6: (u128, u32) = (0x2000 << 112, 3);

/// Ranges inside 2000::/3 that are still not global unicast, as (network, prefix length).
const REFUSED_V6: &[(u128, u32)] = &[
    // IETF protocol assignments: Teredo 2001::/32 (tunnels to arbitrary IPv4), benchmarking
    // 2001:2::/48, ORCHID and a few anycast services; none of them is a webhook receiver.
    (0x2001 << 112, 23),
    (0x2001_0db8 << 96, 32), // documentation
    (0x3fff << 112, 20),     // documentation (RFC 9637)
];

/// Whether an address is global unicast, i.e. safe for the server to connect to on a customer's behalf.
///
/// Loopback, unspecified, private, shared (CGNAT), link-local (and so cloud metadata), multicast,
/// broadcast, documentation, benchmarking, reserved, unique-local and site-local addresses are
/// refused. IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64 64:ff9b::/96, 6to4)
/// are judged by that IPv4 address, since that is where the packets end up; Teredo is refused.
pub fn is_public_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// [`is_public_unicast`] for IPv4.
fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !REFUSED_V4.iter().any(|&(net, len)| in_prefix(u128::from(bits), u128::from(u32::from_be_bytes(net)), len, 32))
}

/// [`is_public_unicast`] for IPv6.
fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let bits = u128::from(ip);
    in_prefix(bits, GLOBAL_UNICAST_V6.0, GLOBAL_UNICAST_V6.1, 128)
        && !REFUSED_V6.iter().any(|&(net, len)| in_prefix(bits, net, len, 128))
}

/// The IPv4 address an IPv6 address stands for, where the packets would reach it.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    // Truncating casts pick out the 32 embedded bits.
    let low32 = Ipv4Addr::from(bits as u32);
    if in_prefix(bits, 0xffff << 32, 96, 128) {
        // IPv4-mapped ::ffff:a.b.c.d: a dual-stack socket connects straight to the IPv4 address.
        Some(low32)
    } else if in_prefix(bits, 0, 96, 128) {
        // IPv4-compatible ::a.b.c.d (deprecated); also covers :: and ::1, whose embedded
        // 0.0.0.0 and 0.0.0.1 fall in the refused 0.0.0.0/8.
        Some(low32)
    } else if in_prefix(bits, 0x0064_ff9b << 96, 96, 128) {
        // NAT64 well-known prefix: the translator forwards to the embedded address.
        Some(low32)
    } else if in_prefix(bits, 0x2002 << 112, 16, 128) {
        // 6to4 2002:AABB:CCDD::/48 tunnels to AA.BB.CC.DD.
        Some(Ipv4Addr::from((bits >> 80) as u32))
    } else {
        None
    }
}

/// Whether the top `len` of `width` bits of `addr` equal those of `net`.
fn in_prefix(addr: u128, net: u128, len: u32, width: u32) -> bool {
    let shift = width - len;
    // `checked_shr` keeps a /0 prefix (shift by the full width) from overflowing.
    addr.checked_shr(shift).unwrap_or(0) == net.checked_shr(shift).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// SSRF guard: URLs
// ---------------------------------------------------------------------------------------------

/// A webhook URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`, default port 80.
    Http,
    /// `https://`, default port 443.
    Https,
}

impl Scheme {
    /// The scheme in lowercase, as it appears in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Where a webhook URL points, as far as can be told without DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// The host in lowercase; for an IP literal, the address's canonical text (IPv6 without brackets).
    pub host: String,
    /// The explicit port, or the scheme's default.
    pub port: u16,
    /// The address when the host is an IP literal; `None` means a name the caller must resolve and check.
    pub is_ip_literal: Option<IpAddr>,
}

/// Why a webhook URL was refused (shown to the API caller in a 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// Longer than [`MAX_URL_LEN`] bytes.
    #[error("the webhook URL is {len} bytes long; the limit is 2048")]
    TooLong {
        /// Length of the URL in bytes.
        len: usize,
    },
    /// Whitespace, a control character or a backslash somewhere in the URL.
    #[error("the webhook URL contains whitespace, a control character or a backslash")]
    InvalidCharacter,
    /// Not of the form `scheme://…`.
    #[error("the webhook URL must be absolute, starting with http:// or https://")]
    NotAbsolute,
    /// A scheme other than http or https.
    #[error("the webhook URL's scheme must be http or https, not {scheme:?}")]
    UnsupportedScheme {
        /// The scheme found, lowercased.
        scheme: String,
    },
    /// `user:password@` in front of the host.
    #[error("the webhook URL must not contain credentials (user:password@)")]
    Credentials,
    /// Nothing between `://` and the port or path.
    #[error("the webhook URL has no host")]
    MissingHost,
    /// A host that is neither a valid DNS name nor a canonical IP address.
    #[error("the webhook URL's host {host:?} is invalid: {reason}")]
    InvalidHost {
        /// The host as written.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A port that is not a number in 1..=65535.
    #[error("the webhook URL's port {port:?} is invalid: it must be a number from 1 to 65535")]
    InvalidPort {
        /// The port as written.
        port: String,
    },
}

/// Checks a webhook URL statically (no DNS) and says where it points.
///
/// Stricter than browsers on purpose: anything a URL library might read differently from this
/// parser (backslashes, percent-encoded or non-ASCII hosts, `127.1`-style numeric hosts, stray
/// whitespace) is refused, so the host checked here is the host the HTTP client connects to.
/// Whether an IP literal is allowed is the caller's call, via [`is_public_unicast`].
pub fn check_webhook_url(url: &str) -> Result<WebhookTarget, UrlRefusal> {
    if url.len() > MAX_URL_LEN {
        return Err(UrlRefusal::TooLong { len: url.len() });
    }
    // WHATWG parsers strip tabs and newlines anywhere and treat `\` as `/`, which would let
    // `http://evil.example\@127.0.0.1/` mean different hosts to us and to the client.
    if url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
        return Err(UrlRefusal::InvalidCharacter);
    }
    let (scheme_text, rest) = url.split_once("://").ok_or(UrlRefusal::NotAbsolute)?;
    let scheme = parse_scheme(scheme_text)?;
    // The authority ends at the path, query or fragment; an `@` after that (`/hook?u=a@b`) is harmless.
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return Err(UrlRefusal::Credentials);
    }
    let (host_text, port_text) = split_host_port(authority)?;
    let (host, is_ip_literal) = parse_host(host_text)?;
    let port = match port_text {
        None => scheme.default_port(),
        Some(text) => parse_port(text)?,
    };
    Ok(WebhookTarget { scheme, host, port, is_ip_literal })
}

/// The scheme of `scheme://…`, case-insensitively, if it is http or https.
fn parse_scheme(text: &str) -> Result<Scheme, UrlRefusal> {
    // RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). Anything else means "://" was found
    // later in the text (e.g. in a query) and the URL has no scheme at all.
    let mut chars = text.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !well_formed {
        return Err(UrlRefusal::NotAbsolute);
    }
    if text.eq_ignore_ascii_case("http") {
        Ok(Scheme::Http)
    } else if text.eq_ignore_ascii_case("https") {
        Ok(Scheme::Https)
    } else {
        Err(UrlRefusal::UnsupportedScheme { scheme: text.to_ascii_lowercase() })
    }
}

/// Splits an authority (credentials already refused) into the host text and the port text, if any.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), UrlRefusal> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let invalid = || UrlRefusal::InvalidHost { host: authority.to_owned(), reason: "malformed [IPv6] literal" };
        let (inner, after) = bracketed.split_once(']').ok_or_else(invalid)?;
        let host = &authority[..inner.len() + 2];
        return match after {
            "" => Ok((host, None)),
            _ => after.strip_prefix(':').map(|port| (host, Some(port))).ok_or_else(invalid),
        };
    }
    match authority.split_once(':') {
        None => Ok((authority, None)),
        Some((host, port)) if !port.contains(':') => Ok((host, Some(port))),
        Some(_) => {
            Err(UrlRefusal::InvalidHost { host: authority.to_owned(), reason: "an IPv6 address must be in [brackets]" })
        }
    }
}

/// The normalised host and, for an IP literal, its address.
fn parse_host(text: &str) -> Result<(String, Option<IpAddr>), UrlRefusal> {
    let invalid = |reason| UrlRefusal::InvalidHost { host: text.to_owned(), reason };
    if text.is_empty() {
        return Err(UrlRefusal::MissingHost);
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        // std's parser takes no zone ids (`%eth0`), which only ever name link-local addresses.
        let ip = inner.parse::<Ipv6Addr>().map_err(|_| invalid("not an IPv6 address"))?;
        return Ok((ip.to_string(), Some(IpAddr::V6(ip))));
    }
    let host = text.to_ascii_lowercase();
    // Letters, digits, `-`, `.` and `_` only: `%` would be percent-decoded by URL libraries and
    // Unicode would be IDNA-mapped, both into hosts other than the one checked here.
    if !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
        return Err(invalid("only letters, digits, '-', '.' and '_' are allowed (write IDNs in punycode)"));
    }
    let name = host.strip_suffix('.').unwrap_or(&host);
    if name.len() > 253 {
        return Err(invalid("longer than 253 characters"));
    }
    let mut labels = name.split('.');
    if labels.clone().any(|label| label.is_empty() || label.len() > 63) {
        return Err(invalid("each dot-separated label must be 1 to 63 characters"));
    }
    // WHATWG URL parsers read any host whose last label is numeric as IPv4, in forms like `127.1`,
    // `0x7f.0.0.1`, `0177.0.0.1` or `2130706433` (all 127.0.0.1). Only the canonical dotted quad
    // is accepted so that this check and the HTTP client agree on the address.
    if labels.next_back().is_some_and(looks_numeric) {
        let ip = host.parse::<Ipv4Addr>().map_err(|_| invalid("a numeric host must be a dotted-quad IPv4 address"))?;
        return Ok((ip.to_string(), Some(IpAddr::V4(ip))));
    }
    Ok((host, None))
}

/// Whether a label counts as a number to a WHATWG URL parser (decimal, or `0x` hex).
fn looks_numeric(label: &str) -> bool {
    if let Some(hex) = label.strip_prefix("0x").or_else(|| label.strip_prefix("0X")) {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit())
}

/// An explicit port in 1..=65535.
fn parse_port(text: &str) -> Result<u16, UrlRefusal> {
    // Digits only: `u16::from_str` would also accept `+80`.
    match text.parse::<u16>() {
        Ok(port) if port != 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(UrlRefusal::InvalidPort { port: text.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // --- signing -----------------------------------------------------------------------------

    const VECTOR_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const VECTOR_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const VECTOR_TS: i64 = 1649367553;
    const VECTOR_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const VECTOR_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn vector_secret() -> SigningSecret {
        SigningSecret::parse(VECTOR_SECRET).expect("test vector secret")
    }

    fn secret_of(byte: u8, len: usize) -> SigningSecret {
        SigningSecret::from_bytes(&vec![byte; len]).expect("valid length")
    }

    #[test]
    fn standard_webhooks_test_vector() {
        // PRODUCT.md's vector, which is the Standard Webhooks reference vector: interoperability
        // with receivers' off-the-shelf libraries depends on it.
        assert_eq!(sign(&vector_secret(), VECTOR_ID, VECTOR_TS, VECTOR_BODY), VECTOR_SIG);
        assert!(verify(&vector_secret(), VECTOR_ID, VECTOR_TS, VECTOR_BODY, VECTOR_SIG));
    }

    #[test]
    fn secret_round_trips_through_string_form() {
        assert_eq!(vector_secret().to_string_form(), VECTOR_SECRET);
        for len in [24, 25, 32, 63, 64] {
            let secret = secret_of(0x5a, len);
            let text = secret.to_string_form();
            assert!(text.starts_with("whsec_"), "{text}");
            assert_eq!(SigningSecret::parse(&text).expect("own output parses").key, secret.key);
        }
    }

    #[test]
    fn secret_padding_is_optional() {
        let padded = secret_of(7, 32).to_string_form();
        assert!(padded.ends_with('='), "{padded}");
        let unpadded = padded.trim_end_matches('=');
        assert_eq!(SigningSecret::parse(unpadded).expect("unpadded").key, vec![7; 32]);
    }

    #[test]
    fn secret_parse_errors() {
        let b64 = |len: usize| STANDARD.encode(vec![1u8; len]);
        let cases: &[(String, SecretError)] = &[
            ("C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned(), SecretError::MissingPrefix),
            ("WHSEC_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned(), SecretError::MissingPrefix),
            ("whsk_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned(), SecretError::MissingPrefix),
            (String::new(), SecretError::MissingPrefix),
            ("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7o!".to_owned(), SecretError::InvalidBase64),
            // URL-safe alphabet is not standard base64.
            ("whsec_C2FVsBQIhrscChlQIMV-b5sSYspob7oD".to_owned(), SecretError::InvalidBase64),
            ("whsec_ C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned(), SecretError::InvalidBase64),
            ("whsec_A".to_owned(), SecretError::InvalidBase64),
            ("whsec_".to_owned(), SecretError::InvalidLength { len: 0 }),
            (format!("whsec_{}", b64(23)), SecretError::InvalidLength { len: 23 }),
            (format!("whsec_{}", b64(65)), SecretError::InvalidLength { len: 65 }),
        ];
        for (text, want) in cases {
            assert_eq!(SigningSecret::parse(text).map(|s| s.key), Err(want.clone()), "{text:?}");
        }
    }

    #[test]
    fn secret_from_bytes_bounds() {
        assert_eq!(SigningSecret::from_bytes(&[0; 23]).map(|s| s.key), Err(SecretError::InvalidLength { len: 23 }));
        assert_eq!(SigningSecret::from_bytes(&[0; 65]).map(|s| s.key), Err(SecretError::InvalidLength { len: 65 }));
        assert!(SigningSecret::from_bytes(&[0; 24]).is_ok());
        assert!(SigningSecret::from_bytes(&[0; 64]).is_ok());
    }

    #[test]
    fn debug_hides_the_key() {
        let secret = vector_secret();
        let shown = format!("{secret:?}");
        assert_eq!(shown, "SigningSecret(<redacted>)");
        assert!(!shown.contains("C2FV"));
    }

    #[test]
    fn two_secret_header_during_rotation() {
        let old = vector_secret();
        let new = secret_of(0x42, 32);
        let header = signature_header(&[&new, &old], VECTOR_ID, VECTOR_TS, VECTOR_BODY);
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2, "{header}");
        assert_eq!(entries[0], sign(&new, VECTOR_ID, VECTOR_TS, VECTOR_BODY));
        assert_eq!(entries[1], VECTOR_SIG);
        // A receiver holding either secret accepts the delivery.
        assert!(verify(&old, VECTOR_ID, VECTOR_TS, VECTOR_BODY, &header));
        assert!(verify(&new, VECTOR_ID, VECTOR_TS, VECTOR_BODY, &header));
        assert!(!verify(&secret_of(0x43, 32), VECTOR_ID, VECTOR_TS, VECTOR_BODY, &header));
        assert_eq!(signature_header(&[&old], VECTOR_ID, VECTOR_TS, VECTOR_BODY), VECTOR_SIG);
        assert_eq!(signature_header(&[], VECTOR_ID, VECTOR_TS, VECTOR_BODY), "");
    }

    #[test]
    fn verify_rejects_anything_else() {
        let s = vector_secret();
        let ok = |header: &str| verify(&s, VECTOR_ID, VECTOR_TS, VECTOR_BODY, header);
        assert!(ok(&format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {VECTOR_SIG}")));
        assert!(ok(&format!("  v1a,xyz   {VECTOR_SIG}  ")));
        for bad in [
            "",
            " ",
            "v1,",
            "v2,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw",
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkx=",
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kk==",
            "v1,uZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
        // Any change to the signed content fails.
        assert!(!verify(&s, "msg_other", VECTOR_TS, VECTOR_BODY, VECTOR_SIG));
        assert!(!verify(&s, VECTOR_ID, VECTOR_TS + 1, VECTOR_BODY, VECTOR_SIG));
        assert!(!verify(&s, VECTOR_ID, VECTOR_TS, b"{}", VECTOR_SIG));
    }

    #[test]
    fn negative_timestamps_sign_as_decimal() {
        // Pins the `{timestamp}` formatting: plain decimal with a sign, as `format!` gives.
        let s = vector_secret();
        let sig = sign(&s, "a", -5, b"b");
        let mut mac = HmacSha256::new_from_slice(&s.key).expect("any key length");
        mac.update(b"a.-5.b");
        assert_eq!(sig, format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())));
    }

    // --- retry schedule ----------------------------------------------------------------------

    #[test]
    fn default_schedule() {
        let s = RetrySchedule::default();
        assert_eq!(s.delays_ms(), [0, 300_000, 3_600_000]);
        assert_eq!(s.attempts(), 3);
        assert_eq!(s.max_delay_ms(), 3_600_000);
        assert_eq!(RetrySchedule::parse("0,5m,60m"), Ok(s));
    }

    #[test]
    fn schedule_parses() {
        let cases: &[(&str, &[u64])] = &[
            ("0,5m,60m", &[0, 300_000, 3_600_000]),
            ("0,10ms,20ms", &[0, 10, 20]),
            ("0s,1h", &[0, 3_600_000]),
            ("250", &[250]),
            (" 1s , 2s ", &[1_000, 2_000]),
            ("007ms", &[7]),
            ("30s,1m,2h", &[30_000, 60_000, 7_200_000]),
        ];
        for (text, want) in cases {
            let s = RetrySchedule::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(s.delays_ms(), *want, "{text:?}");
            assert_eq!(text.parse::<RetrySchedule>().as_ref(), Ok(&s));
        }
    }

    #[test]
    fn schedule_errors_name_the_item() {
        assert_eq!(RetrySchedule::parse(""), Err(ScheduleError::Empty));
        assert_eq!(RetrySchedule::parse("  "), Err(ScheduleError::Empty));
        let cases: &[(&str, usize, &str)] = &[
            ("0,5x,60m", 2, "5x"),
            ("0,,5m", 2, ""),
            ("0,5m,", 3, ""),
            ("m", 1, "m"),
            ("-5m", 1, "-5m"),
            ("+5m", 1, "+5m"),
            ("5 m", 1, "5 m"),
            ("1.5s", 1, "1.5s"),
            ("5M", 1, "5M"),
            ("0,99999999999999999999", 2, "99999999999999999999"),
            ("0,18446744073709551615h", 2, "18446744073709551615h"),
        ];
        for &(text, position, item) in cases {
            let err = RetrySchedule::parse(text).expect_err(text);
            let ScheduleError::BadItem { position: p, item: i, .. } = &err else {
                panic!("{text:?}: expected BadItem, got {err:?}");
            };
            assert_eq!((*p, i.as_str()), (position, item), "{text:?}");
            assert!(err.to_string().contains(&format!("{item:?}")), "{err}");
        }
    }

    #[test]
    fn next_attempt_delays() {
        let default = RetrySchedule::default();
        let fast = RetrySchedule::parse("0,10ms,20ms").expect("valid");
        /// (schedule, attempts made, jitter unit, Retry-After, expected)
        type Case<'a> = (&'a RetrySchedule, usize, f64, Option<u64>, Option<u64>);
        let cases: &[Case] = &[
            // The first attempt is immediate whatever the jitter.
            (&default, 0, 0.0, None, Some(0)),
            (&default, 0, 0.99, None, Some(0)),
            // Jitter: 0 → −10 %, 0.5 → exact, towards 1 → +10 %.
            (&default, 1, 0.5, None, Some(300_000)),
            (&default, 1, 0.0, None, Some(270_000)),
            (&default, 1, 0.25, None, Some(285_000)),
            (&default, 1, 0.999_999, None, Some(330_000)),
            (&default, 2, 0.5, None, Some(3_600_000)),
            (&default, 2, 0.0, None, Some(3_240_000)),
            // Out-of-range jitter is clamped; NaN means none.
            (&default, 1, -3.0, None, Some(270_000)),
            (&default, 1, 7.0, None, Some(330_000)),
            (&default, 1, f64::NAN, None, Some(300_000)),
            (&default, 1, f64::INFINITY, None, Some(330_000)),
            // No attempts left after the third failure.
            (&default, 3, 0.5, None, None),
            (&default, 3, 0.5, Some(1_000), None),
            (&default, usize::MAX, 0.5, None, None),
            // Retry-After lengthens the wait…
            (&default, 1, 0.5, Some(600_000), Some(600_000)),
            (&default, 0, 0.5, Some(1_000), Some(1_000)),
            // …but only up to the schedule's maximum…
            (&default, 1, 0.5, Some(7_200_000), Some(3_600_000)),
            (&default, 1, 0.5, Some(u64::MAX), Some(3_600_000)),
            // …and never shortens it.
            (&default, 1, 0.5, Some(60_000), Some(300_000)),
            (&default, 1, 0.0, Some(0), Some(270_000)),
            (&default, 2, 7.0, Some(3_600_000), Some(3_960_000)),
            (&fast, 1, 0.5, None, Some(10)),
            (&fast, 2, 0.0, None, Some(18)),
            (&fast, 1, 0.5, Some(1_000), Some(20)),
            (&fast, 3, 0.5, None, None),
        ];
        for (i, &(schedule, made, jitter, retry_after, want)) in cases.iter().enumerate() {
            assert_eq!(schedule.next_attempt_delay_ms(made, jitter, retry_after), want, "case {i}");
        }
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let s = RetrySchedule::default();
        for step in 0..1000 {
            let unit = f64::from(step) / 1000.0;
            let d = s.next_attempt_delay_ms(2, unit, None).expect("attempt left");
            assert!((3_240_000..=3_960_000).contains(&d), "{unit}: {d}");
        }
    }

    // --- addresses ---------------------------------------------------------------------------

    #[test]
    fn address_classification() {
        let cases: &[(&str, bool)] = &[
            // Global unicast.
            ("1.1.1.1", true),
            ("8.8.8.8", true),
            ("9.255.255.255", true),
            ("11.0.0.0", true),
            ("93.184.216.34", true),
            ("100.63.255.255", true),
            ("100.128.0.0", true),
            ("126.255.255.255", true),
            ("128.0.0.0", true),
            ("169.253.255.255", true),
            ("169.255.0.0", true),
            ("172.15.255.255", true),
            ("172.32.0.0", true),
            ("191.255.255.255", true),
            ("192.0.1.0", true),
            ("192.0.3.0", true),
            ("192.167.255.255", true),
            ("192.169.0.0", true),
            ("198.17.255.255", true),
            ("198.20.0.0", true),
            ("198.51.99.255", true),
            ("198.51.101.0", true),
            ("203.0.112.255", true),
            ("203.0.114.0", true),
            ("223.255.255.255", true),
            ("2606:4700:4700::1111", true),
            ("2001:4860:4860::8888", true),
            ("2a00:1450:4001:81c::200e", true),
            ("2001:200::1", true),
            ("2001:db7:ffff::1", true),
            ("2001:db9::1", true),
            ("3ffe::1", true),
            ("3fff:1000::1", true),
            ("::ffff:8.8.8.8", true),
            ("::8.8.8.8", true),
            ("64:ff9b::8.8.8.8", true),
            ("2002:0808:0808::1", true),
            // This network / unspecified.
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("0.255.255.255", false),
            ("::", false),
            // Loopback.
            ("127.0.0.1", false),
            ("127.255.255.254", false),
            ("::1", false),
            // Private.
            ("10.0.0.1", false),
            ("10.255.255.255", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("192.168.0.1", false),
            ("192.168.255.255", false),
            // Carrier-grade NAT.
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            // Link-local and cloud metadata.
            ("169.254.0.1", false),
            ("169.254.169.254", false),
            ("fe80::1", false),
            ("febf:ffff::1", false),
            // Multicast.
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("ff02::1", false),
            ("ff0e::1", false),
            // Broadcast and reserved.
            ("255.255.255.255", false),
            ("240.0.0.1", false),
            ("250.1.2.3", false),
            // IETF protocol assignments and the retired 6to4 relay anycast.
            ("192.0.0.1", false),
            ("192.0.0.9", false),
            ("192.0.0.255", false),
            ("192.88.99.1", false),
            // Documentation.
            ("192.0.2.1", false),
            ("198.51.100.7", false),
            ("203.0.113.200", false),
            ("2001:db8::1", false),
            ("2001:db8:ffff:ffff::1", false),
            ("3fff::1", false),
            ("3fff:fff::1", false),
            // Benchmarking.
            ("198.18.0.1", false),
            ("198.19.255.255", false),
            ("2001:2::1", false),
            // Unique-local (incl. AWS's IPv6 metadata address) and site-local.
            ("fc00::1", false),
            ("fd00:ec2::254", false),
            ("fdff:ffff::1", false),
            ("fec0::1", false),
            ("feff::1", false),
            // IPv4-mapped: judged by the IPv4 address.
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:0.0.0.0", false),
            // IPv4-compatible.
            ("::127.0.0.1", false),
            ("::192.168.1.1", false),
            // NAT64.
            ("64:ff9b::127.0.0.1", false),
            ("64:ff9b::169.254.169.254", false),
            ("64:ff9b::10.1.2.3", false),
            // NAT64 local-use prefix: outside 2000::/3.
            ("64:ff9b:1::8.8.8.8", false),
            // 6to4: judged by the IPv4 address.
            ("2002:7f00:0001::1", false),
            ("2002:c0a8:0101::1", false),
            ("2002:a9fe:a9fe::1", false),
            // Teredo, ORCHID and the rest of 2001::/23.
            ("2001::1", false),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
            ("2001:10::1", false),
            ("2001:1ff:ffff::1", false),
            // Outside 2000::/3: IETF-reserved, discard-only, SIIT-translated, unallocated.
            ("100::1", false),
            ("::ffff:0:8.8.8.8", false),
            ("1::1", false),
            ("4000::1", false),
            ("e000::1", false),
        ];
        for &(text, want) in cases {
            let ip: IpAddr = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(is_public_unicast(ip), want, "{text}");
        }
    }

    #[test]
    fn agrees_with_std_where_std_is_stable() {
        // std's stable predicates are narrower than ours but must never disagree in the refusing direction.
        for v4 in (0u32..=255).map(|a| Ipv4Addr::from((a << 24) | 0x0001_0203)) {
            if v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_multicast() || v4.is_unspecified() {
                assert!(!is_public_unicast(IpAddr::V4(v4)), "{v4}");
            }
        }
    }

    // --- URLs --------------------------------------------------------------------------------

    fn target(scheme: Scheme, host: &str, port: u16, ip: Option<&str>) -> WebhookTarget {
        WebhookTarget { scheme, host: host.to_owned(), port, is_ip_literal: ip.map(|ip| ip.parse().expect("test ip")) }
    }

    #[test]
    fn accepted_urls() {
        use Scheme::{Http, Https};
        let cases: &[(&str, WebhookTarget)] = &[
            ("https://example.com/hooks", target(Https, "example.com", 443, None)),
            ("http://example.com", target(Http, "example.com", 80, None)),
            ("HTTPS://Example.COM/Hooks", target(Https, "example.com", 443, None)),
            ("HtTp://example.com:8080/x", target(Http, "example.com", 8080, None)),
            ("https://example.com:1/", target(Https, "example.com", 1, None)),
            ("https://example.com:65535", target(Https, "example.com", 65535, None)),
            ("https://example.com:0443/", target(Https, "example.com", 443, None)),
            ("https://example.com?x=1", target(Https, "example.com", 443, None)),
            ("https://example.com#frag", target(Https, "example.com", 443, None)),
            ("https://example.com/h?email=a@b.example", target(Https, "example.com", 443, None)),
            ("https://example.com/a:b/c", target(Https, "example.com", 443, None)),
            ("https://example.com./", target(Https, "example.com.", 443, None)),
            ("https://my_host-1.example.com/", target(Https, "my_host-1.example.com", 443, None)),
            ("http://localhost:3000/", target(Http, "localhost", 3000, None)),
            ("https://xn--bcher-kva.example/", target(Https, "xn--bcher-kva.example", 443, None)),
            ("http://8.8.8.8/", target(Http, "8.8.8.8", 80, Some("8.8.8.8"))),
            ("http://127.0.0.1:8080/x", target(Http, "127.0.0.1", 8080, Some("127.0.0.1"))),
            (
                "https://[2606:4700:4700::1111]:8443/h",
                target(Https, "2606:4700:4700::1111", 8443, Some("2606:4700:4700::1111")),
            ),
            ("http://[::1]/", target(Http, "::1", 80, Some("::1"))),
            ("http://[2001:DB8:0:0::1]", target(Http, "2001:db8::1", 80, Some("2001:db8::1"))),
            ("http://[::ffff:127.0.0.1]/", target(Http, "::ffff:127.0.0.1", 80, Some("::ffff:127.0.0.1"))),
        ];
        for (url, want) in cases {
            assert_eq!(check_webhook_url(url).as_ref(), Ok(want), "{url}");
        }
    }

    #[test]
    fn refused_urls() {
        use UrlRefusal as R;
        let invalid_host = |url: &str| match check_webhook_url(url) {
            Err(R::InvalidHost { .. }) => {}
            other => panic!("{url}: expected InvalidHost, got {other:?}"),
        };
        let port = |p: &str| R::InvalidPort { port: p.to_owned() };
        let cases: &[(&str, UrlRefusal)] = &[
            ("ftp://example.com/", R::UnsupportedScheme { scheme: "ftp".to_owned() }),
            ("FILE:///etc/passwd", R::UnsupportedScheme { scheme: "file".to_owned() }),
            ("gopher://example.com", R::UnsupportedScheme { scheme: "gopher".to_owned() }),
            ("http://user:pw@x.com/", R::Credentials),
            ("http://user@x.com/", R::Credentials),
            ("http://@x.com/", R::Credentials),
            ("http://x.com:80@127.0.0.1/", R::Credentials),
            ("http://", R::MissingHost),
            ("https:///path", R::MissingHost),
            ("http://:8080/", R::MissingHost),
            ("http://?x", R::MissingHost),
            ("http://x.com:0/", port("0")),
            ("http://x.com:65536/", port("65536")),
            ("http://x.com:99999999999/", port("99999999999")),
            ("http://x.com:abc/", port("abc")),
            ("http://x.com:/", port("")),
            ("http://x.com:+80/", port("+80")),
            ("http://x.com:-1/", port("-1")),
            ("http://[::1]:0/", port("0")),
            ("http://[::1]:80:80/", port("80:80")),
            ("example.com/hook", R::NotAbsolute),
            ("//example.com/hook", R::NotAbsolute),
            ("http:example.com", R::NotAbsolute),
            ("http:/example.com", R::NotAbsolute),
            ("javascript:alert(1)", R::NotAbsolute),
            ("example.com/?next=http://x", R::NotAbsolute),
            ("1http://x.com", R::NotAbsolute),
            ("", R::NotAbsolute),
            (" https://example.com", R::InvalidCharacter),
            ("https://example.com/ ", R::InvalidCharacter),
            ("https://exam\tple.com", R::InvalidCharacter),
            ("https://example.com/\r\nX-Injected: 1", R::InvalidCharacter),
            ("http://evil.example\\@127.0.0.1/", R::InvalidCharacter),
            ("https://example.com/\u{7f}", R::InvalidCharacter),
            ("https://example.com/\u{a0}", R::InvalidCharacter),
        ];
        for (url, want) in cases {
            assert_eq!(check_webhook_url(url).as_ref(), Err(want), "{url:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check_webhook_url(&long), Err(R::TooLong { len: long.len() }));
        let at_limit = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN - 20));
        assert_eq!(at_limit.len(), MAX_URL_LEN);
        assert!(check_webhook_url(&at_limit).is_ok());

        for url in [
            // Numeric hosts a URL library would read as 127.0.0.1.
            "http://127.1/",
            "http://127.0.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://127.0.0.01/",
            "http://127.0.0.1./",
            "http://1.2.3.4.5/",
            "http://256.0.0.1/",
            "http://example.0x10/",
            "http://example.123/",
            // Percent-encoding and Unicode would be decoded or mapped into another host.
            "http://127.0.0.%31/",
            "http://exa%6dple.com/",
            "http://bücher.example/",
            "http://ｅxample.com/",
            // Malformed names.
            "http://a..b/",
            "http://.example.com/",
            "http://example.com../",
            "http://./",
            "http://exa!mple.com/",
            "http://exa*mple.com/",
            // IPv6 literals.
            "http://::1/",
            "http://[::1/",
            "http://[::1]x/",
            "http://[]/",
            "http://[127.0.0.1]/",
            "http://[fe80::1%25eth0]/",
            "http://[::1]]/",
            "http://x[::1]/",
        ] {
            invalid_host(url);
        }
        invalid_host(&format!("http://{}.com/", "a".repeat(64)));
        invalid_host(&format!("http://{}com/", "abcdefghi.".repeat(26)));
        assert!(check_webhook_url(&format!("http://{}.com/", "a".repeat(63))).is_ok());
    }

    #[test]
    fn refusal_messages_are_words() {
        let e = check_webhook_url("ftp://example.com").expect_err("ftp is refused");
        assert_eq!(e.to_string(), "the webhook URL's scheme must be http or https, not \"ftp\"");
        let e = check_webhook_url("http://x.com:0").expect_err("port 0 is refused");
        assert!(e.to_string().contains("1 to 65535"), "{e}");
    }
}
