//! Prometheus metrics of one server instance: request counts and latencies by route,
//! model batch sizes, queue depth, rejections, the distribution of returned probabilities
//! (for drift) and the loaded model's name and version.
//!
//! Each [`ServerMetrics`] owns its own recorder instead of installing a global one, so
//! several routers in one process (tests) keep separate counts; every update runs through
//! `metrics::with_local_recorder`. The scoring core reports into it through its
//! [`Observer`] trait; the HTTP middleware [`track`] and the `GET /metrics` handler use it
//! directly.

use super::error::RejectionReason;
use super::state::AppState;
use crate::decision::Decision;
use crate::serve::queue::ScoredListing;
use crate::serve::Observer;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Request latency buckets, seconds: sub-millisecond to multi-second.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0,
];
/// Twenty equal-width probability bins: fine enough to see a shift in the score
/// distribution between two scrapes.
/// Ten equal-width bins of the share of a listing's terms the model knows.
const KNOWN_SHARE_BUCKETS: &[f64] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
const PROBABILITY_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85,
    0.9, 0.95, 1.0,
];

/// Handles to one recorder and its renderer; cheap to clone (one shared pointer).
#[derive(Clone)]
pub struct ServerMetrics {
    inner: Arc<Recording>,
}

struct Recording {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Series without per-request labels, registered once: recording through a handle
    /// skips the key lookup that every scored request would otherwise pay several times.
    fixed: FixedSeries,
}

struct FixedSeries {
    request_listings: Histogram,
    queue_depth: Gauge,
    queue_wait: Histogram,
    batch_listings: Histogram,
    batch_duration: Histogram,
    probability: Histogram,
    known_term_share: Histogram,
    decisions: [Counter; 3],
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerMetrics")
    }
}

impl Default for ServerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerMetrics {
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        // set_buckets_for_metric only refuses empty lists, and these are non-empty
        // constants. Were it ever to fail, start over without buckets: histograms then
        // render as summaries, which beats refusing to start.
        let builder = [
            ("_seconds", LATENCY_BUCKETS),
            ("knockoff_batch_listings", BATCH_SIZE_BUCKETS),
            ("knockoff_request_listings", BATCH_SIZE_BUCKETS),
            ("knockoff_probability", PROBABILITY_BUCKETS),
            ("knockoff_known_term_share", KNOWN_SHARE_BUCKETS),
        ]
        .into_iter()
        .fold(builder, |b, (name, buckets)| {
            let matcher = if name.starts_with('_') {
                Matcher::Suffix(name.to_string())
            } else {
                Matcher::Full(name.to_string())
            };
            match b.set_buckets_for_metric(matcher, buckets) {
                Ok(b) => b,
                Err(_) => PrometheusBuilder::new(),
            }
        });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let fixed = metrics::with_local_recorder(&recorder, || FixedSeries {
            request_listings: histogram!("knockoff_request_listings"),
            queue_depth: gauge!("knockoff_queue_depth"),
            queue_wait: histogram!("knockoff_queue_wait_seconds"),
            batch_listings: histogram!("knockoff_batch_listings"),
            batch_duration: histogram!("knockoff_batch_duration_seconds"),
            probability: histogram!("knockoff_probability"),
            known_term_share: histogram!("knockoff_known_term_share"),
            decisions: Decision::ALL
                .map(|d| counter!("knockoff_decisions_total", "decision" => d.as_str())),
        });
        let metrics = ServerMetrics {
            inner: Arc::new(Recording {
                recorder,
                handle,
                fixed,
            }),
        };
        metrics.describe();
        metrics
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.inner.recorder, f)
    }

    fn describe(&self) {
        self.with(|| {
            metrics::describe_counter!(
                "knockoff_http_requests_total",
                "HTTP requests by route, method and status"
            );
            metrics::describe_histogram!(
                "knockoff_http_request_duration_seconds",
                "HTTP request latency by route"
            );
            metrics::describe_counter!(
                "knockoff_rejected_requests_total",
                "Requests refused, by route and reason"
            );
            metrics::describe_histogram!(
                "knockoff_batch_listings",
                "Listings per model pass (dynamic batch size)"
            );
            metrics::describe_histogram!(
                "knockoff_request_listings",
                "Listings per scoring request"
            );
            metrics::describe_histogram!(
                "knockoff_batch_duration_seconds",
                "Model time per batch: features, scores and reasons"
            );
            metrics::describe_histogram!(
                "knockoff_queue_wait_seconds",
                "Time a request waited in the queue before its batch started"
            );
            metrics::describe_gauge!("knockoff_queue_depth", "Requests waiting for the model");
            metrics::describe_gauge!(
                "knockoff_inflight_bytes",
                "Request-body bytes admitted and not yet answered"
            );
            metrics::describe_gauge!(
                "knockoff_inflight_bytes_limit",
                "Bound on knockoff_inflight_bytes (--max-inflight-bytes); beyond it, 429"
            );
            metrics::describe_gauge!(
                "knockoff_queue_capacity",
                "Requests that may wait before 429"
            );
            metrics::describe_histogram!(
                "knockoff_probability",
                "Returned probabilities (watch for drift)"
            );
            metrics::describe_histogram!(
                "knockoff_known_term_share",
                "Share of each scored listing's terms that the model knows (falling: new words, time to retrain)"
            );
            metrics::describe_counter!("knockoff_decisions_total", "Returned decisions");
            metrics::describe_gauge!(
                "knockoff_model_info",
                "The loaded model (value 1; 0 for models replaced by a reload)"
            );
            metrics::describe_counter!("knockoff_model_reloads_total", "Model reloads by result");
            metrics::describe_counter!(
                "knockoff_scoring_failures_total",
                "Model batches that failed"
            );
            metrics::describe_counter!(
                "knockoff_review_queue_written_total",
                "Listings decided review and written to the review queue"
            );
            metrics::describe_counter!(
                "knockoff_review_queue_lost_total",
                "Listings decided review that never reached the queue, by reason \
                 (channel_full: the writer was behind; store_error: the write failed)"
            );
            metrics::describe_counter!(
                "knockoff_review_queue_evicted_total",
                "Queue entries dropped as the oldest beyond --review-queue-max"
            );
            metrics::describe_counter!("knockoff_reviews_total", "Reviews stored, by label");
        });
    }

    /// The Prometheus text exposition of everything recorded so far.
    pub fn render(&self) -> String {
        self.inner.handle.render()
    }

    /// Drains histogram samples into their buckets; without it samples pile up between
    /// scrapes. The model thread calls it periodically.
    pub fn upkeep(&self) {
        self.inner.handle.run_upkeep();
    }

    pub fn record_request(&self, route: &str, method: &Method, status: u16, elapsed: Duration) {
        // Unknown methods collapse to one label so garbage requests cannot grow the series.
        let method = match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            Method::PATCH => "PATCH",
            _ => "other",
        };
        let route = route.to_string();
        self.with(|| {
            counter!("knockoff_http_requests_total", "route" => route.clone(), "method" => method, "status" => status.to_string()).increment(1);
            histogram!("knockoff_http_request_duration_seconds", "route" => route).record(elapsed.as_secs_f64());
        });
    }

    pub fn record_rejection(&self, route: &str, reason: &'static str) {
        let route = route.to_string();
        self.with(|| {
            counter!("knockoff_rejected_requests_total", "route" => route, "reason" => reason)
                .increment(1);
        });
    }

    pub fn record_request_listings(&self, listings: usize) {
        self.inner.fixed.request_listings.record(listings as f64);
    }

    /// Queue depth moves by increments, never by `set`: the handler and the model thread
    /// update it concurrently, and a stale `set` could overwrite a newer value for good.
    pub fn queue_depth_changed(&self, delta: f64) {
        self.inner.fixed.queue_depth.increment(delta);
    }

    /// Request bytes admitted and not yet answered, and their bound; read at each scrape.
    pub fn set_inflight_bytes(&self, in_flight: usize, limit: usize) {
        self.with(|| {
            gauge!("knockoff_inflight_bytes").set(in_flight as f64);
            gauge!("knockoff_inflight_bytes_limit").set(limit as f64);
        });
    }

    pub fn set_queue_capacity(&self, capacity: usize) {
        self.with(|| gauge!("knockoff_queue_capacity").set(capacity as f64));
    }

    pub fn record_queue_wait(&self, waited: Duration) {
        self.inner.fixed.queue_wait.record(waited.as_secs_f64());
    }

    pub fn record_batch(&self, listings: usize, elapsed: Duration) {
        self.inner.fixed.batch_listings.record(listings as f64);
        self.inner
            .fixed
            .batch_duration
            .record(elapsed.as_secs_f64());
    }

    pub fn record_scoring_failure(&self) {
        self.with(|| counter!("knockoff_scoring_failures_total").increment(1));
    }

    pub fn record_scores(&self, scores: impl Iterator<Item = (f32, Decision)>) {
        for (p, decision) in scores {
            self.inner.fixed.probability.record(f64::from(p));
            self.inner.fixed.decisions[decision as usize].increment(1);
        }
    }

    /// One scored listing's share of known terms (see `Features::known_share`).
    pub fn record_known_term_share(&self, share: f32) {
        self.inner.fixed.known_term_share.record(f64::from(share));
    }

    pub fn set_model_info(&self, name: &str, version: &str, value: f64) {
        let (name, version) = (name.to_string(), version.to_string());
        self.with(|| {
            gauge!("knockoff_model_info", "name" => name, "version" => version).set(value)
        });
    }

    /// Listings written to the review queue, and the oldest evicted to keep its bound.
    pub fn record_review_queue_write(&self, written: usize, evicted: usize) {
        self.with(|| {
            counter!("knockoff_review_queue_written_total").increment(written as u64);
            counter!("knockoff_review_queue_evicted_total").increment(evicted as u64);
        });
    }

    /// Listings decided review that did not reach the queue: `channel_full` or `store_error`.
    pub fn record_review_queue_lost(&self, reason: &'static str, listings: usize) {
        self.with(|| {
            counter!("knockoff_review_queue_lost_total", "reason" => reason)
                .increment(listings as u64)
        });
    }

    /// Reviews stored, by label.
    pub fn record_review(&self, label: &'static str) {
        self.with(|| counter!("knockoff_reviews_total", "label" => label).increment(1));
    }

    pub fn record_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "refused" };
        self.with(|| counter!("knockoff_model_reloads_total", "result" => result).increment(1));
    }
}

/// Middleware: counts and times every request under its route template (never the raw
/// path, which would let clients create unbounded series), and counts rejections by reason.
pub async fn track(State(metrics): State<ServerMetrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.record_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    if let Some(RejectionReason(reason)) = response.extensions().get::<RejectionReason>() {
        metrics.record_rejection(&route, reason);
    }
    response
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let metrics = state.metrics();
    let admission = state.core().admission();
    metrics.set_inflight_bytes(
        admission.in_flight(),
        admission.options().max_inflight_bytes,
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

/// The scoring core's measurements, recorded as Prometheus series.
impl Observer for ServerMetrics {
    fn queue_capacity(&self, capacity: usize) {
        self.set_queue_capacity(capacity);
    }

    fn queue_depth_changed(&self, delta: f64) {
        ServerMetrics::queue_depth_changed(self, delta);
    }

    fn queue_wait(&self, waited: Duration) {
        self.record_queue_wait(waited);
    }

    fn batch(&self, listings: usize, elapsed: Duration) {
        self.record_batch(listings, elapsed);
    }

    fn scoring_failure(&self) {
        self.record_scoring_failure();
    }

    fn scored(&self, listings: &[ScoredListing]) {
        self.record_scores(listings.iter().map(|s| (s.probability, s.decision)));
    }

    fn request_listings(&self, listings: usize) {
        self.record_request_listings(listings);
    }

    fn known_term_share(&self, share: f32) {
        self.record_known_term_share(share);
    }

    fn model_serving(&self, name: &str, version: &str, serving: bool) {
        self.set_model_info(name, version, if serving { 1.0 } else { 0.0 });
    }

    fn reload(&self, ok: bool) {
        self.record_reload(ok);
    }

    fn upkeep(&self) {
        ServerMetrics::upkeep(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_instances_keep_separate_counts() {
        let a = ServerMetrics::new();
        let b = ServerMetrics::new();
        a.record_request("/v1/score", &Method::POST, 200, Duration::from_millis(3));
        a.set_model_info("m", "1", 1.0);
        a.record_scores([(0.42f32, Decision::Review)].into_iter());
        a.record_known_term_share(0.35);
        let text = a.render();
        assert!(text.contains("knockoff_http_requests_total{route=\"/v1/score\",method=\"POST\",status=\"200\"} 1"), "{text}");
        assert!(
            text.contains("knockoff_model_info{name=\"m\",version=\"1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("knockoff_probability_bucket{le=\"0.45\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("knockoff_known_term_share_bucket{le=\"0.4\"} 1")
                && text.contains("knockoff_known_term_share_bucket{le=\"0.3\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("knockoff_http_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(!b.render().contains("knockoff_http_requests_total{"));
    }
}
