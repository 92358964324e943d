//! The evaluation report of labelled probabilities: ranking and calibration metrics, and
//! the confusion and decision counts at the two operating thresholds, overall and per group.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::calibration::{brier_of_pairs, ece_of_pairs, ECE_BINS};
use super::clean_pairs;
use super::confusion::Confusion;
use super::nan_serde::nan_as_null;
use super::ranking::Ranked;
use crate::decision::{Decision, Thresholds};

/// Precision target behind [`Evaluation::recall_at_95_precision`].
pub const PRECISION_TARGET: f64 = 0.95;

/// Default of the smallest group [`evaluate_by_group`] reports metrics for (training's
/// per-category metrics and knockoff-score's labelled summary). Smaller than
/// [`crate::eval::prevalence::MIN_GROUP_ROWS`] on purpose: a ranking metric on 50 labelled
/// rows is already a useful hint, while a prevalence interval on fewer than 100 listings is
/// too wide to act on.
pub const MIN_EVAL_GROUP_ROWS: usize = 50;

/// Quality of one of the operating thresholds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThresholdReport {
    /// `"review"` or `"block"`.
    pub name: String,
    pub threshold: f32,
    #[serde(with = "nan_as_null")]
    pub precision: f64,
    #[serde(with = "nan_as_null")]
    pub recall: f64,
    #[serde(with = "nan_as_null")]
    pub f1: f64,
    pub confusion: Confusion,
}

/// How many rows got each [`Decision`]: in evaluation reports, and (as `flagged`, review
/// and block only) in prevalence summaries.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DecisionCounts {
    pub allow: usize,
    pub review: usize,
    pub block: usize,
}

impl DecisionCounts {
    pub fn get(&self, decision: Decision) -> usize {
        match decision {
            Decision::Allow => self.allow,
            Decision::Review => self.review,
            Decision::Block => self.block,
        }
    }

    /// Rows sent to review or blocked.
    pub fn flagged(&self) -> usize {
        self.review + self.block
    }

    pub fn total(&self) -> usize {
        self.allow + self.flagged()
    }

    /// Counts one row.
    pub fn record(&mut self, decision: Decision) {
        match decision {
            Decision::Allow => self.allow += 1,
            Decision::Review => self.review += 1,
            Decision::Block => self.block += 1,
        }
    }
}

/// Everything training and scoring report about a labelled set of probabilities.
///
/// Metrics that are undefined for this data (see the free functions) are NaN, `null` in
/// JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    /// Rows evaluated (NaN probabilities excluded).
    pub rows: usize,
    pub positives: usize,
    /// Rows left out because their probability was NaN; they would be allowed in
    /// production (`NaN >= t` is false), so a non-zero count points at a model bug.
    #[serde(default)]
    pub skipped_nan: usize,
    #[serde(with = "nan_as_null")]
    pub roc_auc: f64,
    #[serde(with = "nan_as_null")]
    pub pr_auc: f64,
    /// Recall at [`PRECISION_TARGET`] precision (0 if that precision is never reached).
    #[serde(with = "nan_as_null")]
    pub recall_at_95_precision: f64,
    /// With [`ECE_BINS`] bins.
    #[serde(with = "nan_as_null")]
    pub expected_calibration_error: f64,
    #[serde(with = "nan_as_null")]
    pub brier_score: f64,
    /// `review` then `block`.
    pub thresholds: Vec<ThresholdReport>,
    pub decisions: DecisionCounts,
}

/// Full report for `probs` against `labels` at the two operating thresholds. Sorts once.
///
/// On length mismatch the report has `rows = 0` and every metric NaN.
pub fn evaluate(probs: &[f32], labels: &[bool], thresholds: &Thresholds) -> Evaluation {
    let pairs = clean_pairs(probs, labels).unwrap_or_default();
    let skipped_nan = if probs.len() == labels.len() {
        probs.len() - pairs.len()
    } else {
        0
    };

    let mut decisions = DecisionCounts::default();
    for &(p, _) in &pairs {
        decisions.record(thresholds.decide(p));
    }
    let expected_calibration_error = ece_of_pairs(&pairs, ECE_BINS);
    let brier_score = brier_of_pairs(&pairs);
    let rows = pairs.len();
    let ranked = Ranked::from_pairs(pairs);
    Evaluation {
        rows,
        skipped_nan,
        expected_calibration_error,
        brier_score,
        decisions,
        ..from_ranked(&ranked, thresholds)
    }
}

/// The ranking metrics and threshold reports of `ranked`; the counts and calibration
/// figures are left for the caller (rows 0, NaN calibration, no decisions).
pub(super) fn from_ranked(ranked: &Ranked, thresholds: &Thresholds) -> Evaluation {
    let report = |name: &str, threshold: f32| {
        let confusion = ranked.confusion_at(threshold);
        ThresholdReport {
            name: name.to_owned(),
            threshold,
            precision: confusion.precision(),
            recall: confusion.recall(),
            f1: confusion.f1(),
            confusion,
        }
    };
    Evaluation {
        rows: 0,
        positives: ranked.positives,
        skipped_nan: 0,
        roc_auc: ranked.roc_auc(),
        pr_auc: ranked.average_precision(),
        recall_at_95_precision: ranked.recall_at_precision(PRECISION_TARGET),
        expected_calibration_error: f64::NAN,
        brier_score: f64::NAN,
        thresholds: vec![
            report(Decision::Review.as_str(), thresholds.review),
            report(Decision::Block.as_str(), thresholds.block),
        ],
        decisions: DecisionCounts::default(),
    }
}

/// [`evaluate`] per group (e.g. category or marketplace), groups evaluated in parallel.
/// Groups are any small key (a name, or an index into the caller's names, which keeps a
/// many-million-row run from holding a string per row).
///
/// Groups with fewer than `min_rows` input rows are left out, since their metrics would
/// be noise; the caller can find them by comparing keys. Empty map on length mismatch.
pub fn evaluate_by_group<G: Ord + Copy + Send>(
    probs: &[f32],
    labels: &[bool],
    groups: &[G],
    thresholds: &Thresholds,
    min_rows: usize,
) -> BTreeMap<G, Evaluation> {
    if probs.len() != labels.len() || probs.len() != groups.len() {
        tracing::warn!(
            probs = probs.len(),
            labels = labels.len(),
            groups = groups.len(),
            "metrics: per-group inputs differ in length; no groups evaluated"
        );
        return BTreeMap::new();
    }
    let mut split: BTreeMap<G, (Vec<f32>, Vec<bool>)> = BTreeMap::new();
    for ((&p, &l), &g) in probs.iter().zip(labels).zip(groups) {
        let entry = split.entry(g).or_default();
        entry.0.push(p);
        entry.1.push(l);
    }
    split
        .into_iter()
        .filter(|(_, (p, _))| p.len() >= min_rows)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(g, (p, l))| (g, evaluate(&p, &l, thresholds)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::calibration::{brier_score, expected_calibration_error};
    use crate::eval::confusion::confusion_at;
    use crate::eval::ranking::{pr_auc, roc_auc};
    use crate::eval::testutil::{close, F, SEL_LABELS, SEL_SCORES, T, TH};

    #[test]
    fn evaluate_matches_the_free_functions() {
        let probs = [0.4, 0.9, 0.6, 0.5, 0.8, 0.7, f32::NAN];
        let labels = [F, T, T, F, T, F, T];
        let e = evaluate(&probs, &labels, &TH);
        assert_eq!((e.rows, e.positives, e.skipped_nan), (6, 3, 1));
        close(e.roc_auc, roc_auc(&probs, &labels));
        close(e.pr_auc, pr_auc(&probs, &labels));
        close(e.recall_at_95_precision, 2.0 / 3.0);
        close(
            e.expected_calibration_error,
            expected_calibration_error(&probs, &labels, ECE_BINS),
        );
        close(e.brier_score, brier_score(&probs, &labels));
        assert_eq!(
            e.decisions,
            DecisionCounts {
                allow: 1,
                review: 3,
                block: 2
            }
        );
        assert_eq!(e.decisions.get(Decision::Review), 3);

        let names: Vec<&str> = e.thresholds.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["review", "block"]);
        for (report, t) in e.thresholds.iter().zip([TH.review, TH.block]) {
            let c = confusion_at(&probs, &labels, t);
            assert_eq!(report.confusion, c);
            assert_eq!(report.threshold, t);
            close(report.precision, c.precision());
            close(report.recall, c.recall());
            close(report.f1, c.f1());
        }
        // Hand-checked: block at 0.8 flags 0.9 T and 0.8 T.
        assert_eq!(
            e.thresholds[1].confusion,
            Confusion {
                tp: 2,
                fp: 0,
                tn: 3,
                fn_: 1
            }
        );
    }

    #[test]
    fn evaluation_round_trips_through_json_including_nan() {
        let e = evaluate(&SEL_SCORES, &SEL_LABELS, &TH);
        let back: Evaluation = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        // serde_json's default float parsing may be off by an ulp, so floats are compared
        // with a tolerance and everything else exactly.
        assert_eq!(
            (back.rows, back.positives, back.skipped_nan, back.decisions),
            (e.rows, e.positives, e.skipped_nan, e.decisions)
        );
        close(back.roc_auc, e.roc_auc);
        close(back.pr_auc, e.pr_auc);
        close(back.recall_at_95_precision, e.recall_at_95_precision);
        close(
            back.expected_calibration_error,
            e.expected_calibration_error,
        );
        close(back.brier_score, e.brier_score);
        for (b, t) in back.thresholds.iter().zip(&e.thresholds) {
            assert_eq!(
                (&b.name, b.threshold, b.confusion),
                (&t.name, t.threshold, t.confusion)
            );
            close(b.f1, t.f1);
        }

        // One class: ROC-AUC and the block threshold's precision are undefined.
        let single = evaluate(&[0.1, 0.2], &[F, F], &TH);
        let json = serde_json::to_string(&single).unwrap();
        assert!(json.contains(r#""roc_auc":null"#), "{json}");
        let back: Evaluation = serde_json::from_str(&json).unwrap();
        assert!(back.roc_auc.is_nan() && back.pr_auc.is_nan());
        assert!(back.thresholds[1].precision.is_nan());
        close(back.brier_score, single.brier_score);
    }

    #[test]
    fn evaluate_empty_and_mismatched_do_not_panic() {
        for e in [evaluate(&[], &[], &TH), evaluate(&[0.5, 0.7], &[T], &TH)] {
            assert_eq!(e.rows, 0);
            assert!(e.roc_auc.is_nan() && e.brier_score.is_nan());
            assert!(e.expected_calibration_error.is_nan());
            assert_eq!(e.thresholds[0].confusion, Confusion::default());
        }
    }

    #[test]
    fn evaluate_by_group_splits_and_filters() {
        let probs = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3];
        let labels = [T, F, F, T, T, F];
        let groups = ["shoes", "shoes", "bags", "bags", "shoes", "watches"];
        let by = evaluate_by_group(&probs, &labels, &groups, &TH, 2);
        assert_eq!(by.keys().copied().collect::<Vec<_>>(), ["bags", "shoes"]);
        // Indices into names group the same way.
        let indices: Vec<u32> = groups.iter().map(|g| g.len() as u32).collect();
        let by_index = evaluate_by_group(&probs, &labels, &indices, &TH, 2);
        assert_eq!(by_index[&5], by["shoes"]);
        assert_eq!(by_index[&4], by["bags"]);
        assert_eq!(by["shoes"], evaluate(&[0.9, 0.1, 0.7], &[T, F, T], &TH));
        close(by["shoes"].roc_auc, 1.0);
        close(by["bags"].roc_auc, 0.0);
        assert!(evaluate_by_group(&probs, &labels, &groups[..2], &TH, 1).is_empty());
    }
}
