//! What the scoring core reports as it works (queue depth, batch sizes, scores, reloads),
//! through a trait the caller implements: the core stays free of any metrics system, and
//! the HTTP layer's Prometheus metrics plug in without the core knowing them.

use super::queue::ScoredListing;
use std::time::Duration;

/// Receives the core's measurements; every method defaults to doing nothing. Called from
/// request tasks and from the model thread, so implementations must be cheap and shared.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// The queue's capacity, once at start.
    fn queue_capacity(&self, _capacity: usize) {}
    /// The number of waiting requests moved by `delta` (+1 queued, -1 taken).
    fn queue_depth_changed(&self, _delta: f64) {}
    /// How long a request waited before its batch started.
    fn queue_wait(&self, _waited: Duration) {}
    /// One model pass over `listings` listings took `elapsed`.
    fn batch(&self, _listings: usize, _elapsed: Duration) {}
    /// A model pass failed or panicked.
    fn scoring_failure(&self) {}
    /// The answers of one model pass.
    fn scored(&self, _listings: &[ScoredListing]) {}
    /// A request asked for `listings` listings to be scored.
    fn request_listings(&self, _listings: usize) {}
    /// The share of a scored listing's terms the model knows.
    fn known_term_share(&self, _share: f32) {}
    /// A model started (`serving`) or stopped (`!serving`) serving new requests.
    fn model_serving(&self, _name: &str, _version: &str, _serving: bool) {}
    /// A reload finished: swapped in (`ok`) or refused.
    fn reload(&self, _ok: bool) {}
    /// Periodic housekeeping from the model thread (e.g. draining histograms).
    fn upkeep(&self) {}
}

/// An observer that ignores everything: for embedders that need no measurements.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}
