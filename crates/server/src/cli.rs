//! The command line: `serve`, `worker`, `migrate`, `org create`, `key create|revoke`, `openapi`. Every
//! flag has a `SLOTD_*` environment variable as fallback; `slotd --help` lists them all.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use slotd_store::{OrgId, Plan, Store};
use tokio::net::TcpListener;
use uuid::Uuid;

use std::time::Duration;

use slotd_core::webhook::RetrySchedule;

use crate::app::{self, AppState};
use crate::delivery::{Sender, Worker, WorkerConfig};
use crate::extract::hash_api_key;

/// slotd: a self-hosted scheduling engine with live slots, race-free bookings and signed webhooks.
#[derive(Debug, Parser)]
#[command(name = "slotd", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Log format on stderr (filter with RUST_LOG, default "info").
    #[arg(long, env = "SLOTD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// Where the data lives; shared by every subcommand.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Database URL, `postgres://…` or `sqlite://…`; wins over --data-dir. Behind a
    /// transaction-mode pooler (PgBouncer `pool_mode = transaction`) add
    /// `?statement-cache-capacity=0`: slotd then runs every statement in a transaction and keeps
    /// no session state on its pooled connections.
    #[arg(long, env = "SLOTD_DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// A direct PostgreSQL URL (not through a pooler) for the migrations slotd applies at start
    /// (default: --database-url). Gives DDL and its lock a server connection of their own
    /// instead of one of the pooler's.
    #[arg(long, env = "SLOTD_DATABASE_DIRECT_URL", global = true, hide_env_values = true)]
    database_direct_url: Option<String>,
    /// Directory of the embedded SQLite database (used when no --database-url is given).
    #[arg(long, env = "SLOTD_DATA_DIR", default_value = "./slotd-data", global = true)]
    data_dir: PathBuf,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API and a webhook delivery worker (migrates the database first).
    Serve(ServeArgs),
    /// Run only a webhook delivery worker (any number may share a PostgreSQL database).
    Worker(WorkerArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Print the OpenAPI document (JSON) and exit.
    Openapi,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SLOTD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Base URL of links handed out (default: http://<listen address>).
    #[arg(long, env = "SLOTD_PUBLIC_URL")]
    public_url: Option<String>,
    /// Seconds a confirmed API key is remembered in memory (0: ask the database every time);
    /// a revoked key stops working on every process within this time.
    #[arg(long, env = "SLOTD_API_KEY_CACHE_SECONDS", default_value_t = 5)]
    api_key_cache_seconds: u64,
    /// Seed a demo organization, host and event type, and print an API key and a curl line.
    #[arg(long, env = "SLOTD_DEMO")]
    demo: bool,
    /// Do not deliver webhooks from this process (run `slotd worker` processes instead).
    #[arg(long, env = "SLOTD_NO_DELIVERY_WORKER")]
    no_delivery_worker: bool,
    /// Who may show the hosted manage page in a frame: the CSP frame-ancestors sources, e.g.
    /// "'self' https://shop.example.com" ('none' by default: no site may embed it).
    #[arg(long, env = "SLOTD_FRAME_ANCESTORS", default_value = "'none'", value_parser = crate::pages::parse_frame_ancestors)]
    frame_ancestors: String,
    /// Requests per second per API key, in this process (0: no limit). Over it, 429 with
    /// Retry-After. The default leaves an integration's normal traffic alone (a booking widget's
    /// backend, a sync job) while one runaway client cannot take the database from the others.
    #[arg(long, env = "SLOTD_RATE_LIMIT", default_value_t = 50)]
    rate_limit: u32,
    /// Requests an API key may send at once: the size of its bucket, refilled at the rate (0: the
    /// rate itself).
    #[arg(long, env = "SLOTD_RATE_BURST", default_value_t = 100)]
    rate_burst: u32,
    /// Requests per second per client address on the token routes (/manage, /v1/manage, /b), in
    /// this process (0: no limit). An attendee opens a page or two; a token that does not
    /// verify costs 10 more, so guessing tokens is throttled after a couple of tries. Behind a
    /// reverse proxy every client has the proxy's address: raise it there, or limit at the proxy.
    #[arg(long, env = "SLOTD_TOKEN_RATE_LIMIT", default_value_t = 5)]
    token_rate_limit: u32,
    /// Requests a client address may send at once on the token routes: the size of its bucket,
    /// refilled at the rate (0: the rate itself).
    #[arg(long, env = "SLOTD_TOKEN_RATE_BURST", default_value_t = 20)]
    token_rate_burst: u32,
    #[command(flatten)]
    worker: WorkerArgs,
}

/// What `serve` and `worker` share: the server secret, the SSRF guard and how webhooks are delivered.
#[derive(Debug, Args)]
struct WorkerArgs {
    /// Server secret (at least 32 characters) that manage links are signed with and webhook
    /// signing secrets are sealed with; every process sharing a database needs the same one.
    /// Required with PostgreSQL; with the embedded SQLite default it is generated into
    /// <data-dir>/secret.key on first run.
    #[arg(long, env = "SLOTD_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Accept webhook targets on loopback and private networks (local development and tests;
    /// never on a server reachable by untrusted API keys).
    #[arg(long, env = "SLOTD_ALLOW_PRIVATE_WEBHOOKS")]
    allow_private_webhooks: bool,
    /// Time limit of one webhook POST, from connecting to the last byte of the answer.
    #[arg(long, env = "SLOTD_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    webhook_timeout: Duration,
    /// Delays before each attempt (the first counted from the event, the others from the
    /// previous failure), comma-separated, units ms, s, m, h, d; ±10 % jitter is added.
    #[arg(long, env = "SLOTD_WEBHOOK_RETRY_SCHEDULE", default_value = "0,5m,60m")]
    webhook_retry_schedule: RetrySchedule,
    /// Disable an endpoint whose every attempt has failed for this long (and emit webhook.disabled).
    #[arg(long, env = "SLOTD_WEBHOOK_DISABLE_AFTER", default_value = "5d", value_parser = parse_duration)]
    webhook_disable_after: Duration,
    /// Webhook attempts this process holds at once (in flight, or claimed ahead to start next).
    #[arg(long, env = "SLOTD_WEBHOOK_CONCURRENCY", default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..))]
    webhook_concurrency: u16,
    /// Webhook POSTs in flight at once to one endpoint from this process (as many again are
    /// claimed ahead, so the next starts the moment one finishes).
    #[arg(long, env = "SLOTD_WEBHOOK_ENDPOINT_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    webhook_endpoint_concurrency: u16,
    /// How often an idle worker looks for deliveries queued by other processes (this process's
    /// own changes wake it at once).
    #[arg(long, env = "SLOTD_WEBHOOK_POLL_INTERVAL", default_value = "100ms", value_parser = parse_duration)]
    webhook_poll_interval: Duration,
    /// OAuth client id of slotd's Google Cloud project: the "connect Google Calendar" flow uses
    /// it, as do Google connections that bring no client of their own.
    #[arg(long, env = "SLOTD_GOOGLE_CLIENT_ID")]
    google_client_id: Option<String>,
    /// That OAuth client's secret.
    #[arg(long, env = "SLOTD_GOOGLE_CLIENT_SECRET", hide_env_values = true)]
    google_client_secret: Option<String>,
    /// Base URL of Google's Calendar API.
    #[arg(long, env = "SLOTD_GOOGLE_API_BASE", default_value = slotd_calendar::google::GOOGLE_API_BASE, value_parser = parse_base_url)]
    google_api_base: String,
    /// Base URL of Google's OAuth endpoints: the consent page at /o/oauth2/v2/auth and the token
    /// endpoint at /token under it (default: Google's own, https://accounts.google.com and
    /// https://oauth2.googleapis.com).
    #[arg(long, env = "SLOTD_GOOGLE_OAUTH_BASE", value_parser = parse_base_url)]
    google_oauth_base: Option<String>,
    /// Seconds a calendar connection's busy time is kept for slot listings (refreshed in the
    /// background after that); commits always read calendars live.
    #[arg(long, env = "SLOTD_CALENDAR_CACHE_SECONDS", default_value_t = 60)]
    calendar_cache_seconds: u64,
}

/// A base URL flag: absolute `http` or `https`, without query or fragment.
fn parse_base_url(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http:// or https:// URL with a host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must have no query or fragment".to_owned());
    }
    Ok(s.trim_end_matches('/').to_owned())
}

/// A duration flag (`10s`, `250ms`, `5d`, …).
fn parse_duration(s: &str) -> Result<Duration, String> {
    slotd_core::webhook::parse_duration_ms(s).map(Duration::from_millis).map_err(str::to_owned)
}

impl WorkerArgs {
    fn config(&self) -> WorkerConfig {
        WorkerConfig {
            timeout: self.webhook_timeout.max(Duration::from_millis(1)),
            schedule: self.webhook_retry_schedule.clone(),
            disable_after: self.webhook_disable_after,
            concurrency: usize::from(self.webhook_concurrency),
            endpoint_concurrency: usize::from(self.webhook_endpoint_concurrency),
            poll_interval: self.webhook_poll_interval.max(Duration::from_millis(1)),
        }
    }

    /// The calendar layer of this process.
    fn calendars(&self, sealer: Arc<crate::sealing::Sealer>) -> Arc<crate::calendars::Calendars> {
        let settings = crate::calendars::CalendarSettings {
            google_client_id: self.google_client_id.clone(),
            google_client_secret: self.google_client_secret.clone(),
            google_api_base: self.google_api_base.clone(),
            google_oauth_base: self.google_oauth_base.clone(),
            cache_ttl: Duration::from_secs(self.calendar_cache_seconds),
        };
        Arc::new(crate::calendars::Calendars::new(
            settings,
            crate::ssrf::Resolver::System,
            self.allow_private_webhooks,
            sealer,
        ))
    }

    /// A worker over the database of `store` (on its own connections) with this process's secret,
    /// writing back to calendars through `calendars`.
    async fn worker(
        &self,
        store: &Store,
        sealer: Arc<crate::sealing::Sealer>,
        calendars: Arc<crate::calendars::Calendars>,
    ) -> anyhow::Result<Worker> {
        let config = self.config();
        let sender = Sender::new(crate::ssrf::Resolver::System, self.allow_private_webhooks, config.timeout);
        let store = store.for_delivery_worker().await.context("connecting the delivery worker")?;
        Ok(Worker::new(store, sealer, sender, config).with_calendars(calendars))
    }
}

/// Forgets idempotency keys older than 24 hours, every hour (any process may do it; the
/// delete is idempotent).
async fn expire_idempotency_keys(store: Store) {
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        match store.expire_idempotency_keys().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "forgot old idempotency keys"),
            Err(e) => tracing::warn!(error = %e, "could not expire idempotency keys"),
        }
    }
}

/// Shortest accepted server secret.
const SECRET_MIN_CHARS: usize = 32;

/// The server secret: given, or (embedded SQLite only) read from or generated into the data dir.
fn server_secret(database: &DatabaseArgs, store: &Store, given: Option<String>) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = given {
        anyhow::ensure!(
            secret.chars().count() >= SECRET_MIN_CHARS,
            "--secret-key (SLOTD_SECRET_KEY) must be at least {SECRET_MIN_CHARS} characters"
        );
        return Ok(secret.into_bytes());
    }
    anyhow::ensure!(
        store.backend() == slotd_store::Backend::Sqlite,
        "--secret-key (SLOTD_SECRET_KEY) is required with PostgreSQL, so that every slotd process signs \
         manage links alike; generate one with: openssl rand -hex 32"
    );
    let path = database.data_dir.join("secret.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        anyhow::ensure!(existing.len() >= SECRET_MIN_CHARS, "{} is too short", path.display());
        return Ok(existing.into_bytes());
    }
    std::fs::create_dir_all(&database.data_dir).with_context(|| format!("creating {}", database.data_dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a server secret");
    Ok(secret.into_bytes())
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Create an organization and print its id.
    Create {
        /// Display name.
        #[arg(long, env = "SLOTD_ORG_NAME")]
        name: String,
        /// Plan: limits webhook endpoints (free 2, starter 10, growth unlimited).
        #[arg(long, env = "SLOTD_ORG_PLAN", value_enum, default_value_t = PlanArg::Free)]
        plan: PlanArg,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an API key for an organization and print it (shown only this once).
    Create {
        /// Organization id.
        #[arg(long, env = "SLOTD_ORG")]
        org: Uuid,
    },
    /// Revoke an API key; requests with it answer 401 from now on.
    Revoke {
        /// The key to revoke (sk_live_…).
        #[arg(long, env = "SLOTD_KEY")]
        key: String,
    },
}

/// Plan names on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PlanArg {
    Free,
    Starter,
    Growth,
}

impl From<PlanArg> for Plan {
    fn from(p: PlanArg) -> Plan {
        match p {
            PlanArg::Free => Plan::Free,
            PlanArg::Starter => Plan::Starter,
            PlanArg::Growth => Plan::Growth,
        }
    }
}

impl DatabaseArgs {
    /// The database URL: --database-url, else a SQLite file inside --data-dir (created).
    fn url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data directory {}", self.data_dir.display()))?;
        Ok(format!("sqlite://{}", self.data_dir.join("slotd.db").display()))
    }

    /// Connects and migrates (over --database-direct-url when given).
    async fn open(&self) -> anyhow::Result<Store> {
        let url = self.url()?;
        if let Some(direct) = &self.database_direct_url {
            let postgres = |url: &str| url.starts_with("postgres://") || url.starts_with("postgresql://");
            anyhow::ensure!(
                postgres(&url) && postgres(direct),
                "--database-direct-url (SLOTD_DATABASE_DIRECT_URL) is for PostgreSQL behind a pooler: a \
                 postgres:// URL of the same database as the postgres:// --database-url"
            );
        }
        let store = Store::connect(&url).await.context("connecting to the database")?;
        match &self.database_direct_url {
            None => store.migrate().await.context("migrating the database")?,
            Some(direct) => {
                let direct = Store::connect(direct).await.context("connecting to the database directly")?;
                let migrated = direct.migrate().await.context("migrating the database");
                direct.close().await;
                migrated?;
            }
        }
        Ok(store)
    }
}

impl Cli {
    /// Sets up logging to stderr (stdout carries only what commands print for scripts).
    pub fn init_tracing(&self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
        let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        match self.log_format {
            LogFormat::Text => builder.init(),
            LogFormat::Json => builder.json().init(),
        }
    }

    /// Runs the chosen subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve(args) => serve(&self.database, args).await,
            Command::Worker(args) => {
                let store = self.database.open().await?;
                let secret = server_secret(&self.database, &store, args.secret_key.clone())?;
                tracing::info!(
                    backend = ?store.backend(),
                    behind_pooler = store.behind_pooler(),
                    "slotd delivery worker running"
                );
                let sealer = Arc::new(crate::sealing::Sealer::derive(&secret));
                let calendars = args.calendars(sealer.clone());
                args.worker(&store, sealer, calendars).await?.run(app::shutdown_signal()).await;
                store.close().await;
                Ok(())
            }
            Command::Migrate => {
                self.database.open().await?;
                eprintln!("database is up to date");
                Ok(())
            }
            Command::Org(OrgCommand::Create { name, plan }) => {
                anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
                let store = self.database.open().await?;
                let org = store.create_organization(name.trim(), plan.into()).await?;
                println!("{}", org.id.0);
                Ok(())
            }
            Command::Key(KeyCommand::Create { org }) => {
                let store = self.database.open().await?;
                let key = crate::keys::create_api_key(&store, OrgId(org)).await?;
                println!("{key}");
                Ok(())
            }
            Command::Key(KeyCommand::Revoke { key }) => {
                let store = self.database.open().await?;
                anyhow::ensure!(store.revoke_api_key(&hash_api_key(&key)).await?, "no live key matches");
                eprintln!("key revoked");
                Ok(())
            }
            Command::Openapi => {
                println!("{}", serde_json::to_string_pretty(&app::openapi())?);
                Ok(())
            }
        }
    }
}

async fn serve(database: &DatabaseArgs, args: ServeArgs) -> anyhow::Result<()> {
    let store = database.open().await?;
    let secret = server_secret(database, &store, args.worker.secret_key.clone())?;
    let manage_key = Arc::new(slotd_core::manage_token::ManageTokenKey::derive(&secret));
    let listener = TcpListener::bind(&args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    let public_url = args.public_url.unwrap_or_else(|| format!("http://{address}"));
    let public_url = public_url.trim_end_matches('/').to_owned();
    if args.demo {
        let demo = crate::demo::seed(&store).await.context("seeding demo data")?;
        println!("{}", demo.instructions(&public_url));
    }
    tracing::info!(
        %address,
        backend = ?store.backend(),
        behind_pooler = store.behind_pooler(),
        delivery_worker = !args.no_delivery_worker,
        "slotd listening"
    );
    let key_cache =
        Arc::new(crate::key_cache::KeyCache::new(std::time::Duration::from_secs(args.api_key_cache_seconds)));
    let sealer = Arc::new(crate::sealing::Sealer::derive(&secret));
    let calendars = args.worker.calendars(sealer.clone());
    let state = AppState {
        store: store.clone(),
        public_url: Arc::from(public_url),
        manage_key,
        key_cache,
        sealer: sealer.clone(),
        calendars: calendars.clone(),
        resolver: crate::ssrf::Resolver::System,
        allow_private_webhooks: args.worker.allow_private_webhooks,
        frame_ancestors: Arc::from(args.frame_ancestors.as_str()),
        rate_limits: Arc::new(crate::rate_limit::RateLimits::new(
            crate::rate_limit::RateLimit { per_second: args.rate_limit, burst: args.rate_burst },
            crate::rate_limit::RateLimit { per_second: args.token_rate_limit, burst: args.token_rate_burst },
        )),
    };
    // One shutdown signal stops both the HTTP server and the worker.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        app::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };
    let worker = match args.no_delivery_worker {
        true => None,
        false => {
            let worker = args.worker.worker(&store, sealer, calendars).await?;
            Some(tokio::spawn(worker.run(until_stopped(stopping.clone()))))
        }
    };
    let janitor = tokio::spawn(expire_idempotency_keys(store.clone()));
    app::serve(listener, app::router(state), until_stopped(stopping)).await?;
    janitor.abort();
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    store.close().await;
    Ok(())
}
