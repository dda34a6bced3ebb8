//! A real Radicale CalDAV server for tests: started from the test Python (`SLOTD_TEST_PYTHON`,
//! else the workspace's `.venv`, where `scripts/test` installs `scripts/requirements-test.txt`)
//! on a free 127.0.0.1 port, with temporary storage and a plain-text htpasswd file, and killed
//! when dropped. Without Radicale a test is skipped with a message, except under `CI=true`,
//! where it fails.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user Radicale knows, and their password.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse";

/// A running Radicale; killed (and its storage removed) on drop.
pub struct Radicale {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Radicale {
    /// Starts Radicale and waits until it answers; `None` (the test should return) when
    /// Radicale is not installed and this is not CI.
    pub fn start() -> Option<Radicale> {
        let python = std::env::var("SLOTD_TEST_PYTHON")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").to_owned());
        let installed = Command::new(&python)
            .args(["-c", "import radicale"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            let message = format!(
                "Radicale is not installed for {python}: run scripts/test (it installs \
                 scripts/requirements-test.txt into .venv) or set SLOTD_TEST_PYTHON"
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{message}");
            }
            eprintln!("skipped: {message}");
            return None;
        }

        let dir = tempfile::tempdir().expect("a temporary directory");
        let users = dir.path().join("users");
        std::fs::write(&users, format!("{USER}:{PASSWORD}\n")).expect("the users file");
        let storage = dir.path().join("collections");
        let port = free_port();
        let child = Command::new(&python)
            .args(["-m", "radicale", "--config", ""])
            .args(["--server-hosts", &format!("127.0.0.1:{port}")])
            .arg("--storage-filesystem-folder")
            .arg(&storage)
            .args(["--auth-type", "htpasswd", "--auth-htpasswd-encryption", "plain", "--auth-delay", "0"])
            .arg("--auth-htpasswd-filename")
            .arg(&users)
            .args(["--rights-type", "owner_only", "--web-type", "none", "--logging-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("Radicale starts");
        let mut radicale = Radicale { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = radicale.child.try_wait() {
                panic!("Radicale exited before answering: {status}");
            }
            assert!(Instant::now() < deadline, "Radicale did not answer on port {port} within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(radicale)
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Stops the server now (later requests find nothing listening).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("a free port");
    listener.local_addr().expect("its address").port()
}
