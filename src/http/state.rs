//! What the HTTP handlers share: the scoring core, the server's configuration and its
//! Prometheus metrics; cheap to clone.

use super::config::{ConfigError, ServerConfig};
use super::error::ServerError;
use super::metrics::ServerMetrics;
use super::review_queue::ReviewRecorder;
use crate::model::Model;
use crate::serve::queue::Queue;
use crate::serve::{ModelInfo, ScoringCore, ServeError, StateOptions};
use crate::store::{Store, StoreError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::FromRef;
use std::sync::Arc;

/// Everything the handlers share; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ServerConfig,
    core: ScoringCore,
    metrics: ServerMetrics,
    store: Store,
    reviews: ReviewRecorder,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot load the model: {0}")]
    Model(#[from] crate::model::ArtifactError),
    #[error(transparent)]
    Core(#[from] ServeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the review queue writer: {0}")]
    ReviewQueue(std::io::Error),
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
        model: Model,
        options: StateOptions,
    ) -> Result<Self, StartError> {
        config.validate()?;
        let metrics = ServerMetrics::new();
        let core = ScoringCore::start(
            model,
            config.model_path.clone(),
            config.core_options(options),
            Arc::new(metrics.clone()),
        )?;
        let store = match &config.store_path {
            Some(path) => Store::open(path)?,
            None => Store::open_in_memory()?,
        };
        // Scoring uses the registry as stored at start, then after every change.
        core.use_registry(store.brands()?);
        let listener = core.clone();
        store.on_brands_change(move |brands| listener.use_registry(brands));
        let reviews =
            ReviewRecorder::start(store.clone(), config.review_queue_max, metrics.clone())
                .map_err(StartError::ReviewQueue)?;
        tracing::info!(
            store = store.label(),
            brands = core.registry().len(),
            review_queue_max = config.review_queue_max,
            "store opened"
        );
        Ok(AppState {
            inner: Arc::new(Inner {
                config,
                core,
                metrics,
                store,
                reviews,
            }),
        })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> &ServerMetrics {
        &self.inner.metrics
    }

    /// A request body as read, or why it could not be (413 above the body limit).
    pub fn body(&self, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ServerError> {
        body.map_err(|r| ServerError::from_body_rejection(r, self.config().max_body_bytes))
    }

    /// The scoring core the handlers hand their work to.
    pub fn core(&self) -> &ScoringCore {
        &self.inner.core
    }

    /// The embedded store (the brand registry, the review queue and reviews).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Where handlers put the listings they decided `review`.
    pub fn review_recorder(&self) -> &ReviewRecorder {
        &self.inner.reviews
    }

    /// The batching queue: its depth, and pause/resume of the model thread.
    pub fn queue(&self) -> &Queue {
        self.inner.core.queue()
    }

    pub fn model_info(&self) -> ModelInfo {
        self.inner.core.model_info()
    }

    /// Ready means: a model is loaded, the model thread runs, and no shutdown has begun.
    pub fn is_ready(&self) -> bool {
        self.inner.core.is_ready()
    }

    /// Marks the server as draining: readiness turns false so load balancers move away
    /// while in-flight requests finish.
    pub fn begin_shutdown(&self) {
        self.inner.core.begin_shutdown();
    }
}

/// Lets handlers and middleware that only need the metrics take `State<ServerMetrics>`.
impl FromRef<AppState> for ServerMetrics {
    fn from_ref(state: &AppState) -> Self {
        state.inner.metrics.clone()
    }
}
