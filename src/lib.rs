//! knockoff: tells marketplaces which listings sell counterfeit goods.
//!
//! One path for a listing, shared by training, batch scoring and serving:
//! [`data::reader`]/HTTP JSON → [`data::listing::Listing`] → [`features`] → [`model`] → probability,
//! decision and reasons. Reports ([`metrics`], [`prevalence`], [`report`]) are plain data
//! first, then rendered.

pub mod batch;
pub mod data;
pub mod decision;
pub mod features;
pub mod http;
pub mod metrics;
pub mod model;
pub mod prevalence;
pub mod reference;
pub mod report;
pub mod reporting;
pub mod serve;
pub mod telemetry;
pub mod threads;
pub mod train;
