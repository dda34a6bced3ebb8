//! RFC 5545 iCalendar text for one booking, as served by `GET /v1/bookings/{id}/ics` and
//! `GET /b/{token}.ics` and attached to calendar write-back.
//!
//! The calendar carries an iTIP `METHOD` (RFC 5546) so mail and calendar clients treat it as an
//! invitation (`REQUEST`) or a cancellation (`CANCEL`); the `UID` stays the same for the life of a
//! booking and `SEQUENCE` is the booking's version, so a client replaces its copy rather than adding
//! a second event. Times are always written in UTC (`YYYYMMDDTHHMMSSZ`), which needs no
//! `VTIMEZONE` and which every client reads the same way. Output follows the RFC's content-line
//! rules: CRLF endings, TEXT escaping, and folding at 75 octets on UTF-8 character boundaries.

use std::fmt::Write as _;

use jiff::Timestamp;

/// The iTIP method of the calendar object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcsMethod {
    /// `METHOD:REQUEST`: a new or updated booking.
    Request,
    /// `METHOD:CANCEL`: the booking was cancelled or rejected.
    Cancel,
}

/// The event's `STATUS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcsStatus {
    /// `STATUS:TENTATIVE`: awaiting the host's confirmation.
    Tentative,
    /// `STATUS:CONFIRMED`: the booking stands.
    Confirmed,
    /// `STATUS:CANCELLED`: the booking is off.
    Cancelled,
}

/// A participant: a display name (may be empty) and an email address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcsPerson<'a> {
    /// Display name, written as the `CN` parameter; omitted when empty.
    pub name: &'a str,
    /// Email address, written as a `mailto:` URI.
    pub email: &'a str,
}

/// Everything [`render`] needs for one booking.
#[derive(Clone, Copy, Debug)]
pub struct IcsEvent<'a> {
    /// Stable per booking, e.g. `"0193…@slotd"`.
    pub uid: &'a str,
    /// The booking's version, so clients apply updates in order.
    pub sequence: u32,
    /// `REQUEST` or `CANCEL`.
    pub method: IcsMethod,
    /// The event's status.
    pub status: IcsStatus,
    /// Start instant; sub-second parts are truncated.
    pub start: Timestamp,
    /// End instant; sub-second parts are truncated.
    pub end: Timestamp,
    /// When this calendar object was produced (`DTSTAMP`).
    pub stamp: Timestamp,
    /// Event title.
    pub summary: &'a str,
    /// Optional longer text.
    pub description: Option<&'a str>,
    /// Optional link, typically the manage page.
    pub url: Option<&'a str>,
    /// Optional organizer, typically the host.
    pub organizer: Option<IcsPerson<'a>>,
    /// Attendees, each written as a required participant.
    pub attendees: &'a [IcsPerson<'a>],
}

/// Renders `event` as a complete `VCALENDAR` with CRLF line endings.
pub fn render(event: &IcsEvent<'_>) -> String {
    let mut out = String::with_capacity(512);
    let mut line = |text: &str| push_folded(&mut out, text);

    line("BEGIN:VCALENDAR");
    line("VERSION:2.0");
    line("PRODID:-//slotd//slotd//EN");
    line("CALSCALE:GREGORIAN");
    line(match event.method {
        IcsMethod::Request => "METHOD:REQUEST",
        IcsMethod::Cancel => "METHOD:CANCEL",
    });
    line("BEGIN:VEVENT");
    line(&format!("UID:{}", escape_text(event.uid)));
    line(&format!("SEQUENCE:{}", event.sequence));
    line(&format!("DTSTAMP:{}", utc(event.stamp)));
    line(&format!("DTSTART:{}", utc(event.start)));
    line(&format!("DTEND:{}", utc(event.end)));
    line(&format!("SUMMARY:{}", escape_text(event.summary)));
    if let Some(description) = event.description {
        line(&format!("DESCRIPTION:{}", escape_text(description)));
    }
    if let Some(url) = event.url {
        line(&format!("URL:{}", strip_controls(url)));
    }
    let (status, partstat) = match event.status {
        // PARTSTAT is the attendee's own answer. They booked the slot, so they have accepted it;
        // while the host has yet to confirm, TENTATIVE keeps clients from showing it as settled.
        // A cancellation is carried by METHOD and STATUS, not by rewriting the attendee's answer.
        IcsStatus::Tentative => ("STATUS:TENTATIVE", "TENTATIVE"),
        IcsStatus::Confirmed => ("STATUS:CONFIRMED", "ACCEPTED"),
        IcsStatus::Cancelled => ("STATUS:CANCELLED", "ACCEPTED"),
    };
    line(status);
    if let Some(organizer) = &event.organizer {
        line(&format!("ORGANIZER{}:mailto:{}", cn_param(organizer.name), strip_controls(organizer.email)));
    }
    for attendee in event.attendees {
        line(&format!(
            "ATTENDEE{};ROLE=REQ-PARTICIPANT;PARTSTAT={partstat}:mailto:{}",
            cn_param(attendee.name),
            strip_controls(attendee.email)
        ));
    }
    line("END:VEVENT");
    line("END:VCALENDAR");
    out
}

/// Longest physical line, in octets, not counting the CRLF (RFC 5545 §3.1).
const FOLD_OCTETS: usize = 75;

/// Appends one content line, folded so that no physical line exceeds [`FOLD_OCTETS`], then CRLF.
fn push_folded(out: &mut String, line: &str) {
    let mut used = 0;
    for ch in line.chars() {
        let len = ch.len_utf8();
        // Folding only between characters keeps every physical line valid UTF-8, which clients
        // that decode line by line rely on.
        if used + len > FOLD_OCTETS {
            out.push_str("\r\n ");
            // The leading space of a continuation line counts towards its 75 octets.
            used = 1;
        }
        out.push(ch);
        used += len;
    }
    out.push_str("\r\n");
}

/// Formats an instant as a UTC DATE-TIME, truncated to whole seconds.
fn utc(ts: Timestamp) -> String {
    // `%S` has no fractional part, so strftime truncates the sub-second digits for us.
    ts.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Escapes a TEXT value (RFC 5545 §3.3.11).
fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                // CRLF and a lone CR are one line break each, not two.
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            // TEXT admits no other control characters; dropping them also means no input can
            // end a content line early and inject properties.
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Removes control characters from a URI-valued property, where escaping does not apply, so a
/// stray CR or LF cannot start a new content line.
fn strip_controls(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

/// The `;CN=…` parameter for a display name, or nothing when the name is empty.
fn cn_param(name: &str) -> String {
    // A parameter value cannot contain `"` at all (RFC 5545 §3.1; RFC 6868's escapes are not used),
    // nor control characters.
    let clean: String = name.chars().filter(|&c| c != '"' && !c.is_control()).collect();
    if clean.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(clean.len() + 6);
    out.push_str(";CN=");
    if clean.contains([':', ';', ',']) {
        let _ = write!(out, "\"{clean}\"");
    } else {
        out.push_str(&clean);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    fn simple<'a>(attendees: &'a [IcsPerson<'a>]) -> IcsEvent<'a> {
        IcsEvent {
            uid: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b@slotd",
            sequence: 2,
            method: IcsMethod::Request,
            status: IcsStatus::Confirmed,
            start: ts("2025-03-10T14:00:00.999Z"),
            end: ts("2025-03-10T14:30:00Z"),
            stamp: ts("2025-03-01T09:15:42.5Z"),
            summary: "Intro call",
            description: None,
            url: None,
            organizer: Some(IcsPerson { name: "Ada Lovelace", email: "ada@example.com" }),
            attendees,
        }
    }

    #[test]
    fn golden_simple_event() {
        let attendees = [IcsPerson { name: "Grace", email: "grace@example.com" }];
        let got = render(&simple(&attendees));
        let want = "BEGIN:VCALENDAR\r\n\
                    VERSION:2.0\r\n\
                    PRODID:-//slotd//slotd//EN\r\n\
                    CALSCALE:GREGORIAN\r\n\
                    METHOD:REQUEST\r\n\
                    BEGIN:VEVENT\r\n\
                    UID:0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b@slotd\r\n\
                    SEQUENCE:2\r\n\
                    DTSTAMP:20250301T091542Z\r\n\
                    DTSTART:20250310T140000Z\r\n\
                    DTEND:20250310T143000Z\r\n\
                    SUMMARY:Intro call\r\n\
                    STATUS:CONFIRMED\r\n\
                    ORGANIZER;CN=Ada Lovelace:mailto:ada@example.com\r\n\
                    ATTENDEE;CN=Grace;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:grace@examp\r\n\
                    \x20le.com\r\n\
                    END:VEVENT\r\n\
                    END:VCALENDAR\r\n";
        assert_eq!(got, want);
    }

    #[test]
    fn optional_fields_and_empty_names() {
        let attendees = [IcsPerson { name: "", email: "x@example.com" }];
        let mut event = simple(&attendees);
        event.description = Some("Bring notes");
        event.url = Some("https://slotd.example/manage/abc");
        event.organizer = None;
        let got = render(&event);
        assert!(got.contains("\r\nDESCRIPTION:Bring notes\r\nURL:https://slotd.example/manage/abc\r\nSTATUS:"));
        assert!(!got.contains("ORGANIZER"));
        assert!(got.contains("\r\nATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:x@example.com\r\n"));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape_text(r"a\b;c,d"), r"a\\b\;c\,d");
        assert_eq!(escape_text("one\ntwo\r\nthree\rfour"), r"one\ntwo\nthree\nfour");
        assert_eq!(escape_text("tab\there\u{7}bell"), "tab\therebell");
        // Colons and quotes are ordinary in TEXT.
        assert_eq!(escape_text("a:b\"c"), "a:b\"c");

        let attendees = [];
        let mut event = simple(&attendees);
        event.summary = "Q&A; pricing, plans\nand more";
        event.description = Some("line1\r\nline2 \\ end");
        let got = render(&event);
        assert!(got.contains("\r\nSUMMARY:Q&A\\; pricing\\, plans\\nand more\r\n"));
        assert!(got.contains("\r\nDESCRIPTION:line1\\nline2 \\\\ end\r\n"));
    }

    #[test]
    fn cn_is_quoted_and_sanitised() {
        assert_eq!(cn_param("Ada"), ";CN=Ada");
        assert_eq!(cn_param("Lovelace, Ada"), ";CN=\"Lovelace, Ada\"");
        assert_eq!(cn_param("a:b"), ";CN=\"a:b\"");
        assert_eq!(cn_param("a;b"), ";CN=\"a;b\"");
        assert_eq!(cn_param("Ada \"The Countess\" L"), ";CN=Ada The Countess L");
        assert_eq!(cn_param("\"\""), "");
        assert_eq!(cn_param("x\r\nATTENDEE:mailto:evil@example.com"), ";CN=\"xATTENDEE:mailto:evil@example.com\"");
    }

    #[test]
    fn no_input_can_inject_a_line() {
        let attendees = [IcsPerson { name: "G\r\nX-A:1", email: "g@example.com\r\nX-B:2" }];
        let mut event = simple(&attendees);
        event.uid = "u\r\nX-C:3";
        event.url = Some("https://e.example/\nX-D:4");
        let got = render(&event);
        for line in got.split("\r\n") {
            assert!(!line.starts_with("X-"), "injected line {line:?} in {got}");
            assert!(!line.contains(['\r', '\n']));
        }
    }

    #[test]
    fn long_utf8_summary_folds_on_char_boundaries() {
        // Mixes 1-, 2-, 3- and 4-octet characters so folds land in every position of a character.
        let summary = "Réunion d'équipe — 会議 📅 ".repeat(30);
        let attendees = [];
        let mut event = simple(&attendees);
        event.summary = &summary;
        let got = render(&event);

        assert!(got.ends_with("\r\n"));
        let physical: Vec<&str> = got.strip_suffix("\r\n").unwrap_or(&got).split("\r\n").collect();
        for line in &physical {
            assert!(line.len() <= FOLD_OCTETS, "{} octets: {line:?}", line.len());
        }
        // Lines are `&str`, so a split character would already have failed above; the unfolded
        // text must also match the escaped input exactly.
        let unfolded = got.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("\r\nSUMMARY:{}\r\n", escape_text(&summary))));
        let continuations = physical.iter().filter(|l| l.starts_with(' ')).count();
        assert!(continuations >= 10, "expected the summary to fold, got {continuations} continuations");
        // Folding fills lines: every line of the folded summary except the last is within one
        // character of the limit.
        let start = physical.iter().position(|l| l.starts_with("SUMMARY:")).unwrap_or(0);
        for line in &physical[start..start + continuations] {
            assert!(line.len() > FOLD_OCTETS - 4, "short fold: {line:?}");
        }
    }

    #[test]
    fn fold_boundary_is_exact() {
        let mut out = String::new();
        push_folded(&mut out, &"a".repeat(75));
        assert_eq!(out, format!("{}\r\n", "a".repeat(75)));
        out.clear();
        push_folded(&mut out, &"a".repeat(76));
        assert_eq!(out, format!("{}\r\n a\r\n", "a".repeat(75)));
        out.clear();
        // 74 ASCII octets then a 2-octet char: it does not fit in the 75th octet alone.
        push_folded(&mut out, &format!("{}é", "a".repeat(74)));
        assert_eq!(out, format!("{}\r\n é\r\n", "a".repeat(74)));
    }

    #[test]
    fn cancel_with_cancelled_status() {
        let attendees = [IcsPerson { name: "Grace", email: "grace@example.com" }];
        let mut event = simple(&attendees);
        event.method = IcsMethod::Cancel;
        event.status = IcsStatus::Cancelled;
        event.sequence = 3;
        let got = render(&event);
        assert!(got.contains("\r\nMETHOD:CANCEL\r\n"));
        assert!(got.contains("\r\nSTATUS:CANCELLED\r\n"));
        assert!(got.contains("\r\nSEQUENCE:3\r\n"));
        assert!(!got.contains("METHOD:REQUEST"));
    }

    #[test]
    fn tentative_status() {
        let attendees = [IcsPerson { name: "Grace", email: "grace@example.com" }];
        let mut event = simple(&attendees);
        event.status = IcsStatus::Tentative;
        let got = render(&event).replace("\r\n ", "");
        assert!(got.contains("\r\nSTATUS:TENTATIVE\r\n"));
        assert!(got.contains(";PARTSTAT=TENTATIVE:mailto:grace@example.com\r\n"));
    }
}
