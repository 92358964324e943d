//! The brand registry's data: what a rights holder registers (names, aliases, products with
//! list prices), as the store keeps it and as scoring uses it. HTTP-free and SQL-free.
//!
//! A registered brand counts as known to brand identification at once, and its list prices
//! are the usual prices of its products (see [`crate::features`]).

use serde::{Deserialize, Serialize};

pub mod jsonl;
pub mod validate;

pub use validate::{
    validate, RegistryError, ValidEntry, MAX_ALIASES, MAX_NAME_CHARS, MAX_PRODUCTS,
};

/// One product of a registered brand and its list price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisteredProduct {
    /// The product's name as the brand sells it ("Aurora tote"); its words identify it in titles.
    pub name: String,
    /// The marketplace category it is sold in ("bags"); may be empty.
    #[serde(default)]
    pub category: String,
    /// The brand's list price, in `currency`.
    pub list_price: f64,
    /// ISO 4217 code of a currency the model converts ("EUR").
    pub currency: String,
}

/// What a `PUT /v1/brands/{name}` body (or an import line) carries besides the name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandEntry {
    /// Other names the brand is sold under (a Chinese name, a short form).
    #[serde(default)]
    pub aliases: Vec<String>,
    pub products: Vec<RegisteredProduct>,
}

/// A brand as the registry holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisteredBrand {
    /// The name as registered (display form; lookups fold case, accents and spacing).
    pub name: String,
    #[serde(flatten)]
    pub entry: BrandEntry,
    /// RFC 3339 times of the first registration and of the last change.
    pub created_at: String,
    pub updated_at: String,
}

mod view;

pub use view::{RegisteredPrice, RegistryView};
