//! The server layer's one error type and its one mapping to an HTTP answer: a status code
//! and the JSON body `{"error": "...", "field": "..."}` (`field` only when one is to blame).
//!
//! Every handler returns `Result<_, ServerError>`, and axum's own rejections (body too
//! large, unreadable body, bad path segment, unknown route, wrong method) are converted into
//! it, so a client sees one error shape whatever went wrong.

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
    #[error("the scoring queue is full; retry after {retry_after_secs} s")]
    QueueFull { retry_after_secs: u64 },
    /// The scoring worker cannot take work (shutting down, or it stopped).
    #[error("scoring is unavailable: {0}")]
    Unavailable(String),
    #[error("scoring failed: {0}")]
    Scoring(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("admin routes are disabled: no admin token is configured (set KNOCKOFF_ADMIN_TOKEN)")]
    AdminDisabled,
    /// A reload candidate failed validation; the old model keeps serving.
    #[error("model refused, the current model keeps serving: {0}")]
    ModelRefused(String),
    #[error("internal error: {0}")]
    Internal(String),
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
            ServerError::Invalid { .. } | ServerError::ModelRefused(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ServerError::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServerError::Scoring(_) | ServerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ServerError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServerError::AdminDisabled => StatusCode::FORBIDDEN,
        }
    }

    /// The metrics label for this rejection.
    pub fn reason(&self) -> &'static str {
        match self {
            ServerError::MalformedJson(_) => "malformed_json",
            ServerError::BadRequest(_) => "bad_request",
            ServerError::BodyTooLarge { .. } => "body_too_large",
            ServerError::Invalid { .. } => "invalid",
            ServerError::QueueFull { .. } => "queue_full",
            ServerError::Unavailable(_) => "unavailable",
            ServerError::Scoring(_) => "scoring_failed",
            ServerError::NotFound(_) => "not_found",
            ServerError::MethodNotAllowed => "method_not_allowed",
            ServerError::Unauthorized => "unauthorized",
            ServerError::AdminDisabled => "admin_disabled",
            ServerError::ModelRefused(_) => "model_refused",
            ServerError::Internal(_) => "internal",
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            ServerError::Invalid { field, .. } => field.as_deref(),
            ServerError::ModelRefused(_) => Some("model"),
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
            ServerError::QueueFull { retry_after_secs } => {
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
        let response = ServerError::QueueFull {
            retry_after_secs: 1,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            response.extensions().get::<RejectionReason>(),
            Some(&RejectionReason("queue_full"))
        );
    }
}
