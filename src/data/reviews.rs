//! Reviewers' decisions as exported (JSON Lines, one [`ReviewRecord`] a line): read, each
//! bad line refused with its number, and reduced to the last review of each listing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::data::currency::CurrencyRates;
use crate::data::listing::{FieldLimits, Listing, RawListing};
use crate::data::reader::Row;

/// What a reviewer decided a listing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewLabel {
    Counterfeit,
    Genuine,
}

impl ReviewLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewLabel::Counterfeit => "counterfeit",
            ReviewLabel::Genuine => "genuine",
        }
    }

    pub fn is_counterfeit(self) -> bool {
        self == ReviewLabel::Counterfeit
    }
}

/// One review: the listing (the listing schema's fields, flattened), the reviewer's label
/// and who decided it when, with the model version and probability it was shown with.
/// Other keys are ignored, so later exports may add fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewRecord {
    #[serde(flatten)]
    pub listing: RawListing,
    pub label: ReviewLabel,
    pub reviewer: String,
    /// RFC 3339 time of the review.
    #[schema(value_type = String)]
    pub reviewed_at: DateTime<Utc>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub probability: Option<f32>,
    #[serde(default)]
    pub note: Option<String>,
}

/// What a reviewer decided about a listing, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub counterfeit: bool,
    pub reviewed_at: DateTime<Utc>,
}

/// A reviewed listing, validated: the last review of its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Reviewed {
    pub line: u64,
    pub listing: Listing,
    pub counterfeit: bool,
    pub reviewed_at: DateTime<Utc>,
}

/// How many reviews a training run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReviewUse {
    /// Reviewed listings (after the last review of each id won).
    pub used: usize,
    /// Of them, listings the training file did not have.
    pub added: usize,
    /// Of them, training rows whose label the review replaced.
    pub replaced: usize,
    /// Times each reviewed listing is shown per epoch.
    pub weight: usize,
    /// Distinct listing contents whose verdict the model keeps (see
    /// [`crate::model::verdicts`]).
    #[serde(default)]
    pub verdicts: usize,
}

/// Training rows with reviews merged in: `rows` without the reviewed ids, `reviewed` the
/// reviewed listings with the reviewers' labels, each repeated `weight` times.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub rows: Vec<Row>,
    pub reviewed: Vec<Row>,
    pub usage: ReviewUse,
}

/// Merges reviews into training rows: a review replaces the training row of its id (its
/// label wins), other reviewed listings are added; all are repeated `weight` times.
pub fn merge(rows: Vec<Row>, reviews: Vec<Reviewed>, weight: usize) -> Merged {
    let ids: HashMap<&str, ()> = reviews
        .iter()
        .map(|r| (r.listing.id.as_str(), ()))
        .collect();
    let before = rows.len();
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| !ids.contains_key(r.listing.id.as_str()))
        .collect();
    let replaced = before - rows.len();
    let usage = ReviewUse {
        used: reviews.len(),
        added: reviews.len().saturating_sub(replaced),
        replaced,
        weight,
        verdicts: 0,
    };
    let reviewed = reviews
        .into_iter()
        .flat_map(|r| {
            let row = Row {
                line: r.line,
                listing: r.listing,
                label: Some(r.counterfeit),
            };
            std::iter::repeat_n(row, weight)
        })
        .collect();
    Merged {
        rows,
        reviewed,
        usage,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("{path}: cannot read: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    /// The reviews of a store file could not be read.
    #[error("{path}: cannot read the reviews: {message}")]
    Store { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: u64,
        message: String,
    },
}

/// Reads a JSON Lines export of reviews; blank lines are skipped. The last review of an id
/// (in file order, which is the order reviews were given) replaces earlier ones. Every
/// listing is validated as training rows are; a review without an id is refused (nothing
/// could join it to its listing).
pub fn read_reviews(
    path: &Path,
    rates: &CurrencyRates,
    limits: &FieldLimits,
) -> Result<Vec<Reviewed>, ReviewError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| ReviewError::Open {
        path: name.clone(),
        source,
    })?;
    let records = BufReader::new(file)
        .lines()
        .enumerate()
        .filter_map(|(index, text)| {
            let line = index as u64 + 1;
            let bad = |message: String| ReviewError::Line {
                path: name.clone(),
                line,
                message,
            };
            let text = match text {
                Ok(text) if text.trim().is_empty() => return None,
                Ok(text) => text,
                Err(e) => return Some(Err(bad(e.to_string()))),
            };
            let record =
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text))
                    .map_err(|e| match e.path().to_string().as_str() {
                        "." => bad(format!("invalid review: {}", e.inner())),
                        field => bad(format!("field `{field}`: {}", e.inner())),
                    });
            Some(record.map(|record| (line, record)))
        });
    latest_reviews(&name, records, rates, limits)
}

/// Validates reviews given in the order they were made, each with its line (or row)
/// number in `source`, and keeps the last review of each id. The first bad one stops the
/// reading with its number and field.
pub fn latest_reviews(
    source: &str,
    records: impl IntoIterator<Item = Result<(u64, ReviewRecord), ReviewError>>,
    rates: &CurrencyRates,
    limits: &FieldLimits,
) -> Result<Vec<Reviewed>, ReviewError> {
    let mut latest: HashMap<String, usize> = HashMap::new();
    let mut reviews: Vec<Reviewed> = Vec::new();
    for record in records {
        let (line, record) = record?;
        let bad = |message: String| ReviewError::Line {
            path: source.to_string(),
            line,
            message,
        };
        let listing = record
            .listing
            .validate(rates, limits)
            .map_err(|e| bad(format!("field `{}`: {}", e.field, e.message)))?;
        if listing.id.is_empty() {
            return Err(bad("field `id`: a review needs the listing's id".into()));
        }
        let reviewed = Reviewed {
            line,
            counterfeit: record.label.is_counterfeit(),
            reviewed_at: record.reviewed_at,
            listing,
        };
        match latest.get(&reviewed.listing.id) {
            Some(&i) => reviews[i] = reviewed,
            None => {
                latest.insert(reviewed.listing.id.clone(), reviews.len());
                reviews.push(reviewed);
            }
        }
    }
    Ok(reviews)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Reviewed>, ReviewError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reviews.jsonl");
        std::fs::write(&path, text).unwrap();
        read_reviews(&path, &CurrencyRates::default(), &FieldLimits::default())
    }

    const A: &str = r#"{"id":"a","title":"Rolex watch","price":120,"currency":"USD","brand":"Rolex","category":"watches","label":"counterfeit","reviewer":"kim","reviewed_at":"2026-01-02T10:00:00Z","model_version":"v1","probability":0.4,"note":"fake box"}"#;

    #[test]
    fn the_last_review_of_an_id_wins() {
        let later = A
            .replace("\"counterfeit\"", "\"genuine\"")
            .replace("10:00", "11:00");
        let b = r#"{"id":17,"title":"leash","label":"genuine","reviewer":"lee","reviewed_at":"2026-01-02T10:00:00Z"}"#;
        let got = read(&format!("{A}\n\n{b}\n{later}\n")).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].listing.id.as_str(), got[0].counterfeit, got[0].line),
            ("a", false, 4)
        );
        assert_eq!(got[1].listing.id, "17");
        let record: ReviewRecord = serde_json::from_str(A).unwrap();
        let again: ReviewRecord =
            serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(record, again);
    }

    #[test]
    fn reviews_replace_training_rows_of_their_id_and_are_repeated() {
        let reviews = read(&format!("{A}\n{}\n", A.replace("\"a\"", "\"new\""))).unwrap();
        let row = |id: &str, label| Row {
            line: 2,
            listing: Listing {
                id: id.into(),
                ..reviews[0].listing.clone()
            },
            label: Some(label),
        };
        let merged = merge(vec![row("a", false), row("b", false)], reviews, 3);
        let ids: Vec<&str> = merged.rows.iter().map(|r| r.listing.id.as_str()).collect();
        assert_eq!(ids, ["b"]);
        assert_eq!(merged.reviewed.len(), 6);
        assert!(merged.reviewed.iter().all(|r| r.label == Some(true)));
        assert_eq!(
            merged.usage,
            ReviewUse {
                used: 2,
                added: 1,
                replaced: 1,
                weight: 3,
                verdicts: 0,
            }
        );
    }

    #[test]
    fn bad_lines_are_refused_with_their_number_and_field() {
        let cases = [
            (A.replace("\"counterfeit\"", "\"fake\""), "label"),
            (A.replace("\"price\":120", "\"price\":-1"), "price"),
            (A.replace("\"id\":\"a\",", ""), "id"),
            (A.replace("\"reviewer\":\"kim\",", ""), "reviewer"),
            (A.replace("2026-01-02T10:00:00Z", "yesterday"), "input"),
        ];
        for (line, field) in cases {
            let err = read(&format!("{A}\n{line}\n")).unwrap_err().to_string();
            assert!(err.contains(":2: ") && err.contains(field), "{err}");
        }
    }
}
