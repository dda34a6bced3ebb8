//! `slotd` as child processes for the multi-process tests (its log kept for failure messages).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_slotd");

/// A `slotd` child process whose log is kept (for failure messages); killed on drop.
pub struct Process {
    name: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `slotd --log-format json --database-url <url> <args…>` and waits (up to 60 s) for a
    /// log line containing `ready`, which it returns.
    pub fn start(name: &str, database_url: &str, args: &[&str], ready: &'static str) -> (Process, String) {
        let mut child = Command::new(BIN)
            .args(["--log-format", "json", "--database-url", database_url])
            .args(args)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start slotd");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let keep = log.clone();
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains(ready) {
                    let _ = tx.send(line.clone());
                }
                keep.lock().unwrap().push(line);
            }
        });
        let process = Process { name: name.to_owned(), child, log };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => (process, line),
            Err(_) => panic!("{name} did not log {ready:?} within 60 s; log:\n{}", process.log_text()),
        }
    }

    pub fn log_text(&self) -> String {
        format!("--- {} ---\n{}", self.name, self.log.lock().unwrap().join("\n"))
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `slotd serve --listen 127.0.0.1:0 --rate-limit 0 --token-rate-limit 0 <args…>` and
/// answers it with its base URL. The multi-process tests are load tests: no rate limits.
pub fn serve(name: &str, database_url: &str, args: &[&str]) -> (Process, String) {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--rate-limit", "0", "--token-rate-limit", "0"];
    all.extend_from_slice(args);
    let (process, line) = Process::start(name, database_url, &all, "slotd listening");
    let log: Value = serde_json::from_str(&line).expect("a JSON log line");
    let address = log["fields"]["address"].as_str().expect("address field");
    (process, format!("http://{address}"))
}
