//! Evaluation: how good probabilities are on labelled listings (ranking, calibration,
//! confusion at the operating thresholds) and what share of a sample is counterfeit
//! ([`prevalence`]).
//!
//! Everything here is a pure function of `(score, label)` pairs, where a label of `true`
//! means "counterfeit". Conventions shared by every module:
//!
//! * **Undefined is not zero.** A metric that needs both classes (ROC-AUC), positives
//!   (recall, average precision) or any rows at all returns `f64::NAN`, `None` or an empty
//!   `Vec` rather than a made-up number; the doc of each function says which. The one
//!   [`math::ratio`] gives NaN for 0/0.
//! * **Length mismatch** between scores and labels is a caller bug: the result is the
//!   undefined value and a `tracing` warning is logged, rather than silently pairing a
//!   prefix.
//! * **NaN scores are dropped.** A NaN carries no ranking information; including it
//!   anywhere would make the populations of different metrics disagree.
//!   [`evaluation::Evaluation`] reports how many were skipped.
//! * A row is **predicted positive when `score >= threshold`**, the same inclusive rule as
//!   [`crate::decision::Thresholds::decide`].
//! * NaN in a result struct serialises as JSON `null` and deserialises back to NaN (see
//!   [`nan_serde::nan_as_null`]); because NaN != NaN, `PartialEq` on a struct holding one is
//!   false.
//!
//! Rank-based metrics sort once (O(n log n)) and then work on the distinct-score
//! operating points, so they are cheap on a few hundred thousand rows.

pub mod audit;
pub mod binned;
pub mod calibration;
pub mod confusion;
pub mod evaluation;
pub mod math;
pub mod nan_serde;
pub mod prevalence;
pub mod ranking;
pub mod summary;

#[cfg(test)]
mod testutil;

/// Pairs scores with labels, dropping NaN scores. `None` when the lengths differ.
fn clean_pairs(scores: &[f32], labels: &[bool]) -> Option<Vec<(f32, bool)>> {
    if scores.len() != labels.len() {
        tracing::warn!(
            scores = scores.len(),
            labels = labels.len(),
            "metrics: scores and labels differ in length; result is undefined"
        );
        return None;
    }
    Some(
        scores
            .iter()
            .zip(labels)
            .filter(|(s, _)| !s.is_nan())
            .map(|(&s, &l)| (s, l))
            .collect(),
    )
}
