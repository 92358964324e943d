//! The HTTP layer's one error type and its one mapping to an HTTP answer: a status code
//! and the JSON body `{"error": "...", "field": "..."}` (`field` only when one is to blame).
//!
//! Every handler returns `Result<_, ServerError>`; the scoring core's [`ServeError`], the
//! request parsers' JSON errors and axum's own rejections (body too large, unreadable body,
//! bad path segment, unknown route, wrong method) all become one, so a client sees one
//! error shape whatever went wrong, and statuses are decided here and nowhere else.

use crate::serve::ServeError;
use crate::store::StoreError;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words a client developer can act on.
    pub error: String,
    /// The request field to blame, e.g. `listings[3].price`, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Why a request was refused, as a short stable word; attached to error responses so the
/// metrics layer can count rejections by reason without parsing bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectionReason(pub &'static str);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The body is not JSON at all (syntax error, truncated, trailing bytes).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// Some other unreadable request (body stream broke, undecodable path segment).
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// Well-formed JSON whose content is refused: validation, types, batch size.
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    /// The scoring core refused or failed the work.
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("admin routes are disabled: no admin token is configured (set KNOCKOFF_ADMIN_TOKEN)")]
    AdminDisabled,
    #[error(
        "review routes are disabled: no reviewer or admin token is configured \
         (set KNOCKOFF_REVIEWER_TOKEN)"
    )]
    ReviewsDisabled,
    /// Authenticated, but not allowed this (a brand token on another brand).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The embedded store refused (an invalid entry) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServerError {
    /// A 422 naming the field to blame.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ServerError::Invalid {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A 422 about the request as a whole.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        ServerError::Invalid {
            field: None,
            message: message.into(),
        }
    }

    /// Maps a failure to read the body; `limit` is the configured body limit, which the
    /// rejection itself does not carry.
    pub fn from_body_rejection(rejection: BytesRejection, limit: usize) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ServerError::BodyTooLarge { limit }
        } else {
            ServerError::BadRequest(rejection.body_text())
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::MalformedJson(_) | ServerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServerError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServerError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ServerError::Serve(e) => serve_status(e),
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ServerError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServerError::AdminDisabled
            | ServerError::ReviewsDisabled
            | ServerError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServerError::Store(StoreError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            ServerError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The metrics label for this rejection.
    pub fn reason(&self) -> &'static str {
        match self {
            ServerError::MalformedJson(_) => "malformed_json",
            ServerError::BadRequest(_) => "bad_request",
            ServerError::BodyTooLarge { .. } => "body_too_large",
            ServerError::Invalid { .. } => "invalid",
            ServerError::Serve(e) => serve_reason(e),
            ServerError::NotFound(_) => "not_found",
            ServerError::MethodNotAllowed => "method_not_allowed",
            ServerError::Unauthorized => "unauthorized",
            ServerError::AdminDisabled => "admin_disabled",
            ServerError::ReviewsDisabled => "reviews_disabled",
            ServerError::Forbidden(_) => "forbidden",
            ServerError::Store(StoreError::Invalid(_)) => "invalid",
            ServerError::Store(_) => "store",
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            ServerError::Invalid { field, .. } => field.as_deref(),
            ServerError::Serve(ServeError::InvalidListing { field, .. }) => Some(field),
            ServerError::Serve(ServeError::ModelRefused(_)) => Some("model"),
            ServerError::Store(StoreError::Invalid(e)) => Some(&e.field),
            _ => None,
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.to_string(),
            field: self.field().map(str::to_owned),
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, status = status.as_u16(), "request failed");
        } else {
            tracing::debug!(error = %self, status = status.as_u16(), "request refused");
        }
        let mut response = (status, Json(self.body())).into_response();
        let headers = response.headers_mut();
        match &self {
            ServerError::Serve(
                ServeError::QueueFull { retry_after_secs }
                | ServeError::Overloaded {
                    retry_after_secs, ..
                },
            ) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ServerError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"knockoff-admin\""),
                );
            }
            _ => {}
        }
        response
            .extensions_mut()
            .insert(RejectionReason(self.reason()));
        response
    }
}

/// The status of each way the scoring core refuses or fails work.
fn serve_status(error: &ServeError) -> StatusCode {
    match error {
        ServeError::InvalidListing { .. } | ServeError::ModelRefused(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ServeError::QueueFull { .. } | ServeError::Overloaded { .. } => {
            StatusCode::TOO_MANY_REQUESTS
        }
        ServeError::ShuttingDown | ServeError::Abandoned => StatusCode::SERVICE_UNAVAILABLE,
        ServeError::Model(_)
        | ServeError::Thresholds(_)
        | ServeError::Thread(_)
        | ServeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The metrics label of each way the scoring core refuses or fails work.
fn serve_reason(error: &ServeError) -> &'static str {
    match error {
        ServeError::InvalidListing { .. } => "invalid",
        ServeError::QueueFull { .. } => "queue_full",
        ServeError::Overloaded { .. } => "overloaded",
        ServeError::ShuttingDown | ServeError::Abandoned => "unavailable",
        ServeError::Model(_) => "scoring_failed",
        ServeError::ModelRefused(_) => "model_refused",
        ServeError::Thresholds(_) | ServeError::Thread(_) | ServeError::Internal(_) => "internal",
    }
}

impl From<crate::registry::RegistryError> for ServerError {
    fn from(error: crate::registry::RegistryError) -> Self {
        ServerError::Invalid {
            message: error.to_string(),
            field: Some(error.field),
        }
    }
}

impl From<PathRejection> for ServerError {
    fn from(rejection: PathRejection) -> Self {
        ServerError::BadRequest(rejection.body_text())
    }
}

/// Parses a JSON body into `T`. Syntax errors are 400; well-formed JSON of the wrong
/// shape is 422 naming the offending path (e.g. `inputs[0].shape`), so a client can tell
/// "my encoder is broken" from "my data is wrong".
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ServerError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        // A shape error can be found before a syntax error further on (`{} trailing`);
        // broken JSON is a 400 whatever else is wrong with it.
        if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            return json_error(syntax, ".");
        }
        let path = e.path().to_string();
        json_error(e.into_inner(), &path)
    })?;
    deserializer.end().map_err(|e| json_error(e, "."))?;
    Ok(value)
}

/// Reads `value`, the part of a request at `prefix` (e.g. `listings[3]`; empty for the
/// whole body), into `T`. Errors are 422 naming the field under `prefix`, e.g.
/// `reviews[2].listing.price`, a missing field included.
pub fn value_at<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, ServerError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut inner = e.path().to_string();
        let error = e.into_inner().to_string();
        // serde blames the object for a missing field: blame the field.
        let missing = error
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        if let Some(missing) = missing {
            inner = match inner.as_str() {
                "." => missing.to_string(),
                _ => format!("{inner}.{missing}"),
            };
        }
        let field = match (prefix.is_empty(), inner.as_str()) {
            (true, _) => inner.clone(),
            (false, ".") => prefix.to_string(),
            (false, _) => format!("{prefix}.{inner}"),
        };
        // The untagged price and id enums report "did not match any variant": say what
        // is accepted instead.
        let message = match (missing, inner.rsplit('.').next()) {
            (None, Some("price")) => "must be a number, a numeric string or null".to_string(),
            (None, Some("id")) => "must be a string or an integer".to_string(),
            _ => error,
        };
        ServerError::invalid(field.clone(), format!("{field}: {message}"))
    })
}

/// Classifies a serde_json error found at `path` (`.` is the document root).
pub fn json_error(error: serde_json::Error, path: &str) -> ServerError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data => {
            if path == "." || path.is_empty() {
                ServerError::invalid_request(error.to_string())
            } else {
                ServerError::invalid(path, error.to_string())
            }
        }
        Category::Syntax | Category::Eof | Category::Io => {
            ServerError::MalformedJson(error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Probe {
        name: String,
        shape: Vec<i64>,
    }

    #[test]
    fn syntax_errors_are_400_and_shape_errors_are_422_with_a_path() {
        let e = parse_json::<Probe>(b"{\"name\": ").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e = parse_json::<Probe>(b"{\"name\": \"a\", \"shape\": [1, \"x\"]}").unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field(), Some("shape[1]"));
        let e = parse_json::<Probe>(b"{\"name\": \"a\", \"shape\": []} trailing").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e = parse_json::<Probe>(b"[]").unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field(), None);
    }

    #[test]
    fn queue_full_carries_retry_after() {
        let response = ServerError::from(ServeError::QueueFull {
            retry_after_secs: 1,
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            response.extensions().get::<RejectionReason>(),
            Some(&RejectionReason("queue_full"))
        );
    }

    #[test]
    fn core_errors_keep_their_answers() {
        let invalid = ServerError::from(ServeError::InvalidListing {
            field: "listings[3].price".into(),
            reason: "must not be negative (got -3)".into(),
        });
        assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            invalid.body(),
            ErrorBody {
                error: "listings[3].price: must not be negative (got -3)".into(),
                field: Some("listings[3].price".into()),
            }
        );
        let refused = ServerError::from(ServeError::ModelRefused("no config.json".into()));
        assert_eq!(
            (refused.status(), refused.field(), refused.reason()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("model"),
                "model_refused"
            )
        );
        let stopped = ServerError::from(ServeError::ShuttingDown);
        assert_eq!(stopped.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            stopped.to_string(),
            "scoring is unavailable: the model thread has stopped"
        );
        let refused = ServerError::from(StoreError::Invalid(crate::registry::RegistryError::new(
            "aliases[1]",
            "must not be empty",
        )));
        assert_eq!(
            (
                refused.status(),
                refused.field(),
                refused.to_string().as_str()
            ),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("aliases[1]"),
                "aliases[1]: must not be empty"
            )
        );
        let direct = ServerError::from(crate::registry::RegistryError::new("name", "x"));
        assert_eq!(
            (direct.status(), direct.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
        );
        let broken = ServerError::from(StoreError::Task("gone".into()));
        assert_eq!(
            (broken.status(), broken.reason()),
            (StatusCode::INTERNAL_SERVER_ERROR, "store")
        );
        let forbidden = ServerError::Forbidden("not yours".into());
        assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
        let failed = ServerError::from(ServeError::Model("boom".into()));
        assert_eq!(
            (failed.status(), failed.reason()),
            (StatusCode::INTERNAL_SERVER_ERROR, "scoring_failed")
        );
    }
}
