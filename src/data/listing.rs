//! A listing as users send it (`RawListing`) and as the model sees it (`Listing`), with the
//! one validation step between them that files, JSON Lines and HTTP requests all go through.

use crate::data::currency::CurrencyRates;
use serde::{Deserialize, Serialize};

/// Listing ids are echoed back in every answer and output row; bound them like the text
/// fields. A fixed bound, not a model setting, so model directories keep their format.
pub const MAX_ID_CHARS: usize = 1_000;

/// Upper bounds on field sizes; longer text is refused rather than truncated silently.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FieldLimits {
    pub max_title_chars: usize,
    pub max_text_chars: usize,
}

impl Default for FieldLimits {
    fn default() -> Self {
        FieldLimits {
            max_title_chars: 1_000,
            max_text_chars: 20_000,
        }
    }
}

/// A price as it arrives: JSON may carry a number or a string, CSV always a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum RawPrice {
    Number(f64),
    Text(String),
}

/// An identifier as it arrives: pipelines send both `"id": "a-1"` and `"id": 17`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum RawId {
    Integer(i64),
    Text(String),
}

impl RawId {
    pub fn into_string(self) -> String {
        match self {
            RawId::Integer(n) => n.to_string(),
            RawId::Text(s) => s,
        }
    }
}

/// An unvalidated listing, field for field as the user gave it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RawListing {
    #[serde(default)]
    pub id: Option<RawId>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub price: Option<RawPrice>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
}

/// A price converted into the rates table's base currency, with what the seller wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub amount: f64,
    pub currency: String,
    pub base_amount: f64,
}

/// A validated listing: non-empty title, a non-negative price in a known currency or none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    pub id: String,
    pub title: String,
    pub description: String,
    pub price: Option<Price>,
    pub brand: String,
    pub category: String,
}

impl Listing {
    /// A 64-bit key of what a buyer sees (title, description, price and currency, brand,
    /// category), not the id: the same content listed again under another id has the same
    /// key, and any edit changes it. Prices compare to the cent.
    pub fn content_key(&self) -> u64 {
        let mut text = String::with_capacity(
            self.title.len() + self.description.len() + self.brand.len() + 64,
        );
        for field in [&self.title, &self.description, &self.brand, &self.category] {
            text.push_str(field);
            text.push('\u{1f}');
        }
        if let Some(price) = &self.price {
            text.push_str(&format!("{:.2}\u{1f}{}", price.amount, price.currency));
        }
        xxhash_rust::xxh3::xxh3_64(text.as_bytes())
    }
}

/// Why a listing was refused, naming the field so a user can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("field `{field}`: {message}")]
pub struct ListingError {
    pub field: &'static str,
    pub message: String,
}

impl ListingError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        ListingError {
            field,
            message: message.into(),
        }
    }
}

fn optional_text(
    field: &'static str,
    value: Option<String>,
    limit: usize,
) -> Result<String, ListingError> {
    let value = value.unwrap_or_default();
    let trimmed = value.trim();
    let chars = trimmed.chars().count();
    if chars > limit {
        return Err(ListingError::new(
            field,
            format!("is {chars} characters long; the limit is {limit}"),
        ));
    }
    Ok(trimmed.to_string())
}

fn parse_amount(raw: RawPrice) -> Result<Option<f64>, ListingError> {
    let amount = match raw {
        RawPrice::Number(n) => n,
        RawPrice::Text(text) => {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse::<f64>()
                .map_err(|_| ListingError::new("price", format!("`{text}` is not a number")))?
        }
    };
    if !amount.is_finite() {
        return Err(ListingError::new("price", "must be a finite number"));
    }
    if amount < 0.0 {
        return Err(ListingError::new(
            "price",
            format!("must not be negative (got {amount})"),
        ));
    }
    Ok(Some(amount))
}

/// Refuses an id longer than [`MAX_ID_CHARS`]; it is kept as given (not trimmed).
fn checked_id(raw: Option<RawId>) -> Result<String, ListingError> {
    let id = raw.map(RawId::into_string).unwrap_or_default();
    let chars = id.chars().count();
    if chars > MAX_ID_CHARS {
        return Err(ListingError::new(
            "id",
            format!("is {chars} characters long; the limit is {MAX_ID_CHARS}"),
        ));
    }
    Ok(id)
}

impl RawListing {
    /// Validates every field; the first problem found is returned with its field name.
    /// Files, JSON Lines and HTTP requests all go through here, so all get the same limits.
    pub fn validate(
        self,
        rates: &CurrencyRates,
        limits: &FieldLimits,
    ) -> Result<Listing, ListingError> {
        let raw_id = self.id;
        let title = optional_text("title", self.title, limits.max_title_chars)?;
        if title.is_empty() {
            return Err(ListingError::new(
                "title",
                "is required and must not be empty",
            ));
        }
        let description = optional_text("description", self.description, limits.max_text_chars)?;
        let brand = optional_text("brand", self.brand, limits.max_title_chars)?;
        let category = optional_text("category", self.category, limits.max_title_chars)?;

        let currency = self
            .currency
            .map(|c| CurrencyRates::normalise_code(&c))
            .filter(|c| !c.is_empty());
        if let Some(code) = &currency {
            if rates.rate(code).is_none() {
                let known: Vec<&str> = rates.rates.keys().map(String::as_str).collect();
                return Err(ListingError::new(
                    "currency",
                    format!("unknown currency `{code}` (known: {})", known.join(", ")),
                ));
            }
        }
        let amount = match self.price {
            Some(raw) => parse_amount(raw)?,
            None => None,
        };
        let price = match (amount, currency) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(ListingError::new(
                    "currency",
                    "is required when a price is given",
                ))
            }
            (Some(amount), Some(currency)) => {
                // Known to be present: the currency was checked against the table above.
                let base_amount = rates.to_base(amount, &currency).unwrap_or(f64::NAN);
                Some(Price {
                    amount,
                    currency,
                    base_amount,
                })
            }
        };
        // Checked last: a listing with several problems has always been refused for the
        // others first, and HTTP answers name the same field as before.
        let id = checked_id(raw_id)?;
        Ok(Listing {
            id,
            title,
            description,
            price,
            brand,
            category,
        })
    }
}

/// A validated listing written back in the schema it arrived in (empty fields left out,
/// the price in the seller's currency): validating it again gives the same listing. What
/// the review queue and review exports store.
impl From<&Listing> for RawListing {
    fn from(listing: &Listing) -> Self {
        let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
        RawListing {
            id: text(&listing.id).map(RawId::Text),
            title: text(&listing.title),
            description: text(&listing.description),
            price: listing.price.as_ref().map(|p| RawPrice::Number(p.amount)),
            currency: listing.price.as_ref().map(|p| p.currency.clone()),
            brand: text(&listing.brand),
            category: text(&listing.category),
        }
    }
}

/// Parses a training label: `0`/`1` (also `true`/`false`), anything else is an error.
pub fn parse_label(text: &str) -> Result<bool, ListingError> {
    match text.trim() {
        "1" | "1.0" | "true" => Ok(true),
        "0" | "0.0" | "false" => Ok(false),
        "" => Err(ListingError::new("label", "is required for training")),
        other => Err(ListingError::new(
            "label",
            format!("must be 0 or 1, got `{other}`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(title: &str, price: Option<RawPrice>, currency: Option<&str>) -> RawListing {
        RawListing {
            id: Some(RawId::Text("x-1".into())),
            title: Some(title.into()),
            price,
            currency: currency.map(String::from),
            ..Default::default()
        }
    }

    fn check(r: RawListing) -> Result<Listing, ListingError> {
        r.validate(&CurrencyRates::default(), &FieldLimits::default())
    }

    #[test]
    fn valid_listing_converts_price_to_base_currency() {
        let l = check(raw(
            " Rolex 潜航者 ",
            Some(RawPrice::Text("100".into())),
            Some("cny"),
        ))
        .unwrap();
        assert_eq!(l.title, "Rolex 潜航者");
        let p = l.price.unwrap();
        assert_eq!(p.currency, "CNY");
        assert!((p.base_amount - 13.8).abs() < 1e-9);
    }

    #[test]
    fn empty_price_means_missing_not_zero() {
        let l = check(raw("mug", Some(RawPrice::Text("  ".into())), Some("USD"))).unwrap();
        assert_eq!(l.price, None);
        let l = check(raw("mug", None, None)).unwrap();
        assert_eq!(l.price, None);
    }

    #[test]
    fn errors_name_the_field() {
        let e = check(raw("", None, None)).unwrap_err();
        assert_eq!(e.field, "title");
        let e = check(raw("mug", Some(RawPrice::Number(-1.0)), Some("USD"))).unwrap_err();
        assert_eq!(e.field, "price");
        assert!(e.to_string().contains("negative"));
        let e = check(raw(
            "mug",
            Some(RawPrice::Text("12,5x".into())),
            Some("USD"),
        ))
        .unwrap_err();
        assert_eq!(e.field, "price");
        let e = check(raw("mug", Some(RawPrice::Number(3.0)), Some("XYZ"))).unwrap_err();
        assert_eq!(e.field, "currency");
        assert!(e.message.contains("XYZ"));
        let e = check(raw("mug", Some(RawPrice::Number(3.0)), None)).unwrap_err();
        assert_eq!(e.field, "currency");
    }

    #[test]
    fn oversized_fields_are_refused() {
        let long = "a".repeat(1_001);
        let e = check(raw(&long, None, None)).unwrap_err();
        assert_eq!(e.field, "title");
        assert!(e.message.contains("limit"));
    }

    #[test]
    fn overlong_ids_are_refused_for_every_source() {
        let mut r = raw("mug", None, None);
        r.id = Some(RawId::Text("é".repeat(MAX_ID_CHARS)));
        assert_eq!(check(r.clone()).unwrap().id.chars().count(), MAX_ID_CHARS);
        r.id = Some(RawId::Text("é".repeat(MAX_ID_CHARS + 1)));
        let e = check(r.clone()).unwrap_err();
        assert_eq!(e.field, "id");
        assert_eq!(e.message, "is 1001 characters long; the limit is 1000");
        // Other problems are named first, as they always were over HTTP.
        r.title = None;
        assert_eq!(check(r).unwrap_err().field, "title");
    }

    #[test]
    fn json_accepts_numeric_ids_and_prices() {
        let r: RawListing = serde_json::from_str(
            r#"{"id": 17, "title": "bag", "price": 12.5, "currency": "EUR", "extra": 1}"#,
        )
        .unwrap();
        let l = check(r).unwrap();
        assert_eq!(l.id, "17");
        assert_eq!(l.price.unwrap().amount, 12.5);
    }

    #[test]
    fn content_key_ignores_the_id_and_changes_with_any_field() {
        let a = check(raw(
            "Aurora tote",
            Some(RawPrice::Number(42.0)),
            Some("EUR"),
        ))
        .unwrap();
        let mut same = a.clone();
        same.id = "another-id".into();
        assert_eq!(a.content_key(), same.content_key());
        let mut edits = Vec::new();
        let mut e = a.clone();
        e.title.push('!');
        edits.push(e);
        let mut e = a.clone();
        e.description = "new".into();
        edits.push(e);
        let mut e = a.clone();
        e.brand = "Verdanne".into();
        edits.push(e);
        let mut e = a.clone();
        e.category = "bags".into();
        edits.push(e);
        let mut e = a.clone();
        e.price.as_mut().unwrap().amount = 42.01;
        edits.push(e);
        let mut e = a.clone();
        e.price = None;
        edits.push(e);
        for edited in edits {
            assert_ne!(a.content_key(), edited.content_key(), "{edited:?}");
        }
        // Fields do not run into each other.
        let mut x = a.clone();
        x.title = "ab".into();
        x.description = "c".into();
        let mut y = a.clone();
        y.title = "a".into();
        y.description = "bc".into();
        assert_ne!(x.content_key(), y.content_key());
    }

    #[test]
    fn labels_parse_strictly() {
        assert_eq!(parse_label("1"), Ok(true));
        assert_eq!(parse_label("0"), Ok(false));
        assert_eq!(parse_label("2").unwrap_err().field, "label");
        assert_eq!(parse_label("").unwrap_err().field, "label");
    }

    #[test]
    fn a_listing_written_back_validates_to_itself() {
        let listing = check(RawListing {
            description: Some("  boxed ".into()),
            brand: Some("Rolex".into()),
            ..raw(" watch ", Some(RawPrice::Text("12.50".into())), Some("usd"))
        })
        .unwrap();
        let back = RawListing::from(&listing);
        assert_eq!(back.price, Some(RawPrice::Number(12.5)));
        assert_eq!(back.category, None, "empty fields are left out");
        assert_eq!(check(back).unwrap(), listing);
        let bare = check(RawListing {
            id: None,
            ..raw("t", None, None)
        })
        .unwrap();
        assert_eq!(check(RawListing::from(&bare)).unwrap(), bare);
    }
}
