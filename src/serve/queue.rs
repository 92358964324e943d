//! Dynamic batching: handlers put featurised listings on a bounded queue, and one model
//! thread (a plain OS thread, so CPU-heavy scoring never blocks the async runtime) takes
//! whatever is waiting, up to a maximum batch size, whenever it is free.
//!
//! Each job carries the model that validated it, and a batch only ever holds jobs of one
//! model: after a hot reload, requests already queued still finish on the model they were
//! accepted under, and the old model is dropped when its last job is answered.

use super::observer::Observer;
use crate::brand::BrandMatch;
use crate::decision::Decision;
use crate::model::{Model, Prepared, Reason};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How often the idle model thread wakes to drain metric histograms.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A model as served: the artifact plus what the API reports about it.
#[derive(Debug)]
pub struct LoadedModel {
    pub model: Model,
    pub path: std::path::PathBuf,
}

impl LoadedModel {
    pub fn name(&self) -> &str {
        self.model.name()
    }

    pub fn version(&self) -> &str {
        self.model.version()
    }
}

/// One listing's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredListing {
    pub id: String,
    pub probability: f32,
    pub decision: Decision,
    pub reasons: Vec<Reason>,
    /// The known brand the listing claims or fits.
    pub brand: Option<BrandMatch>,
}

/// Why a job was not scored.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ScoringError {
    #[error("{0}")]
    Model(String),
    #[error("the model panicked while scoring this batch")]
    Panicked,
}

/// Why a job could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("queue is full")]
    Full,
    #[error("the model thread has stopped")]
    Closed,
}

pub type Reply = Result<Vec<ScoredListing>, ScoringError>;

/// Listings ready for the network: ids and features, prepared (featurised) by the caller,
/// so the model thread only runs the batched network and words the reasons.
#[derive(Debug, Default)]
pub struct PreparedListings {
    pub ids: Vec<String>,
    pub prepared: Vec<Prepared>,
}

impl PreparedListings {
    pub fn len(&self) -> usize {
        self.prepared.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prepared.is_empty()
    }
}

struct Job {
    model: Arc<LoadedModel>,
    listings: PreparedListings,
    reasons: usize,
    enqueued_at: Instant,
    reply: oneshot::Sender<Reply>,
}

#[derive(Debug, Clone, Copy)]
pub struct QueueOptions {
    /// Jobs (requests) that may wait at once.
    pub capacity: usize,
    /// Most listings per model pass; a larger single job is scored alone.
    pub max_model_batch: usize,
    /// Start with the model thread paused (see [`Queue::resume`]); for tests that need a
    /// full queue without timing games, and for warm-up orchestration.
    pub start_paused: bool,
}

/// A pause switch the model thread checks before each take.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    paused: bool,
    closed: bool,
}

impl Gate {
    fn set(&self, update: impl FnOnce(&mut GateState)) {
        // A poisoned lock only means a thread panicked while holding it; the flags stay
        // meaningful, so carry on with them.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        update(&mut state);
        self.changed.notify_all();
    }

    /// Blocks while paused; false once the queue is being dropped.
    fn wait_open(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.paused && !state.closed {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        !state.closed
    }
}

/// The handlers' side of the queue. Dropping it (with the last `AppState`) stops the
/// model thread once the queued jobs are answered.
pub struct Queue {
    sender: SyncSender<Job>,
    depth: Arc<AtomicUsize>,
    gate: Arc<Gate>,
    running: Arc<AtomicBool>,
    capacity: usize,
    observer: Arc<dyn Observer>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("depth", &self.depth())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Queue {
    /// Starts the model thread.
    pub fn start(options: QueueOptions, observer: Arc<dyn Observer>) -> std::io::Result<Queue> {
        let capacity = options.capacity.max(1);
        let (sender, receiver) = mpsc::sync_channel::<Job>(capacity);
        let depth = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Gate::default());
        gate.set(|s| s.paused = options.start_paused);
        let running = Arc::new(AtomicBool::new(true));
        let worker = Worker {
            receiver,
            depth: Arc::clone(&depth),
            gate: Arc::clone(&gate),
            max_model_batch: options.max_model_batch.max(1),
            observer: Arc::clone(&observer),
            carry: None,
        };
        let flag = Arc::clone(&running);
        std::thread::Builder::new()
            .name("knockoff-model".into())
            .spawn(move || {
                worker.run();
                flag.store(false, Ordering::SeqCst);
            })?;
        observer.queue_capacity(capacity);
        observer.queue_depth_changed(0.0);
        Ok(Queue {
            sender,
            depth,
            gate,
            running,
            capacity,
            observer,
        })
    }

    /// Queues listings for scoring without waiting: a full queue is an immediate error,
    /// which callers answer at once (HTTP: 429).
    pub fn submit(
        &self,
        model: Arc<LoadedModel>,
        listings: PreparedListings,
        reasons: usize,
    ) -> Result<oneshot::Receiver<Reply>, SubmitError> {
        let (reply, receiver) = oneshot::channel();
        let job = Job {
            model,
            listings,
            reasons,
            enqueued_at: Instant::now(),
            reply,
        };
        // Count before sending so the worker's decrement can never underflow the counter.
        self.depth.fetch_add(1, Ordering::SeqCst);
        match self.sender.try_send(job) {
            Ok(()) => {
                self.observer.queue_depth_changed(1.0);
                Ok(receiver)
            }
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => SubmitError::Full,
                    TrySendError::Disconnected(_) => SubmitError::Closed,
                })
            }
        }
    }

    /// Requests waiting for the model thread.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::SeqCst)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the model thread is alive (it only stops when the queue is dropped).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Holds the model thread before its next take; queued requests wait.
    pub fn pause(&self) {
        self.gate.set(|s| s.paused = true);
    }

    pub fn resume(&self) {
        self.gate.set(|s| s.paused = false);
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // Wake a paused worker so it can see the channel close and exit.
        self.gate.set(|s| s.closed = true);
    }
}

struct Worker {
    receiver: mpsc::Receiver<Job>,
    depth: Arc<AtomicUsize>,
    gate: Arc<Gate>,
    max_model_batch: usize,
    observer: Arc<dyn Observer>,
    /// A job taken from the channel that did not fit the previous batch.
    carry: Option<Job>,
}

impl Worker {
    fn run(mut self) {
        let mut last_upkeep = Instant::now();
        loop {
            if !self.gate.wait_open() {
                // Dropped while paused: answer nothing more (the receivers see a closed
                // channel and their handlers answer 503).
                break;
            }
            let first = match self.carry.take() {
                Some(job) => job,
                None => match self.receiver.recv_timeout(UPKEEP_INTERVAL) {
                    Ok(job) => self.taken(job),
                    Err(RecvTimeoutError::Timeout) => {
                        self.observer.upkeep();
                        last_upkeep = Instant::now();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            let batch = self.fill(first);
            self.score(batch);
            if last_upkeep.elapsed() >= UPKEEP_INTERVAL {
                self.observer.upkeep();
                last_upkeep = Instant::now();
            }
        }
        self.observer.upkeep();
    }

    fn taken(&self, job: Job) -> Job {
        self.depth.fetch_sub(1, Ordering::SeqCst);
        self.observer.queue_depth_changed(-1.0);
        job
    }

    /// Adds whatever else is already waiting, while it fits and uses the same model.
    fn fill(&mut self, first: Job) -> Vec<Job> {
        let mut listings = first.listings.len();
        let mut batch = vec![first];
        while listings < self.max_model_batch {
            let Ok(job) = self.receiver.try_recv() else {
                break;
            };
            let job = self.taken(job);
            let same_model = Arc::ptr_eq(&job.model, &batch[0].model);
            if same_model && listings + job.listings.len() <= self.max_model_batch {
                listings += job.listings.len();
                batch.push(job);
            } else {
                self.carry = Some(job);
                break;
            }
        }
        batch
    }

    fn score(&self, jobs: Vec<Job>) {
        // A client that gave up (disconnected) no longer needs its answer: skip its work.
        let jobs: Vec<Job> = jobs.into_iter().filter(|j| !j.reply.is_closed()).collect();
        let Some(model) = jobs.first().map(|j| Arc::clone(&j.model)) else {
            return;
        };
        let started = Instant::now();
        for job in &jobs {
            self.observer.queue_wait(started - job.enqueued_at);
        }
        let total = jobs.iter().map(|j| j.listings.len()).sum();
        let mut listings = PreparedListings {
            ids: Vec::with_capacity(total),
            prepared: Vec::with_capacity(total),
        };
        let mut parts = Vec::with_capacity(jobs.len());
        for job in jobs {
            let n = job.listings.len();
            listings.ids.extend(job.listings.ids);
            listings.prepared.extend(job.listings.prepared);
            parts.push((n, job.reasons, job.reply));
        }
        let reasons: Vec<usize> = parts
            .iter()
            .flat_map(|(n, r, _)| std::iter::repeat_n(*r, *n))
            .collect();

        // A panic inside the model must cost this batch, not the server: without the
        // model thread every later request would fail.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            score_prepared(&model, listings, &reasons)
        }));
        let outcome = match outcome {
            Ok(Ok(scored)) => Ok(scored),
            Ok(Err(e)) => Err(ScoringError::Model(e)),
            Err(_) => Err(ScoringError::Panicked),
        };
        self.observer.batch(total, started.elapsed());
        match outcome {
            Ok(scored) => {
                self.observer.scored(&scored);
                let mut scored = scored.into_iter();
                for (n, _, reply) in parts {
                    // The receiver may have gone meanwhile; nothing to do then.
                    let _ = reply.send(Ok(scored.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                self.observer.scoring_failure();
                tracing::error!(error = %e, listings = total, "scoring a batch failed");
                for (_, _, reply) in parts {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Runs the network over prepared listings: calibrated probability and decision, and
/// `reasons[i]` explanations for listing `i`.
fn score_prepared(
    model: &LoadedModel,
    listings: PreparedListings,
    reasons: &[usize],
) -> Result<Vec<ScoredListing>, String> {
    let assessed = model
        .model
        .assess_prepared(&listings.prepared, reasons)
        .map_err(|e| e.to_string())?;
    if assessed.len() != listings.len() || listings.ids.len() != listings.len() {
        return Err(format!(
            "model returned {} scores for {} listings",
            assessed.len(),
            listings.len()
        ));
    }
    let brands = listings.prepared.iter().map(|p| p.features().brand.clone());
    Ok(listings
        .ids
        .into_iter()
        .zip(assessed)
        .zip(brands)
        .map(|((id, a), brand)| ScoredListing {
            id,
            probability: a.score.probability,
            decision: a.score.decision,
            reasons: a.reasons,
            brand,
        })
        .collect())
}
