//! What every calendar source does with HTTP: read an answer under a size cap, and say in words
//! why a request never got one. The requests themselves (methods, auth, time limits) are each
//! source's own.

use crate::CalendarError;

/// Reads `response`'s body, at most `limit` bytes: [`CalendarError::TooLarge`] past it (checked
/// against `Content-Length` first, then chunk by chunk, so a large answer is never read whole).
/// A transport failure while reading becomes `failed(error)`.
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    limit: usize,
    failed: impl Fn(reqwest::Error) -> CalendarError,
) -> Result<Vec<u8>, CalendarError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(CalendarError::TooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(&failed)? {
        if body.len() + chunk.len() > limit {
            return Err(CalendarError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request that got no answer, with the chain of causes. reqwest's message names the URL
/// (which carries no credential in any source here), never the headers.
pub(crate) fn unreachable(e: reqwest::Error) -> CalendarError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    CalendarError::Unreachable(text)
}
