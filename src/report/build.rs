//! Builds a [`ReportInput`] from scored rows: the glue between scoring or training,
//! [`crate::eval`] and the page, shared by `knockoff-score` and training.

use super::{Curve, KeyFigures, ReportError, ReportInput, ScoreHistogram, HISTOGRAM_BINS};
use crate::decision::Thresholds;
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
    /// Adds the evaluation of labelled probabilities (curves, reliability, key figures)
    /// when they hold both classes; leaves the report as it is otherwise.
    pub fn add_evaluation(&mut self, probabilities: &[f32], labels: &[bool]) {
        let Some(thresholds) = self.thresholds else {
            return;
        };
        if let Some(l) = labelled_parts_of(probabilities, labels, &thresholds) {
            self.roc = Some(l.roc);
            self.pr = Some(l.pr);
            self.reliability = Some(l.reliability);
            self.metrics = Some(l.metrics);
        }
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
