//! Puts the listings knockoff-serve decided `review` into the store's review queue, off the
//! request path: a bounded channel to one writer thread, which writes whatever has arrived
//! in one transaction. A full channel drops the entry (counted and logged); scoring never
//! waits for the store.

use super::metrics::ServerMetrics;
use crate::data::listing::{Listing, RawId, RawListing};
use crate::decision::Decision;
use crate::eval::math::logit;
use crate::serve::queue::{LoadedModel, ScoredListing};
use crate::store::reviews::{now, QueueEntry};
use crate::store::Store;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Entries that may wait for the writer. At a typical 0.5 KB a listing, 2 MB; the writer
/// empties it in one or two transactions.
pub const CHANNEL_CAPACITY: usize = 4096;
/// Most entries written in one transaction.
const MAX_WRITE: usize = 1024;
/// Longest a reader waits for the writer to catch up before reading the queue anyway.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one "queue entries dropped" warning per this interval (the counter counts all).
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// Probabilities are kept this far from 0 and 1 before taking log-odds.
const LOG_ODDS_EPSILON: f64 = 1e-6;

/// The request side of the review queue; cheap to share (one per server).
#[derive(Debug)]
pub struct ReviewRecorder {
    sender: SyncSender<QueueEntry>,
    /// Entries handed to the writer so far.
    sent: AtomicU64,
    /// Entries the writer has finished with (written or failed).
    done: watch::Receiver<u64>,
    metrics: ServerMetrics,
    last_warning: std::sync::Mutex<Option<Instant>>,
}

impl ReviewRecorder {
    /// Starts the writer thread on `store`, keeping at most `max` entries in the queue. The
    /// thread ends when the recorder is dropped, after writing what it was given.
    pub fn start(store: Store, max: usize, metrics: ServerMetrics) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel(CHANNEL_CAPACITY);
        let (done_tx, done) = watch::channel(0u64);
        let writer_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("review-queue".into())
            .spawn(move || write_loop(&store, max, &receiver, &done_tx, &writer_metrics))?;
        Ok(ReviewRecorder {
            sender,
            sent: AtomicU64::new(0),
            done,
            metrics,
            last_warning: std::sync::Mutex::new(None),
        })
    }

    /// Hands every listing `model` decided `review` to the writer; never blocks. A listing
    /// without an id (every listing of the v2 protocol) is queued under its [`content_id`].
    pub fn record(&self, model: &LoadedModel, listings: Vec<Listing>, scored: &[ScoredListing]) {
        let block = model.model.thresholds().block;
        let scored_at = now();
        for (listing, score) in listings.into_iter().zip(scored) {
            if score.decision != Decision::Review {
                continue;
            }
            let mut raw = RawListing::from(&listing);
            let id = match listing.id.is_empty() {
                true => content_id(&raw),
                false => listing.id,
            };
            raw.id = Some(RawId::Text(id.clone()));
            let entry = QueueEntry {
                id,
                listing: raw,
                probability: score.probability,
                decision: score.decision,
                reasons: score.reasons.clone(),
                model_name: model.name().to_string(),
                model_version: model.version().to_string(),
                scored_at,
                priority: priority(score.probability, block),
            };
            self.push(entry);
        }
    }

    /// Hands one entry to the writer, or counts it lost when the writer is behind.
    pub fn push(&self, entry: QueueEntry) {
        match self.sender.try_send(entry) {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::SeqCst);
            }
            Err(TrySendError::Full(entry)) => self.lost(&entry.id, "channel_full"),
            Err(TrySendError::Disconnected(entry)) => self.lost(&entry.id, "store_error"),
        }
    }

    fn lost(&self, id: &str, reason: &'static str) {
        self.metrics.record_review_queue_lost(reason, 1);
        let mut last = self
            .last_warning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= WARN_INTERVAL) {
            *last = Some(Instant::now());
            tracing::warn!(
                id,
                reason,
                "a listing decided review was not queued (knockoff_review_queue_lost_total counts them all)"
            );
        }
    }

    /// Waits (at most a few seconds) until the writer has finished with every entry handed
    /// to it before this call, so a read of the queue sees them.
    pub async fn flush(&self) {
        let target = self.sent.load(Ordering::SeqCst);
        let mut done = self.done.clone();
        // An error means the writer is gone; then there is nothing to wait for.
        let waited = tokio::time::timeout(FLUSH_TIMEOUT, done.wait_for(|d| *d >= target)).await;
        if waited.is_err() {
            tracing::warn!("the review queue writer is behind; reading the queue as it is");
        }
    }
}

/// The id a listing sent without one is queued and reviewed under: `content-` and the
/// first 16 hex digits of the SHA-256 of its JSON, so the same listing scored again finds
/// its entry.
pub fn content_id(listing: &RawListing) -> String {
    let json = serde_json::to_vec(listing).unwrap_or_default();
    let digest = Sha256::digest(&json);
    format!("content-{}", &hex::encode(digest)[..16])
}

/// How useful a review of a listing scored `probability` is: its distance, in log-odds,
/// from the block threshold (smaller is more useful: a reviewer's label there moves the
/// boundary between review and block).
pub fn priority(probability: f32, block: f32) -> f64 {
    let log_odds = |p: f32| logit(f64::from(p).clamp(LOG_ODDS_EPSILON, 1.0 - LOG_ODDS_EPSILON));
    (log_odds(probability) - log_odds(block)).abs()
}

fn write_loop(
    store: &Store,
    max: usize,
    receiver: &Receiver<QueueEntry>,
    done: &watch::Sender<u64>,
    metrics: &ServerMetrics,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_WRITE {
            match receiver.try_recv() {
                Ok(entry) => batch.push(entry),
                Err(_) => break,
            }
        }
        match store.queue_for_review(&batch, max) {
            Ok(queued) => {
                metrics.record_review_queue_write(queued.written, queued.dropped_oldest);
                tracing::debug!(
                    written = queued.written,
                    already_reviewed = queued.already_reviewed,
                    evicted = queued.dropped_oldest,
                    "review queue written"
                );
            }
            Err(e) => {
                metrics.record_review_queue_lost("store_error", batch.len());
                tracing::error!(error = %e, entries = batch.len(), "cannot write the review queue; these entries are lost");
            }
        }
        done.send_modify(|d| *d += batch.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_is_the_log_odds_distance_to_the_block_threshold() {
        assert!(priority(0.5, 0.5).abs() < 1e-9);
        let below = priority(0.2, 0.5);
        assert!((below - 4f64.ln()).abs() < 1e-6, "{below}");
        // Symmetric in log-odds, not in probability.
        assert!((priority(0.8, 0.5) - below).abs() < 1e-6);
        assert!(priority(0.45, 0.5) < priority(0.3, 0.5));
        assert!(priority(0.0, 0.5).is_finite() && priority(1.0, 0.5).is_finite());
    }

    fn entry(id: &str) -> QueueEntry {
        QueueEntry {
            id: id.into(),
            listing: RawListing {
                id: Some(crate::data::listing::RawId::Text(id.into())),
                title: Some("a watch".into()),
                ..RawListing::default()
            },
            probability: 0.5,
            decision: Decision::Review,
            reasons: Vec::new(),
            model_name: "m".into(),
            model_version: "1".into(),
            scored_at: now(),
            priority: 0.0,
        }
    }

    #[tokio::test]
    async fn a_writer_behind_costs_entries_never_a_wait_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let store = Store::open(&path).unwrap();
        let metrics = ServerMetrics::new();
        let recorder = ReviewRecorder::start(store.clone(), 100_000, metrics.clone()).unwrap();
        // Another connection holds the write lock: the writer waits on its first batch.
        let blocker = rusqlite::Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let extra = 10;
        let started = Instant::now();
        for i in 0..CHANNEL_CAPACITY + MAX_WRITE + extra {
            recorder.push(entry(&format!("l{i}")));
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "pushing never waits"
        );
        blocker.execute_batch("COMMIT").unwrap();
        recorder.flush().await;
        let queued = store.review_queue_len().unwrap();
        let lost = CHANNEL_CAPACITY + MAX_WRITE + extra - queued;
        // The writer took at most one batch before the channel filled.
        assert!(lost >= extra && lost <= MAX_WRITE + extra, "{lost}");
        let text = metrics.render();
        let line = format!("knockoff_review_queue_lost_total{{reason=\"channel_full\"}} {lost}");
        assert!(text.contains(&line), "{text}");
        assert!(
            text.contains(&format!("knockoff_review_queue_written_total {queued}")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_writer_keeps_the_bound_and_flush_sees_every_entry() {
        let store = Store::open_in_memory().unwrap();
        let metrics = ServerMetrics::new();
        let recorder = ReviewRecorder::start(store.clone(), 3, metrics.clone()).unwrap();
        for i in 0..5 {
            recorder.push(entry(&format!("l{i}")));
        }
        recorder.flush().await;
        let mut ids: Vec<String> = store
            .review_queue(10)
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["l2", "l3", "l4"]);
        assert!(metrics
            .render()
            .contains("knockoff_review_queue_evicted_total 2"));
    }
}
