//! Builds report inputs from scored rows: the glue between scoring, [`crate::metrics`],
//! [`crate::prevalence`] and [`crate::report`], shared by `knockoff-score` and training.

use crate::metrics::{self, ECE_BINS};
use crate::model::Model;
use crate::prevalence::{PrevalenceReport, ScoredRow};
use crate::report::{Curve, ReportError, ReportInput, ScoreHistogram};
use crate::train::TrainOutcome;

const HISTOGRAM_BINS: usize = 20;

/// Prevalence for all rows, and when rows carry labels, the curves and key metrics too.
pub fn report_input(
    title: &str,
    model: &Model,
    rows: &[ScoredRow],
    min_group_rows: usize,
) -> ReportInput {
    let prevalence = PrevalenceReport::build(rows, &model.config.quantification, min_group_rows);
    let probabilities: Vec<f32> = rows.iter().map(|r| r.probability).collect();
    let (labelled, labels): (Vec<f32>, Vec<bool>) = rows
        .iter()
        .filter_map(|r| r.label.map(|l| (r.probability, l)))
        .unzip();
    let thresholds = model.thresholds();
    let has_both_classes = labels.iter().any(|l| *l) && labels.iter().any(|l| !*l);
    let (roc, pr, reliability, metrics_value) = if has_both_classes {
        let evaluation = metrics::evaluate(&labelled, &labels, &thresholds);
        let roc = Curve {
            points: metrics::roc_curve(&labelled, &labels)
                .iter()
                .map(|p| (p.x, p.y))
                .collect(),
            area: evaluation.roc_auc,
        };
        let pr = Curve {
            points: metrics::pr_curve(&labelled, &labels)
                .iter()
                .map(|p| (p.x, p.y))
                .collect(),
            area: evaluation.pr_auc,
        };
        let reliability = metrics::reliability_bins(&labelled, &labels, ECE_BINS)
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| (b.mean_predicted, b.observed_rate, b.count as u64))
            .collect();
        let key_figures = serde_json::json!({
            "labelled listings": evaluation.rows,
            "counterfeit (labelled)": evaluation.positives,
            "ROC-AUC": evaluation.roc_auc,
            "PR-AUC": evaluation.pr_auc,
            "recall at 95% precision": evaluation.recall_at_95_precision,
            "expected calibration error": evaluation.expected_calibration_error,
            "Brier score": evaluation.brier_score,
        });
        (Some(roc), Some(pr), Some(reliability), Some(key_figures))
    } else {
        (None, None, None, None)
    };
    ReportInput {
        title: title.to_string(),
        model_name: model.name().to_string(),
        model_version: model.version().to_string(),
        generated_at: chrono::Utc::now().to_rfc3339(),
        prevalence,
        scores: ScoreHistogram::from_probabilities(&probabilities, HISTOGRAM_BINS),
        thresholds: Some(thresholds),
        roc,
        pr,
        reliability,
        metrics: metrics_value,
    }
}

/// The `report.html` written beside a freshly trained model, over its validation set.
pub fn training_report(outcome: &TrainOutcome) -> Result<String, ReportError> {
    let model = &outcome.model;
    let rows: Vec<ScoredRow> = outcome
        .valid_rows
        .iter()
        .zip(&outcome.valid_probabilities)
        .map(|(row, p)| ScoredRow {
            probability: *p,
            decision: model.thresholds().decide(*p),
            brand: Some(row.listing.brand.clone()).filter(|b| !b.is_empty()),
            category: Some(row.listing.category.clone()).filter(|c| !c.is_empty()),
            currency: row.listing.price.as_ref().map(|p| p.currency.clone()),
            label: row.label,
        })
        .collect();
    let input = report_input(
        &format!("Validation report for model {}", model.name()),
        model,
        &rows,
        100,
    );
    crate::report::render_html(&input)
}
