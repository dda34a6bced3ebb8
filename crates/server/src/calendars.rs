//! Calendar connections at run time: their sources built from sealed credentials, the
//! per-process cache of their busy time, the live read a commit makes, and the write-back a
//! delivery makes.
//!
//! - **Listing** reads through the cache: a connection's busy time over a range a little wider
//!   than asked is kept for `--calendar-cache-seconds`; after that the next reader still gets
//!   it (for up to one more TTL) while one background task reads it again, so a steady stream of
//!   listings never waits for a calendar. A connection that cannot be read becomes a warning
//!   that names it; its last good busy time, if any, is still used.
//! - **Commit** reads live, only the reach of the one start, every time; a connection that
//!   cannot be read refuses the commit (`503 calendar_unavailable`) unless it was set to
//!   `on_error: ignore`. A live answer that disagrees with the cached copy drops the copy.
//! - **Write-back** runs in the delivery worker: it makes the calendar match the booking as it is
//!   at that moment (put while confirmed and on this host, delete otherwise), so retries,
//!   duplicates and out-of-order deliveries all end in the same calendar.
//!
//! Every HTTP request to a calendar goes through the same SSRF guard as webhooks (the guarded
//! resolver at connect time, and IP-literal URLs vetted before a source is built).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use slotd_calendar::caldav::CalDav;
use slotd_calendar::google::GoogleCalendar;
use slotd_calendar::ics::IcsFeed;
use slotd_calendar::{BusySource, CalendarError, CalendarEvent, EventSink};
use slotd_core::interval::Interval;
use slotd_store::{Booking, CalendarConnection, CalendarKind, OnError, Store};
use uuid::Uuid;

use crate::sealing::Sealer;
use crate::ssrf::Resolver;

/// How far before a listing's range a cache fill reads.
const FILL_BEFORE: SignedDuration = SignedDuration::from_hours(24);
/// How far past a listing's range a cache fill reads.
const FILL_AFTER: SignedDuration = SignedDuration::from_hours(24 * 14);
/// The longest range one cache fill reads (a listing's range is at most 93 days, plus the margins).
const MAX_FILL: SignedDuration = SignedDuration::from_hours(24 * 150);
/// The longest a listing waits for one calendar before it answers with a warning.
const LISTING_WAIT: Duration = Duration::from_secs(5);
/// Connections one process keeps busy time of; past it the cache starts afresh.
const MAX_CACHED: usize = 10_000;

/// Google's OAuth scopes slotd asks for: free/busy, and the events it writes.
pub const GOOGLE_SCOPES: [&str; 2] =
    ["https://www.googleapis.com/auth/calendar.freebusy", "https://www.googleapis.com/auth/calendar.events"];

/// How slotd reaches Google and how long calendar busy time is cached.
#[derive(Clone, Debug)]
pub struct CalendarSettings {
    /// `--google-client-id`: the OAuth client of the connect flow (and of connections that
    /// bring no client of their own).
    pub google_client_id: Option<String>,
    /// `--google-client-secret`.
    pub google_client_secret: Option<String>,
    /// `--google-api-base` (default `https://www.googleapis.com`).
    pub google_api_base: String,
    /// `--google-oauth-base`: the consent page is at `/o/oauth2/v2/auth` and the token endpoint
    /// at `/token` under it. Unset: Google's own, which live on two hosts
    /// (`https://accounts.google.com` and `https://oauth2.googleapis.com`).
    pub google_oauth_base: Option<String>,
    /// `--calendar-cache-seconds`.
    pub cache_ttl: Duration,
}

impl Default for CalendarSettings {
    fn default() -> Self {
        CalendarSettings {
            google_client_id: None,
            google_client_secret: None,
            google_api_base: slotd_calendar::google::GOOGLE_API_BASE.to_owned(),
            google_oauth_base: None,
            cache_ttl: Duration::from_secs(60),
        }
    }
}

impl CalendarSettings {
    /// Where the consent page is found (`{base}/o/oauth2/v2/auth`).
    pub fn google_consent_base(&self) -> &str {
        self.google_oauth_base.as_deref().unwrap_or("https://accounts.google.com")
    }

    /// Where the token endpoint is found (`{base}/token`).
    pub fn google_token_base(&self) -> &str {
        self.google_oauth_base.as_deref().unwrap_or("https://oauth2.googleapis.com")
    }
}

/// What is sealed in a connection's `credentials_sealed` (no `Debug`: it holds secrets).
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credentials {
    /// A CalDAV calendar.
    Caldav {
        /// The calendar collection's URL.
        url: String,
        /// HTTP Basic user.
        username: String,
        /// HTTP Basic password (or app password).
        password: String,
    },
    /// An ICS feed (its URL is often a secret address).
    Ics {
        /// The feed's URL.
        url: String,
    },
    /// Google Calendar.
    Google {
        /// The OAuth client (None: the server's `--google-client-id`).
        client_id: Option<String>,
        /// Its secret.
        client_secret: Option<String>,
        /// The account's refresh token.
        refresh_token: String,
    },
}

/// A connection's source, built once and kept (a Google source keeps its access token).
enum Source {
    CalDav(CalDav),
    Ics(IcsFeed),
    Google(GoogleCalendar),
}

impl Source {
    async fn busy(&self, range: Interval) -> Result<Vec<Interval>, CalendarError> {
        match self {
            Source::CalDav(s) => s.busy(range).await,
            Source::Ics(s) => s.busy(range).await,
            Source::Google(s) => s.busy(range).await,
        }
    }
}

/// A source as built: from which sealed credentials, for which floating zone.
struct BuiltSource {
    sealed: String,
    zone: String,
    source: Arc<Source>,
}

/// A connection whose busy time could not be read (for a listing's `warnings`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarWarning {
    /// The connection.
    pub calendar_id: Uuid,
    /// What went wrong.
    pub detail: String,
}

/// A connection a live read could not read (its host cannot be confirmed free).
#[derive(Clone, Debug)]
pub struct Unavailable {
    /// The connection that could not be read.
    pub calendar_id: Uuid,
    /// Its host.
    pub host_id: Uuid,
    /// What went wrong.
    pub detail: String,
}

/// One read of a connection's busy time.
#[derive(Clone)]
struct Fetched {
    at: Instant,
    covered: Interval,
    /// The busy time, or why it could not be read.
    result: Result<Arc<Vec<Interval>>, String>,
    /// The last good busy time when this read failed (used while warning).
    last_good: Option<(Interval, Arc<Vec<Interval>>)>,
}

/// The cached busy time of one connection.
#[derive(Default)]
struct Entry {
    current: Mutex<Option<Fetched>>,
    /// Held by the one reader that fills or refreshes the entry.
    filling: Arc<tokio::sync::Mutex<()>>,
}

/// Calendar connections of this process: sources, cache, live reads, write-back.
pub struct Calendars {
    settings: CalendarSettings,
    client: reqwest::Client,
    resolver: Resolver,
    allow_private: bool,
    sealer: Arc<Sealer>,
    sources: Mutex<HashMap<Uuid, BuiltSource>>,
    cache: Mutex<HashMap<Uuid, Arc<Entry>>>,
    /// Per connection: the last outcome this process recorded (`None`: a success) and when.
    recorded: Mutex<HashMap<Uuid, (Option<String>, Instant)>>,
}

/// How often a connection whose reads keep going the same way has its status written again
/// (so `last_synced_at` stays current without a write per read).
const RECORD_EVERY: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Calendars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calendars").field("cache_ttl", &self.settings.cache_ttl).finish_non_exhaustive()
    }
}

impl Calendars {
    /// The calendar layer, with an HTTP client behind the SSRF guard (`allow_private` lifts it).
    pub fn new(settings: CalendarSettings, resolver: Resolver, allow_private: bool, sealer: Arc<Sealer>) -> Calendars {
        let client = crate::delivery::send::guarded_client(
            resolver.clone(),
            allow_private,
            slotd_calendar::caldav::REQUEST_TIMEOUT,
        );
        Calendars {
            settings,
            client,
            resolver,
            allow_private,
            sealer,
            sources: Mutex::default(),
            cache: Mutex::default(),
            recorded: Mutex::default(),
        }
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &CalendarSettings {
        &self.settings
    }

    /// The SSRF-guarded HTTP client every calendar request goes through.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Checks a calendar URL against the SSRF guard (scheme, shape, resolved addresses); the
    /// error is a sentence for a 422.
    pub async fn check_url(&self, url: &str) -> Result<(), String> {
        crate::ssrf::check(url, &self.resolver, self.allow_private).await.map(|_| ())
    }

    /// Checks a URL a calendar server pointed to, before anything is sent there: its shape, and
    /// for an IP literal (which the guarded resolver never sees) the address itself. Names are
    /// vetted by the guarded resolver when the connection is made.
    pub fn vet_before_connect(&self, url: &reqwest::Url) -> Result<(), String> {
        let target = slotd_core::webhook::check_webhook_url(url.as_str()).map_err(|e| e.to_string())?;
        if let Some(ip) = target.is_ip_literal {
            crate::ssrf::vet(&target.host, &[ip], self.allow_private)?;
        }
        Ok(())
    }

    /// The connection's source, built from its sealed credentials (and kept while they and the
    /// floating zone stay the same).
    async fn source(&self, connection: &CalendarConnection, zone: &TimeZone) -> Result<Arc<Source>, String> {
        // Only an ICS feed reads floating times in the host's zone; the other kinds' sources do
        // not depend on it (so a write-back in UTC reuses a listing's source, and its token).
        let zone_name = match connection.kind {
            CalendarKind::Ics => zone.iana_name().unwrap_or("UTC").to_owned(),
            CalendarKind::CalDav | CalendarKind::Google => String::new(),
        };
        if let Some(built) = self.sources.lock().expect("sources").get(&connection.id)
            && built.sealed == connection.credentials_sealed
            && built.zone == zone_name
        {
            return Ok(built.source.clone());
        }
        let credentials = self.credentials(connection)?;
        let source = match credentials {
            Credentials::Caldav { url, username, password } => {
                self.check_url(&url).await?;
                Source::CalDav(CalDav::new(self.client.clone(), &url, username, password).map_err(|e| e.to_string())?)
            }
            Credentials::Ics { url } => {
                self.check_url(&url).await?;
                Source::Ics(IcsFeed::new(self.client.clone(), url, zone.clone()))
            }
            Credentials::Google { client_id, client_secret, refresh_token } => {
                self.check_url(&self.settings.google_api_base).await?;
                self.check_url(self.settings.google_token_base()).await?;
                let (Some(client_id), Some(client_secret)) = (
                    client_id.or_else(|| self.settings.google_client_id.clone()),
                    client_secret.or_else(|| self.settings.google_client_secret.clone()),
                ) else {
                    return Err("no Google OAuth client: give client_id and client_secret, or start slotd with \
                                --google-client-id and --google-client-secret"
                        .to_owned());
                };
                Source::Google(GoogleCalendar::new(
                    self.client.clone(),
                    &self.settings.google_api_base,
                    self.settings.google_token_base(),
                    client_id,
                    client_secret,
                    refresh_token,
                    connection.calendar_ids.clone(),
                ))
            }
        };
        let source = Arc::new(source);
        let mut sources = self.sources.lock().expect("sources");
        if sources.len() >= MAX_CACHED {
            sources.clear();
        }
        let built =
            BuiltSource { sealed: connection.credentials_sealed.clone(), zone: zone_name, source: source.clone() };
        sources.insert(connection.id, built);
        Ok(source)
    }

    /// Opens a connection's credentials.
    pub fn credentials(&self, connection: &CalendarConnection) -> Result<Credentials, String> {
        self.sealer
            .open(&connection.credentials_sealed)
            .and_then(|json| serde_json::from_str(&json).ok())
            .ok_or_else(|| "the connection's credentials cannot be opened with this server's --secret-key".to_owned())
    }

    fn entry(&self, id: Uuid) -> Arc<Entry> {
        let mut cache = self.cache.lock().expect("calendar cache");
        if cache.len() >= MAX_CACHED && !cache.contains_key(&id) {
            cache.clear();
        }
        cache.entry(id).or_default().clone()
    }

    /// Forgets the cached busy time of a connection (after slotd wrote into it, or a live read
    /// saw something else).
    pub fn invalidate(&self, id: Uuid) {
        self.cache.lock().expect("calendar cache").remove(&id);
    }

    /// Reads a connection that is not stored yet, once, bypassing the cache (creation checks
    /// that a new connection can be read).
    pub async fn first_read(
        &self,
        connection: &CalendarConnection,
        zone: &TimeZone,
        range: Interval,
    ) -> Result<(), String> {
        let read = match self.source(connection, zone).await {
            Ok(source) => source.busy(range).await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        self.sources.lock().expect("sources").remove(&connection.id);
        read
    }

    /// Reads a connection once and records the outcome on it (in the background).
    async fn read(
        &self,
        store: &Store,
        connection: &CalendarConnection,
        zone: &TimeZone,
        range: Interval,
    ) -> Result<Vec<Interval>, String> {
        let result = match self.source(connection, zone).await {
            Ok(source) => source.busy(range).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let (org, id) = (connection.organization_id, connection.id);
        let error = result.as_ref().err().cloned();
        let due = {
            let mut recorded = self.recorded.lock().expect("recorded outcomes");
            let due = recorded.get(&id).is_none_or(|(last, at)| *last != error || at.elapsed() >= RECORD_EVERY);
            if due {
                if recorded.len() >= MAX_CACHED {
                    recorded.clear();
                }
                recorded.insert(id, (error.clone(), Instant::now()));
            }
            due
        };
        if due {
            if let Some(e) = &error {
                tracing::warn!(calendar = %id, error = %e, "a calendar connection could not be read");
            }
            let (store, at) = (store.clone(), Timestamp::now());
            tokio::spawn(async move {
                let outcome = match &error {
                    None => Ok(()),
                    Some(e) => Err(e.as_str()),
                };
                if let Err(e) = store.record_calendar_sync(org, id, at, outcome).await {
                    tracing::warn!(calendar = %id, error = %e, "could not record a calendar read");
                }
            });
        }
        result
    }

    /// Busy time of `connections` over `range` for a listing: from the cache while fresh,
    /// refreshed in the background when stale; the warnings name connections that could not
    /// be read. `zone_of` gives each connection's host zone (floating times).
    pub async fn cached_busy(
        self: &Arc<Self>,
        store: &Store,
        connections: &[CalendarConnection],
        zone_of: impl Fn(Uuid) -> TimeZone,
        range: Interval,
    ) -> (Vec<(Uuid, Interval)>, Vec<CalendarWarning>) {
        let reads = connections.iter().map(|c| {
            let zone = zone_of(c.host_id);
            async move { (c, self.cached_one(store, c, zone, range).await) }
        });
        let mut busy = Vec::new();
        let mut warnings = Vec::new();
        for (connection, (intervals, error)) in futures_util::future::join_all(reads).await {
            busy.extend(intervals.iter().filter(|i| i.overlaps(&range)).map(|i| (connection.host_id, *i)));
            if let Some(detail) = error {
                warnings.push(CalendarWarning { calendar_id: connection.id, detail });
            }
        }
        (busy, warnings)
    }

    /// One connection's busy time from the cache (see [`Calendars::cached_busy`]): the intervals
    /// to use and, when it could not be read, why.
    async fn cached_one(
        self: &Arc<Self>,
        store: &Store,
        connection: &CalendarConnection,
        zone: TimeZone,
        range: Interval,
    ) -> (Arc<Vec<Interval>>, Option<String>) {
        let ttl = self.settings.cache_ttl;
        let entry = self.entry(connection.id);
        let usable = |f: &Fetched, max_age: Duration| {
            f.covered.start <= range.start && f.covered.end >= range.end && f.at.elapsed() < max_age
        };
        let current = entry.current.lock().expect("calendar entry").clone();
        if let Some(fetched) = &current {
            if usable(fetched, ttl) {
                return answer_of(fetched);
            }
            if !ttl.is_zero() && usable(fetched, ttl.saturating_mul(2)) {
                // Stale: answer with it and let one background task read it again.
                if let Ok(guard) = entry.filling.clone().try_lock_owned() {
                    let (this, store, connection, covered) =
                        (self.clone(), store.clone(), connection.clone(), fetched.covered);
                    let entry = entry.clone();
                    tokio::spawn(async move {
                        let _guard = guard;
                        this.fill(&entry, &store, &connection, &zone, covered).await;
                    });
                }
                return answer_of(fetched);
            }
        }
        let slow = || {
            let last = current.as_ref().map(answer_of).map(|(busy, _)| busy).unwrap_or_default();
            (last, Some(format!("the calendar did not answer within {} s", LISTING_WAIT.as_secs())))
        };
        let waited = Instant::now();
        let Ok(guard) = tokio::time::timeout(LISTING_WAIT, entry.filling.clone().lock_owned()).await else {
            return slow();
        };
        // Another reader may have filled it while this one waited.
        if let Some(fetched) = entry.current.lock().expect("calendar entry").as_ref()
            && usable(fetched, ttl.max(Duration::from_millis(1)))
            && current.as_ref().is_none_or(|c| c.at != fetched.at)
        {
            return answer_of(fetched);
        }
        let mut covered = Interval {
            start: range.start.checked_sub(FILL_BEFORE).unwrap_or(range.start),
            end: range.end.checked_add(FILL_AFTER).unwrap_or(range.end),
        };
        // Listings of different weeks must not keep evicting each other: the read covers what
        // the cache held as well, as long as that stays within MAX_FILL.
        if let Some(held) = &current {
            let hull =
                Interval { start: held.covered.start.min(covered.start), end: held.covered.end.max(covered.end) };
            if hull.duration() <= MAX_FILL {
                covered = hull;
            }
        }
        // The read runs in a task of its own: a listing stops waiting for a slow calendar after
        // LISTING_WAIT, while the read goes on and stores what it gets for the next listings.
        let (this, store, connection) = (self.clone(), store.clone(), connection.clone());
        let read = tokio::spawn(async move {
            let _guard = guard;
            this.fill(&entry, &store, &connection, &zone, covered).await
        });
        match tokio::time::timeout(LISTING_WAIT.saturating_sub(waited.elapsed()), read).await {
            Ok(Ok(fetched)) => answer_of(&fetched),
            Ok(Err(e)) => (Arc::default(), Some(format!("the calendar read failed: {e}"))),
            Err(_) => slow(),
        }
    }

    /// Reads `covered` and stores the outcome in the entry.
    async fn fill(
        &self,
        entry: &Entry,
        store: &Store,
        connection: &CalendarConnection,
        zone: &TimeZone,
        covered: Interval,
    ) -> Fetched {
        let result = self.read(store, connection, zone, covered).await.map(Arc::new);
        let last_good = match &result {
            Ok(_) => None,
            Err(_) => {
                entry.current.lock().expect("calendar entry").as_ref().and_then(|previous| match &previous.result {
                    Ok(busy) => Some((previous.covered, busy.clone())),
                    Err(_) => previous.last_good.clone(),
                })
            }
        };
        let fetched = Fetched { at: Instant::now(), covered, result, last_good };
        *entry.current.lock().expect("calendar entry") = Some(fetched.clone());
        fetched
    }

    /// Busy time of `connections` over `range`, read live (a commit), and the connections that
    /// could not be read and are not set to be ignored (their hosts cannot be confirmed free).
    pub async fn live_busy(
        &self,
        store: &Store,
        connections: &[CalendarConnection],
        zone_of: impl Fn(Uuid) -> TimeZone,
        range: Interval,
    ) -> (Vec<(Uuid, Interval)>, Vec<Unavailable>) {
        let reads = connections.iter().map(|c| {
            let zone = zone_of(c.host_id);
            async move { (c, self.read(store, c, &zone, range).await) }
        });
        let mut busy = Vec::new();
        let mut unavailable = Vec::new();
        for (connection, result) in futures_util::future::join_all(reads).await {
            match result {
                Ok(intervals) => {
                    self.compare_with_cache(connection.id, range, &intervals);
                    busy.extend(intervals.into_iter().filter(|i| i.overlaps(&range)).map(|i| (connection.host_id, i)));
                }
                Err(_) if connection.on_error == OnError::Ignore => {}
                Err(detail) => {
                    unavailable.push(Unavailable { calendar_id: connection.id, host_id: connection.host_id, detail })
                }
            }
        }
        (busy, unavailable)
    }

    /// Drops the cached copy of a connection when a live read of `range` found other busy time.
    fn compare_with_cache(&self, id: Uuid, range: Interval, live: &[Interval]) {
        let Some(entry) = self.cache.lock().expect("calendar cache").get(&id).cloned() else { return };
        let current = entry.current.lock().expect("calendar entry").clone();
        let Some(Fetched { covered, result: Ok(cached), .. }) = current else { return };
        if covered.start > range.start || covered.end < range.end {
            return;
        }
        // Clipped to the range: a source may cut busy periods at the edges of the window asked.
        let clip = |i: &Interval| Interval::new(i.start.max(range.start), i.end.min(range.end));
        let mut seen: Vec<Interval> = cached.iter().filter_map(clip).collect();
        let mut now: Vec<Interval> = live.iter().filter_map(clip).collect();
        slotd_core::interval::merge(&mut seen);
        slotd_core::interval::merge(&mut now);
        if seen != now {
            self.invalidate(id);
        }
    }

    /// Makes a write-back calendar match `booking` as it is now: its event is there while the
    /// booking is confirmed and on the connection's host, and gone otherwise (`None`: the
    /// booking no longer exists). Idempotent: the event's UID comes from the booking id.
    pub async fn write_back(
        &self,
        connection: &CalendarConnection,
        zone: &TimeZone,
        booking: Option<&Booking>,
        event: impl Fn(&Booking) -> CalendarEvent,
    ) -> Result<&'static str, String> {
        let source = self.source(connection, zone).await?;
        let wanted = booking.filter(|b| {
            b.status == slotd_core::booking::BookingStatus::Confirmed && b.host_ids.contains(&connection.host_id)
        });
        let result = match (&*source, wanted, booking) {
            (Source::Ics(_), _, _) => return Err("an ICS feed is read only".to_owned()),
            (Source::CalDav(s), Some(b), _) => s.put_event(&event(b)).await.map(|()| "put"),
            (Source::Google(s), Some(b), _) => s.put_event(&event(b)).await.map(|()| "put"),
            (Source::CalDav(s), None, Some(b)) => s.delete_event(&event_uid(b.id)).await.map(|()| "deleted"),
            (Source::Google(s), None, Some(b)) => s.delete_event(&event_uid(b.id)).await.map(|()| "deleted"),
            (_, None, None) => return Ok("nothing to do"),
        };
        self.invalidate(connection.id);
        result.map_err(|e| e.to_string())
    }
}

/// The UID of a booking's calendar event: stable per booking, so a retry never makes a second
/// event.
pub fn event_uid(booking_id: Uuid) -> String {
    format!("{booking_id}@slotd")
}

/// A read's intervals and warning.
fn answer_of(fetched: &Fetched) -> (Arc<Vec<Interval>>, Option<String>) {
    match &fetched.result {
        Ok(busy) => (busy.clone(), None),
        Err(e) => (fetched.last_good.as_ref().map(|(_, b)| b.clone()).unwrap_or_default(), Some(e.clone())),
    }
}

/// `intervals` with every part that lies in one of `holes` cut out.
pub fn subtract(intervals: &[Interval], holes: &[Interval]) -> Vec<Interval> {
    let mut holes = holes.to_vec();
    slotd_core::interval::merge(&mut holes);
    let mut out = Vec::with_capacity(intervals.len());
    for interval in intervals {
        let mut start = interval.start;
        for hole in holes.iter().filter(|h| h.overlaps(interval)) {
            if hole.start > start {
                out.extend(Interval::new(start, hole.start));
            }
            start = start.max(hole.end);
        }
        if start < interval.end {
            out.extend(Interval::new(start, interval.end));
        }
    }
    out
}

/// Whether any connection is of a kind that takes events.
pub fn can_write(kind: CalendarKind) -> bool {
    kind != CalendarKind::Ics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendars(allow_private: bool) -> Calendars {
        let resolver = Resolver::Static(Arc::new(HashMap::new()));
        Calendars::new(CalendarSettings::default(), resolver, allow_private, Arc::new(Sealer::derive(b"k")))
    }

    #[test]
    fn urls_a_calendar_server_points_to_are_vetted_before_any_connection() {
        let guarded = calendars(false);
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        for refused in
            ["http://10.0.0.1/p/", "http://169.254.169.254/latest/", "http://[::1]:8080/", "http://127.0.0.1/"]
        {
            let error = guarded.vet_before_connect(&url(refused)).unwrap_err();
            assert!(error.contains("SSRF guard"), "{refused}: {error}");
        }
        assert!(guarded.vet_before_connect(&url("ftp://93.184.216.34/")).is_err());
        // Public literals pass; names are vetted by the guarded resolver when connecting.
        assert!(guarded.vet_before_connect(&url("https://93.184.216.34/dav/")).is_ok());
        assert!(guarded.vet_before_connect(&url("https://dav.example.com/dav/")).is_ok());
        assert!(calendars(true).vet_before_connect(&url("http://10.0.0.1/p/")).is_ok());
    }

    fn iv(a: i64, b: i64) -> Interval {
        Interval::new(Timestamp::from_second(a).unwrap(), Timestamp::from_second(b).unwrap()).unwrap()
    }

    #[test]
    fn subtracting_cuts_holes_out_and_keeps_the_rest() {
        assert_eq!(subtract(&[iv(0, 100)], &[iv(20, 30), iv(25, 40), iv(90, 200)]), vec![iv(0, 20), iv(40, 90)]);
        assert_eq!(subtract(&[iv(0, 10)], &[iv(0, 10)]), vec![]);
        assert_eq!(subtract(&[iv(0, 10)], &[iv(10, 20)]), vec![iv(0, 10)]);
        assert_eq!(subtract(&[iv(0, 10), iv(20, 30)], &[]), vec![iv(0, 10), iv(20, 30)]);
    }
}
