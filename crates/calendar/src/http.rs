//! What every calendar source does with HTTP: send a request and read its answer under a size
//! cap, turn an error status into words, and say why a request never got an answer. The requests
//! themselves (methods, auth, time limits) are each source's own.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::CalendarError;

/// What a request answered: its status, headers and (capped) body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    /// Sends `request` and reads the answer, at most `limit` bytes of it.
    pub(crate) async fn of(request: reqwest::RequestBuilder, limit: usize) -> Result<Answer, CalendarError> {
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(&mut response, limit, unreachable).await?;
        Ok(Answer { status, headers, body })
    }

    /// The answer as a [`CalendarError::Refused`]: its status and the start of what it said.
    pub(crate) fn refused(&self) -> CalendarError {
        let text = String::from_utf8_lossy(&self.body);
        let detail: String = text.trim().chars().take(200).collect();
        let detail = if detail.is_empty() { self.status.canonical_reason().unwrap_or("").to_owned() } else { detail };
        CalendarError::Refused { status: self.status.as_u16(), detail }
    }
}

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
