//! A labelled and an unlabelled report input shared by the report tests.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Curve, KeyFigures, ReportInput, ScoreHistogram};
use crate::decision::Thresholds;
use crate::eval::calibration::ReliabilityBin;
use crate::eval::prevalence::{PrevalenceReport, QuantificationStats, ScoredRow};
use crate::eval::ranking::CurvePoint;

pub const THRESHOLDS: Thresholds = Thresholds {
    review: 0.5,
    block: 0.9,
};
pub const EVIL: &str = "<script>alert('x')</script> & \"Co\"";

/// A probability that looks like a calibrated classifier's output for that class.
fn score(rng: &mut StdRng, positive: bool) -> f32 {
    let u: f64 = rng.random();
    let x = if positive { 0.4 + 0.6 * u } else { 0.6 * u * u };
    x as f32
}

pub fn prevalence_report(labelled: bool) -> (PrevalenceReport, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(5);
    let (val_probs, val_labels): (Vec<f32>, Vec<bool>) = (0..2_000)
        .map(|_| {
            let y = rng.random::<f64>() < 0.3;
            (score(&mut rng, y), y)
        })
        .unzip();
    let stats = QuantificationStats::from_validation(&val_probs, &val_labels, &THRESHOLDS);
    let brands = ["Acme", EVIL, "Globex", "Tiny"];
    let rows: Vec<ScoredRow> = (0..400)
        .map(|i| {
            let y = rng.random::<f64>() < 0.2;
            let p = score(&mut rng, y);
            ScoredRow {
                probability: p,
                decision: THRESHOLDS.decide(p),
                brand: Some(brands[if i == 0 { 3 } else { i % 3 }].to_string()),
                category: Some(if i % 2 == 0 { "bags" } else { "watches" }.to_string()),
                currency: None,
                label: labelled.then_some(y),
            }
        })
        .collect();
    let probs = rows.iter().map(|r| r.probability).collect();
    (PrevalenceReport::build(&rows, &stats, 10), probs)
}

fn points(xy: &[(f64, f64)]) -> Vec<CurvePoint> {
    xy.iter()
        .map(|&(x, y)| CurvePoint {
            x,
            y,
            threshold: 0.5,
        })
        .collect()
}

fn bin(mean_predicted: f64, observed_rate: f64, count: usize) -> ReliabilityBin {
    ReliabilityBin {
        lower: 0.0,
        upper: 1.0,
        count,
        mean_predicted,
        observed_rate,
    }
}

pub fn input(labelled: bool) -> ReportInput {
    let (prevalence, probs) = prevalence_report(labelled);
    let roc = points(&[(0.0, 0.0), (0.1, 0.7), (0.3, 0.9), (1.0, 1.0)]);
    let pr = points(&[(0.0, 1.0), (0.5, 0.9), (1.0, 0.3)]);
    ReportInput {
        title: "Weekly <sample> & audit".to_string(),
        model_name: "knockoff".to_string(),
        model_version: "1.2.3".to_string(),
        generated_at: "2026-01-01T00:00:00Z".to_string(),
        prevalence,
        scores: ScoreHistogram::from_probabilities(&probs, 20),
        thresholds: Some(THRESHOLDS),
        roc: labelled.then_some(Curve {
            points: roc,
            area: 0.91,
        }),
        pr: labelled.then_some(Curve {
            points: pr,
            area: 0.8,
        }),
        reliability: labelled
            .then(|| vec![bin(0.1, 0.08, 200), bin(0.5, 0.55, 40), bin(0.9, 0.85, 60)]),
        metrics: labelled.then_some(KeyFigures {
            labelled_listings: 400,
            counterfeit: 80,
            roc_auc: 0.91,
            pr_auc: 0.8,
            recall_at_95_precision: 0.5,
            expected_calibration_error: 0.02,
            brier_score: 0.1,
        }),
        audit: None,
    }
}
