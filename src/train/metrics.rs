//! What a training run reports in `metrics.json`: per-epoch figures, the decisions as
//! served on validation, unfamiliar listings, reviews used and timings.

use crate::data::reader::Row;
use crate::data::reviews::ReviewUse;
use crate::decision::Decision;
use crate::eval::evaluation::Evaluation;
use crate::eval::math::ratio;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::data::labels_of;
use super::options::Holdout;

/// One epoch's figures, for the progress display and `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_roc_auc: f64,
    pub rows_per_second: f64,
}

/// The served decisions on a labelled set: what blocks and flags catch, and how many
/// listings have the evidence to be blocked at all.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionFigures {
    pub listings: usize,
    /// Share of blocked listings that are counterfeit.
    pub block_precision: f64,
    /// Share of counterfeits blocked.
    pub block_recall: f64,
    /// Share of counterfeits reviewed or blocked.
    pub flagged_recall: f64,
    /// Share of genuine listings blocked, and reviewed or blocked.
    pub genuine_blocked_share: f64,
    pub genuine_flagged_share: f64,
    /// Share of counterfeits (and of genuine listings) with the evidence to be blocked.
    pub counterfeit_strong_share: f64,
    pub genuine_strong_share: f64,
}

impl DecisionFigures {
    pub fn new(decisions: &[Decision], labels: &[bool], strong: &[bool]) -> DecisionFigures {
        let count = |f: &dyn Fn(Decision, bool, bool) -> bool| {
            decisions
                .iter()
                .zip(labels)
                .zip(strong)
                .filter(|((&d, &y), &s)| f(d, y, s))
                .count()
        };
        let fakes = count(&|_, y, _| y);
        let genuine = count(&|_, y, _| !y);
        let blocked_fakes = count(&|d, y, _| y && d == Decision::Block);
        DecisionFigures {
            listings: decisions.len(),
            block_precision: ratio(blocked_fakes, count(&|d, _, _| d == Decision::Block)),
            block_recall: ratio(blocked_fakes, fakes),
            flagged_recall: ratio(count(&|d, y, _| y && d != Decision::Allow), fakes),
            genuine_blocked_share: ratio(count(&|d, y, _| !y && d == Decision::Block), genuine),
            genuine_flagged_share: ratio(count(&|d, y, _| !y && d != Decision::Allow), genuine),
            counterfeit_strong_share: ratio(count(&|_, y, s| y && s), fakes),
            genuine_strong_share: ratio(count(&|_, y, s| !y && s), genuine),
        }
    }
}

/// How the model treats genuine listings of brands and categories it never saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnfamiliarReport {
    pub holdout: Holdout,
    pub listings: usize,
    pub genuine: usize,
    pub genuine_blocked_share: f64,
    pub genuine_flagged_share: f64,
    pub counterfeit_recall_at_review: f64,
}

/// `metrics.json`: what the model achieved on validation and how training went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingMetrics {
    pub model: String,
    pub version: String,
    pub validation: Evaluation,
    /// The decisions as served (thresholds and the evidence rule) on validation.
    pub decisions: DecisionFigures,
    pub per_category: BTreeMap<String, Evaluation>,
    pub calibration_rows: usize,
    pub epochs: Vec<EpochReport>,
    pub best_epoch: usize,
    pub unfamiliar: Option<UnfamiliarReport>,
    pub skipped_rows: usize,
    /// Reviews learned from (`--reviews`): used, added, replaced, and their weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviews: Option<ReviewUse>,
    pub seconds: Timing,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timing {
    pub load: f64,
    pub featurize: f64,
    pub train: f64,
    pub total: f64,
}

pub(super) fn unfamiliar_report(
    holdout: &Holdout,
    rows: &[Row],
    decisions: &[Decision],
) -> UnfamiliarReport {
    let labels = labels_of(rows);
    let figures = DecisionFigures::new(decisions, &labels, &vec![true; rows.len()]);
    UnfamiliarReport {
        holdout: holdout.clone(),
        listings: rows.len(),
        genuine: labels.iter().filter(|&&y| !y).count(),
        genuine_blocked_share: figures.genuine_blocked_share,
        genuine_flagged_share: figures.genuine_flagged_share,
        counterfeit_recall_at_review: figures.flagged_recall,
    }
}
