//! Calibration: reliability bins, expected calibration error and Brier score of
//! probabilities, and the Platt scaling that maps a model logit to a calibrated probability.

use serde::{Deserialize, Serialize};

use super::clean_pairs;
use super::math::{sigmoid, softplus};
use super::nan_serde::nan_as_null;

/// Bin count used for [`crate::eval::evaluation::Evaluation::expected_calibration_error`].
pub const ECE_BINS: usize = 10;

/// One equal-width probability bin of a reliability diagram.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    /// Mean predicted probability in the bin; NaN for an empty bin.
    #[serde(with = "nan_as_null")]
    pub mean_predicted: f64,
    /// Fraction of positives in the bin; NaN for an empty bin.
    #[serde(with = "nan_as_null")]
    pub observed_rate: f64,
}

fn bin_pairs(pairs: &[(f32, bool)], bins: usize) -> Vec<ReliabilityBin> {
    let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
    for &(p, label) in pairs {
        if let Some(slot) = sums.get_mut(reliability_index(p, bins)) {
            slot.0 += 1;
            slot.1 += f64::from(p);
            slot.2 += usize::from(label);
        }
    }
    sums.into_iter()
        .enumerate()
        .map(|(i, (count, sum_p, positives))| reliability_bin(i, bins, count, sum_p, positives))
        .collect()
}

/// Bin `index` of `bins` equal-width bins, from its count, sum of probabilities and
/// positives; an empty bin has NaN means.
pub(super) fn reliability_bin(
    index: usize,
    bins: usize,
    count: usize,
    sum_p: f64,
    positives: usize,
) -> ReliabilityBin {
    let width = bins as f64;
    let n = count as f64; // 0/0 = NaN is exactly "empty bin"
    ReliabilityBin {
        lower: index as f64 / width,
        upper: (index + 1) as f64 / width,
        count,
        mean_predicted: sum_p / n,
        observed_rate: positives as f64 / n,
    }
}

/// The equal-width bin of `bins` that [`reliability_bins`] puts `p` in.
pub(super) fn reliability_index(p: f32, bins: usize) -> usize {
    // Saturating float→int casts put p < 0 in the first bin; `min` puts p >= 1
    // (including exactly 1.0) in the last.
    ((f64::from(p) * bins as f64).floor() as usize).min(bins.saturating_sub(1))
}

pub(super) fn ece_of_pairs(pairs: &[(f32, bool)], bins: usize) -> f64 {
    if pairs.is_empty() || bins == 0 {
        return f64::NAN;
    }
    ece_of_bins(&bin_pairs(pairs, bins))
}

/// Σ over non-empty bins of (bin count / n) · |mean predicted − observed rate|; NaN when
/// every bin is empty.
pub(super) fn ece_of_bins(bins: &[ReliabilityBin]) -> f64 {
    let n = bins.iter().map(|b| b.count).sum::<usize>() as f64;
    if n == 0.0 {
        return f64::NAN;
    }
    bins.iter()
        .filter(|b| b.count > 0)
        .map(|b| b.count as f64 / n * (b.mean_predicted - b.observed_rate).abs())
        .sum()
}

pub(super) fn brier_of_pairs(pairs: &[(f32, bool)]) -> f64 {
    if pairs.is_empty() {
        return f64::NAN;
    }
    let total: f64 = pairs
        .iter()
        .map(|&(p, label)| (f64::from(p) - f64::from(u8::from(label))).powi(2))
        .sum();
    total / pairs.len() as f64
}

/// Per-bin calibration over `bins` equal-width bins of [0, 1]; probabilities outside
/// [0, 1] are counted in the edge bins. Every bin is returned, empty ones with NaN means,
/// so charts keep a fixed x axis. Empty `Vec` when `bins == 0` or on length mismatch.
pub fn reliability_bins(probs: &[f32], labels: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    clean_pairs(probs, labels).map_or_else(Vec::new, |pairs| bin_pairs(&pairs, bins))
}

/// Expected calibration error: Σ over bins of (bin count / n) · |mean predicted −
/// observed rate|, with the bins of [`reliability_bins`].
///
/// NaN for empty input, `bins == 0` or length mismatch.
pub fn expected_calibration_error(probs: &[f32], labels: &[bool], bins: usize) -> f64 {
    clean_pairs(probs, labels).map_or(f64::NAN, |pairs| ece_of_pairs(&pairs, bins))
}

/// Mean squared error of the probabilities against 0/1 labels. NaN for empty input or
/// length mismatch.
pub fn brier_score(probs: &[f32], labels: &[bool]) -> f64 {
    clean_pairs(probs, labels).map_or(f64::NAN, |pairs| brier_of_pairs(&pairs))
}

// ---------------------------------------------------------------------------------------
// Platt scaling
// ---------------------------------------------------------------------------------------

/// Maps a model logit to a calibrated probability: `p = sigmoid(a · logit + b)`.
///
/// Stored in the model's `config.json`. The default is the identity calibration (a = 1,
/// b = 0), i.e. the model's own sigmoid.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct PlattCalibration {
    pub a: f64,
    pub b: f64,
}

impl Default for PlattCalibration {
    fn default() -> Self {
        Self::IDENTITY
    }
}

/// Why [`PlattCalibration::try_fit`] produced no calibration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlattError {
    #[error("logits ({logits}) and labels ({labels}) differ in length")]
    LengthMismatch { logits: usize, labels: usize },
    #[error(
        "need both classes among finite logits (positives {positives}, negatives {negatives})"
    )]
    SingleClass { positives: usize, negatives: usize },
    #[error("Newton's method did not converge in {0} iterations")]
    NoConvergence(usize),
    #[error("line search failed (gradient {gradient:e})")]
    LineSearch { gradient: f64 },
    #[error("parameters became non-finite")]
    NonFinite,
}

const PLATT_MAX_ITER: usize = 100;

impl PlattCalibration {
    pub const IDENTITY: Self = Self { a: 1.0, b: 0.0 };

    /// Fits by maximum likelihood (see [`Self::try_fit`]); on any failure logs a warning
    /// and returns [`Self::IDENTITY`], so training never stops over calibration.
    pub fn fit(logits: &[f32], labels: &[bool]) -> Self {
        Self::try_fit(logits, labels).unwrap_or_else(|error| {
            tracing::warn!(%error, "Platt calibration failed; using identity calibration");
            Self::IDENTITY
        })
    }

    /// Maximum-likelihood fit with Newton's method and backtracking line search (Lin, Lin
    /// & Weng, "A note on Platt's probabilistic outputs", 2007). Targets are Platt's
    /// smoothed `(N₊+1)/(N₊+2)` and `1/(N₋+2)`, which keep the optimum finite even on
    /// perfectly separated data. Non-finite logits are ignored.
    ///
    /// Errors when lengths differ, only one class remains, or Newton fails to converge.
    pub fn try_fit(logits: &[f32], labels: &[bool]) -> Result<Self, PlattError> {
        fit_platt(logits, labels, PLATT_MAX_ITER)
    }

    pub fn apply(&self, logit: f32) -> f32 {
        sigmoid(self.a * f64::from(logit) + self.b) as f32
    }
}

/// Finite logits with their labels, and Platt's smoothed targets for the two classes.
struct PlattProblem {
    data: Vec<(f64, bool)>,
    positives: usize,
    negatives: usize,
    /// Targets `(N₊+1)/(N₊+2)` for positives and `1/(N₋+2)` for negatives.
    hi: f64,
    lo: f64,
}

/// A Newton direction at one point, with the gradient size it was computed from.
struct NewtonStep {
    /// Largest absolute gradient component.
    gradient: f64,
    da: f64,
    db: f64,
    /// Directional derivative along `(da, db)`; negative for a descent direction.
    slope: f64,
}

impl NewtonStep {
    fn is_descent(&self) -> bool {
        self.da.is_finite() && self.db.is_finite() && self.slope < 0.0
    }
}

impl PlattProblem {
    fn new(logits: &[f32], labels: &[bool]) -> Result<Self, PlattError> {
        if logits.len() != labels.len() {
            return Err(PlattError::LengthMismatch {
                logits: logits.len(),
                labels: labels.len(),
            });
        }
        let data: Vec<(f64, bool)> = logits
            .iter()
            .zip(labels)
            .filter(|(f, _)| f.is_finite())
            .map(|(&f, &l)| (f64::from(f), l))
            .collect();
        let positives = data.iter().filter(|d| d.1).count();
        let negatives = data.len() - positives;
        if positives == 0 || negatives == 0 {
            return Err(PlattError::SingleClass {
                positives,
                negatives,
            });
        }
        let (np, nn) = (positives as f64, negatives as f64);
        Ok(PlattProblem {
            data,
            positives,
            negatives,
            hi: (np + 1.0) / (np + 2.0),
            lo: 1.0 / (nn + 2.0),
        })
    }

    fn target(&self, label: bool) -> f64 {
        if label {
            self.hi
        } else {
            self.lo
        }
    }

    /// Platt's starting point: slope 0, intercept at the smoothed log prior odds.
    fn start(&self) -> PlattCalibration {
        let (np, nn) = (self.positives as f64, self.negatives as f64);
        PlattCalibration {
            a: 0.0,
            b: ((np + 1.0) / (nn + 1.0)).ln(),
        }
    }

    /// Cross-entropy against soft targets, written as softplus(z) − t·z to stay finite.
    fn objective(&self, p: PlattCalibration) -> f64 {
        self.data
            .iter()
            .map(|&(f, y)| {
                let z = p.a * f + p.b;
                softplus(z) - self.target(y) * z
            })
            .sum()
    }

    fn newton_step(&self, p: PlattCalibration) -> NewtonStep {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &(f, y) in &self.data {
            let prob = sigmoid(p.a * f + p.b);
            let r = prob - self.target(y);
            ga += r * f;
            gb += r;
            let w = prob * (1.0 - prob);
            haa += w * f * f;
            hab += w * f;
            hbb += w;
        }
        // A ridge relative to the Hessian's scale keeps the 2×2 solve well-posed when all
        // logits are (nearly) equal and the Hessian is singular.
        let ridge = 1e-12 * haa.max(hbb).max(1e-300);
        let (haa, hbb) = (haa + ridge, hbb + ridge);
        let det = haa * hbb - hab * hab;
        let da = -(hbb * ga - hab * gb) / det;
        let db = -(haa * gb - hab * ga) / det;
        NewtonStep {
            gradient: ga.abs().max(gb.abs()),
            da,
            db,
            slope: ga * da + gb * db,
        }
    }

    /// Backtracking line search with Armijo sufficient decrease: the accepted point and its
    /// objective, or `None` when the step shrinks to nothing.
    fn line_search(
        &self,
        p: PlattCalibration,
        value: f64,
        step: &NewtonStep,
    ) -> Option<(PlattCalibration, f64)> {
        let mut length = 1.0;
        loop {
            let candidate = PlattCalibration {
                a: p.a + length * step.da,
                b: p.b + length * step.db,
            };
            let candidate_value = self.objective(candidate);
            if candidate_value <= value + 1e-4 * length * step.slope {
                return Some((candidate, candidate_value));
            }
            length *= 0.5;
            if length < 1e-10 {
                return None;
            }
        }
    }
}

fn fit_platt(
    logits: &[f32],
    labels: &[bool],
    max_iter: usize,
) -> Result<PlattCalibration, PlattError> {
    let problem = PlattProblem::new(logits, labels)?;
    let n = problem.data.len() as f64;
    // Gradient tolerances scale with n because the gradient is a sum over rows. The loose
    // one accepts a point where rounding, not a bad direction, stops the line search.
    let (tol, loose_tol) = (1e-7 * n, 1e-4 * n);
    let mut point = problem.start();
    let mut value = problem.objective(point);

    for _ in 0..max_iter {
        let step = problem.newton_step(point);
        if step.gradient < tol {
            return Ok(point);
        }
        let stalled = |point| {
            if step.gradient < loose_tol {
                Ok(point)
            } else {
                Err(PlattError::LineSearch {
                    gradient: step.gradient,
                })
            }
        };
        if !step.is_descent() {
            return stalled(point);
        }
        match problem.line_search(point, value, &step) {
            Some((next, next_value)) => (point, value) = (next, next_value),
            None => return stalled(point),
        }
        if !(point.a.is_finite() && point.b.is_finite()) {
            return Err(PlattError::NonFinite);
        }
    }
    Err(PlattError::NoConvergence(max_iter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::testutil::{close, F, T};

    // ---- Calibration ---------------------------------------------------------------

    #[test]
    fn ece_known_example() {
        // Dyadic probabilities, exact in f32. Bin [0, .5): mean .1875, rate .5, gap .3125;
        // bin [.5, 1]: mean .8125, rate 1, gap .1875; equal weights → .25.
        let probs = [0.125, 0.25, 0.875, 0.75];
        let labels = [F, T, T, T];
        close(expected_calibration_error(&probs, &labels, 2), 0.25);
    }

    #[test]
    fn ece_weights_bins_by_count() {
        // Bin [0, .5): 3 rows, gap |.125 − 1/3|; bin [.5, 1]: 1 row, gap .125.
        // Weighted: .75·5/24 + .25·.125 = .1875 (an unweighted mean would give ≈ .1667).
        let probs = [0.125, 0.125, 0.125, 0.875];
        let labels = [T, F, F, T];
        close(expected_calibration_error(&probs, &labels, 2), 0.1875);
    }

    #[test]
    fn ece_zero_when_perfectly_calibrated_and_nan_when_undefined() {
        close(
            expected_calibration_error(&[0.25; 4], &[T, F, F, F], 10),
            0.0,
        );
        close(expected_calibration_error(&[1.0, 0.0], &[T, F], 10), 0.0);
        assert!(expected_calibration_error(&[], &[], 10).is_nan());
        assert!(expected_calibration_error(&[0.5], &[T], 0).is_nan());
    }

    #[test]
    fn reliability_bins_layout() {
        let probs = [0.05, 0.1, 1.0, 0.95, 1.2, -0.1];
        let labels = [F, T, T, T, T, F];
        let bins = reliability_bins(&probs, &labels, 4);
        assert_eq!(bins.len(), 4);
        assert_eq!(
            bins.iter().map(|b| b.count).collect::<Vec<_>>(),
            vec![3, 0, 0, 3]
        );
        close(bins[0].lower, 0.0);
        close(bins[0].upper, 0.25);
        close(bins[3].upper, 1.0);
        close(bins[0].observed_rate, 1.0 / 3.0);
        let sum = f64::from(0.05f32) + f64::from(0.1f32) + f64::from(-0.1f32);
        close(bins[0].mean_predicted, sum / 3.0);
        close(bins[3].observed_rate, 1.0);
        assert!(bins[1].mean_predicted.is_nan() && bins[1].observed_rate.is_nan());

        let json = serde_json::to_string(&bins[1]).unwrap();
        assert!(json.contains(r#""mean_predicted":null"#), "{json}");
        let back: ReliabilityBin = serde_json::from_str(&json).unwrap();
        assert!(back.mean_predicted.is_nan() && back.count == 0);
    }

    #[test]
    fn brier_known_values() {
        close(brier_score(&[1.0, 0.0], &[T, F]), 0.0);
        close(brier_score(&[0.5, 0.5], &[T, F]), 0.25);
        close(brier_score(&[0.75, 0.5], &[T, F]), (0.0625 + 0.25) / 2.0);
        assert!(brier_score(&[], &[]).is_nan());
    }

    // ---- Platt ---------------------------------------------------------------------

    /// Rows whose positive rate at each logit follows sigmoid(a·x + b) as closely as whole
    /// counts allow.
    fn platt_data(a: f64, b: f64) -> (Vec<f32>, Vec<bool>) {
        let (mut logits, mut labels) = (Vec::new(), Vec::new());
        for step in -40..=40 {
            let x = f64::from(step) / 10.0;
            let positives = (1000.0 * sigmoid(a * x + b)).round() as usize;
            for i in 0..1000 {
                logits.push(x as f32);
                labels.push(i < positives);
            }
        }
        (logits, labels)
    }

    #[test]
    fn platt_recovers_known_parameters() {
        let (logits, labels) = platt_data(2.0, -1.0);
        let cal = PlattCalibration::try_fit(&logits, &labels).unwrap();
        assert!((cal.a - 2.0).abs() < 0.02, "{cal:?}");
        assert!((cal.b + 1.0).abs() < 0.02, "{cal:?}");
        assert!((f64::from(cal.apply(0.5)) - 0.5).abs() < 0.01);
    }

    #[test]
    fn platt_fit_is_a_stationary_point_of_the_smoothed_likelihood() {
        let logits = [-3.0, -1.0, -0.5, 0.0, 0.2, 1.0, 1.5, 4.0];
        let labels = [F, F, T, F, T, F, T, T];
        let cal = PlattCalibration::try_fit(&logits, &labels).unwrap();
        let (hi, lo) = (5.0 / 6.0, 1.0 / 6.0); // 4 positives, 4 negatives
        let (mut ga, mut gb) = (0.0, 0.0);
        for (&f, &y) in logits.iter().zip(&labels) {
            let r = sigmoid(cal.a * f64::from(f) + cal.b) - if y { hi } else { lo };
            ga += r * f64::from(f);
            gb += r;
        }
        assert!(ga.abs() < 1e-5 && gb.abs() < 1e-5, "{ga} {gb} {cal:?}");
        assert!(cal.a > 0.0);
    }

    #[test]
    fn platt_separable_data_stays_finite() {
        let logits = [-2.0, -1.0, 1.0, 2.0];
        let labels = [F, F, T, T];
        let cal = PlattCalibration::try_fit(&logits, &labels).unwrap();
        assert!(cal.a.is_finite() && cal.b.is_finite() && cal.a > 0.0);
        // Smoothed targets cap the fitted probabilities strictly inside (0, 1).
        assert!(cal.apply(2.0) < 1.0 && cal.apply(-2.0) > 0.0);
    }

    #[test]
    fn platt_constant_logits_predict_smoothed_base_rate() {
        let logits = [1.5f32; 10];
        let labels = [T, T, F, F, F, F, F, F, F, F];
        let cal = PlattCalibration::try_fit(&logits, &labels).unwrap();
        // Optimum: 2·hi + 8·lo = 10·p with hi = 3/4, lo = 1/10 → p = 0.23.
        assert!((f64::from(cal.apply(1.5)) - 0.23).abs() < 1e-4, "{cal:?}");
    }

    #[test]
    fn platt_degenerate_inputs_fall_back_to_identity() {
        assert_eq!(
            PlattCalibration::try_fit(&[0.1, 0.2], &[T, T]),
            Err(PlattError::SingleClass {
                positives: 2,
                negatives: 0
            })
        );
        assert_eq!(PlattCalibration::fit(&[], &[]), PlattCalibration::IDENTITY);
        assert_eq!(
            PlattCalibration::fit(&[0.1, 0.2], &[T]),
            PlattCalibration::IDENTITY
        );
        // Non-finite logits are ignored, leaving one class here.
        assert_eq!(
            PlattCalibration::fit(&[f32::NAN, f32::INFINITY, 0.3], &[T, T, F]),
            PlattCalibration::IDENTITY
        );
        let (logits, labels) = platt_data(2.0, -1.0);
        assert_eq!(
            fit_platt(&logits, &labels, 1),
            Err(PlattError::NoConvergence(1))
        );
    }

    #[test]
    fn platt_identity_apply_and_serde() {
        let id = PlattCalibration::default();
        assert_eq!(id, PlattCalibration { a: 1.0, b: 0.0 });
        assert_eq!(id.apply(0.0), 0.5);
        let expected = 1.0 / (1.0 + (-2.0f64).exp());
        assert!((f64::from(id.apply(2.0)) - expected).abs() < 1e-7);
        assert_eq!(id.apply(1000.0), 1.0);
        assert_eq!(id.apply(-1000.0), 0.0);
        let cal = PlattCalibration { a: 1.5, b: -0.25 };
        let back: PlattCalibration =
            serde_json::from_str(&serde_json::to_string(&cal).unwrap()).unwrap();
        assert_eq!(back, cal);
    }
}
