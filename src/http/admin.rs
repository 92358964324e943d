//! The admin route, `POST /admin/reload`, behind a bearer token checked before the body is
//! read; without a configured token admin routes answer 403.

use super::error::{parse_json, ErrorBody, ServerError};
use super::state::AppState;
use crate::serve::ReloadOutcome;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `POST /admin/reload` body (optional): the model directory to load instead of reloading
/// the current one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadRequest {
    #[serde(default)]
    pub model: Option<String>,
}

/// Middleware for admin routes: a configured token and a matching `Authorization: Bearer`
/// header, checked before the body is read. Without a configured token the routes are off.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ServerError> {
    authorize(&state, request.headers())?;
    Ok(next.run(request).await)
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ServerError> {
    let Some(token) = &state.config().admin_token else {
        return Err(ServerError::AdminDisabled);
    };
    match bearer(headers) {
        Some(candidate) if token.matches(candidate) => Ok(()),
        _ => Err(ServerError::Unauthorized),
    }
}

/// The credentials of an `Authorization: Bearer <token>` header, if there is one.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credentials)| credentials.trim())
}

/// Load a model (a new directory, or the current one again), validate it and swap it in.
#[utoipa::path(
    post,
    path = "/admin/reload",
    tag = "admin",
    request_body(content = Option<ReloadRequest>, description = "Optional; {\"model\": \"path/to/model\"}"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new model serves; requests accepted earlier finish on the old one", body = ReloadOutcome),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "Admin routes disabled (no token configured)", body = ErrorBody),
        (status = 422, description = "Model refused; the current model keeps serving", body = ErrorBody),
    )
)]
pub async fn reload(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ReloadOutcome>, ServerError> {
    let body = state.body(body)?;
    let request: ReloadRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReloadRequest::default()
    } else {
        parse_json(&body)?
    };
    let path = match request.model.as_deref().map(str::trim) {
        Some("") => return Err(ServerError::invalid("model", "model: must not be empty")),
        Some(path) => Some(PathBuf::from(path)),
        None => None,
    };
    Ok(Json(state.core().reload(path).await?))
}
