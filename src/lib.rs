//! knockoff: tells marketplaces which listings sell counterfeit goods.
//!
//! One path for a listing, shared by training, batch scoring and serving:
//! `reader`/HTTP JSON → [`listing::Listing`] → [`features`] → [`model`] → probability,
//! decision and reasons. Reports ([`metrics`], [`prevalence`], [`report`]) are plain data
//! first, then rendered.

pub mod brand;
pub mod currency;
pub mod decision;
pub mod features;
pub mod listing;
pub mod metrics;
pub mod model;
pub mod prevalence;
pub mod reader;
pub mod reference;
pub mod report;
pub mod reporting;
pub mod score;
pub mod server;
pub mod telemetry;
pub mod threads;
pub mod train;
