//! Listings as they arrive, from files or requests, up to one validated [`listing::Listing`].
//!
//! [`reader`] streams rows from CSV, gzip-compressed CSV and JSON Lines files;
//! [`listing::RawListing::validate`] is the one check every listing goes through, whether it
//! came from a file or over HTTP; [`currency`] converts prices into the base currency.

pub mod currency;
pub mod listing;
pub mod reader;
pub mod reviews;
