//! The scoring core's one error type: why a listing, a request or a reload was refused,
//! in words and with the field to blame, free of any transport. The HTTP layer maps it to
//! statuses in one place (`crate::http::error`).

use super::overrides::ThresholdError;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listing failed validation; `field` is the full path to blame, e.g.
    /// `listings[3].price` or `price[2]`.
    #[error("{field}: {reason}")]
    InvalidListing { field: String, reason: String },
    /// The queue holds as many requests as it may; the caller should retry later.
    #[error("the scoring queue is full; retry after {retry_after_secs} s")]
    QueueFull { retry_after_secs: u64 },
    /// The request bytes in flight are at their bound (`--max-inflight-bytes`); refused
    /// before its body was read. The caller should retry later.
    #[error("the server is at its bound of {max_inflight_bytes} request bytes in flight; retry after {retry_after_secs} s")]
    Overloaded {
        max_inflight_bytes: usize,
        retry_after_secs: u64,
    },
    /// The model thread has stopped: the core is shutting down.
    #[error("scoring is unavailable: the model thread has stopped")]
    ShuttingDown,
    /// The model thread stopped after taking a request and before answering it.
    #[error("scoring is unavailable: the model thread stopped before answering")]
    Abandoned,
    /// The model failed (or panicked) on the batch that held this request.
    #[error("scoring failed: {0}")]
    Model(String),
    /// A reload candidate failed to load or validate; the old model keeps serving.
    #[error("model refused, the current model keeps serving: {0}")]
    ModelRefused(String),
    /// The operator's threshold overrides do not fit the model.
    #[error(transparent)]
    Thresholds(#[from] ThresholdError),
    #[error("cannot start the model thread: {0}")]
    Thread(std::io::Error),
    /// A broken invariant (a task died, counts that do not match); never the caller's fault.
    #[error("internal error: {0}")]
    Internal(String),
}
