//! What the estimators know about the classifier: error rates, class-conditional
//! probability moments and calibration information measured on held-out validation data,
//! and the choice of headline method they imply.

use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::{clamp_prob, Method};
use crate::decision::Thresholds;
use crate::eval::confusion::Confusion;
use crate::eval::math::{logit, or_zero, ratio};

/// Below this tpr - fpr gap an adjusted count divides by noise.
const MIN_SEPARATION: f64 = 0.05;
/// A recalibration slope known less precisely than this means validation cannot vouch for
/// the probabilities' calibration, so EM (which trusts them) should not be the headline.
const MAX_CALIBRATION_SLOPE_SE: f64 = 0.5;
/// Calibration-in-the-large gap (in log-odds) small enough to ignore whatever its z-score.
const CALIBRATION_LOGIT_TOLERANCE: f64 = 0.1;
const CALIBRATION_Z_TOLERANCE: f64 = 3.0;

/// What the estimators need to know about the classifier, measured once on held-out labelled
/// validation data and stored with the model (a few hundred bytes of JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantificationStats {
    /// Validation counterfeits / genuine listings.
    pub positives: usize,
    pub negatives: usize,
    /// Validation positive share: the prior the calibrated probabilities refer to.
    pub train_prior: f64,
    /// "Flagged" for classify-and-count means probability >= `review_threshold`.
    pub review_threshold: f32,
    pub block_threshold: f32,
    pub at_review: Confusion,
    pub at_block: Confusion,
    /// Mean and variance of the calibrated probability within each class (for PACC).
    pub mean_prob_pos: f64,
    pub mean_prob_neg: f64,
    pub var_prob_pos: f64,
    pub var_prob_neg: f64,
    /// Fisher information `[Σw, Σw·l, Σw·l²]` (w = p(1-p), l = logit p) of a logistic
    /// recalibration `logit p' = a + b·logit p` at a = 0, b = 1. Its inverse is how precisely
    /// validation pins down the calibration EM relies on; the bootstrap redraws (a, b) from it.
    pub calibration_information: [f64; 3],
}

impl QuantificationStats {
    /// Measures the statistics on validation probabilities and labels. The trainer calls this
    /// with the *calibrated* validation probabilities and the thresholds it ships. Pairs with
    /// a non-finite probability are skipped; extra elements of the longer slice are ignored.
    pub fn from_validation(probs: &[f32], labels: &[bool], thresholds: &Thresholds) -> Self {
        if probs.len() != labels.len() {
            tracing::warn!(
                probs = probs.len(),
                labels = labels.len(),
                "validation probabilities and labels differ in length; using the common prefix"
            );
        }
        let mut at_review = Confusion::default();
        let mut at_block = Confusion::default();
        let mut sums = [[0.0f64; 2]; 2]; // [class][sum p, sum p²]
        let mut info = [0.0f64; 3];
        let mut skipped = 0usize;
        for (&p, &positive) in probs.iter().zip(labels) {
            if !p.is_finite() {
                skipped += 1;
                continue;
            }
            let p = p.clamp(0.0, 1.0);
            at_review.record(p >= thresholds.review, positive);
            at_block.record(p >= thresholds.block, positive);
            let pf = f64::from(p);
            let class = usize::from(positive);
            sums[class][0] += pf;
            sums[class][1] += pf * pf;
            let q = clamp_prob(pf);
            let l = logit(q);
            let w = q * (1.0 - q);
            info[0] += w;
            info[1] += w * l;
            info[2] += w * l * l;
        }
        if skipped > 0 {
            tracing::warn!(skipped, "skipped non-finite validation probabilities");
        }
        let positives = at_review.positives();
        let negatives = at_review.negatives();
        let moments = |class: usize, n: usize| {
            if n == 0 {
                return (0.0, 0.0);
            }
            let mean = sums[class][0] / n as f64;
            (mean, (sums[class][1] / n as f64 - mean * mean).max(0.0))
        };
        let (mean_prob_pos, var_prob_pos) = moments(1, positives);
        let (mean_prob_neg, var_prob_neg) = moments(0, negatives);
        QuantificationStats {
            positives,
            negatives,
            // 0, not NaN, for empty validation: the prior must stay a number in `config.json`.
            train_prior: or_zero(ratio(positives, positives + negatives)),
            review_threshold: thresholds.review,
            block_threshold: thresholds.block,
            at_review,
            at_block,
            mean_prob_pos,
            mean_prob_neg,
            var_prob_pos,
            var_prob_neg,
            calibration_information: info,
        }
    }

    /// Mean validation probability minus the validation positive share. A calibrated model
    /// has this near 0; the second value is its standard error if it were calibrated.
    pub fn calibration_gap(&self) -> (f64, f64) {
        let n = (self.positives + self.negatives) as f64;
        if n == 0.0 {
            return (0.0, 0.0);
        }
        let mean = (self.positives as f64 * self.mean_prob_pos
            + self.negatives as f64 * self.mean_prob_neg)
            / n;
        (
            mean - self.train_prior,
            self.calibration_information[0].max(0.0).sqrt() / n,
        )
    }

    fn is_calibrated(&self) -> bool {
        let (gap, se) = self.calibration_gap();
        let mean = self.train_prior + gap;
        let logit_gap = (logit(clamp_prob(mean)) - logit(clamp_prob(self.train_prior))).abs();
        gap.abs() <= CALIBRATION_Z_TOLERANCE * se || logit_gap <= CALIBRATION_LOGIT_TOLERANCE
    }

    /// The headline estimator and a sentence saying why. It depends on the validation
    /// statistics only, never on the sample, so every group in a report uses the same method.
    ///
    /// EM is preferred: with calibrated probabilities it is the maximum-likelihood prevalence
    /// under label shift (counterfeits more or less common than in validation, each class
    /// looking the same), it uses every listing's probability rather than one bit, and so it
    /// is less noisy than ACC. It trusts calibration, so it is chosen only when validation
    /// shows calibration holds and is pinned down precisely; otherwise ACC, which needs only
    /// the flagged/not-flagged rates, is the robust fallback.
    pub fn headline_method(&self) -> (Method, String) {
        if self.positives == 0 || self.negatives == 0 {
            return (
                Method::Pcc,
                "The validation data lack counterfeit or genuine examples, so the classifier's \
                 error rates are unknown and no correction is possible: the headline is the \
                 unadjusted mean probability and may be biased."
                    .to_string(),
            );
        }
        let (gap, _) = self.calibration_gap();
        let mean = self.train_prior + gap;
        let slope_se =
            CalibrationNoise::from_information(self.calibration_information).map(|n| n.slope_se());
        match slope_se {
            Some(se) if self.is_calibrated() && se <= MAX_CALIBRATION_SLOPE_SE => {
                return (
                    Method::Em,
                    format!(
                        "EM prior adjustment: on validation the model's probabilities are \
                         calibrated (mean {:.1}% vs {:.1}% counterfeit), so re-weighting them \
                         for this sample's own counterfeit share stays correct when that share \
                         differs from validation, and uses every listing's probability, making \
                         it less noisy than adjusting the flagged count (ACC).",
                        100.0 * mean,
                        100.0 * self.train_prior
                    ),
                );
            }
            _ => {}
        }
        let why_not_em = if self.is_calibrated() {
            "validation is too small or too cleanly separated to confirm the calibration EM \
             relies on"
                .to_string()
        } else {
            format!(
                "the model's probabilities are not calibrated on validation (mean {:.1}% vs \
                 {:.1}% counterfeit), so methods that trust them (EM, mean probability) would \
                 be biased",
                100.0 * mean,
                100.0 * self.train_prior
            )
        };
        // Both classes are present here, so neither rate is undefined.
        let c = &self.at_review;
        if c.recall() - c.false_positive_rate() >= MIN_SEPARATION {
            (
                Method::Acc,
                format!(
                    "Adjusted classify and count: {why_not_em}; ACC uses only whether a listing \
                     is flagged and the true- and false-positive rates measured on validation."
                ),
            )
        } else {
            (
                Method::Pcc,
                format!(
                    "Mean probability, unadjusted: {why_not_em}, and the flagged rule barely \
                     separates counterfeit from genuine listings on validation, so no \
                     correction is reliable; treat this estimate as indicative only."
                ),
            )
        }
    }
}

/// Draws (a, b) of a logistic recalibration `logit p' = a + (1 + b)·logit p` from the normal
/// approximation N(0, I⁻¹) around "already calibrated", via the Cholesky factor of I⁻¹.
#[derive(Debug, Clone, Copy)]
pub(super) struct CalibrationNoise {
    l11: f64,
    l21: f64,
    l22: f64,
}

impl CalibrationNoise {
    pub(super) fn from_information([i_aa, i_ab, i_bb]: [f64; 3]) -> Option<Self> {
        let det = i_aa * i_bb - i_ab * i_ab;
        let usable = i_aa > 0.0 && i_bb > 0.0 && det > 1e-12 * i_aa * i_bb && det.is_finite();
        if !usable {
            return None;
        }
        let (s11, s21, s22) = (i_bb / det, -i_ab / det, i_aa / det);
        let l11 = s11.sqrt();
        let l21 = s21 / l11;
        let l22 = (s22 - l21 * l21).max(0.0).sqrt();
        Some(CalibrationNoise { l11, l21, l22 })
    }

    fn slope_se(&self) -> f64 {
        (self.l21 * self.l21 + self.l22 * self.l22).sqrt()
    }

    pub(super) fn draw(&self, rng: &mut StdRng) -> (f64, f64) {
        let z1: f64 = rng.sample(StandardNormal);
        let z2: f64 = rng.sample(StandardNormal);
        (self.l11 * z1, self.l21 * z1 + self.l22 * z2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::prevalence::estimate;
    use crate::eval::prevalence::testutil::{draw, stats_for, World, THRESHOLDS};
    use rand::SeedableRng;

    #[test]
    fn validation_stats_count_confusion_and_moments() {
        let probs = [0.95, 0.6, 0.2, 0.1, 0.7, 0.3, f32::NAN];
        let labels = [true, true, true, false, false, false, true];
        let s = QuantificationStats::from_validation(&probs, &labels, &THRESHOLDS);
        assert_eq!((s.positives, s.negatives), (3, 3));
        assert_eq!(
            s.at_review,
            Confusion {
                tp: 2,
                fn_: 1,
                fp: 1,
                tn: 2
            }
        );
        assert_eq!(
            s.at_block,
            Confusion {
                tp: 1,
                fn_: 2,
                fp: 0,
                tn: 3
            }
        );
        assert!((s.train_prior - 0.5).abs() < 1e-12);
        assert!((s.mean_prob_pos - 0.583_333).abs() < 1e-5);
        assert!((s.mean_prob_neg - 0.366_667).abs() < 1e-5);
        assert!((s.at_review.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.at_review.false_positive_rate() - 1.0 / 3.0).abs() < 1e-12);

        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["at_review"]["fn"], 1);
        let back: QuantificationStats = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn stats_from_realistic_validation_stay_small() {
        let mut rng = StdRng::seed_from_u64(1);
        let s = stats_for(&mut rng, 50_000, 0.3, World::calibrated(1.25, 0.3));
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.len() < 4096, "{} bytes", json.len());
    }

    #[test]
    fn calibrated_model_gets_em_headline_and_miscalibrated_gets_acc() {
        let mut rng = StdRng::seed_from_u64(3);
        let world = World::calibrated(1.25, 0.3);
        let calibrated = stats_for(&mut rng, 5_000, 0.3, world);
        assert_eq!(calibrated.headline_method().0, Method::Em);

        let overconfident = World {
            a: world.a + 1.0,
            ..world
        };
        let shifted = stats_for(&mut rng, 5_000, 0.3, overconfident);
        let (method, reason) = shifted.headline_method();
        assert_eq!(method, Method::Acc);
        assert!(reason.contains("not calibrated"), "{reason}");

        let (probs, _) = draw(&mut rng, 5_000, 0.3, overconfident);
        assert_eq!(estimate(&probs, &shifted).method, Method::Acc);
    }

    #[test]
    fn one_class_validation_falls_back_without_panicking() {
        let s = QuantificationStats::from_validation(&[0.1, 0.2], &[false, false], &THRESHOLDS);
        assert_eq!(s.headline_method().0, Method::Pcc);
        let e = estimate(&[0.1, 0.9, 0.5], &s);
        assert_eq!(e.method, Method::Pcc);
        assert!(e.ci_low <= e.estimate && e.estimate <= e.ci_high);

        let empty = QuantificationStats::from_validation(&[], &[], &THRESHOLDS);
        let e = estimate(&[0.3], &empty);
        assert!(e.estimate.is_finite());
    }
}
