//! Webhook endpoint management over the real API on both backends: secrets shown once and
//! stored sealed, plan limits, duplicate URLs, the event filter, and the SSRF guard (names are
//! resolved by the tests' static table: nothing outside loopback is ever contacted).

#[macro_use]
mod common;

use common::{Backend, TestApp, expect_problem, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use slotd_store::Plan;

on_both_backends!(
    an_endpoint_shows_its_secret_once_and_stores_it_sealed,
    plan_limits_and_duplicate_urls_are_refused,
    bad_targets_and_filters_answer_422_naming_the_field_and_write_nothing,
    another_organizations_endpoints_answer_404,
);

async fn an_endpoint_shows_its_secret_once_and_stores_it_sealed(app: &TestApp) {
    let created = app
        .expect(
            Method::POST,
            "/v1/webhooks",
            Some(json!({ "url": "https://hooks.example.com/slotd", "description": "CRM",
                "events": ["booking.confirmed", "booking.cancelled", "booking.confirmed"] })),
            201,
        )
        .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["events"], json!(["booking.confirmed", "booking.cancelled"]), "duplicates are dropped");
    assert_eq!(created["enabled"], true);
    let id = created["id"].as_str().unwrap();
    let read = app.expect(Method::GET, &format!("/v1/webhooks/{id}"), None, 200).await;
    assert!(read.get("secret").is_none(), "the secret is shown only at creation: {read}");
    let listed = app.expect(Method::GET, "/v1/webhooks", None, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(listed["data"][0].get("secret").is_none());

    // Sealed at rest: the database holds no trace of the secret.
    let dump = app.db.store.sealed_webhook_secrets_for_test().await;
    assert_eq!(dump.len(), 1);
    assert!(!dump[0].contains(&secret) && !dump[0].contains(&secret["whsec_".len()..]));

    let rotated = app.expect(Method::POST, &format!("/v1/webhooks/{id}/rotate-secret"), None, 200).await;
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);

    let patched = app
        .expect(Method::PATCH, &format!("/v1/webhooks/{id}"), Some(json!({ "enabled": false, "events": [] })), 200)
        .await;
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["events"], json!([]));
    assert_eq!(patched["url"], "https://hooks.example.com/slotd");
    app.expect(Method::DELETE, &format!("/v1/webhooks/{id}"), None, 204).await;
    let gone = app.call(Method::GET, &format!("/v1/webhooks/{id}"), None).await;
    expect_problem(gone, 404, "not_found", None).await;
}

async fn plan_limits_and_duplicate_urls_are_refused(app: &TestApp) {
    // The test organization is on the free plan: two endpoints.
    for url in ["https://hooks.example.com/a", "https://hooks.example.com/b"] {
        app.expect(Method::POST, "/v1/webhooks", Some(json!({ "url": url })), 201).await;
    }
    let third = app.call(Method::POST, "/v1/webhooks", Some(json!({ "url": "https://crm.example.com/c" }))).await;
    let problem = expect_problem(third, 403, "plan_limit", None).await;
    assert_eq!(problem["limit"], 2);

    let growth = app.db.store.create_organization("Big", Plan::Growth).await.unwrap().id;
    let key = slotd::keys::create_api_key(&app.db.store, growth).await.unwrap();
    let create = |url: &str| {
        let body = json!({ "url": url });
        app.call_as(&key, Method::POST, "/v1/webhooks", Some(body))
    };
    for i in 0..12 {
        let response = create(&format!("https://hooks.example.com/{i}")).await;
        assert_eq!(response.status(), 201, "growth has no limit");
    }
    let duplicate = create("https://hooks.example.com/3").await;
    expect_problem(duplicate, 409, "conflict", None).await;
}

async fn bad_targets_and_filters_answer_422_naming_the_field_and_write_nothing(app: &TestApp) {
    let refused = [
        json!({ "url": "not a url" }),
        json!({ "url": "ftp://hooks.example.com/x" }),
        json!({ "url": "https://user:pw@hooks.example.com/x" }),
        json!({ "url": "http://127.0.0.1:8080/hook" }),
        json!({ "url": "http://[::1]/hook" }),
        json!({ "url": "http://10.0.0.8/hook" }),
        json!({ "url": "http://172.16.5.4/hook" }),
        json!({ "url": "http://192.168.1.1/hook" }),
        json!({ "url": "http://169.254.169.254/latest/meta-data" }),
        json!({ "url": "http://0.0.0.0/hook" }),
        json!({ "url": "https://loopback.example.com/hook" }),
        json!({ "url": "https://internal.example.com/hook" }),
        json!({ "url": "https://metadata.example.com/hook" }),
        json!({ "url": "https://unknown-name.example.com/hook" }),
    ];
    for body in refused {
        let response = app.call(Method::POST, "/v1/webhooks", Some(body.clone())).await;
        let problem = expect_problem(response, 422, "validation_failed", Some("/url")).await;
        assert!(problem["errors"][0]["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}: {problem}");
    }
    let response = app
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(json!({ "url": "https://hooks.example.com/x", "events": ["booking.exploded"] })),
        )
        .await;
    expect_problem(response, 422, "validation_failed", Some("/events/0")).await;
    let long = "x".repeat(2_000);
    let response = app
        .call(Method::POST, "/v1/webhooks", Some(json!({ "url": "https://hooks.example.com/x", "description": long })))
        .await;
    expect_problem(response, 422, "validation_failed", Some("/description")).await;
    let listed: Value = app.expect(Method::GET, "/v1/webhooks", None, 200).await;
    assert!(listed["data"].as_array().unwrap().is_empty(), "nothing was written");
}

async fn another_organizations_endpoints_answer_404(app: &TestApp) {
    let created =
        app.expect(Method::POST, "/v1/webhooks", Some(json!({ "url": "https://hooks.example.com/mine" })), 201).await;
    let id = created["id"].as_str().unwrap();
    let theirs = app.other_org_key().await;
    for (method, path) in [
        (Method::GET, format!("/v1/webhooks/{id}")),
        (Method::PATCH, format!("/v1/webhooks/{id}")),
        (Method::DELETE, format!("/v1/webhooks/{id}")),
        (Method::POST, format!("/v1/webhooks/{id}/rotate-secret")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({ "enabled": false }));
        let response = app.call_as(&theirs, method.clone(), &path, body).await;
        expect_problem(response, 404, "not_found", None).await;
    }
    let still = app.expect(Method::GET, &format!("/v1/webhooks/{id}"), None, 200).await;
    assert_eq!(still["enabled"], true);
}

#[tokio::test]
async fn with_private_targets_allowed_names_are_not_resolved_when_stored() {
    // The resolver knows no names at all: a lookup would fail the check.
    let resolver = slotd::ssrf::Resolver::Static(std::sync::Arc::new(std::collections::HashMap::new()));
    let checked = slotd::ssrf::check("http://localhost:9000/hook", &resolver, true).await.unwrap();
    assert!(checked.addresses.is_empty());
    let checked = slotd::ssrf::check("http://127.0.0.1:9000/hook", &resolver, true).await.unwrap();
    assert_eq!(checked.addresses, ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
    let refused = slotd::ssrf::check("http://localhost:9000/hook", &resolver, false).await;
    assert!(refused.is_err(), "without the flag the name must resolve to a public address");
}
