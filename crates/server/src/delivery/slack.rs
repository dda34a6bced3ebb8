//! Slack channels as a delivery sink, the pure part: the incoming-webhook message built from an
//! event (a `text` fallback and Block Kit `blocks`), what Slack's answer means for the attempt
//! and the channel, and how a channel's URL is shown (masked) and kept unique (a digest).
//!
//! Messages never carry a booking's `links` (the manage token in them is the attendee's
//! credential). Every piece of text that came from people (attendee and host names, event type
//! titles, reasons) is escaped for Slack's mrkdwn (`&`, `<`, `>`), so nobody can post
//! `<!channel>` or a disguised link through a booking; Block Kit's length limits are respected
//! by cutting with `…`. The worker (`super`) does the I/O: it opens the sealed URL, picks the
//! zone and POSTs what [`message`] builds.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use slotd_core::webhook::RetrySchedule;

/// Longest `header` block text.
pub const HEADER_MAX_CHARS: usize = 150;
/// Longest `section` block text.
pub const SECTION_MAX_CHARS: usize = 3000;
/// Longest top-level `text`.
pub const TEXT_MAX_CHARS: usize = 40_000;
/// Longest `Retry-After` a Slack channel's 429 may make us wait (Slack's own limit is honoured
/// beyond the retry schedule's longest delay, since coming back sooner only meets another 429).
pub const MAX_RETRY_AFTER_MS: u64 = 3_600_000;
/// Longest `disabled_reason` kept from Slack's answer.
const REASON_MAX_CHARS: usize = 200;

/// The event types a Slack channel may follow.
pub const EVENT_TYPES: &[&str] = &[
    "booking.requested",
    "booking.confirmed",
    "booking.rejected",
    "booking.cancelled",
    "booking.rescheduled",
    "webhook.disabled",
    "webhook.test",
];

/// What a channel follows when it does not say: every booking change.
pub const DEFAULT_EVENT_TYPES: &[&str] =
    &["booking.requested", "booking.confirmed", "booking.rejected", "booking.cancelled", "booking.rescheduled"];

/// Escapes text for Slack mrkdwn: `&`, `<` and `>` become entities, so `<!channel>`,
/// `<@U123>` and `<https://…|…>` show as typed instead of acting.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Cuts `text` to at most `max_chars` characters, ending in `…` when cut, and never inside an
/// entity that [`escape`] wrote.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut kept: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    // An entity is at most 5 characters (`&amp;`): a `&` among the last 4 kept with no `;` after
    // it was cut in half.
    if let Some(amp) = kept.rfind('&')
        && !kept[amp..].contains(';')
        && kept[amp..].chars().count() < 5
    {
        kept.truncate(amp);
    }
    kept.push('…');
    kept
}

/// Escaped and cut: user text ready for mrkdwn.
fn user_text(text: &str, max_chars: usize) -> String {
    truncate(&escape(text), max_chars)
}

fn str_at<'a>(data: &'a Value, pointer: &str) -> Option<&'a str> {
    data.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn names(data: &Value, key: &str) -> String {
    let names: Vec<&str> = data
        .get(key)
        .and_then(Value::as_array)
        .map(|people| people.iter().filter_map(|p| p.get("name").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    if names.is_empty() { "nobody".to_owned() } else { user_text(&names.join(", "), 500) }
}

fn instant(data: &Value, pointer: &str) -> Option<Timestamp> {
    str_at(data, pointer).and_then(|s| s.parse().ok())
}

/// `Tue 1 Dec 2026, 15:00` in `zone`.
fn local(at: Timestamp, zone: &TimeZone) -> String {
    at.to_zoned(zone.clone()).strftime("%a %-d %b %Y, %H:%M").to_string()
}

fn zone_name(zone: &TimeZone) -> &str {
    zone.iana_name().unwrap_or("UTC")
}

/// `Tue 1 Dec 2026, 15:00–15:30 (Europe/Paris)`; the end's date is repeated only when it differs.
fn span(start: Option<Timestamp>, end: Option<Timestamp>, zone: &TimeZone) -> String {
    let Some(start) = start else { return "an unknown time".to_owned() };
    let from = local(start, zone);
    let to = match end {
        Some(end) => {
            let (s, e) = (start.to_zoned(zone.clone()), end.to_zoned(zone.clone()));
            if s.date() == e.date() {
                format!("–{}", e.strftime("%H:%M"))
            } else {
                format!(" – {}", local(end, zone))
            }
        }
        None => String::new(),
    };
    format!("{from}{to} ({})", zone_name(zone))
}

/// Who made a change, in words.
fn by(who: Option<&str>) -> &'static str {
    match who {
        Some("attendee") => "the attendee",
        Some("host") => "a host",
        Some("api") => "the API",
        _ => "someone",
    }
}

fn reason_line(data: &Value, pointer: &str) -> String {
    match str_at(data, pointer) {
        Some(reason) => format!("\n*Reason:* {}", user_text(reason, 1000)),
        None => String::new(),
    }
}

/// The Slack incoming-webhook message for an event, stating times in `zone`.
pub fn message(event_type: &str, data: &Value, zone: &TimeZone) -> Value {
    if event_type == "webhook.test" {
        let words = "This is a test message from slotd: this channel will get a message here when a booking \
                     it follows changes.";
        return build("Test message from slotd", words, words);
    }
    if event_type == "webhook.disabled" {
        // The endpoint's host only: a webhook URL's path or query may carry the receiver's token.
        let host = str_at(data, "/url")
            .and_then(|url| url.split_once("://").map(|(_, rest)| rest))
            .and_then(|rest| rest.split(['/', '?', '#']).next())
            .map(|authority| authority.rsplit('@').next().unwrap_or(authority))
            .map_or_else(|| "a webhook endpoint".to_owned(), |host| user_text(host, 200));
        let why = str_at(data, "/detail").or(str_at(data, "/reason")).map_or_else(String::new, |d| user_text(d, 500));
        let id = str_at(data, "/id").map_or_else(String::new, |id| user_text(id, 50));
        let section = format!(
            "slotd stopped delivering to *{host}*: {why}.\nEvents are kept; enable it again with \
             `PATCH /v1/webhooks/{id}` once it answers, and replay what it missed."
        );
        let text = format!("Webhook endpoint disabled: {host}: {why}.");
        return build("Webhook endpoint disabled", &section, &text);
    }
    let Some(action) = event_type.strip_prefix("booking.") else {
        // Not a booking change (a channel follows only those; kept safe anyway).
        let words = format!("slotd event `{}`.", user_text(event_type, 100));
        return build(&format!("slotd: {event_type}"), &words, &words);
    };
    let header = match action {
        "requested" => "Booking requested",
        "confirmed" => "Booking confirmed",
        "rejected" => "Booking rejected",
        "cancelled" => "Booking cancelled",
        "rescheduled" => "Booking rescheduled",
        _ => "Booking changed",
    };
    let title = str_at(data, "/event_type/title").map_or_else(|| "A booking".to_owned(), |t| user_text(t, 200));
    let attendees = names(data, "attendees");
    let hosts = names(data, "hosts");
    let human_id = str_at(data, "/human_id").map_or_else(String::new, |id| user_text(id, 50));
    let when = span(instant(data, "/starts_at"), instant(data, "/ends_at"), zone);
    let change = match action {
        "requested" => format!("Requested for {when}; waiting for confirmation."),
        "confirmed" => format!("Confirmed for {when}."),
        "rejected" => format!("Rejected: {when}.{}", reason_line(data, "/rejection/reason")),
        "cancelled" => format!(
            "Cancelled by {}: {when}.{}",
            by(str_at(data, "/cancellation/by")),
            reason_line(data, "/cancellation/reason")
        ),
        "rescheduled" => {
            let previous = span(
                instant(data, "/reschedule/previous_starts_at"),
                instant(data, "/reschedule/previous_ends_at"),
                zone,
            );
            format!(
                "Moved by {} from {previous} to {when}.{}",
                by(str_at(data, "/reschedule/by")),
                reason_line(data, "/reschedule/reason")
            )
        }
        _ => format!("Now {when}."),
    };
    let section = format!("*{title}* with *{attendees}*\n{change}\n*Hosts:* {hosts}\n*Booking:* {human_id}");
    let text = format!("{header}: {title} with {attendees}. {change} Booking {human_id}.");
    build(header, &section, &text)
}

/// A message of a header, one section and the fallback text, each cut to Block Kit's limits.
fn build(header: &str, section: &str, text: &str) -> Value {
    json!({
        "text": truncate(text, TEXT_MAX_CHARS),
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": truncate(header, HEADER_MAX_CHARS), "emoji": false } },
            { "type": "section", "text": { "type": "mrkdwn", "text": truncate(section, SECTION_MAX_CHARS) } },
        ],
    })
}

/// What Slack's answer means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: posted.
    Delivered,
    /// 400 (`invalid_payload`, …): slotd built a message Slack refuses. Failed, not retried.
    Refused,
    /// 403, 404 or 410 (`action_prohibited`, `channel_not_found`, `channel_is_archived`,
    /// `no_service`): the channel is gone for good; disable it with this reason.
    ChannelGone(String),
    /// Anything else: retried on the schedule (a 429's `Retry-After` honoured).
    Retry,
}

/// Classifies an attempt's result: whether it `succeeded`, the HTTP status and answer text.
pub fn verdict(succeeded: bool, status: Option<u16>, body: Option<&str>) -> Verdict {
    if succeeded {
        return Verdict::Delivered;
    }
    match status {
        Some(400) => Verdict::Refused,
        Some(status @ (403 | 404 | 410)) => {
            let said = body.map(str::trim).filter(|b| !b.is_empty());
            Verdict::ChannelGone(match said {
                Some(said) => truncate(said, REASON_MAX_CHARS),
                None => format!("HTTP {status}"),
            })
        }
        _ => Verdict::Retry,
    }
}

/// When a failed Slack attempt is made again: the schedule's next delay (none when the run is
/// over), but no sooner than a 429's `Retry-After` (up to [`MAX_RETRY_AFTER_MS`]).
pub fn retry_delay_ms(
    schedule: &RetrySchedule,
    attempts_made: usize,
    jitter_unit: f64,
    retry_after_ms: Option<u64>,
) -> Option<u64> {
    let scheduled = schedule.next_attempt_delay_ms(attempts_made, jitter_unit, None)?;
    Some(scheduled.max(retry_after_ms.unwrap_or(0).min(MAX_RETRY_AFTER_MS)))
}

/// What the `url` column holds for a Slack channel: keeps one channel per URL and organization
/// without storing the URL in clear.
pub fn url_digest(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    let mut out = String::with_capacity(6 + 64);
    out.push_str("slack:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// A Slack URL as the API shows it: `https://hooks.slack.com/services/T…/…/…4f9Z` (the first
/// character after `/services/` and the last four of the URL); any other shape keeps its scheme
/// and host and the last four characters.
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    // Never show credentials a URL might carry before its host.
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let tail: String = {
        let chars: Vec<char> = url.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    match path.strip_prefix("services/").and_then(|p| p.chars().next()) {
        Some(first) => format!("{scheme}://{host}/services/{first}…/…/…{tail}"),
        None => format!("{scheme}://{host}/…{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_webhook_endpoint_is_announced_by_its_host_alone() {
        let data = json!({ "id": "0190a0a0-0000-7000-8000-000000000009",
            "url": "https://user:pw@crm.example.com:8443/hooks/secret-path?token=abc", "reason": "gone",
            "detail": "the endpoint answered 410 Gone" });
        let message = message("webhook.disabled", &data, &TimeZone::UTC);
        let body = message.to_string();
        assert_eq!(message["blocks"][0]["text"]["text"], "Webhook endpoint disabled");
        assert!(body.contains("crm.example.com:8443") && body.contains("410 Gone"), "{body}");
        assert!(body.contains("0190a0a0-0000-7000-8000-000000000009"), "{body}");
        for secret in ["secret-path", "token=abc", "user:pw", "pw@"] {
            assert!(!body.contains(secret), "{secret} in {body}");
        }
    }

    fn booking(event: &str) -> Value {
        json!({
            "id": "0190a0a0-0000-7000-8000-000000000001",
            "human_id": "BK-7Q4M2X",
            "status": "confirmed",
            "event_type": { "id": "x", "slug": "intro", "title": "Intro call", "kind": "solo" },
            "starts_at": "2026-12-01T16:30:00Z",
            "ends_at": "2026-12-01T17:00:00Z",
            "time_zone": "Europe/Paris",
            "hosts": [{ "id": "h", "name": "Grace", "email": "grace@example.com" }],
            "attendees": [{ "name": "Ada <!channel> & <https://evil|x>", "email": "ada@example.com", "time_zone": "Europe/Paris" }],
            "links": {
                "manage": "https://slotd.example/manage/SECRET-TOKEN",
                "reschedule": "https://slotd.example/manage/SECRET-TOKEN#reschedule",
                "cancel": "https://slotd.example/manage/SECRET-TOKEN#cancel",
                "ics": "https://slotd.example/b/SECRET-TOKEN.ics"
            },
            "reschedule": {
                "at": "2026-11-30T10:00:00Z", "reason": "Flight <delayed>", "by": event,
                "previous_starts_at": "2026-12-01T14:00:00Z", "previous_ends_at": "2026-12-01T14:30:00Z"
            }
        })
    }

    fn zone(name: &str) -> TimeZone {
        slotd_core::zone::time_zone(name).unwrap()
    }

    fn texts(message: &Value) -> (String, String, String) {
        (
            message["blocks"][0]["text"]["text"].as_str().unwrap().to_owned(),
            message["blocks"][1]["text"]["text"].as_str().unwrap().to_owned(),
            message["text"].as_str().unwrap().to_owned(),
        )
    }

    #[test]
    fn a_reschedule_says_old_and_new_time_in_the_zone_who_and_why() {
        let message = message("booking.rescheduled", &booking("attendee"), &zone("America/New_York"));
        let (header, section, text) = texts(&message);
        assert_eq!(header, "Booking rescheduled");
        assert!(
            section.contains(
                "Moved by the attendee from Tue 1 Dec 2026, 09:00–09:30 (America/New_York) to Tue 1 Dec 2026, \
                 11:30–12:00 (America/New_York)."
            ),
            "{section}"
        );
        assert!(section.contains("*Reason:* Flight &lt;delayed&gt;"), "{section}");
        assert!(section.contains("*Intro call*") && section.contains("*Hosts:* Grace"), "{section}");
        assert!(section.contains("BK-7Q4M2X") && text.contains("BK-7Q4M2X"), "{text}");
        assert_eq!(message["blocks"][1]["type"], "section");
        assert_eq!(message["blocks"][1]["text"]["type"], "mrkdwn");
        // The same instants, in another zone.
        let (_, in_tokyo, _) = texts(&super::message("booking.rescheduled", &booking("host"), &zone("Asia/Tokyo")));
        assert!(
            in_tokyo.contains("by a host from Tue 1 Dec 2026, 23:00–23:30 (Asia/Tokyo) to Wed 2 Dec 2026, 01:30–02:00")
        );
    }

    #[test]
    fn attendee_text_is_escaped_so_nothing_can_be_injected() {
        let message = message("booking.confirmed", &booking("api"), &zone("UTC"));
        let (_, section, text) = texts(&message);
        let escaped = "Ada &lt;!channel&gt; &amp; &lt;https://evil|x&gt;";
        assert!(section.contains(escaped) && text.contains(escaped), "{section}\n{text}");
        let body = message.to_string();
        assert!(!body.contains("<!channel>") && !body.contains("<https://"), "{body}");
    }

    #[test]
    fn no_link_or_manage_token_is_ever_in_a_message() {
        for event in ["requested", "confirmed", "rejected", "cancelled", "rescheduled"] {
            let body = message(&format!("booking.{event}"), &booking("api"), &zone("UTC")).to_string();
            assert!(!body.contains("SECRET-TOKEN") && !body.contains("/manage/"), "{event}: {body}");
        }
    }

    #[test]
    fn a_cancellation_and_a_rejection_say_who_and_why() {
        let mut data = booking("api");
        data["cancellation"] = json!({ "at": "2026-11-30T10:00:00Z", "reason": "No longer needed", "by": "host" });
        let (header, section, _) = texts(&message("booking.cancelled", &data, &zone("Europe/London")));
        assert_eq!(header, "Booking cancelled");
        assert!(section.contains("Cancelled by a host: Tue 1 Dec 2026, 16:30–17:00 (Europe/London)."), "{section}");
        assert!(section.contains("*Reason:* No longer needed"));
        data["rejection"] = json!({ "at": "2026-11-30T10:00:00Z", "reason": "No credits" });
        let (_, section, _) = texts(&message("booking.rejected", &data, &zone("UTC")));
        assert!(section.contains("Rejected: ") && section.contains("*Reason:* No credits"), "{section}");
    }

    #[test]
    fn a_test_message_says_it_is_a_test() {
        let (header, section, text) = texts(&message("webhook.test", &json!({ "webhook_id": "x" }), &zone("UTC")));
        assert_eq!(header, "Test message from slotd");
        assert!(section.contains("test message") && text.contains("test message"));
    }

    #[test]
    fn long_text_is_cut_to_block_kit_limits() {
        let mut data = booking("api");
        data["attendees"] = json!([{ "name": "&".repeat(5000), "email": "a@example.com", "time_zone": "UTC" }]);
        data["reschedule"]["reason"] = json!("<".repeat(5000));
        data["event_type"]["title"] = json!("T".repeat(5000));
        let message = message("booking.rescheduled", &data, &zone("UTC"));
        let (header, section, text) = texts(&message);
        assert!(header.chars().count() <= HEADER_MAX_CHARS);
        assert!(section.chars().count() <= SECTION_MAX_CHARS, "{}", section.chars().count());
        assert!(text.chars().count() <= TEXT_MAX_CHARS);
        assert!(section.contains('…'));
        // Cut between entities, never inside one.
        let names = section.split("* with *").nth(1).unwrap().split('*').next().unwrap();
        assert!(names.trim_end_matches('…').split("&amp;").all(str::is_empty), "{names}");
    }

    #[test]
    fn truncation_never_splits_an_entity() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("a&amp;b", 5), "a…");
        assert_eq!(truncate("a&amp;bcd", 7), "a&amp;…");
        assert_eq!(truncate("ab&amp;cde", 9), "ab&amp;c…");
        assert_eq!(truncate(&"é".repeat(10), 4), "ééé…");
    }

    #[test]
    fn slacks_answers_decide_retry_disable_or_refusal() {
        assert_eq!(verdict(true, Some(200), Some("ok")), Verdict::Delivered);
        assert_eq!(verdict(false, Some(400), Some("invalid_payload")), Verdict::Refused);
        assert_eq!(
            verdict(false, Some(410), Some("channel_is_archived\n")),
            Verdict::ChannelGone("channel_is_archived".into())
        );
        assert_eq!(
            verdict(false, Some(404), Some("channel_not_found")),
            Verdict::ChannelGone("channel_not_found".into())
        );
        assert_eq!(verdict(false, Some(403), Some("")), Verdict::ChannelGone("HTTP 403".into()));
        assert_eq!(verdict(false, Some(429), Some("rate_limited")), Verdict::Retry);
        assert_eq!(verdict(false, Some(500), None), Verdict::Retry);
        assert_eq!(verdict(false, None, None), Verdict::Retry);
    }

    #[test]
    fn retry_after_is_honoured_beyond_the_schedule_up_to_an_hour() {
        let schedule: RetrySchedule = "0,50ms,100ms".parse().unwrap();
        assert_eq!(retry_delay_ms(&schedule, 1, 0.5, Some(2000)), Some(2000));
        assert_eq!(retry_delay_ms(&schedule, 1, 0.5, None), Some(50));
        assert_eq!(retry_delay_ms(&schedule, 1, 0.5, Some(10 * 3_600_000)), Some(MAX_RETRY_AFTER_MS));
        assert_eq!(retry_delay_ms(&schedule, 3, 0.5, Some(2000)), None, "the run is over");
    }

    #[test]
    fn urls_are_masked_and_digested() {
        let url = "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefghijklmnop4f9Z";
        assert_eq!(mask_url(url), "https://hooks.slack.com/services/T…/…/…4f9Z");
        assert_eq!(mask_url("http://127.0.0.1:8080/hooks"), "http://127.0.0.1:8080/…ooks");
        assert_eq!(mask_url("https://user:pw@example.com/x/secret"), "https://example.com/…cret");
        let digest = url_digest(url);
        assert!(digest.starts_with("slack:") && digest.len() == 70 && !digest.contains("T0123"));
        assert_eq!(digest, url_digest(url));
        assert_ne!(digest, url_digest("https://hooks.slack.com/services/T0123ABCD/B0456EFGH/other"));
    }
}
