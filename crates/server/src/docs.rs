//! `/docs`: a plain server-rendered page listing every operation of the OpenAPI document, so
//! the reference works offline and without JavaScript. The full schema is at `/openapi.json`.

use utoipa::openapi::OpenApi;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The HTML page for `openapi`.
pub fn render(openapi: &OpenApi) -> String {
    let mut rows = String::new();
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
            let mut statuses: Vec<&String> = operation.responses.responses.keys().collect();
            statuses.sort();
            rows.push_str(&format!(
                "<tr><td><code>{method}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                escape(path),
                escape(summary),
                statuses.iter().map(|s| escape(s)).collect::<Vec<_>>().join(" ")
            ));
        }
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>slotd API</title><style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}\
         td,th{{padding:.3rem .6rem;text-align:left;border-bottom:1px solid #ddd}}table{{border-collapse:collapse}}</style>\
         </head><body><h1>{title} {version}</h1><p>{description}</p>\
         <p>Every <code>/v1</code> route needs <code>Authorization: Bearer sk_live_…</code>. Errors are \
         <code>application/problem+json</code> (RFC 9457). Machine-readable schema: \
         <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI {openapi_version}).</p>\
         <table><thead><tr><th>Method</th><th>Path</th><th>What it does</th><th>Statuses</th></tr></thead>\
         <tbody>{rows}</tbody></table></body></html>",
        title = escape(&openapi.info.title),
        version = escape(&openapi.info.version),
        description = escape(openapi.info.description.as_deref().unwrap_or("")),
        openapi_version = "3.1",
    )
}
