//! CalDAV (RFC 4791) as a busy-time source and a write-back target. [`CalDav::discover`] walks
//! from whatever address a user gives (server root, principal or calendar) through
//! `current-user-principal` and `calendar-home-set` to the calendars; [`CalDav`] then reads busy
//! time with a `calendar-query` REPORT that asks the server to expand recurrences (so slotd
//! never expands a CalDAV series itself), and writes slotd's events with `PUT`/`DELETE` guarded
//! by ETags (`If-None-Match: *` to create, `If-Match` to replace or delete).
//!
//! The WebDAV XML is written and read with `quick-xml`, namespace-aware (`DAV:` and
//! `urn:ietf:params:xml:ns:caldav`, whatever prefixes a server picks), and hrefs are resolved
//! against the URL that was asked. The iCalendar parsing here is deliberately minimal: after
//! server-side expansion recurring instances carry UTC `DTSTART`/`DTEND` (or `DURATION`), so only
//! line unfolding, those properties, date values, `TZID` (an IANA name, for single events a
//! server leaves in their zone), `TRANSP` and `STATUS` are read. Feeds, which need full
//! recurrence and time-zone handling, have their own module.
//!
//! Every request carries HTTP Basic credentials, has a time limit of [`REQUEST_TIMEOUT`], and its
//! answer is read up to [`MAX_RESPONSE_BYTES`]. The HTTP client is the caller's (the server
//! hands in its SSRF-guarded one), so this module never decides which addresses may be reached.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp, civil};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, Writer};
use reqwest::header::{CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_MATCH, IF_NONE_MATCH};
use reqwest::{Method, StatusCode, Url};

use crate::http::Answer;
use crate::{BusySource, CalendarError, CalendarEvent, EventSink, Interval};

/// The time limit of one request to a CalDAV server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from a CalDAV server, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 5 * 1024 * 1024;

const DAV: &str = "DAV:";
const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";

/// A calendar collection found by [`CalDav::discover`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarInfo {
    /// Its display name (the last path segment when it has none).
    pub name: String,
    /// Its absolute URL (ending in `/`).
    pub url: String,
    /// Whether it takes events (`VEVENT` is in its supported components, or it lists none).
    pub supports_events: bool,
}

/// One CalDAV calendar, with the credentials to read and write it.
#[derive(Clone)]
pub struct CalDav {
    client: reqwest::Client,
    calendar_url: Url,
    username: String,
    password: String,
}

impl std::fmt::Debug for CalDav {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log line.
        f.debug_struct("CalDav")
            .field("calendar_url", &self.calendar_url.as_str())
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Answer {
    fn etag(&self) -> Option<HeaderValue> {
        self.headers.get(ETAG).cloned()
    }
}

fn parse_url(url: &str) -> Result<Url, CalendarError> {
    let url = Url::parse(url).map_err(|e| CalendarError::Invalid(format!("not a URL ({e}): {url}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CalendarError::Invalid(format!("not an http(s) URL: {url}")));
    }
    Ok(url)
}

/// A collection URL always ends in `/`, so relative names join under it.
fn as_collection(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Sends one request with Basic credentials and the time limit, and reads the answer with the
/// size cap. 401 and 403 are [`CalendarError::Refused`]; other statuses are for the caller.
async fn send(
    client: &reqwest::Client,
    auth: (&str, &str),
    method: Method,
    url: &Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
) -> Result<Answer, CalendarError> {
    let mut request =
        client.request(method, url.clone()).basic_auth(auth.0, Some(auth.1)).timeout(REQUEST_TIMEOUT).headers(headers);
    if let Some(body) = body {
        request = request.body(body);
    }
    let answer = Answer::of(request, MAX_RESPONSE_BYTES).await?;
    if matches!(answer.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(answer.refused());
    }
    Ok(answer)
}

fn method(name: &'static str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("a valid method name")
}

fn xml_headers(depth: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
    headers.insert("Depth", HeaderValue::from_static(depth));
    headers
}

// ---------------------------------------------------------------------------------------------
// XML: writing requests and reading multistatus answers.
// ---------------------------------------------------------------------------------------------

/// A property to ask for in a PROPFIND: its namespace and local name.
type PropName = (&'static str, &'static str);

fn propfind_body(props: &[PropName]) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new());
    writer
        .create_element("D:propfind")
        .with_attribute(("xmlns:D", DAV))
        .with_attribute(("xmlns:C", CALDAV))
        .write_inner_content(|w| {
            w.create_element("D:prop").write_inner_content(|w| {
                for (ns, name) in props {
                    let prefix = if *ns == DAV { "D" } else { "C" };
                    w.create_element(format!("{prefix}:{name}")).write_empty()?;
                }
                Ok(())
            })?;
            Ok(())
        })
        .expect("writing to a Vec cannot fail");
    writer.into_inner()
}

/// The `calendar-query` for VEVENTs overlapping `range`, expanded by the server.
fn calendar_query_body(range: Interval) -> Vec<u8> {
    let start = caldav_time(range.start);
    let end = caldav_time(range.end);
    let mut writer = Writer::new(Vec::new());
    writer
        .create_element("C:calendar-query")
        .with_attribute(("xmlns:D", DAV))
        .with_attribute(("xmlns:C", CALDAV))
        .write_inner_content(|w| {
            w.create_element("D:prop").write_inner_content(|w| {
                w.create_element("D:getetag").write_empty()?;
                w.create_element("C:calendar-data").write_inner_content(|w| {
                    w.create_element("C:expand")
                        .with_attribute(("start", start.as_str()))
                        .with_attribute(("end", end.as_str()))
                        .write_empty()?;
                    Ok(())
                })?;
                Ok(())
            })?;
            w.create_element("C:filter").write_inner_content(|w| {
                w.create_element("C:comp-filter").with_attribute(("name", "VCALENDAR")).write_inner_content(|w| {
                    w.create_element("C:comp-filter").with_attribute(("name", "VEVENT")).write_inner_content(|w| {
                        w.create_element("C:time-range")
                            .with_attribute(("start", start.as_str()))
                            .with_attribute(("end", end.as_str()))
                            .write_empty()?;
                        Ok(())
                    })?;
                    Ok(())
                })?;
                Ok(())
            })?;
            Ok(())
        })
        .expect("writing to a Vec cannot fail");
    writer.into_inner()
}

/// `20250102T030405Z`, the form CalDAV's time-range and expand take.
fn caldav_time(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// A namespaced XML element: enough of a tree to walk a multistatus.
#[derive(Debug, Default)]
struct Element {
    ns: String,
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    fn children_named<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn xml_error(e: impl std::fmt::Display) -> CalendarError {
    CalendarError::Invalid(format!("not the XML expected: {e}"))
}

fn element_from(ns: ResolveResult<'_>, start: &BytesStart<'_>) -> Result<Element, CalendarError> {
    let ns = match ns {
        ResolveResult::Bound(ns) => ns.0.to_owned(),
        ResolveResult::Unbound => String::new(),
        ResolveResult::Unknown(prefix) => return Err(xml_error(format!("unknown namespace prefix {prefix}"))),
    };
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(xml_error)?;
        let key = attribute.key.local_name().as_ref().to_owned();
        let value = attribute.normalized_value(quick_xml::XmlVersion::default()).map_err(xml_error)?.into_owned();
        attributes.push((key, value));
    }
    Ok(Element { ns, name: start.local_name().as_ref().to_owned(), attributes, ..Element::default() })
}

/// Parses a whole document into its root element.
fn parse_xml(body: &[u8]) -> Result<Element, CalendarError> {
    let text = std::str::from_utf8(body).map_err(xml_error)?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(xml_error)?;
        match event {
            Event::Start(start) => {
                let element = element_from(ns, &start)?;
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = element_from(ns, &start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| xml_error("unbalanced end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Event::Text(text) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&data.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(current) = stack.last_mut() {
                    if let Some(c) = reference.resolve_char_ref().map_err(xml_error)? {
                        current.text.push(c);
                    } else {
                        let name = reference.xml10_content();
                        let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| xml_error(format!("unknown entity &{name};")))?;
                        current.text.push_str(resolved);
                    }
                }
            }
            Event::Eof => return Err(xml_error("the document ended early")),
            _ => {}
        }
    }
}

/// One `<D:response>` of a multistatus: its href (resolved) and the properties found (200).
struct DavResponse {
    url: Url,
    props: Vec<Element>,
}

impl DavResponse {
    fn prop(&self, ns: &str, name: &str) -> Option<&Element> {
        self.props.iter().find(|p| p.is(ns, name))
    }

    /// The resolved URL of the `<D:href>` inside a property (principal, home set).
    fn href_prop(&self, ns: &str, name: &str) -> Result<Option<Url>, CalendarError> {
        match self.prop(ns, name).and_then(|p| p.child(DAV, "href")) {
            Some(href) => Ok(Some(resolve_href(&self.url, &href.text)?)),
            None => Ok(None),
        }
    }
}

fn resolve_href(base: &Url, href: &str) -> Result<Url, CalendarError> {
    base.join(href.trim()).map_err(|e| CalendarError::Invalid(format!("a bad href {href:?}: {e}")))
}

/// Reads a 207 multistatus answer to a request sent to `base`.
fn parse_multistatus(base: &Url, body: &[u8]) -> Result<Vec<DavResponse>, CalendarError> {
    let root = parse_xml(body)?;
    if !root.is(DAV, "multistatus") {
        return Err(xml_error(format!("expected a DAV: multistatus, got {}", root.name)));
    }
    let mut responses = Vec::new();
    for response in root.children_named(DAV, "response") {
        let href = response.child(DAV, "href").ok_or_else(|| xml_error("a response without an href"))?;
        let url = resolve_href(base, &href.text)?;
        let mut props = Vec::new();
        for propstat in response.children_named(DAV, "propstat") {
            let ok = propstat.child(DAV, "status").is_none_or(|s| s.text.split_whitespace().nth(1) == Some("200"));
            if let (true, Some(prop)) = (ok, propstat.child(DAV, "prop")) {
                props.extend(prop.children.iter().map(clone_element));
            }
        }
        responses.push(DavResponse { url, props });
    }
    Ok(responses)
}

fn clone_element(e: &Element) -> Element {
    Element {
        ns: e.ns.clone(),
        name: e.name.clone(),
        attributes: e.attributes.clone(),
        children: e.children.iter().map(clone_element).collect(),
        text: e.text.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery.
// ---------------------------------------------------------------------------------------------

async fn propfind(
    client: &reqwest::Client,
    auth: (&str, &str),
    url: &Url,
    depth: &'static str,
    props: &[PropName],
) -> Result<Vec<DavResponse>, CalendarError> {
    let answer = send(client, auth, method("PROPFIND"), url, xml_headers(depth), Some(propfind_body(props))).await?;
    if answer.status != StatusCode::MULTI_STATUS {
        return Err(answer.refused());
    }
    parse_multistatus(url, &answer.body)
}

/// The response about `url` itself (a Depth 0 answer may name it with or without a slash).
fn own_response(responses: Vec<DavResponse>) -> Option<DavResponse> {
    responses.into_iter().next()
}

impl CalDav {
    /// One calendar at `calendar_url` (absolute http(s); a missing trailing `/` is added).
    pub fn new(
        client: reqwest::Client,
        calendar_url: &str,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<CalDav, CalendarError> {
        Ok(CalDav {
            client,
            calendar_url: as_collection(parse_url(calendar_url)?),
            username: username.into(),
            password: password.into(),
        })
    }

    /// The calendar's URL.
    pub fn calendar_url(&self) -> &str {
        self.calendar_url.as_str()
    }

    /// The calendars of the user, found from any URL of the server: `current-user-principal`
    /// (the URL itself when the server names none), then its `calendar-home-set` (the
    /// principal when none), then the home's members whose resource type is a calendar.
    pub async fn discover(
        client: &reqwest::Client,
        server_url: &str,
        username: &str,
        password: &str,
    ) -> Result<Vec<CalendarInfo>, CalendarError> {
        CalDav::discover_vetted(client, server_url, username, password, &|_| Ok(())).await
    }

    /// [`CalDav::discover`], with every URL the server points to (principal, calendar home)
    /// passed to `vet` before anything is sent there: a server's hrefs may name any address,
    /// and the caller's guard decides which may be reached. A refusal is
    /// [`CalendarError::Unreachable`] with `vet`'s reason.
    pub async fn discover_vetted(
        client: &reqwest::Client,
        server_url: &str,
        username: &str,
        password: &str,
        vet: &(dyn Fn(&Url) -> Result<(), String> + Send + Sync),
    ) -> Result<Vec<CalendarInfo>, CalendarError> {
        let auth = (username, password);
        let start = parse_url(server_url)?;
        let checked = |url: &Url| vet(url).map_err(CalendarError::Unreachable);
        checked(&start)?;

        let principal =
            match own_response(propfind(client, auth, &start, "0", &[(DAV, "current-user-principal")]).await?) {
                Some(response) => response.href_prop(DAV, "current-user-principal")?.unwrap_or(start.clone()),
                None => start.clone(),
            };
        checked(&principal)?;

        let home = match own_response(propfind(client, auth, &principal, "0", &[(CALDAV, "calendar-home-set")]).await?)
        {
            Some(response) => response.href_prop(CALDAV, "calendar-home-set")?.unwrap_or(principal.clone()),
            None => principal.clone(),
        };
        let home = as_collection(home);
        checked(&home)?;

        let members = propfind(
            client,
            auth,
            &home,
            "1",
            &[(DAV, "resourcetype"), (DAV, "displayname"), (CALDAV, "supported-calendar-component-set")],
        )
        .await?;
        let mut calendars = Vec::new();
        for member in members {
            let is_calendar = member.prop(DAV, "resourcetype").is_some_and(|t| t.child(CALDAV, "calendar").is_some());
            if !is_calendar {
                continue;
            }
            let supports_events = match member.prop(CALDAV, "supported-calendar-component-set") {
                Some(set) if !set.children.is_empty() => set
                    .children_named(CALDAV, "comp")
                    .any(|c| c.attribute("name").is_some_and(|n| n.eq_ignore_ascii_case("VEVENT"))),
                _ => true,
            };
            let url = as_collection(member.url.clone());
            let name = member
                .prop(DAV, "displayname")
                .map(|d| d.text.trim().to_owned())
                .filter(|n| !n.is_empty())
                .or_else(|| url.path_segments().and_then(|mut s| s.rfind(|s| !s.is_empty()).map(str::to_owned)))
                .unwrap_or_default();
            calendars.push(CalendarInfo { name, url: url.to_string(), supports_events });
        }
        Ok(calendars)
    }

    fn auth(&self) -> (&str, &str) {
        (&self.username, &self.password)
    }

    /// The URL of the event resource with this UID: `<calendar>/<uid>.ics`, percent-encoded.
    fn event_url(&self, uid: &str) -> Result<Url, CalendarError> {
        if uid.is_empty() {
            return Err(CalendarError::Invalid("an event needs a UID".to_owned()));
        }
        let mut segment = String::new();
        for byte in uid.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
                segment.push(byte as char);
            } else {
                segment.push_str(&format!("%{byte:02X}"));
            }
        }
        segment.push_str(".ics");
        self.calendar_url.join(&segment).map_err(|e| CalendarError::Invalid(format!("a bad event URL: {e}")))
    }

    /// The current ETag of a resource, `None` when it is not there.
    async fn current_etag(&self, url: &Url) -> Result<Option<HeaderValue>, CalendarError> {
        let answer = send(&self.client, self.auth(), Method::HEAD, url, HeaderMap::new(), None).await?;
        match answer.status {
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
            s if s.is_success() => match answer.etag() {
                Some(etag) => Ok(Some(etag)),
                None => Err(CalendarError::Invalid(format!("{url} answered without an ETag"))),
            },
            _ => Err(answer.refused()),
        }
    }

    async fn put_once(&self, url: &Url, body: &[u8]) -> Result<StatusCode, CalendarError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/calendar; charset=utf-8"));
        match self.current_etag(url).await? {
            Some(etag) => headers.insert(IF_MATCH, etag),
            None => headers.insert(IF_NONE_MATCH, HeaderValue::from_static("*")),
        };
        let answer = send(&self.client, self.auth(), Method::PUT, url, headers, Some(body.to_vec())).await?;
        match answer.status {
            s if s.is_success() || s == StatusCode::PRECONDITION_FAILED => Ok(s),
            _ => Err(answer.refused()),
        }
    }

    async fn delete_once(&self, url: &Url) -> Result<StatusCode, CalendarError> {
        let Some(etag) = self.current_etag(url).await? else {
            return Ok(StatusCode::NOT_FOUND);
        };
        let mut headers = HeaderMap::new();
        headers.insert(IF_MATCH, etag);
        let answer = send(&self.client, self.auth(), Method::DELETE, url, headers, None).await?;
        match answer.status {
            s if s.is_success()
                || matches!(s, StatusCode::NOT_FOUND | StatusCode::GONE | StatusCode::PRECONDITION_FAILED) =>
            {
                Ok(s)
            }
            _ => Err(answer.refused()),
        }
    }
}

impl BusySource for CalDav {
    async fn busy(&self, range: Interval) -> Result<Vec<Interval>, CalendarError> {
        let answer = send(
            &self.client,
            self.auth(),
            method("REPORT"),
            &self.calendar_url,
            xml_headers("1"),
            Some(calendar_query_body(range)),
        )
        .await?;
        if answer.status != StatusCode::MULTI_STATUS {
            return Err(answer.refused());
        }
        let mut busy = Vec::new();
        for response in parse_multistatus(&self.calendar_url, &answer.body)? {
            if let Some(data) = response.prop(CALDAV, "calendar-data") {
                busy.extend(busy_in_ics(&data.text)?.into_iter().filter(|iv| iv.overlaps(&range)));
            }
        }
        Ok(busy)
    }
}

impl EventSink for CalDav {
    async fn put_event(&self, event: &CalendarEvent) -> Result<(), CalendarError> {
        let url = self.event_url(&event.uid)?;
        let body = event_ics(event, Timestamp::now()).into_bytes();
        // A 412 means the event changed (or appeared) between reading its ETag and writing:
        // read the ETag again and try once more.
        for _ in 0..2 {
            if self.put_once(&url, &body).await? != StatusCode::PRECONDITION_FAILED {
                return Ok(());
            }
        }
        Err(CalendarError::Refused { status: 412, detail: format!("{url} kept changing while slotd wrote it") })
    }

    async fn delete_event(&self, uid: &str) -> Result<(), CalendarError> {
        let url = self.event_url(uid)?;
        for _ in 0..2 {
            if self.delete_once(&url).await? != StatusCode::PRECONDITION_FAILED {
                return Ok(());
            }
        }
        Err(CalendarError::Refused { status: 412, detail: format!("{url} kept changing while slotd deleted it") })
    }
}

// ---------------------------------------------------------------------------------------------
// Minimal iCalendar: reading expanded instances and writing slotd's events.
// ---------------------------------------------------------------------------------------------

/// One content line: its name (upper case), parameters and value.
struct ContentLine<'a> {
    name: String,
    params: Vec<(String, &'a str)>,
    value: &'a str,
}

/// Joins folded lines (a line break followed by a space or tab continues the line).
fn unfold(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(text.len());
    for line in text.split('\n') {
        if let Some(rest) = line.strip_prefix([' ', '\t']) {
            out.push_str(rest);
        } else {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(line);
        }
    }
    out
}

fn content_line(line: &str) -> Option<ContentLine<'_>> {
    // The value starts at the first ':' outside a quoted parameter value.
    let mut quoted = false;
    let colon = line.char_indices().find_map(|(i, c)| match c {
        '"' => {
            quoted = !quoted;
            None
        }
        ':' if !quoted => Some(i),
        _ => None,
    })?;
    let (head, value) = (&line[..colon], &line[colon + 1..]);
    let mut parts = head.split(';');
    let name = parts.next()?.trim().to_ascii_uppercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_uppercase(), v.trim_matches('"')))
        .collect();
    Some(ContentLine { name, params, value: value.trim() })
}

/// A DTSTART/DTEND value: an instant, or a date (all day).
#[derive(Clone, Copy)]
enum IcsTime {
    Instant(Timestamp),
    Date(civil::Date),
}

impl IcsTime {
    /// As an instant. Dates and floating times (which have no zone of their own) are read as
    /// UTC.
    fn instant(self) -> Timestamp {
        match self {
            IcsTime::Instant(t) => t,
            IcsTime::Date(d) => d.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()).unwrap_or_default(),
        }
    }
}

fn ics_time(line: &ContentLine<'_>) -> Result<IcsTime, CalendarError> {
    let bad = || CalendarError::Invalid(format!("a bad {} value: {:?}", line.name, line.value));
    let value = line.value;
    let is_date = line.params.iter().any(|(k, v)| k == "VALUE" && v.eq_ignore_ascii_case("DATE"))
        || (value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()));
    if is_date {
        let date = civil::Date::strptime("%Y%m%d", value).map_err(|_| bad())?;
        return Ok(IcsTime::Date(date));
    }
    let (local, utc) = match value.strip_suffix(['Z', 'z']) {
        Some(local) => (local, true),
        None => (value, false),
    };
    let datetime = civil::DateTime::strptime("%Y%m%dT%H%M%S", local).map_err(|_| bad())?;
    // Servers convert expanded recurrences to UTC but may leave a single event in its zone
    // (Radicale does): a TZID is read as an IANA name from jiff's bundled database. A zone
    // slotd cannot name is an error rather than a silently shifted busy time.
    let zone = match line.params.iter().find(|(k, _)| k == "TZID") {
        Some((_, tzid)) if !utc => jiff::tz::TimeZone::get(tzid.trim_start_matches('/'))
            .map_err(|_| CalendarError::Invalid(format!("an unknown time zone in {}: {tzid:?}", line.name)))?,
        _ => jiff::tz::TimeZone::UTC,
    };
    let instant = datetime.to_zoned(zone).map_err(|_| bad())?.timestamp();
    Ok(IcsTime::Instant(instant))
}

/// An RFC 5545 DURATION (`P1W`, `-PT15M`, `P1DT2H30M`); a day is 24 hours here (UTC).
fn ics_duration(value: &str) -> Result<SignedDuration, CalendarError> {
    let bad = || CalendarError::Invalid(format!("a bad DURATION: {value:?}"));
    let (sign, rest) = match value.as_bytes().first() {
        Some(b'-') => (-1, &value[1..]),
        Some(b'+') => (1, &value[1..]),
        _ => (1, value),
    };
    let rest = rest.strip_prefix(['P', 'p']).ok_or_else(bad)?;
    let mut seconds: i64 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            '0'..='9' => number.push(c),
            'T' if number.is_empty() => {}
            unit @ ('W' | 'D' | 'H' | 'M' | 'S') => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                any = true;
                let scale = match unit {
                    'W' => 7 * 86_400,
                    'D' => 86_400,
                    'H' => 3_600,
                    'M' => 60,
                    _ => 1,
                };
                seconds = n.checked_mul(scale).and_then(|s| seconds.checked_add(s)).ok_or_else(bad)?;
            }
            _ => return Err(bad()),
        }
    }
    if !any || !number.is_empty() {
        return Err(bad());
    }
    Ok(SignedDuration::from_secs(sign * seconds))
}

/// The busy intervals of the VEVENTs in one (expanded) VCALENDAR: transparent and cancelled
/// events are skipped, and so are events that cover no time.
fn busy_in_ics(text: &str) -> Result<Vec<Interval>, CalendarError> {
    #[derive(Default)]
    struct Vevent {
        start: Option<IcsTime>,
        end: Option<IcsTime>,
        duration: Option<SignedDuration>,
        free: bool,
    }
    let unfolded = unfold(text);
    let mut busy = Vec::new();
    let mut event: Option<Vevent> = None;
    // Components nested in a VEVENT (VALARM) have properties of their own to skip.
    let mut nested = 0usize;
    for line in unfolded.lines() {
        let Some(line) = content_line(line) else { continue };
        match (line.name.as_str(), line.value.to_ascii_uppercase().as_str()) {
            ("BEGIN", "VEVENT") if event.is_none() => event = Some(Vevent::default()),
            ("BEGIN", _) if event.is_some() => nested += 1,
            ("END", "VEVENT") if nested == 0 => {
                let Some(done) = event.take() else { continue };
                let (Some(start), false) = (done.start, done.free) else { continue };
                let end = match (done.end, done.duration, start) {
                    (Some(end), _, _) => end.instant(),
                    (None, Some(duration), _) => start.instant().saturating_add(duration).unwrap_or(Timestamp::MAX),
                    (None, None, IcsTime::Date(_)) => {
                        start.instant().saturating_add(SignedDuration::from_hours(24)).unwrap_or(Timestamp::MAX)
                    }
                    (None, None, IcsTime::Instant(_)) => continue,
                };
                busy.extend(Interval::new(start.instant(), end));
            }
            ("END", _) if nested > 0 => nested -= 1,
            _ if nested > 0 => {}
            (name, upper) => {
                let Some(current) = event.as_mut() else { continue };
                match name {
                    "DTSTART" => current.start = Some(ics_time(&line)?),
                    "DTEND" => current.end = Some(ics_time(&line)?),
                    "DURATION" => current.duration = Some(ics_duration(line.value)?),
                    "TRANSP" if upper == "TRANSPARENT" => current.free = true,
                    "STATUS" if upper == "CANCELLED" => current.free = true,
                    _ => {}
                }
            }
        }
    }
    Ok(busy)
}

/// Escapes a TEXT value (RFC 5545 3.3.11).
fn ics_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line, folded at 75 octets (never inside a character), with CRLF.
fn push_line(out: &mut String, line: &str) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

fn ics_utc(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// The VCALENDAR slotd PUTs for an event.
fn event_ics(event: &CalendarEvent, now: Timestamp) -> String {
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//slotd//slotd//EN".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}", ics_text(&event.uid)),
        format!("SEQUENCE:{}", event.sequence),
        format!("DTSTAMP:{}", ics_utc(now)),
        format!("DTSTART:{}", ics_utc(event.interval.start)),
        format!("DTEND:{}", ics_utc(event.interval.end)),
        format!("SUMMARY:{}", ics_text(&event.summary)),
        format!("DESCRIPTION:{}", ics_text(&event.description)),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ] {
        push_line(&mut out, &line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn expanded_instances_are_busy_and_transparent_or_cancelled_ones_are_not() {
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20250106T090000Z\r\nDTEND:2025\r\n 0106T100000Z\r\n\
                   BEGIN:VALARM\r\nTRIGGER:-PT15M\r\nDURATION:PT5M\r\nEND:VALARM\r\nEND:VEVENT\r\n\
                   BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20250107T090000Z\r\nDURATION:PT30M\r\nEND:VEVENT\r\n\
                   BEGIN:VEVENT\r\nUID:c\r\nTRANSP:TRANSPARENT\r\nDTSTART:20250108T090000Z\r\nDTEND:20250108T100000Z\r\nEND:VEVENT\r\n\
                   BEGIN:VEVENT\r\nUID:d\r\nSTATUS:CANCELLED\r\nDTSTART:20250109T090000Z\r\nDTEND:20250109T100000Z\r\nEND:VEVENT\r\n\
                   BEGIN:VEVENT\r\nUID:e\r\nDTSTART;VALUE=DATE:20250110\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let busy = busy_in_ics(ics).unwrap();
        assert_eq!(
            busy,
            vec![
                Interval::new(ts("2025-01-06T09:00:00Z"), ts("2025-01-06T10:00:00Z")).unwrap(),
                Interval::new(ts("2025-01-07T09:00:00Z"), ts("2025-01-07T09:30:00Z")).unwrap(),
                Interval::new(ts("2025-01-10T00:00:00Z"), ts("2025-01-11T00:00:00Z")).unwrap(),
            ]
        );
    }

    #[test]
    fn a_tzid_is_read_as_an_iana_zone_and_an_unknown_one_is_an_error() {
        let ics = "BEGIN:VEVENT\nDTSTART;TZID=America/New_York:20250310T090000\nDTEND;TZID=America/New_York:20250310T100000\nEND:VEVENT\n";
        assert_eq!(
            busy_in_ics(ics).unwrap(),
            vec![Interval::new(ts("2025-03-10T13:00:00Z"), ts("2025-03-10T14:00:00Z")).unwrap()]
        );
        let unknown = ics.replace("America/New_York", "Eastern Standard Time");
        assert!(matches!(busy_in_ics(&unknown), Err(CalendarError::Invalid(_))));
    }

    #[test]
    fn durations_read_weeks_days_and_signs() {
        assert_eq!(ics_duration("P1W").unwrap(), SignedDuration::from_hours(168));
        assert_eq!(ics_duration("P1DT2H30M").unwrap(), SignedDuration::from_secs(86_400 + 9_000));
        assert_eq!(ics_duration("-PT15M").unwrap(), SignedDuration::from_mins(-15));
        assert!(ics_duration("PT").is_err());
        assert!(ics_duration("1H").is_err());
    }

    #[test]
    fn multistatus_is_read_whatever_the_prefixes_and_hrefs_resolve_against_the_request() {
        let body = br#"<?xml version="1.0"?>
            <x:multistatus xmlns:x="DAV:" xmlns:cal="urn:ietf:params:xml:ns:caldav">
              <x:response><x:href>/alice/work%20cal/</x:href>
                <x:propstat><x:prop><x:resourcetype><x:collection/><cal:calendar/></x:resourcetype>
                  <x:displayname>Work &amp; play</x:displayname></x:prop><x:status>HTTP/1.1 200 OK</x:status></x:propstat>
                <x:propstat><x:prop><cal:calendar-description/></x:prop><x:status>HTTP/1.1 404 Not Found</x:status></x:propstat>
              </x:response>
            </x:multistatus>"#;
        let base = Url::parse("http://127.0.0.1:1/alice/").unwrap();
        let responses = parse_multistatus(&base, body).unwrap();
        assert_eq!(responses.len(), 1);
        assert_eq!(responses[0].url.as_str(), "http://127.0.0.1:1/alice/work%20cal/");
        assert_eq!(responses[0].prop(DAV, "displayname").unwrap().text, "Work & play");
        assert!(responses[0].prop(CALDAV, "calendar-description").is_none());
        assert!(responses[0].prop(DAV, "resourcetype").unwrap().child(CALDAV, "calendar").is_some());
    }

    #[test]
    fn written_events_escape_text_and_fold_long_lines() {
        let event = CalendarEvent {
            uid: "booking-1@slotd".to_owned(),
            sequence: 2,
            interval: Interval::new(ts("2025-01-06T09:00:00Z"), ts("2025-01-06T10:00:00Z")).unwrap(),
            summary: "Call; with, Ann".to_owned(),
            description: format!("line one\nline two {}", "é".repeat(60)),
        };
        let ics = event_ics(&event, ts("2025-01-01T00:00:00Z"));
        assert!(ics.contains("SUMMARY:Call\\; with\\, Ann\r\n"));
        assert!(ics.contains("DTSTART:20250106T090000Z\r\n"));
        assert!(ics.contains("SEQUENCE:2\r\n"));
        assert!(ics.split("\r\n").all(|l| l.len() <= 75));
        assert!(unfold(&ics).contains(&format!("DESCRIPTION:line one\\nline two {}", "é".repeat(60))));
    }
}
