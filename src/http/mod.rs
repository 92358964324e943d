//! knockoff-serve's HTTP layer: one front door onto the scoring core (`crate::serve`).
//!
//! Outside in: [`lifecycle`] (binding, signals, graceful shutdown) → [`router`] (routes,
//! body limit, [`metrics`] middleware, [`admission`] by bytes in flight) → handlers in [`v1`], [`v2`], [`brands`], [`reviews`] and [`admin`] (parse
//! and check requests, never touch tensors) → the core behind [`AppState`]. Every error
//! answer comes from [`error`]; [`config`] reads flags and environment; [`openapi`]
//! describes the API; [`review_queue`] writes the listings decided `review` to the store
//! off the request path.

pub mod admin;
pub mod admission;
pub mod brands;
pub mod config;
pub mod error;
pub mod lifecycle;
pub mod metrics;
pub mod openapi;
pub mod review_queue;
pub mod reviews;
pub mod router;
pub mod state;
pub mod v1;
pub mod v2;

pub use config::{Cli, ServerConfig};
pub use error::{ErrorBody, ServerError};
pub use lifecycle::{run, serve, Drained};
pub use router::router;
pub use state::{AppState, StartError};
