//! A real PgBouncer (Debian's package, `/usr/sbin/pgbouncer`) of a test's own, in front of the
//! test PostgreSQL, in `pool_mode = transaction`: started on a free loopback port with a
//! temporary ini, stopped when dropped.
//!
//! Its pool is small and hands server connections out round-robin, so consecutive transactions
//! of one client land on different server connections, and many clients share few of them: any
//! statement or setting that relies on the session shows up as an error or a wrong answer.
//! PgBouncer refuses to run as root: when the tests run as root it switches to `postgres` itself
//! (`-u postgres`; its temporary directory handed to that user). Without PgBouncer installed,
//! [`PgBouncer::start`] says so and answers `None`, except with `CI=true`, where that is a
//! failure (scripts/test installs it).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/sbin/pgbouncer";

/// A running PgBouncer in transaction mode (our child process itself); killed on drop.
pub struct PgBouncer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

/// Server connections per database and user: far fewer than the clients of a multi-process test.
pub const POOL_SIZE: u32 = 6;

impl PgBouncer {
    /// Starts PgBouncer in front of the PostgreSQL of `SLOTD_TEST_DATABASE_URL` (default
    /// 127.0.0.1:5432, user postgres, trust), or `None` when it is not installed (outside CI).
    pub fn start() -> Option<PgBouncer> {
        if !std::path::Path::new(BINARY).is_file() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{BINARY} is missing: PgBouncer is required in CI (scripts/test installs it)");
            }
            eprintln!("skipping: {BINARY} is missing (apt-get install -y pgbouncer)");
            return None;
        }
        let (host, port) = upstream();
        let dir = tempfile::Builder::new().prefix("slotd-pgbouncer-").tempdir().expect("temporary directory");
        let listen_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let ini = format!(
            "[databases]\n\
             * = host={host} port={port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {listen_port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/users.txt\n\
             pool_mode = transaction\n\
             default_pool_size = {POOL_SIZE}\n\
             max_client_conn = 500\n\
             server_round_robin = 1\n\
             ignore_startup_parameters = extra_float_digits\n\
             logfile = {dir}/pgbouncer.log\n",
            dir = dir.path().display(),
        );
        std::fs::write(dir.path().join("pgbouncer.ini"), ini).expect("write pgbouncer.ini");
        std::fs::write(dir.path().join("users.txt"), "\"postgres\" \"\"\n").expect("write users.txt");
        let as_root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        let mut command = if as_root {
            let id = |flag: &str| -> u32 {
                let out = Command::new("id").args([flag, "postgres"]).output().expect("id postgres");
                assert!(out.status.success(), "no postgres user to run PgBouncer as (the test runs as root)");
                String::from_utf8_lossy(&out.stdout).trim().parse().expect("a numeric id")
            };
            let (uid, gid) = (id("-u"), id("-g"));
            for path in [dir.path().to_owned(), dir.path().join("pgbouncer.ini"), dir.path().join("users.txt")] {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown to postgres");
            }
            let mut c = Command::new(BINARY);
            c.args(["-u", "postgres"]);
            c
        } else {
            Command::new(BINARY)
        };
        let child = command
            .arg(dir.path().join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgbouncer");
        let mut bouncer = PgBouncer { child, dir, port: listen_port };
        bouncer.wait_until_listening();
        Some(bouncer)
    }

    /// The URL of `database` through PgBouncer, as slotd is told to use it behind a
    /// transaction-mode pooler (`statement-cache-capacity=0`).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}?statement-cache-capacity=0", self.port)
    }

    /// Its log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("pgbouncer.log")
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pgbouncer exited with {status}; log:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "pgbouncer did not listen within 20 s; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Host and port of the test PostgreSQL (from `SLOTD_TEST_DATABASE_URL`).
fn upstream() -> (String, u16) {
    let url = std::env::var("SLOTD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| slotd_store::testing::DEFAULT_TEST_DATABASE_URL.to_owned());
    let authority = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5432"));
    (host.to_owned(), port.parse().expect("a numeric port in SLOTD_TEST_DATABASE_URL"))
}

/// The database name at the end of a PostgreSQL URL (before any `?`).
pub fn database_name(url: &str) -> &str {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().expect("a database name")
}
