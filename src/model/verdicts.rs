//! Reviewers' verdicts a model keeps: a listing a reviewer labelled is decided as they did
//! (counterfeit → block, genuine → allow) for as long as its content is unchanged.
//!
//! Retraining with reviews moves the model towards them, but a listing reviewers had to
//! overrule is, by construction, one the model finds hard; no weight guarantees the next
//! model agrees. A person's judgement of the very same listing should not be re-decided by
//! a model: the verdicts are kept in the model's `config.json`, keyed by
//! [`Listing::content_key`] (not the id, so the same listing posted again is caught, and
//! an edited listing is judged anew by the model).

use crate::data::listing::Listing;
use crate::data::reviews::{Reviewed, Verdict};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One kept verdict as written in `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictEntry {
    /// [`Listing::content_key`] as 16 hex digits.
    pub content: String,
    pub counterfeit: bool,
    pub reviewed_at: DateTime<Utc>,
}

/// Why a model's verdicts could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reviewed[{index}].content: `{content}` is not 16 hex digits")]
pub struct VerdictError {
    pub index: usize,
    pub content: String,
}

/// The verdicts a model keeps, looked up by listing content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<VerdictEntry>", into = "Vec<VerdictEntry>")]
pub struct ReviewVerdicts {
    by_content: HashMap<u64, Verdict>,
}

impl ReviewVerdicts {
    /// The verdicts of `reviews`; of two reviews of the same content the later one stands.
    pub fn from_reviews(reviews: &[Reviewed]) -> ReviewVerdicts {
        let mut by_content: HashMap<u64, Verdict> = HashMap::with_capacity(reviews.len());
        for review in reviews {
            let verdict = Verdict {
                counterfeit: review.counterfeit,
                reviewed_at: review.reviewed_at,
            };
            by_content
                .entry(review.listing.content_key())
                .and_modify(|kept| {
                    if verdict.reviewed_at >= kept.reviewed_at {
                        *kept = verdict;
                    }
                })
                .or_insert(verdict);
        }
        ReviewVerdicts { by_content }
    }

    /// The verdict on this listing's content, if a reviewer gave one.
    pub fn get(&self, listing: &Listing) -> Option<Verdict> {
        if self.by_content.is_empty() {
            return None;
        }
        self.by_content.get(&listing.content_key()).copied()
    }

    pub fn len(&self) -> usize {
        self.by_content.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_content.is_empty()
    }
}

impl TryFrom<Vec<VerdictEntry>> for ReviewVerdicts {
    type Error = VerdictError;

    fn try_from(entries: Vec<VerdictEntry>) -> Result<Self, Self::Error> {
        let mut by_content = HashMap::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            let key = (entry.content.len() == 16)
                .then(|| u64::from_str_radix(&entry.content, 16).ok())
                .flatten()
                .ok_or_else(|| VerdictError {
                    index,
                    content: entry.content.chars().take(40).collect(),
                })?;
            by_content.insert(
                key,
                Verdict {
                    counterfeit: entry.counterfeit,
                    reviewed_at: entry.reviewed_at,
                },
            );
        }
        Ok(ReviewVerdicts { by_content })
    }
}

impl From<ReviewVerdicts> for Vec<VerdictEntry> {
    fn from(verdicts: ReviewVerdicts) -> Self {
        let mut entries: Vec<VerdictEntry> = verdicts
            .by_content
            .into_iter()
            .map(|(key, v)| VerdictEntry {
                content: format!("{key:016x}"),
                counterfeit: v.counterfeit,
                reviewed_at: v.reviewed_at,
            })
            .collect();
        // A stable order: the same reviews write the same config.json.
        entries.sort_by(|a, b| a.content.cmp(&b.content));
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(title: &str) -> Listing {
        Listing {
            id: "x".into(),
            title: title.into(),
            description: String::new(),
            price: None,
            brand: String::new(),
            category: String::new(),
        }
    }

    fn review(title: &str, counterfeit: bool, at: &str) -> Reviewed {
        Reviewed {
            line: 1,
            listing: listing(title),
            counterfeit,
            reviewed_at: at.parse().unwrap(),
        }
    }

    #[test]
    fn a_reviewed_listing_is_found_by_content_and_the_later_review_stands() {
        let verdicts = ReviewVerdicts::from_reviews(&[
            review("Aurora tote", true, "2026-01-02T00:00:00Z"),
            review("Aurora tote", false, "2026-01-01T00:00:00Z"),
            review("Solstice bag", false, "2026-01-01T00:00:00Z"),
        ]);
        assert_eq!(verdicts.len(), 2);
        let mut other_id = listing("Aurora tote");
        other_id.id = "y".into();
        assert_eq!(verdicts.get(&other_id).map(|v| v.counterfeit), Some(true));
        assert_eq!(
            verdicts
                .get(&listing("Solstice bag"))
                .map(|v| v.counterfeit),
            Some(false)
        );
        assert_eq!(verdicts.get(&listing("Aurora tote (new)")), None);
    }

    #[test]
    fn verdicts_round_trip_through_json_in_a_stable_order() {
        let verdicts = ReviewVerdicts::from_reviews(&[
            review("b", true, "2026-01-02T00:00:00Z"),
            review("a", false, "2026-01-01T00:00:00Z"),
        ]);
        let json = serde_json::to_string(&verdicts).unwrap();
        assert_eq!(json, serde_json::to_string(&verdicts.clone()).unwrap());
        let back: ReviewVerdicts = serde_json::from_str(&json).unwrap();
        assert_eq!(back, verdicts);
        let entries: Vec<VerdictEntry> = serde_json::from_str(&json).unwrap();
        assert!(entries.windows(2).all(|w| w[0].content < w[1].content));
    }

    #[test]
    fn a_bad_content_key_is_refused_with_its_index() {
        let json = r#"[{"content":"00000000000000aa","counterfeit":true,"reviewed_at":"2026-01-01T00:00:00Z"},
                       {"content":"xyz","counterfeit":true,"reviewed_at":"2026-01-01T00:00:00Z"}]"#;
        let error = serde_json::from_str::<ReviewVerdicts>(json).unwrap_err();
        assert!(error.to_string().contains("reviewed[1].content"), "{error}");
    }
}
