//! Test support: a real slotd router on a loopback port over a fresh database, and a client
//! that speaks to it with an API key.

#![allow(dead_code)]

pub mod pgbouncer;
pub mod process;
pub mod receiver;
pub mod verify;

use std::sync::Arc;

use reqwest::{Client, Method, Response};
use serde_json::Value;
use slotd::app::{self, AppState};
use slotd::rate_limit::{RateLimit, RateLimits};
use slotd_store::testing::TestDatabase;
use slotd_store::{OrgId, Plan};
use tokio::sync::oneshot;

/// Declares each listed `async fn name(app: &TestApp)` as two tests, `sqlite::name` and
/// `postgres::name`, each on its own app and fresh database. The app comes from `spawn_app`, or
/// from the test file's own `async fn(Backend) -> TestApp` given as `spawn = name;` first.
#[allow(unused_macros)] // not every test file runs on both backends
macro_rules! on_both_backends {
    (spawn = $spawn:ident; $($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() {
                let app = super::$spawn(super::Backend::Sqlite).await;
                super::$name(&app).await;
                app.stop().await;
            } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() {
                let app = super::$spawn(super::Backend::Postgres).await;
                super::$name(&app).await;
                app.stop().await;
            } )*
        }
    };
    ($($name:ident),* $(,)?) => {
        on_both_backends!(spawn = spawn_app; $($name),*);
    };
}

/// A running app: its address, a key for one organization, and its database.
pub struct TestApp {
    pub base: String,
    pub key: String,
    pub org: OrgId,
    pub db: TestDatabase,
    pub client: Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// Which database the app runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The names the tests' resolver knows: no test ever looks up a real name or connects to a
/// non-loopback address (these addresses are only classified, never contacted).
pub fn test_hosts() -> std::collections::HashMap<String, Vec<std::net::IpAddr>> {
    let mut hosts = std::collections::HashMap::new();
    for (name, ip) in [
        ("hooks.example.com", "93.184.216.34"),
        ("crm.example.com", "93.184.216.35"),
        ("loopback.example.com", "127.0.0.1"),
        ("internal.example.com", "10.1.2.3"),
        ("metadata.example.com", "169.254.169.254"),
    ] {
        hosts.insert(name.to_owned(), vec![ip.parse().unwrap()]);
    }
    hosts
}

/// Starts the app on port 0 over a fresh database, with one organization and its key.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, AppOptions::default()).await
}

/// What an app runs with beyond the defaults.
#[derive(Default)]
pub struct AppOptions {
    /// `--allow-private-webhooks` for the API (endpoint creation).
    pub allow_private_webhooks: bool,
    /// A delivery worker in the app's process, with its own guard setting and resolver.
    pub worker: Option<WorkerOptions>,
    /// The organization's plan (default free).
    pub plan: Option<Plan>,
    /// `--frame-ancestors` (default `'none'`).
    pub frame_ancestors: Option<String>,
    /// Rate limits per API key and per address on the token routes. Default: none, so the load
    /// and concurrency tests measure the API, not the limiter (the rate-limit tests set them).
    pub rate_limits: Option<(RateLimit, RateLimit)>,
    /// Calendar settings (`--calendar-cache-seconds`, Google's bases and client). Default:
    /// slotd's defaults; calendar targets are loopback servers, so the calendar tests also set
    /// `allow_private_webhooks`.
    pub calendars: Option<slotd::calendars::CalendarSettings>,
}

/// The delivery worker of a test app.
pub struct WorkerOptions {
    pub config: slotd::delivery::WorkerConfig,
    pub allow_private: bool,
    pub resolver: slotd::ssrf::Resolver,
}

impl WorkerOptions {
    /// A worker for loopback receivers: private targets allowed, a 2 s time limit, a retry
    /// schedule of `schedule`, and a short poll.
    pub fn loopback(schedule: &str) -> WorkerOptions {
        WorkerOptions {
            config: slotd::delivery::WorkerConfig {
                timeout: std::time::Duration::from_secs(2),
                schedule: schedule.parse().unwrap(),
                poll_interval: std::time::Duration::from_millis(10),
                ..Default::default()
            },
            allow_private: true,
            resolver: slotd::ssrf::Resolver::Static(Arc::new(test_hosts())),
        }
    }
}

/// Starts the app with `options`.
pub async fn spawn_app_with(backend: Backend, options: AppOptions) -> TestApp {
    let db = match backend {
        Backend::Sqlite => TestDatabase::sqlite().await,
        Backend::Postgres => TestDatabase::postgres().await,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sealer = Arc::new(slotd::sealing::Sealer::derive(b"test secret of at least 32 chars!"));
    let calendars = Arc::new(slotd::calendars::Calendars::new(
        options.calendars.unwrap_or_default(),
        slotd::ssrf::Resolver::Static(Arc::new(test_hosts())),
        options.allow_private_webhooks,
        sealer.clone(),
    ));
    let state = AppState {
        store: db.store.clone(),
        public_url: Arc::from(base.as_str()),
        manage_key: Arc::new(slotd_core::manage_token::ManageTokenKey::derive(b"test secret of at least 32 chars!")),
        // The tests revoke keys and expect the next request to see it.
        key_cache: Arc::new(slotd::key_cache::KeyCache::new(std::time::Duration::ZERO)),
        sealer,
        calendars: calendars.clone(),
        resolver: slotd::ssrf::Resolver::Static(Arc::new(test_hosts())),
        allow_private_webhooks: options.allow_private_webhooks,
        frame_ancestors: Arc::from(options.frame_ancestors.as_deref().unwrap_or("'none'")),
        rate_limits: Arc::new(match options.rate_limits {
            Some((api_keys, token_routes)) => RateLimits::new(api_keys, token_routes),
            None => RateLimits::off(),
        }),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
    let worker = options.worker.map(|w| {
        let sender = slotd::delivery::Sender::new(w.resolver, w.allow_private, w.config.timeout);
        let worker = slotd::delivery::Worker::new(db.store.clone(), state.sealer.clone(), sender, w.config)
            .with_calendars(calendars.clone());
        let mut stopped = worker_stopped.clone();
        tokio::spawn(worker.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        }))
    });
    let server = tokio::spawn(async move {
        app::serve(listener, app::router(state), async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        let _ = stop_worker.send(true);
        if let Some(worker) = worker {
            worker.await.unwrap();
        }
    });
    let org = db.store.create_organization("Test org", options.plan.unwrap_or(Plan::Free)).await.unwrap().id;
    let key = slotd::keys::create_api_key(&db.store, org).await.unwrap();
    TestApp { base, key, org, db, client: Client::new(), stop: Some(stop), server: Some(server) }
}

impl TestApp {
    /// A second organization's key on the same app.
    pub async fn other_org_key(&self) -> String {
        let org = self.db.store.create_organization("Other org", Plan::Free).await.unwrap().id;
        slotd::keys::create_api_key(&self.db.store, org).await.unwrap()
    }

    /// Sends a request with this app's key; `body` is sent as JSON when given.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.call_as(&self.key, method, path, body).await
    }

    /// Sends a request with the given key.
    pub async fn call_as(&self, key: &str, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// Sends a raw body with a JSON content type.
    pub async fn call_raw(&self, method: Method, path: &str, body: impl Into<reqwest::Body>) -> Response {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// `call` expecting `status`; answers the JSON body (or Null for an empty body).
    pub async fn expect(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let response = self.call(method.clone(), path, body).await;
        read(response, status, &format!("{method} {path}")).await
    }

    /// Creates a host with Monday–Friday 09:00–17:00 in `zone`; answers its id.
    pub async fn office_host(&self, name: &str, zone: &str) -> String {
        let host = self
            .expect(
                Method::POST,
                "/v1/hosts",
                Some(serde_json::json!({
                    "name": name, "email": format!("{}@example.com", name.to_lowercase()), "time_zone": zone,
                    "availability": { "weekly": {
                        "monday": [{"start": "09:00", "end": "17:00"}],
                        "tuesday": [{"start": "09:00", "end": "17:00"}],
                        "wednesday": [{"start": "09:00", "end": "17:00"}],
                        "thursday": [{"start": "09:00", "end": "17:00"}],
                        "friday": [{"start": "09:00", "end": "17:00"}] } }
                })),
                201,
            )
            .await;
        host["id"].as_str().unwrap().to_owned()
    }

    /// Stops the server and removes the database.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
        self.db.cleanup().await;
    }
}

/// Reads a response that must have `status`; answers its JSON (Null when empty).
pub async fn read(response: Response, status: u16, what: &str) -> Value {
    let got = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{what}: {text}");
    if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
}

/// Asserts a problem+json answer with `status`, `code`, and (when given) an error at `pointer`.
pub async fn expect_problem(response: Response, status: u16, code: &str, pointer: Option<&str>) -> Value {
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
    let body = read(response, status, code).await;
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], format!("urn:slotd:problem:{code}"), "{body}");
    assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
    if let Some(pointer) = pointer {
        let errors = body["errors"].as_array().unwrap_or_else(|| panic!("no errors in {body}"));
        assert!(
            errors.iter().any(|e| e["pointer"] == pointer && e["detail"].as_str().is_some_and(|d| !d.is_empty())),
            "expected an error at {pointer}: {body}"
        );
    }
    body
}
