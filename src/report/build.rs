//! Builds a [`ReportInput`] from scored rows: the glue between scoring or training,
//! [`crate::eval`] and the page, shared by `knockoff-score` and training.

use super::{Curve, KeyFigures, ReportError, ReportInput, ScoreHistogram, HISTOGRAM_BINS};
use crate::decision::Thresholds;
use crate::eval::binned::LabelledBins;
use crate::eval::calibration::{reliability_bins, ReliabilityBin, ECE_BINS};
use crate::eval::evaluation::evaluate;
use crate::eval::prevalence::{PrevalenceReport, ScoredRow, MIN_GROUP_ROWS};
use crate::eval::ranking::{pr_curve, roc_curve};
use crate::model::Model;
use crate::train::TrainOutcome;

/// The labelled-evaluation parts of a report.
struct LabelledParts {
    roc: Curve,
    pr: Curve,
    reliability: Vec<ReliabilityBin>,
    metrics: KeyFigures,
}

/// Curves, reliability and key figures of the labelled rows, when they hold both classes.
fn labelled_parts(rows: &[ScoredRow], model: &Model) -> Option<LabelledParts> {
    let (labelled, labels): (Vec<f32>, Vec<bool>) = rows
        .iter()
        .filter_map(|r| r.label.map(|l| (r.probability, l)))
        .unzip();
    labelled_parts_of(&labelled, &labels, &model.thresholds())
}

impl ReportInput {
    /// Adds the evaluation from a fixed-size summary of labelled probabilities (within
    /// the tolerance documented in [`crate::eval::binned`]) when it holds both classes;
    /// leaves the report as it is otherwise.
    pub fn add_binned_evaluation(&mut self, bins: &LabelledBins) {
        let (genuine, counterfeit) = bins.class_counts();
        if genuine == 0 || counterfeit == 0 {
            return;
        }
        let Some(binned) = bins.evaluate() else {
            return;
        };
        self.set_evaluation(LabelledParts {
            roc: Curve {
                points: binned.roc,
                area: binned.evaluation.roc_auc,
            },
            pr: Curve {
                points: binned.pr,
                area: binned.evaluation.pr_auc,
            },
            reliability: binned
                .reliability
                .into_iter()
                .filter(|b| b.count > 0)
                .collect(),
            metrics: KeyFigures::from(&binned.evaluation),
        });
    }

    fn set_evaluation(&mut self, parts: LabelledParts) {
        self.roc = Some(parts.roc);
        self.pr = Some(parts.pr);
        self.reliability = Some(parts.reliability);
        self.metrics = Some(parts.metrics);
    }
}

fn labelled_parts_of(
    labelled: &[f32],
    labels: &[bool],
    thresholds: &Thresholds,
) -> Option<LabelledParts> {
    let has_both_classes = labels.iter().any(|l| *l) && labels.iter().any(|l| !*l);
    if !has_both_classes {
        return None;
    }
    let evaluation = evaluate(labelled, labels, thresholds);
    Some(LabelledParts {
        roc: Curve {
            points: roc_curve(labelled, labels),
            area: evaluation.roc_auc,
        },
        pr: Curve {
            points: pr_curve(labelled, labels),
            area: evaluation.pr_auc,
        },
        reliability: reliability_bins(labelled, labels, ECE_BINS)
            .into_iter()
            .filter(|b| b.count > 0)
            .collect(),
        metrics: KeyFigures::from(&evaluation),
    })
}

/// Prevalence for all rows, and when rows carry labels, the curves and key metrics too.
pub fn report_input(
    title: &str,
    model: &Model,
    rows: &[ScoredRow],
    min_group_rows: usize,
) -> ReportInput {
    let prevalence = PrevalenceReport::build(rows, &model.config.quantification, min_group_rows);
    let probabilities: Vec<f32> = rows.iter().map(|r| r.probability).collect();
    let (roc, pr, reliability, metrics) = match labelled_parts(rows, model) {
        Some(l) => (
            Some(l.roc),
            Some(l.pr),
            Some(l.reliability),
            Some(l.metrics),
        ),
        None => (None, None, None, None),
    };
    ReportInput {
        title: title.to_string(),
        model_name: model.name().to_string(),
        model_version: model.version().to_string(),
        generated_at: chrono::Utc::now().to_rfc3339(),
        prevalence,
        scores: ScoreHistogram::from_probabilities(&probabilities, HISTOGRAM_BINS),
        thresholds: Some(model.thresholds()),
        roc,
        pr,
        reliability,
        metrics,
        audit: None,
    }
}

/// The `report.html` written beside a freshly trained model, over its validation set, with
/// the same [`MIN_GROUP_ROWS`] as `knockoff-score`'s default.
pub fn training_report(outcome: &TrainOutcome) -> Result<String, ReportError> {
    let model = &outcome.model;
    let thresholds = model.thresholds();
    let rows: Vec<ScoredRow> = outcome
        .valid_rows
        .iter()
        .zip(&outcome.valid_probabilities)
        .map(|(row, &p)| ScoredRow::new(&row.listing, p, thresholds.decide(p), row.label))
        .collect();
    let input = report_input(
        &format!("Validation report for model {}", model.name()),
        model,
        &rows,
        MIN_GROUP_ROWS,
    );
    super::render_html(&input)
}
