//! The `slotd` binary as an operator uses it: help texts, the stdout contracts scripts rely on
//! (`org create` prints only the id, `key create` only the key, `serve --demo` its lines), and a
//! graceful stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_slotd");

fn slotd(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).env_remove("RUST_LOG").output().expect("run slotd")
}

fn stdout(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn every_flag_is_documented_with_its_environment_variable() {
    let cases: [(&[&str], &[&str]); 7] = [
        (
            &["--help"],
            &[
                "SLOTD_DATABASE_URL",
                "SLOTD_DATABASE_DIRECT_URL",
                "statement-cache-capacity=0",
                "SLOTD_DATA_DIR",
                "SLOTD_LOG_FORMAT",
                "serve",
                "worker",
                "migrate",
                "org",
                "key",
                "openapi",
            ],
        ),
        (
            &["serve", "--help"],
            &[
                "SLOTD_LISTEN",
                "SLOTD_PUBLIC_URL",
                "SLOTD_SECRET_KEY",
                "SLOTD_API_KEY_CACHE_SECONDS",
                "SLOTD_ALLOW_PRIVATE_WEBHOOKS",
                "SLOTD_DEMO",
                "SLOTD_NO_DELIVERY_WORKER",
                "SLOTD_FRAME_ANCESTORS",
                "SLOTD_WEBHOOK_TIMEOUT",
                "SLOTD_WEBHOOK_RETRY_SCHEDULE",
                "SLOTD_DATABASE_URL",
                "SLOTD_DATABASE_DIRECT_URL",
                "SLOTD_DATA_DIR",
            ],
        ),
        (
            &["worker", "--help"],
            &[
                "SLOTD_SECRET_KEY",
                "SLOTD_ALLOW_PRIVATE_WEBHOOKS",
                "SLOTD_WEBHOOK_TIMEOUT",
                "SLOTD_WEBHOOK_RETRY_SCHEDULE",
                "SLOTD_WEBHOOK_DISABLE_AFTER",
                "SLOTD_WEBHOOK_CONCURRENCY",
                "SLOTD_WEBHOOK_ENDPOINT_CONCURRENCY",
                "SLOTD_WEBHOOK_POLL_INTERVAL",
                "SLOTD_DATABASE_URL",
                "SLOTD_DATABASE_DIRECT_URL",
            ],
        ),
        (&["migrate", "--help"], &["SLOTD_DATABASE_URL", "SLOTD_DATABASE_DIRECT_URL"]),
        (&["org", "create", "--help"], &["SLOTD_ORG_NAME", "SLOTD_ORG_PLAN", "free", "starter", "growth"]),
        (&["key", "create", "--help"], &["SLOTD_ORG"]),
        (&["key", "revoke", "--help"], &["SLOTD_KEY"]),
    ];
    for (args, expected) in cases {
        let help = stdout(&slotd(args));
        for word in expected {
            assert!(help.contains(word), "`slotd {}` should mention {word}:\n{help}", args.join(" "));
        }
    }
}

#[test]
fn serve_refuses_a_frame_ancestors_value_that_is_not_a_csp_source_list() {
    for bad in ["https://shop.example.com; script-src *", "'none' https://shop.example.com", ""] {
        let output = slotd(&["--data-dir", "/nonexistent/slotd-cli-test", "serve", "--frame-ancestors", bad]);
        assert_eq!(output.status.code(), Some(2), "{bad:?} is a usage error");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--frame-ancestors"), "{bad:?}: {stderr}");
    }
}

#[test]
fn a_direct_database_url_beside_the_embedded_sqlite_database_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    // Never contacted: the combination is refused before any connection.
    let direct = "postgres://postgres@127.0.0.1:5432/never_used";
    for args in [
        vec!["--data-dir", data, "--database-direct-url", direct, "migrate"],
        vec!["--database-url", "sqlite://never.db", "--database-direct-url", direct, "migrate"],
        vec![
            "--database-url",
            "postgres://postgres@127.0.0.1:5432/x",
            "--database-direct-url",
            "sqlite://y.db",
            "migrate",
        ],
    ] {
        let output = Command::new(BIN).args(&args).current_dir(dir.path()).env_remove("RUST_LOG").output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--database-direct-url"), "{args:?}: {stderr}");
    }
    let files: Vec<_> = walk(dir.path()).into_iter().filter(|path| path.is_file()).collect();
    assert!(files.is_empty(), "no database file was made: {files:?}");
}

/// Every path under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(walk(&path));
        }
        all.push(path);
    }
    all
}

#[test]
fn org_and_key_commands_print_only_what_scripts_need_and_a_revoked_key_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let org = stdout(&slotd(&["--data-dir", data, "org", "create", "--name", "Acme", "--plan", "growth"]));
    let org = org.trim();
    uuid::Uuid::parse_str(org).expect("org create prints only the id");
    let key = stdout(&slotd(&["--data-dir", data, "key", "create", "--org", org]));
    let key = key.trim();
    assert!(key.starts_with("sk_live_") && !key.contains(char::is_whitespace), "{key}");
    assert!(slotd(&["--data-dir", data, "key", "revoke", "--key", key]).status.success());
    assert!(!slotd(&["--data-dir", data, "key", "revoke", "--key", key]).status.success(), "already revoked");
    let unknown_org = slotd(&["--data-dir", data, "key", "create", "--org", &uuid::Uuid::now_v7().to_string()]);
    assert!(!unknown_org.status.success());
}

#[test]
fn the_openapi_command_prints_the_document() {
    let spec: serde_json::Value = serde_json::from_str(&stdout(&slotd(&["openapi"]))).unwrap();
    assert!(spec["paths"]["/v1/slots"]["get"].is_object());
}

#[cfg(unix)]
#[test]
fn serve_demo_prints_a_working_curl_line_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["--data-dir", dir.path().to_str().unwrap(), "serve", "--demo", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let key_line = lines.next().unwrap().unwrap();
    let event_type_line = lines.next().unwrap().unwrap();
    assert!(key_line.starts_with("API key: sk_live_"), "{key_line}");
    assert!(event_type_line.starts_with("Event type: "), "{event_type_line}");
    let curl = loop {
        let line = lines.next().expect("a curl line").unwrap();
        if line.trim_start().starts_with("curl ") {
            break line;
        }
    };
    let key = key_line.trim_start_matches("API key: ");
    assert!(curl.contains(key) && curl.contains(event_type_line.trim_start_matches("Event type: ")));
    let url = curl.split('\'').rev().nth(1).expect("quoted URL").to_owned();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body: serde_json::Value = runtime.block_on(async {
        let response = reqwest::Client::new().get(&url).bearer_auth(key).send().await.expect("the printed URL answers");
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    });
    assert!(!body["slots"].as_array().unwrap().is_empty(), "the demo host has office hours this week: {body}");

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "slotd did not stop within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful stop exits 0, got {status}");
}
