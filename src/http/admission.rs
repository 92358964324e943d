//! Middleware that admits a request by its work before reading its body: a ticket from the
//! core's [`Admission`](crate::serve::Admission) for the declared `Content-Length`, held
//! until the answer has been sent; a request that does not fit is answered 429 with
//! `Retry-After` at once. Bodies of unknown length grow their ticket as they stream.
//!
//! Only requests that carry a body are admitted (health checks, metrics and other `GET`s
//! always pass), and `/admin` routes are exempt: an operator must be able to reload a model
//! under any load.

use super::error::ServerError;
use super::state::AppState;
use crate::serve::Ticket;
use axum::body::HttpBody as _;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

/// Admits, reads and forwards one request; the handler gets the whole body as read.
pub async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // hyper's body knows its `Content-Length` (exact size), or that it is chunked (unknown).
    let hint = request.body().size_hint();
    if hint.upper() == Some(0) || is_exempt(&request) {
        return next.run(request).await;
    }
    let limit = state.config().max_body_bytes;
    let declared = hint
        .exact()
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if declared.is_some_and(|n| n > limit) {
        return ServerError::BodyTooLarge { limit }.into_response();
    }
    let admission = state.core().admission();
    let wait = admission.options().max_wait;
    let ticket = match admission.admit(declared.unwrap_or(0), wait).await {
        Ok(ticket) => ticket,
        Err(e) => {
            discard_body(request.into_body(), limit);
            return ServerError::from(e).into_response();
        }
    };
    let (parts, body) = request.into_parts();
    let (bytes, ticket) = match read_counted(body, ticket, &state).await {
        Ok(read) => read,
        Err(e) => return e.into_response(),
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let (parts, body) = next.run(request).await.into_parts();
    // The ticket lives as long as the answer's body: until it has been sent (or the
    // client went away).
    let body = body.map_frame(move |frame| {
        ticket.hold();
        frame
    });
    Response::from_parts(parts, Body::new(body))
}

/// Reads a body whole, growing `ticket` when it runs past what was declared; at most the
/// body limit (413 beyond), and 429 when the growth does not fit.
async fn read_counted(
    mut body: Body,
    mut ticket: Ticket,
    state: &AppState,
) -> Result<(Bytes, Ticket), ServerError> {
    let limit = state.config().max_body_bytes;
    let admission = state.core().admission();
    let mut bytes = Vec::with_capacity(ticket.bytes());
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ServerError::BadRequest(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let total = bytes.len() + data.len();
        if total > limit {
            return Err(ServerError::BodyTooLarge { limit });
        }
        let missing = total.saturating_sub(ticket.bytes());
        if missing > 0 {
            if let Err(e) = admission.grow(&mut ticket, missing) {
                discard_body(body, limit);
                return Err(e.into());
            }
        }
        bytes.extend_from_slice(&data);
    }
    Ok((Bytes::from(bytes), ticket))
}

fn is_exempt(request: &Request) -> bool {
    request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| p.as_str().starts_with("/admin"))
}

/// Reads and drops a refused request's body in the background (at most `limit` bytes, a
/// chunk at a time), so the connection can carry the client's next request instead of
/// being reset under an answer it has not read yet.
fn discard_body(body: Body, limit: usize) {
    tokio::spawn(async move {
        let mut body = body;
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > limit {
                break;
            }
        }
    });
}
