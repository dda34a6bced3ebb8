//! The official `standardwebhooks` Python library (installed into `.venv` by scripts/test, or
//! `SLOTD_TEST_PYTHON`) as an independent verifier of delivered signatures.

use std::collections::HashMap;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::receiver::Received;

/// The Python with the test peers installed.
pub fn python() -> String {
    std::env::var("SLOTD_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").to_owned())
}

/// Verifies each delivery with `standardwebhooks.Webhook(secret).verify(body, headers)` for each
/// secret; answers, per delivery, per secret, "ok" or the library's error.
pub async fn verify_with_library(deliveries: &[Received], secrets: &[&str]) -> Vec<Vec<String>> {
    const VERIFIER: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
cases = json.load(sys.stdin)
out = []
for case in cases:
    row = []
    for secret in case["secrets"]:
        try:
            Webhook(secret).verify(case["body"], case["headers"])
            row.append("ok")
        except Exception as e:
            row.append(type(e).__name__ + ": " + str(e))
    out.append(row)
print(json.dumps(out))
"#;
    let cases: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            let headers: HashMap<&str, &str> = d.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            json!({ "body": d.body, "headers": headers, "secrets": secrets })
        })
        .collect();
    let python = python();
    let mut child = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(VERIFIER)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} ({e}): run scripts/test (it installs standardwebhooks into .venv) or set SLOTD_TEST_PYTHON")
        });
    child.stdin.take().unwrap().write_all(serde_json::to_string(&cases).unwrap().as_bytes()).await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "the standardwebhooks verifier failed (run scripts/test if the module is missing): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}
