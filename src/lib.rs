//! knockoff: tells marketplaces which listings sell counterfeit goods.
//!
//! One path for a listing, shared by training, batch scoring and serving:
//! `reader`/HTTP JSON → [`listing::Listing`] → [`features`] → [`model`] → probability,
//! decision and reasons. Evaluation and prevalence ([`eval`]) are plain data first, then
//! rendered ([`report`]).

pub mod brand;
pub mod currency;
pub mod decision;
pub mod eval;
pub mod features;
pub mod fsutil;
pub mod listing;
pub mod model;
pub mod reader;
pub mod reference;
pub mod report;
pub mod score;
pub mod server;
pub mod telemetry;
pub mod threads;
pub mod train;
