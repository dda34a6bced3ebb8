//! Hosted pages: HTML for people, served beside the JSON API. Today that is the attendee's
//! manage page, `/manage/{token}` ([`manage`]): server-rendered with maud (autoescaped, no
//! JavaScript), in the attendee's own time zone, with every outcome in words.
//!
//! Every response on a path that carries a manage token (`/manage/…`, `/v1/manage/…`, `/b/…`)
//! gets [`PageHeaders`]: no caching, no referrer (the token is a credential in the URL), and a
//! Content-Security-Policy with no external source at all, whose `frame-ancestors` is the
//! operator's `--frame-ancestors` (who may embed the page in an iframe; `'none'` by default).

mod layout;
pub mod manage;
pub mod oauth;
mod words;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The headers of every token-carrying response, built once per router.
#[derive(Clone, Debug)]
pub struct PageHeaders {
    csp: HeaderValue,
}

impl PageHeaders {
    /// Headers for pages that may be framed by `frame_ancestors` (a checked CSP source list,
    /// see [`parse_frame_ancestors`]; anything unusable falls back to `'none'`).
    pub fn new(frame_ancestors: &str) -> PageHeaders {
        let policy = |ancestors: &str| {
            format!(
                "default-src 'none'; style-src '{}'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}",
                layout::style_hash()
            )
        };
        let ancestors = parse_frame_ancestors(frame_ancestors).unwrap_or_else(|_| "'none'".to_owned());
        let csp = HeaderValue::from_str(&policy(&ancestors))
            .unwrap_or_else(|_| HeaderValue::from_str(&policy("'none'")).expect("a fixed policy is a header value"));
        PageHeaders { csp }
    }

    /// Runs the request and adds the headers when its path carries a manage token.
    pub async fn apply(self, req: Request, next: Next) -> Response {
        let path = req.uri().path();
        let token_path = crate::app::is_token_path(path) || path.starts_with("/oauth/");
        let mut response = next.run(req).await;
        if token_path {
            let unavailable = response.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE;
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_SECURITY_POLICY, self.csp);
            headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            // A page that could not be served says when to try again, like the API's 503s.
            if unavailable {
                headers
                    .entry(header::RETRY_AFTER)
                    .or_insert(HeaderValue::from(crate::error::UNAVAILABLE_RETRY_AFTER_SECS));
            }
        }
        response
    }
}

/// Checks a `--frame-ancestors` value: `'none'`, or space-separated `'self'`, schemes
/// (`https:`) and origins (`https://shop.example.com`, `https://*.example.com:8443`). `self`
/// and `none` without quotes (as a shell leaves them) are quoted. Answers the normalised list.
pub fn parse_frame_ancestors(value: &str) -> Result<String, String> {
    let mut sources = Vec::new();
    for source in value.split_whitespace() {
        let source = match source {
            "self" | "'self'" => "'self'",
            "none" | "'none'" => "'none'",
            other => {
                let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~:/*[]%".contains(c);
                if !other.chars().all(allowed) || !other.contains(|c: char| c.is_ascii_alphanumeric()) {
                    return Err(format!(
                        "{other:?} is not a frame-ancestors source: use 'self', 'none', a scheme (https:) \
                         or an origin (https://shop.example.com)"
                    ));
                }
                other
            }
        };
        sources.push(source);
    }
    match sources.as_slice() {
        [] => Err("give 'none', 'self' or the origins allowed to embed the pages".to_owned()),
        [_, _, ..] if sources.contains(&"'none'") => Err("'none' cannot be combined with other sources".to_owned()),
        _ => Ok(sources.join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_frame_ancestors;

    #[test]
    fn frame_ancestors_accepts_csp_sources_and_refuses_anything_that_could_break_the_header() {
        assert_eq!(parse_frame_ancestors("'none'").unwrap(), "'none'");
        assert_eq!(parse_frame_ancestors("self").unwrap(), "'self'");
        assert_eq!(
            parse_frame_ancestors("  'self'   https://shop.example.com https://*.example.org:8443 ").unwrap(),
            "'self' https://shop.example.com https://*.example.org:8443"
        );
        for bad in [
            "",
            "   ",
            "'none' 'self'",
            "https://a.example; script-src *",
            "https://a.example,b",
            "'unsafe-inline'",
            "a\"b",
            "*",
        ] {
            assert!(parse_frame_ancestors(bad).is_err(), "{bad:?}");
        }
    }
}
