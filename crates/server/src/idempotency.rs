//! `Idempotency-Key` on creating and lifecycle POSTs: the same key with the same request
//! answers the first answer again (from any slotd process, for 24 hours); the same key with a
//! different request is a 422. The answer is stored in the change's own transaction, so a
//! retry can never make a second booking, and a request that failed stored nothing (its retry
//! simply runs again, which is safe: a failure changed nothing).

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use slotd_store::{IdempotentRequest, OrgId, Store};

use crate::error::ApiError;

/// The header.
pub const HEADER: &str = "idempotency-key";

/// The idempotency key of one request, with the hash of what it asked.
#[derive(Clone, Debug)]
pub struct Idempotency {
    key: String,
    request_hash: String,
}

/// JSON with object keys sorted at every level, so key order does not make two bodies differ.
fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

impl Idempotency {
    /// The request's key, if it sent one. `route` names the operation (method and path) so a key
    /// reused on another route counts as a different request.
    pub fn from_headers(headers: &HeaderMap, route: &str, body: &Value) -> Result<Option<Idempotency>, ApiError> {
        let Some(raw) = headers.get(HEADER) else { return Ok(None) };
        let key = raw
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| ApiError::Malformed("Idempotency-Key must be 1–255 visible ASCII characters".to_owned()))?;
        let mut hasher = Sha256::new();
        hasher.update(route.as_bytes());
        hasher.update([0]);
        hasher.update(canonical(body).as_bytes());
        let request_hash = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Some(Idempotency { key: key.to_owned(), request_hash }))
    }

    /// The same key in its own namespace (attendees' keys never meet the operator's).
    pub fn scoped(self, scope: &str) -> Idempotency {
        Idempotency { key: format!("{scope}:{}", self.key), ..self }
    }

    /// What the store keeps with the change, answered with `status`.
    pub fn request(&self, status: StatusCode) -> IdempotentRequest {
        IdempotentRequest {
            key: self.key.clone(),
            request_hash: self.request_hash.clone(),
            status_code: status.as_u16(),
        }
    }

    /// The stored answer of an earlier request with this key: replayed when it asked the same,
    /// a 422 when it asked something else, `None` when there is none.
    pub async fn replay(&self, store: &Store, org: OrgId) -> Result<Option<Response>, ApiError> {
        let Some(answer) = store.stored_answer(org, &self.key).await? else { return Ok(None) };
        if answer.request_hash != self.request_hash {
            return Err(ApiError::field(
                "",
                "this Idempotency-Key was already used with a different request; use a new key",
            ));
        }
        let status = StatusCode::from_u16(answer.status_code)
            .map_err(|_| ApiError::Internal(format!("stored status {}", answer.status_code)))?;
        let mut response = (status, answer.body).into_response();
        let headers = response.headers_mut();
        headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        Ok(Some(response))
    }
}

/// Runs `operation` under the request's idempotency key (if any): replays a stored answer
/// instead of running; after a failure, replays the answer of a concurrent twin that won.
pub async fn run<F, Fut>(
    store: &Store,
    org: OrgId,
    idempotency: Option<Idempotency>,
    status: StatusCode,
    operation: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(Option<IdempotentRequest>) -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    let Some(idempotency) = idempotency else {
        return operation(None).await.map(|body| (status, axum::Json(body)).into_response());
    };
    if let Some(replayed) = idempotency.replay(store, org).await? {
        return Ok(replayed);
    }
    match operation(Some(idempotency.request(status))).await {
        Ok(body) => Ok((status, axum::Json(body)).into_response()),
        Err(e) => match idempotency.replay(store, org).await? {
            Some(replayed) => Ok(replayed),
            None => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_change_the_request_hash_but_values_do() {
        let headers = {
            let mut h = HeaderMap::new();
            h.insert(HEADER, HeaderValue::from_static("k-1"));
            h
        };
        let a = serde_json::json!({ "a": 1, "b": { "x": 1, "y": 2 } });
        let b: Value = serde_json::from_str(r#"{ "b": { "y": 2, "x": 1 }, "a": 1 }"#).unwrap();
        let c = serde_json::json!({ "a": 2, "b": { "x": 1, "y": 2 } });
        let hash =
            |v: &Value, route: &str| Idempotency::from_headers(&headers, route, v).unwrap().unwrap().request_hash;
        assert_eq!(hash(&a, "POST /v1/bookings"), hash(&b, "POST /v1/bookings"));
        assert_ne!(hash(&a, "POST /v1/bookings"), hash(&c, "POST /v1/bookings"));
        assert_ne!(hash(&a, "POST /v1/bookings"), hash(&a, "POST /v1/bookings/x/cancel"));
    }

    #[test]
    fn unusable_keys_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_static(""));
        assert!(Idempotency::from_headers(&h, "r", &Value::Null).is_err());
        h.insert(HEADER, HeaderValue::from_str(&"x".repeat(256)).unwrap());
        assert!(Idempotency::from_headers(&h, "r", &Value::Null).is_err());
        assert!(Idempotency::from_headers(&HeaderMap::new(), "r", &Value::Null).unwrap().is_none());
    }
}
