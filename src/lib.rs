//! knockoff: tells marketplaces which listings sell counterfeit goods.
//!
//! One path for a listing, shared by training, batch scoring and serving:
//! [`data::reader`]/HTTP JSON → [`data::listing::Listing`] → [`features`] → [`model`] →
//! probability, decision and reasons. Evaluation and prevalence ([`eval`]) are plain data
//! first, then rendered ([`report`]).

pub mod batch;
pub mod brand;
pub mod data;
pub mod decision;
pub mod eval;
pub mod features;
pub mod fsutil;
pub mod http;
pub mod model;
pub mod reference;
pub mod registry;
pub mod report;
pub mod serve;
pub mod store;
pub mod telemetry;
pub mod threads;
pub mod train;
