//! The served model and everything scoring needs around it: validation against the
//! model's tables, featurising (on the blocking pool for big requests), the queue to the
//! model thread, readiness, and reload by atomic swap.

use super::admission::{Admission, AdmissionOptions};
use super::error::ServeError;
use super::observer::Observer;
use super::overrides::ThresholdOverrides;
use super::queue::{
    LoadedModel, PreparedListings, Queue, QueueOptions, ScoredListing, SubmitError,
};
use crate::data::listing::{Listing, RawListing};
use crate::model::Model;
use crate::registry::RegisteredBrand;
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What callers wait before retrying after a full queue. One second is long enough for
/// the model thread to clear several batches, short enough not to starve a pipeline.
pub const RETRY_AFTER_SECS: u64 = 1;
/// Requests with at most this many listings are featurised on the async worker that
/// received them (tens of microseconds); larger ones go to the blocking pool.
const INLINE_PREPARE_MAX: usize = 4;
/// Big requests featurised at once. Each spreads over all cores inside, so more at once
/// only interleaves them: every one finishes late and all their features sit in memory.
/// Admitted requests wait their turn here (they hold their admission ticket meanwhile).
const CONCURRENT_PREPARES: usize = 2;

/// Featurises validated listings for the queue (the part of scoring that needs no batch).
fn prepare(model: &LoadedModel, listings: &[Listing], reasons: usize) -> PreparedListings {
    PreparedListings {
        ids: listings.iter().map(|l| l.id.clone()).collect(),
        prepared: model.model.prepare_all(listings, reasons),
    }
}

/// The name and version of a served model, as every answer reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
}

impl ModelInfo {
    pub fn of(model: &LoadedModel) -> Self {
        ModelInfo {
            name: model.name().to_string(),
            version: model.version().to_string(),
        }
    }
}

/// The outcome of a successful reload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReloadOutcome {
    /// The model now serving.
    pub model: ModelInfo,
    /// The model it replaced (still finishing the requests it had accepted).
    pub previous: ModelInfo,
    /// The directory the new model was loaded from.
    #[schema(value_type = String)]
    pub path: PathBuf,
}

/// Knobs for starting a core beyond its configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateOptions {
    /// Start with the model thread paused (tests of a full queue; see [`ScoringCore::queue`]).
    pub start_paused: bool,
}

/// How the core runs: the queue's bounds and the thresholds applied to every model.
#[derive(Debug, Clone, Copy)]
pub struct CoreOptions {
    /// Requests that may wait for the model thread at once.
    pub queue_capacity: usize,
    /// Most listings per model pass.
    pub max_model_batch: usize,
    /// Applied to the first model and to every reloaded one.
    pub thresholds: ThresholdOverrides,
    /// The bound on request bytes in flight.
    pub admission: AdmissionOptions,
    pub state: StateOptions,
}

/// The scoring core: everything a front door (HTTP, an embedder) shares; cheap to clone.
#[derive(Clone, Debug)]
pub struct ScoringCore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    model: ArcSwap<LoadedModel>,
    queue: Queue,
    admission: Admission,
    /// Turns for featurising big requests ([`CONCURRENT_PREPARES`]).
    preparing: tokio::sync::Semaphore,
    thresholds: ThresholdOverrides,
    observer: Arc<dyn Observer>,
    /// Serialises reloads so two concurrent ones cannot interleave load and swap.
    reload_lock: tokio::sync::Mutex<()>,
    shutting_down: AtomicBool,
    /// The brand registry as of its last change; scoring uses it from the next request on.
    registry: ArcSwap<Vec<RegisteredBrand>>,
    /// Serialises registry changes.
    registry_lock: std::sync::Mutex<()>,
}

impl ScoringCore {
    /// Serves `model`, loaded from `path`, with the threshold overrides applied, and
    /// starts the model thread.
    pub fn start(
        model: Model,
        path: PathBuf,
        options: CoreOptions,
        observer: Arc<dyn Observer>,
    ) -> Result<Self, ServeError> {
        let model = options.thresholds.apply_to(model)?;
        let queue = Queue::start(
            QueueOptions {
                capacity: options.queue_capacity,
                max_model_batch: options.max_model_batch,
                start_paused: options.state.start_paused,
            },
            Arc::clone(&observer),
        )
        .map_err(ServeError::Thread)?;
        let loaded = LoadedModel { model, path };
        observer.model_serving(loaded.name(), loaded.version(), true);
        Ok(ScoringCore {
            inner: Arc::new(Inner {
                model: ArcSwap::from_pointee(loaded),
                queue,
                admission: Admission::new(options.admission),
                preparing: tokio::sync::Semaphore::new(CONCURRENT_PREPARES),
                thresholds: options.thresholds,
                observer,
                reload_lock: tokio::sync::Mutex::new(()),
                shutting_down: AtomicBool::new(false),
                registry: ArcSwap::from_pointee(Vec::new()),
                registry_lock: std::sync::Mutex::new(()),
            }),
        })
    }

    /// The batching queue: its depth, and pause/resume of the model thread.
    pub fn queue(&self) -> &Queue {
        &self.inner.queue
    }

    /// The bound on request bytes in flight, which front doors take tickets from before
    /// reading a request.
    pub fn admission(&self) -> &Admission {
        &self.inner.admission
    }

    /// Scores from the next request on with these registered brands (the whole registry,
    /// as the store holds it after a change).
    pub fn use_registry(&self, brands: Vec<RegisteredBrand>) {
        // Two changes at once must not leave the older one in the model.
        let _guard = self
            .inner
            .registry_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.inner.registry.store(Arc::new(brands));
        self.apply_registry(&self.current_model());
    }

    /// Gives `model` the registry as it is now.
    fn apply_registry(&self, model: &LoadedModel) {
        let brands = self.inner.registry.load();
        let view = model.model.use_registry(&brands);
        tracing::debug!(
            brands = brands.len(),
            skipped_products = view.skipped_products(),
            model = %model.version(),
            "registry in use"
        );
    }

    /// The registered brands scoring uses now.
    pub fn registry(&self) -> Arc<Vec<RegisteredBrand>> {
        self.inner.registry.load_full()
    }

    /// The model serving right now. Holding the `Arc` keeps that model alive even if a
    /// reload replaces it meanwhile.
    pub fn current_model(&self) -> Arc<LoadedModel> {
        self.inner.model.load_full()
    }

    pub fn model_info(&self) -> ModelInfo {
        ModelInfo::of(&self.current_model())
    }

    /// Ready means: a model is loaded, the model thread runs, and no shutdown has begun.
    pub fn is_ready(&self) -> bool {
        self.inner.queue.is_running() && !self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Marks the core as draining: readiness turns false so load balancers move away
    /// while in-flight requests finish.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Validates raw listings against `model`'s currency table and field limits. `field`
    /// names a failing field for the caller: `price` for a single listing,
    /// `listings[3].price` in a batch.
    pub fn validate(
        model: &LoadedModel,
        raws: Vec<RawListing>,
        field: impl Fn(usize, &str) -> String,
    ) -> Result<Vec<Listing>, ServeError> {
        raws.into_iter()
            .enumerate()
            .map(|(i, raw)| {
                raw.validate(model.model.rates(), model.model.limits())
                    .map_err(|e| ServeError::InvalidListing {
                        field: field(i, e.field),
                        reason: e.message,
                    })
            })
            .collect()
    }

    /// Queues listings for the model thread and waits for their scores. Never blocks the
    /// runtime: a full queue is answered at once with [`ServeError::QueueFull`].
    pub async fn score(
        &self,
        model: Arc<LoadedModel>,
        listings: Vec<Listing>,
        reasons: usize,
    ) -> Result<Vec<ScoredListing>, ServeError> {
        self.score_keeping(model, listings, reasons)
            .await
            .map(|(_, scored)| scored)
    }

    /// [`ScoringCore::score`], giving the listings back beside their scores (in the same
    /// order), for callers that keep some of them (the review queue).
    pub async fn score_keeping(
        &self,
        model: Arc<LoadedModel>,
        listings: Vec<Listing>,
        reasons: usize,
    ) -> Result<(Vec<Listing>, Vec<ScoredListing>), ServeError> {
        let expected = listings.len();
        let observer = &self.inner.observer;
        observer.request_listings(expected);
        let (prepared, listings) = if expected <= INLINE_PREPARE_MAX {
            (prepare(&model, &listings, reasons), listings)
        } else {
            // Featurising a big request takes milliseconds: off the async workers, and
            // spread over all cores inside.
            let _turn =
                self.inner.preparing.acquire().await.map_err(|_| {
                    ServeError::Internal("the featurising turns were closed".into())
                })?;
            let model = Arc::clone(&model);
            tokio::task::spawn_blocking(move || (prepare(&model, &listings, reasons), listings))
                .await
                .map_err(|e| ServeError::Internal(format!("featurising failed: {e}")))?
        };
        for item in &prepared.prepared {
            if let Some(share) = item.features().known_share() {
                observer.known_term_share(share);
            }
        }
        let receiver = self
            .inner
            .queue
            .submit(model, prepared, reasons)
            .map_err(|e| match e {
                SubmitError::Full => ServeError::QueueFull {
                    retry_after_secs: RETRY_AFTER_SECS,
                },
                SubmitError::Closed => ServeError::ShuttingDown,
            })?;
        let scored = receiver
            .await
            .map_err(|_| ServeError::Abandoned)?
            .map_err(|e| ServeError::Model(e.to_string()))?;
        if scored.len() != expected {
            return Err(ServeError::Internal(format!(
                "{} scores for {expected} listings",
                scored.len()
            )));
        }
        Ok((listings, scored))
    }

    /// Loads a model (from `path`, or again from the current model's directory), validates
    /// it completely and swaps it in. A model that fails to load is refused and the
    /// current one keeps serving. Requests already accepted finish on the model that
    /// accepted them.
    pub async fn reload(&self, path: Option<PathBuf>) -> Result<ReloadOutcome, ServeError> {
        let _guard = self.inner.reload_lock.lock().await;
        let path = path.unwrap_or_else(|| self.current_model().path.clone());
        let model = match self.load_checked(path.clone()).await? {
            Ok(model) => model,
            Err(reason) => {
                self.inner.observer.reload(false);
                tracing::warn!(path = %path.display(), %reason, "reload refused; the current model keeps serving");
                return Err(ServeError::ModelRefused(reason));
            }
        };
        let new = Arc::new(LoadedModel {
            model,
            path: path.clone(),
        });
        self.apply_registry(&new);
        let previous = self.inner.model.swap(Arc::clone(&new));
        // A registry change between the line above and the swap went to the old model.
        self.apply_registry(&new);
        let observer = &self.inner.observer;
        observer.model_serving(previous.name(), previous.version(), false);
        observer.model_serving(new.name(), new.version(), true);
        observer.reload(true);
        let outcome = ReloadOutcome {
            model: ModelInfo::of(&new),
            previous: ModelInfo::of(&previous),
            path,
        };
        tracing::info!(
            model = %outcome.model.name, version = %outcome.model.version,
            previous = %outcome.previous.name, previous_version = %outcome.previous.version,
            path = %outcome.path.display(), "model reloaded"
        );
        Ok(outcome)
    }

    /// Loads `path` and applies the threshold overrides, off the runtime (loading reads
    /// and checksums the weights). The inner error is why the model was refused.
    async fn load_checked(&self, path: PathBuf) -> Result<Result<Model, String>, ServeError> {
        let overrides = self.inner.thresholds;
        tokio::task::spawn_blocking(move || -> Result<Model, String> {
            let model = Model::load(&path).map_err(|e| e.to_string())?;
            overrides.apply_to(model).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| ServeError::Internal(format!("model loading task failed: {e}")))
    }
}
