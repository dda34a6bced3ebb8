//! Request extractors that fail the way the API promises: JSON bodies and query strings whose
//! errors name the offending field with a JSON pointer, path ids that answer 404 when they are
//! not ids, and the API-key check that yields the caller's organization.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use slotd_store::OrgId;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;

/// A JSON body deserialised into `T`. Not JSON → 400; JSON of the wrong shape → 422 naming the
/// field; over 1 MB → 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        parse_json(&read_body(req, state).await?).map(ApiJson)
    }
}

/// The whole body (at most 1 MB: 413 beyond).
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::Malformed(format!("could not read the request body: {rejection}"))
        }
    })
}

/// Deserialises JSON, mapping syntax errors to 400 and shape errors to 422 with a pointer.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(de) {
        Ok(value) => Ok(value),
        Err(e) => {
            let pointer = pointer_of(e.path());
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => Err(shape_error(pointer, clean_serde_message(&inner))),
                _ => Err(ApiError::Malformed(format!("the body is not valid JSON: {inner}"))),
            }
        }
    }
}

/// A JSON body as `T` and as the JSON value it was read from (for hashing idempotent
/// requests). An empty body reads as `{}` (commands like `confirm` need no fields).
pub struct ApiJsonValue<T>(pub T, pub serde_json::Value);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJsonValue<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| ApiError::Malformed(format!("the body is not valid JSON: {e}")))?;
        let typed = serde_path_to_error::deserialize(&value).map_err(|e| {
            let pointer = pointer_of(e.path());
            shape_error(pointer, clean_serde_message(&e.into_inner()))
        })?;
        Ok(ApiJsonValue(typed, value))
    }
}

/// A query string deserialised into `T`; errors are 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let pointer = pointer_of(e.path());
            shape_error(pointer, e.into_inner().to_string())
        })
    }
}

/// A 422 for a body or query that does not fit its type. serde reports a missing field at the
/// object that lacks it; the pointer then names the field itself (`/booking_ref`, not ``).
fn shape_error(pointer: String, message: String) -> ApiError {
    let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split_once('`')).map(|(name, _)| name);
    match missing {
        Some(name) => ApiError::field(format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1")), message),
        None => ApiError::field(pointer, message),
    }
}

/// `serde_path_to_error`'s path as a JSON pointer (`/weekly/monday/0/end`).
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Unknown => {}
        }
    }
    pointer
}

/// serde's messages end with " at line 1 column 42"; the pointer already says where.
fn clean_serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// A UUID from the path. Anything that is not a UUID cannot name a resource: 404.
pub fn parse_path_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("no {what} with id '{raw}' (not a valid id)")))
}

/// The organization of the request's API key. Missing, malformed, unknown and revoked keys all
/// answer the same 401; a confirmed key over its rate limit answers 429.
#[derive(Clone, Copy, Debug)]
pub struct Caller(pub OrgId);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| k.starts_with(crate::keys::API_KEY_PREFIX))
            .ok_or(ApiError::Unauthorized)?;
        let hash = hash_api_key(key);
        let now = std::time::Instant::now();
        let org = match state.key_cache.get(&hash, now) {
            Some(org) => org,
            None => {
                let org = state.store.organization_for_key(&hash).await?.ok_or(ApiError::Unauthorized)?;
                state.key_cache.put(&hash, org, now);
                org
            }
        };
        // Only a confirmed key is counted: a wrong key is a 401 and spends nobody's budget.
        state.rate_limits.check_api_key(&hash)?;
        Ok(Caller(org))
    }
}

/// SHA-256 of the key, hex: what the database stores. Keys carry 256 random bits, so a fast
/// hash is enough (no password stretching needed).
pub fn hash_api_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Path parameters; a path that cannot be decoded names no resource: 404.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| ApiPath(path.0))
            .map_err(|e| ApiError::NotFound(format!("no such resource ({e})")))
    }
}

/// Instants the API accepts: RFC 3339, between 1970 and 9000. Everything slotd computes from
/// an instant (buffers, windows, notice) then stays far inside the representable range, so no
/// input can overflow a timestamp; anything outside answers 422 naming the field.
pub mod instant {
    use jiff::Timestamp;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    /// Earliest accepted instant.
    const EARLIEST: Timestamp = Timestamp::UNIX_EPOCH;
    /// Latest accepted instant (exclusive), 9000-01-01T00:00:00Z.
    const LATEST_SECONDS: i64 = 221_845_392_000;

    fn check<E: Error>(t: Timestamp) -> Result<Timestamp, E> {
        if t < EARLIEST || t.as_second() >= LATEST_SECONDS {
            return Err(E::custom("must be between 1970-01-01T00:00:00Z and 9000-01-01T00:00:00Z"));
        }
        Ok(t)
    }

    /// Parses a bounded instant from text (forms).
    pub fn parse(text: &str) -> Option<Timestamp> {
        let t: Timestamp = text.parse().ok()?;
        check::<serde::de::value::Error>(t).ok()
    }

    /// Deserialises a bounded instant.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        check(Timestamp::deserialize(d)?)
    }

    /// The same for optional fields (use with `#[serde(default)]`).
    pub mod option {
        use super::*;

        /// Deserialises an optional bounded instant.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            Option::<Timestamp>::deserialize(d)?.map(check).transpose()
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn the_latest_bound_is_the_year_9000() {
            let latest: jiff::Timestamp = "9000-01-01T00:00:00Z".parse().unwrap();
            assert_eq!(latest.as_second(), super::LATEST_SECONDS);
        }
    }
}
