//! knockoff-serve: the real-time scoring server.
//!
//! Layers, outside in: [`router`] (axum routes, body limit, metrics middleware) →
//! handlers in [`routes`] and [`v2`] (parse, validate with [`RawListing::validate`], never
//! touch tensors) → the batching [`queue`] → one model thread that scores. The served model
//! sits behind an atomic pointer so [`AppState::reload`] swaps it without stopping traffic.
//! [`run`] adds what only a process needs: binding, signals and graceful shutdown.
//!
//! [`RawListing::validate`]: crate::listing::RawListing::validate

pub mod config;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod queue;
pub mod routes;
pub mod v2;

use crate::listing::{Listing, RawListing};
use crate::model::Model;
use arc_swap::ArcSwap;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
pub use config::{Cli, ServerConfig};
pub use error::{ErrorBody, ServerError};
use metrics::ServerMetrics;
use queue::{LoadedModel, PreparedListings, Queue, QueueOptions, ScoredListing, SubmitError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What clients wait before retrying after a 429. One second is long enough for the model
/// thread to clear several batches, short enough not to starve a pipeline.
pub const RETRY_AFTER_SECS: u64 = 1;
/// Listing ids are echoed back; bound them like the other text fields.
pub const MAX_ID_CHARS: usize = 1_000;
/// Requests with at most this many listings are featurised on the async worker that
/// received them (tens of microseconds); larger ones go to the blocking pool.
const INLINE_PREPARE_MAX: usize = 4;

/// Featurises validated listings for the queue (the part of scoring that needs no batch).
fn prepare(model: &LoadedModel, listings: Vec<Listing>, reasons: usize) -> PreparedListings {
    let prepared = model.model.prepare_all(&listings, reasons);
    PreparedListings {
        ids: listings.into_iter().map(|l| l.id).collect(),
        prepared,
    }
}

/// The name and version of a served model, as every answer reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
}

impl ModelInfo {
    fn of(model: &LoadedModel) -> Self {
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

/// Knobs for building an [`AppState`] beyond the configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateOptions {
    /// Start with the model thread paused (tests of a full queue; see [`AppState::queue`]).
    pub start_paused: bool,
}

/// Everything the handlers share; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ServerConfig,
    model: ArcSwap<LoadedModel>,
    queue: Queue,
    metrics: ServerMetrics,
    /// Serialises reloads so two concurrent ones cannot interleave load and swap.
    reload_lock: tokio::sync::Mutex<()>,
    shutting_down: AtomicBool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot load the model: {0}")]
    Model(#[from] crate::model::ArtifactError),
    #[error("cannot start the model thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

impl AppState {
    /// Serves `model` (already loaded from `config.model_path`) with `config`.
    pub fn new(config: ServerConfig, model: Model) -> Result<Self, StartError> {
        Self::with_options(config, model, StateOptions::default())
    }

    /// Loads `config.model_path` and serves it.
    pub fn load(config: ServerConfig) -> Result<Self, StartError> {
        let model = Model::load(&config.model_path)?;
        Self::new(config, model)
    }

    pub fn with_options(
        config: ServerConfig,
        mut model: Model,
        options: StateOptions,
    ) -> Result<Self, StartError> {
        config.validate()?;
        let thresholds = config.thresholds.apply(model.thresholds())?;
        model.set_thresholds(thresholds);
        let metrics = ServerMetrics::new();
        let queue = Queue::start(
            QueueOptions {
                capacity: config.queue_capacity,
                max_model_batch: config.max_model_batch,
                start_paused: options.start_paused,
            },
            metrics.clone(),
        )
        .map_err(StartError::Thread)?;
        let loaded = LoadedModel {
            model,
            path: config.model_path.clone(),
        };
        metrics.set_model_info(loaded.name(), loaded.version(), 1.0);
        Ok(AppState {
            inner: Arc::new(Inner {
                config,
                model: ArcSwap::from_pointee(loaded),
                queue,
                metrics,
                reload_lock: tokio::sync::Mutex::new(()),
                shutting_down: AtomicBool::new(false),
            }),
        })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> &ServerMetrics {
        &self.inner.metrics
    }

    /// The batching queue: its depth, and pause/resume of the model thread.
    pub fn queue(&self) -> &Queue {
        &self.inner.queue
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

    /// Marks the server as draining: readiness turns false so load balancers move away
    /// while in-flight requests finish.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Validates raw listings against `model`'s currency table and field limits. `field`
    /// names a failing field for the client: `price` for a single listing,
    /// `listings[3].price` in a batch.
    pub fn validate(
        model: &LoadedModel,
        raws: Vec<RawListing>,
        field: impl Fn(usize, &str) -> String,
    ) -> Result<Vec<Listing>, ServerError> {
        raws.into_iter()
            .enumerate()
            .map(|(i, raw)| {
                // The message starts with the full field path too: protocol clients such as
                // tritonclient only show `error`.
                let listing = raw
                    .validate(model.model.rates(), model.model.limits())
                    .map_err(|e| {
                        let field = field(i, e.field);
                        ServerError::invalid(&field, format!("{field}: {}", e.message))
                    })?;
                let id_chars = listing.id.chars().count();
                if id_chars > MAX_ID_CHARS {
                    let field = field(i, "id");
                    return Err(ServerError::invalid(
                        &field,
                        format!(
                            "{field}: is {id_chars} characters long; the limit is {MAX_ID_CHARS}"
                        ),
                    ));
                }
                Ok(listing)
            })
            .collect()
    }

    /// Queues listings for the model thread and waits for their scores. Never blocks the
    /// runtime: a full queue is answered at once with [`ServerError::QueueFull`].
    pub async fn score(
        &self,
        model: Arc<LoadedModel>,
        listings: Vec<Listing>,
        reasons: usize,
    ) -> Result<Vec<ScoredListing>, ServerError> {
        let expected = listings.len();
        self.inner.metrics.record_request_listings(expected);
        let prepared = if expected <= INLINE_PREPARE_MAX {
            prepare(&model, listings, reasons)
        } else {
            // Featurising a big request takes milliseconds: off the async workers, and
            // spread over all cores inside.
            let model = Arc::clone(&model);
            tokio::task::spawn_blocking(move || prepare(&model, listings, reasons))
                .await
                .map_err(|e| ServerError::Internal(format!("featurising failed: {e}")))?
        };
        for item in &prepared.prepared {
            if let Some(share) = item.features().known_share() {
                self.inner.metrics.record_known_term_share(share);
            }
        }
        let receiver = self
            .inner
            .queue
            .submit(model, prepared, reasons)
            .map_err(|e| match e {
                SubmitError::Full => ServerError::QueueFull {
                    retry_after_secs: RETRY_AFTER_SECS,
                },
                SubmitError::Closed => ServerError::Unavailable(e.to_string()),
            })?;
        let scored = receiver
            .await
            .map_err(|_| {
                ServerError::Unavailable("the model thread stopped before answering".into())
            })?
            .map_err(|e| ServerError::Scoring(e.to_string()))?;
        if scored.len() != expected {
            return Err(ServerError::Internal(format!(
                "{} scores for {expected} listings",
                scored.len()
            )));
        }
        Ok(scored)
    }

    /// Loads a model (from `path`, or again from the current model's directory), validates
    /// it completely and swaps it in. A model that fails to load is refused and the
    /// current one keeps serving. Requests already accepted finish on the model that
    /// accepted them.
    pub async fn reload(&self, path: Option<PathBuf>) -> Result<ReloadOutcome, ServerError> {
        let _guard = self.inner.reload_lock.lock().await;
        let path = path.unwrap_or_else(|| self.current_model().path.clone());
        let overrides = self.inner.config.thresholds;
        let load_path = path.clone();
        // Loading reads and checksums the weights: blocking work, kept off the runtime.
        let loaded = tokio::task::spawn_blocking(move || -> Result<Model, String> {
            let mut model = Model::load(&load_path).map_err(|e| e.to_string())?;
            let thresholds = overrides
                .apply(model.thresholds())
                .map_err(|e| e.to_string())?;
            model.set_thresholds(thresholds);
            Ok(model)
        })
        .await
        .map_err(|e| ServerError::Internal(format!("model loading task failed: {e}")))?;
        let model = match loaded {
            Ok(model) => model,
            Err(reason) => {
                self.inner.metrics.record_reload(false);
                tracing::warn!(path = %path.display(), %reason, "reload refused; the current model keeps serving");
                return Err(ServerError::ModelRefused(reason));
            }
        };
        let new = Arc::new(LoadedModel {
            model,
            path: path.clone(),
        });
        let previous = self.inner.model.swap(Arc::clone(&new));
        let metrics = &self.inner.metrics;
        metrics.set_model_info(previous.name(), previous.version(), 0.0);
        metrics.set_model_info(new.name(), new.version(), 1.0);
        metrics.record_reload(true);
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
}

/// The whole HTTP API over `state`, ready for `axum::serve` or in-process `oneshot` calls.
pub fn router(state: AppState) -> Router {
    let limit = state.config().max_body_bytes;
    Router::new()
        .route("/v1/score", post(routes::score))
        .route("/v2", get(v2::server_metadata))
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2/models/{name}", get(v2::model_metadata))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .route("/v2/models/{name}/infer", post(v2::infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(v2::model_version_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(v2::model_version_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(v2::version_infer),
        )
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs))
        .route(
            "/admin/reload",
            post(routes::reload).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                routes::require_admin,
            )),
        )
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Runs the server until SIGTERM or Ctrl-C, then stops accepting, lets in-flight requests
/// finish for at most `config.shutdown_timeout`, and returns. SIGHUP reloads the model.
pub async fn run(config: ServerConfig) -> Result<(), StartError> {
    tracing::info!(config = ?config, "starting knockoff-serve");
    // Install handlers before anything can be signalled: a SIGTERM or SIGHUP that arrived
    // before them would otherwise kill the process with the default action.
    let mut signals = Signals::install().map_err(StartError::Serve)?;
    let load_config = config.clone();
    let state = tokio::task::spawn_blocking(move || AppState::load(load_config))
        .await
        .map_err(|e| StartError::Serve(std::io::Error::other(e)))??;
    let model = state.model_info();
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(StartError::Serve)?;
    tracing::info!(%addr, model = %model.name, version = %model.version, "listening");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let signal_state = state.clone();
    tokio::spawn(async move {
        loop {
            match signals.next().await {
                SignalKind::Reload => {
                    tracing::info!("SIGHUP: reloading the model");
                    // Failures are logged by reload itself; the old model keeps serving.
                    let _ = signal_state.reload(None).await;
                }
                SignalKind::Stop(name) => {
                    tracing::info!(
                        signal = name,
                        "shutting down: no new connections, finishing in-flight requests"
                    );
                    let _ = stop_tx.send(());
                    return;
                }
            }
        }
    });
    let shutdown = async move {
        let _ = stop_rx.await;
    };
    match serve(listener, state, shutdown, config.shutdown_timeout).await {
        Ok(Drained::Completely) => {}
        Ok(Drained::TimedOut) => tracing::warn!(
            timeout_secs = config.shutdown_timeout.as_secs(),
            "shutdown timeout reached; abandoning requests still in flight"
        ),
        Err(e) => return Err(StartError::Serve(e)),
    }
    tracing::info!("stopped");
    Ok(())
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every in-flight request was answered.
    Completely,
    /// The timeout struck first; requests still in flight were abandoned.
    TimedOut,
}

/// Serves `state` on `listener` until `shutdown` completes; then readiness turns false,
/// no new connections are accepted, and in-flight requests get at most `timeout` to
/// finish. Separate from [`run`] so tests can drive a shutdown without process signals.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: F,
    timeout: std::time::Duration,
) -> std::io::Result<Drained>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let draining = state.clone();
    tokio::spawn(async move {
        shutdown.await;
        draining.begin_shutdown();
        let _ = stop_tx.send(true);
    });
    let mut graceful_rx = stop_rx.clone();
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        // An error means the sender is gone, which only happens after it sent.
        let _ = graceful_rx.wait_for(|stop| *stop).await;
    });
    let mut deadline_rx = stop_rx;
    let deadline = async move {
        let _ = deadline_rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(timeout).await;
    };
    tokio::select! {
        result = std::future::IntoFuture::into_future(server) => result.map(|()| Drained::Completely),
        () = deadline => Ok(Drained::TimedOut),
    }
}

enum SignalKind {
    Reload,
    Stop(&'static str),
}

/// The process signals the server reacts to.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind as Kind};
        Ok(Signals {
            terminate: signal(Kind::terminate())?,
            interrupt: signal(Kind::interrupt())?,
            hangup: signal(Kind::hangup())?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> std::io::Result<Self> {
        Ok(Signals {})
    }

    #[cfg(unix)]
    async fn next(&mut self) -> SignalKind {
        tokio::select! {
            _ = self.terminate.recv() => SignalKind::Stop("SIGTERM"),
            _ = self.interrupt.recv() => SignalKind::Stop("SIGINT"),
            _ = self.hangup.recv() => SignalKind::Reload,
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> SignalKind {
        let _ = tokio::signal::ctrl_c().await;
        SignalKind::Stop("Ctrl-C")
    }
}
