//! `/docs`: a plain server-rendered page listing every operation of the OpenAPI document, so
//! the reference works offline and without JavaScript. The full schema is at `/openapi.json`.
//! Rendered with maud, which escapes every value.

use maud::{DOCTYPE, PreEscaped, html};
use utoipa::openapi::OpenApi;

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}\
td,th{padding:.3rem .6rem;text-align:left;border-bottom:1px solid #ddd}table{border-collapse:collapse}";

/// The HTML page for `openapi`.
pub fn render(openapi: &OpenApi) -> String {
    let mut rows = Vec::new();
    for (path, item) in &openapi.paths.paths {
        let operations = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let summary = operation.summary.as_deref().or(operation.description.as_deref()).unwrap_or("");
            let mut statuses: Vec<&str> = operation.responses.responses.keys().map(String::as_str).collect();
            statuses.sort();
            rows.push((method, path.as_str(), summary, statuses.join(" ")));
        }
    }
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "slotd API" }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { (openapi.info.title) " " (openapi.info.version) }
                p { (openapi.info.description.as_deref().unwrap_or("")) }
                p {
                    "Every " code { "/v1" } " route needs " code { "Authorization: Bearer sk_live_…" }
                    ". Errors are " code { "application/problem+json" } " (RFC 9457). Machine-readable schema: "
                    a href="/openapi.json" { "/openapi.json" } " (OpenAPI 3.1)."
                }
                table {
                    thead { tr { th { "Method" } th { "Path" } th { "What it does" } th { "Statuses" } } }
                    tbody {
                        @for (method, path, summary, statuses) in &rows {
                            tr { td { code { (method) } } td { code { (path) } } td { (summary) } td { (statuses) } }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}
