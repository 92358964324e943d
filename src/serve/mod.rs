//! The scoring core, free of HTTP: validate listings, featurise them, queue them for the
//! one model thread that scores in dynamic batches, and reload the model by atomic swap.
//!
//! [`ScoringCore`] ([`state`]) is what a front door holds; [`queue`] is the bounded queue
//! and the model thread; [`ServeError`] ([`error`]) is every way the core refuses work;
//! [`Observer`] ([`observer`]) is how it reports measurements without knowing a metrics
//! system; [`overrides`] checks operator thresholds for serving and batch scoring alike.
//! [`admission`] bounds the request bytes in flight across all of it.
//! The HTTP layer (`crate::http`) is one front door onto it.

pub mod admission;
pub mod error;
pub mod observer;
pub mod overrides;
pub mod queue;
pub mod state;

pub use admission::{Admission, AdmissionOptions, Ticket};
pub use error::ServeError;
pub use observer::Observer;
pub use state::{CoreOptions, ModelInfo, ReloadOutcome, ScoringCore, StateOptions};
