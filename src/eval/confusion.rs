//! The one confusion-matrix type: outcome counts of the rule "flagged when
//! `score >= threshold`" against labels, and the rates read from it.

use serde::{Deserialize, Serialize};

use super::clean_pairs;
use super::math::ratio;
use crate::decision::Thresholds;

/// Confusion counts for one threshold. The rate methods return NaN when their denominator
/// is zero (e.g. precision when nothing is flagged) instead of sklearn's silent 0.
///
/// Used for evaluation reports (`metrics.json`), for the validation error rates prevalence
/// estimation corrects with (`config.json`), and for the unfamiliar-listings check.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Confusion {
    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }

    /// Rows labelled positive (counterfeit).
    pub fn positives(&self) -> usize {
        self.tp + self.fn_
    }

    /// Rows labelled negative (genuine).
    pub fn negatives(&self) -> usize {
        self.fp + self.tn
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// True-positive rate: the share of positives flagged.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.positives())
    }

    /// 2·TP / (2·TP + FP + FN): equal to the harmonic mean of precision and recall, and
    /// 0 (not NaN) when there are positives or flags but no hits.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// The share of negatives flagged.
    pub fn false_positive_rate(&self) -> f64 {
        ratio(self.fp, self.negatives())
    }

    /// Counts one row.
    pub fn record(&mut self, flagged: bool, positive: bool) {
        match (flagged, positive) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, false) => self.tn += 1,
            (false, true) => self.fn_ += 1,
        }
    }
}

/// Confusion counts for the rule `score >= threshold`. NaN scores are left out; on length
/// mismatch every count is 0 (so every rate is NaN).
pub fn confusion_at(scores: &[f32], labels: &[bool], threshold: f32) -> Confusion {
    confusion_at_thresholds(
        scores,
        labels,
        &Thresholds {
            review: threshold,
            block: threshold,
        },
    )
    .at_review
}

/// Confusion at both operating thresholds: "flagged" (review or block, `>= review`) and
/// "blocked" (`>= block`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperatingConfusion {
    pub at_review: Confusion,
    pub at_block: Confusion,
}

/// [`confusion_at`] for both thresholds in one pass, e.g. for genuine listings blocked
/// (`at_block.false_positive_rate()`), flagged (`at_review.false_positive_rate()`) and
/// counterfeit recall at review (`at_review.recall()`). NaN scores are left out; on length
/// mismatch every count is 0.
pub fn confusion_at_thresholds(
    scores: &[f32],
    labels: &[bool],
    thresholds: &Thresholds,
) -> OperatingConfusion {
    let mut out = OperatingConfusion::default();
    for (score, label) in clean_pairs(scores, labels).unwrap_or_default() {
        out.at_review.record(score >= thresholds.review, label);
        out.at_block.record(score >= thresholds.block, label);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::testutil::{close, F, SEL_LABELS, SEL_SCORES, T};

    #[test]
    fn confusion_at_is_inclusive() {
        let c = confusion_at(&SEL_SCORES, &SEL_LABELS, 0.6);
        assert_eq!(
            c,
            Confusion {
                tp: 3,
                fp: 1,
                tn: 2,
                fn_: 0
            }
        );
        close(c.precision(), 0.75);
        close(c.recall(), 1.0);
        close(c.f1(), 6.0 / 7.0);
        close(c.false_positive_rate(), 1.0 / 3.0);
    }

    #[test]
    fn confusion_rates_undefined_are_nan() {
        let nothing_flagged = confusion_at(&[0.1, 0.2], &[T, F], 0.9);
        assert!(nothing_flagged.precision().is_nan());
        close(nothing_flagged.recall(), 0.0);
        close(nothing_flagged.f1(), 0.0);
        let empty = Confusion::default();
        assert!(empty.f1().is_nan() && empty.recall().is_nan());
        assert!(empty.false_positive_rate().is_nan());
        assert_eq!(confusion_at(&[0.1], &[], 0.5), Confusion::default());
    }

    #[test]
    fn confusion_serialises_fn_field_as_fn() {
        let c = Confusion {
            tp: 1,
            fp: 2,
            tn: 3,
            fn_: 4,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"tp":1,"fp":2,"tn":3,"fn":4}"#);
        assert_eq!(serde_json::from_str::<Confusion>(&json).unwrap(), c);
    }

    #[test]
    fn both_thresholds_in_one_pass_match_each_alone() {
        let th = Thresholds {
            review: 0.5,
            block: 0.8,
        };
        let both = confusion_at_thresholds(&SEL_SCORES, &SEL_LABELS, &th);
        assert_eq!(both.at_review, confusion_at(&SEL_SCORES, &SEL_LABELS, 0.5));
        assert_eq!(both.at_block, confusion_at(&SEL_SCORES, &SEL_LABELS, 0.8));
        assert_eq!(
            (both.at_block.positives(), both.at_block.negatives()),
            (3, 3)
        );
        let mut c = Confusion::default();
        c.record(true, false);
        c.record(false, true);
        assert_eq!((c.fp, c.fn_, c.total()), (1, 1, 2));
    }
}
