//! Prevalence (quantification): what share of a sample of listings is counterfeit, with 95%
//! intervals, overall and per brand, category and currency.
//!
//! Counting flagged listings answers "how many would we act on", not "how many are
//! counterfeit": the classifier misses some counterfeits and flags some genuine listings, and
//! how those errors balance depends on how common counterfeits are in the sample. The
//! estimators here correct for that with rates measured on held-out labelled validation data
//! ([`QuantificationStats`]), and the intervals carry both the sample's size and the limited
//! size of that validation set, because regulators read the interval as "what we know".

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Binomial, Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::decision::{Decision, Thresholds};

/// Coverage of every interval this module reports.
pub const CONFIDENCE_LEVEL: f64 = 0.95;
/// Value of a group key that was missing or blank in the data.
pub const NONE_GROUP: &str = "(none)";

/// Two-sided 95% normal quantile, for the Wilson floor on interval width.
const Z_95: f64 = 1.959_963_984_540_054;
/// Probabilities are held this far from 0 and 1 so odds and logits stay finite.
const PROB_EPS: f64 = 1e-6;
/// Half-width of the logit range the bootstrap bins cover; just beyond logit(1 - PROB_EPS).
const LOGIT_LIMIT: f64 = 14.0;
/// Bins this narrow move a posterior by at most ~1.3% of its odds, far below the noise the
/// interval describes, while letting a replicate run EM on a few hundred points, not 20k rows.
const LOGIT_BIN_WIDTH: f64 = 0.05;
const LOGIT_BINS: usize = 560;
const EM_MAX_ITERATIONS: usize = 1000;
const EM_TOLERANCE: f64 = 1e-7;
/// Below this tpr - fpr gap an adjusted count divides by noise.
const MIN_SEPARATION: f64 = 0.05;
/// A recalibration slope known less precisely than this means validation cannot vouch for
/// the probabilities' calibration, so EM (which trusts them) should not be the headline.
const MAX_CALIBRATION_SLOPE_SE: f64 = 0.5;
/// Calibration-in-the-large gap (in log-odds) small enough to ignore whatever its z-score.
const CALIBRATION_LOGIT_TOLERANCE: f64 = 0.1;
const CALIBRATION_Z_TOLERANCE: f64 = 3.0;
/// A drawn recalibration slope below this would invert or flatten the classifier, which is
/// not a plausible calibration error but an artefact of the normal approximation's tails.
const MIN_PERTURBED_SLOPE: f64 = 0.05;

/// Outcome counts of the rule "flagged when probability >= threshold" on validation data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfusionCounts {
    pub tp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub fp: u64,
    pub tn: u64,
}

impl ConfusionCounts {
    pub fn positives(&self) -> u64 {
        self.tp + self.fn_
    }

    pub fn negatives(&self) -> u64 {
        self.fp + self.tn
    }

    /// Share of counterfeits flagged; 0 when validation had none.
    pub fn tpr(&self) -> f64 {
        ratio(self.tp, self.positives())
    }

    /// Share of genuine listings flagged; 0 when validation had none.
    pub fn fpr(&self) -> f64 {
        ratio(self.fp, self.negatives())
    }

    fn record(&mut self, flagged: bool, positive: bool) {
        match (flagged, positive) {
            (true, true) => self.tp += 1,
            (false, true) => self.fn_ += 1,
            (true, false) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }
}

/// What the estimators need to know about the classifier, measured once on held-out labelled
/// validation data and stored with the model (a few hundred bytes of JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantificationStats {
    /// Validation counterfeits / genuine listings.
    pub positives: u64,
    pub negatives: u64,
    /// Validation positive share: the prior the calibrated probabilities refer to.
    pub train_prior: f64,
    /// "Flagged" for classify-and-count means probability >= `review_threshold`.
    pub review_threshold: f32,
    pub block_threshold: f32,
    pub at_review: ConfusionCounts,
    pub at_block: ConfusionCounts,
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

/// A prevalence estimator; its code is what report JSON shows as `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Classify and count: share of listings at or above the review threshold.
    Cc,
    /// Probabilistic classify and count: mean calibrated probability.
    Pcc,
    /// Adjusted classify and count: `(cc - fpr) / (tpr - fpr)`.
    Acc,
    /// Probabilistic ACC: PCC adjusted by the class-conditional mean probabilities.
    Pacc,
    /// EM prior adjustment (Saerens, Latinne & Decaestecker 2002).
    Em,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::Cc,
        Method::Pcc,
        Method::Acc,
        Method::Pacc,
        Method::Em,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Cc => "cc",
            Method::Pcc => "pcc",
            Method::Acc => "acc",
            Method::Pacc => "pacc",
            Method::Em => "em",
        }
    }

    /// Name for people reading a report.
    pub fn label(self) -> &'static str {
        match self {
            Method::Cc => "share flagged (classify and count)",
            Method::Pcc => "mean probability (probabilistic classify and count)",
            Method::Acc => "adjusted classify and count",
            Method::Pacc => "probabilistic adjusted classify and count",
            Method::Em => "EM prior adjustment (Saerens et al. 2002)",
        }
    }

    pub fn from_code(code: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == code)
    }
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
        let mut at_review = ConfusionCounts::default();
        let mut at_block = ConfusionCounts::default();
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
        let moments = |class: usize, n: u64| {
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
            train_prior: ratio(positives, positives + negatives),
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
        if self.at_review.tpr() - self.at_review.fpr() >= MIN_SEPARATION {
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

/// A point estimate with its 95% interval, all as shares in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Every estimator on the same sample, so a report can set the headline beside "share
/// flagged" and let a reader see how much the correction moved it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimators {
    pub cc: Interval,
    pub pcc: Interval,
    pub acc: Interval,
    pub pacc: Interval,
    pub em: Interval,
}

impl Estimators {
    pub fn get(&self, method: Method) -> Interval {
        match method {
            Method::Cc => self.cc,
            Method::Pcc => self.pcc,
            Method::Acc => self.acc,
            Method::Pacc => self.pacc,
            Method::Em => self.em,
        }
    }
}

/// Result of [`estimate`]: the headline method's interval plus every estimator's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrevalenceEstimate {
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Code of the headline method ([`Method::as_str`]).
    pub method: String,
    /// Listings with a finite probability, i.e. those the estimate is based on.
    pub listings: usize,
    pub estimators: Estimators,
}

/// Bootstrap size and seed. The seed is mixed with a fingerprint of the sample, so the same
/// input always gives the same interval while different groups get different draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootstrapConfig {
    /// Replicates; endpoints of a 95% percentile interval get noisy below ~200.
    pub replicates: usize,
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            replicates: 400,
            seed: 0x6b6e_6f63_6b6f_6666, // "knockoff"
        }
    }
}

/// Share of finite probabilities at or above `threshold` (0 for an empty sample).
pub fn classify_and_count(probs: &[f32], threshold: f32) -> f64 {
    let (n, k) = probs
        .iter()
        .filter(|p| p.is_finite())
        .fold((0u64, 0u64), |(n, k), &p| {
            (n + 1, k + u64::from(p >= threshold))
        });
    ratio(k, n)
}

/// Mean calibrated probability (0 for an empty sample). Biased whenever the sample's
/// counterfeit share differs from validation's, because the probabilities assume that prior.
pub fn probabilistic_classify_and_count(probs: &[f32]) -> f64 {
    let (n, sum) = finite_probs(probs).fold((0u64, 0.0), |(n, s), p| (n + 1, s + p));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Solves `observed = prevalence·true_rate + (1 - prevalence)·false_rate` for prevalence,
/// clipped to [0, 1]. Without separation (`true_rate <= false_rate`) the equation says
/// nothing, so the observed share is returned unadjusted rather than a division by ~0.
pub fn adjust(observed: f64, false_rate: f64, true_rate: f64) -> f64 {
    let separation = true_rate - false_rate;
    if separation > 1e-9 {
        ((observed - false_rate) / separation).clamp(0.0, 1.0)
    } else {
        observed.clamp(0.0, 1.0)
    }
}

/// ACC at the review threshold: classify-and-count corrected by validation tpr and fpr.
pub fn adjusted_classify_and_count(probs: &[f32], stats: &QuantificationStats) -> f64 {
    adjust(
        classify_and_count(probs, stats.review_threshold),
        stats.at_review.fpr(),
        stats.at_review.tpr(),
    )
}

/// PACC: mean probability corrected by the validation class-conditional mean probabilities.
pub fn probabilistic_adjusted_classify_and_count(
    probs: &[f32],
    stats: &QuantificationStats,
) -> f64 {
    adjust(
        probabilistic_classify_and_count(probs),
        stats.mean_prob_neg,
        stats.mean_prob_pos,
    )
}

/// EM prior adjustment (Saerens, Latinne & Decaestecker 2002): starting from the training
/// prior, rescale each posterior by `p / p_train` and `(1 - p) / (1 - p_train)`, renormalise,
/// take the mean posterior as the new `p`, and repeat until it moves less than 1e-7 (at most
/// 1000 rounds). The fixed point is the maximum-likelihood prevalence under label shift.
pub fn em_prior_adjustment(probs: &[f32], train_prior: f64) -> f64 {
    let points: Vec<(f64, f64)> = finite_probs(probs).map(|p| (clamp_prob(p), 1.0)).collect();
    if points.is_empty() {
        return 0.0;
    }
    em_weighted(&points, points.len() as f64, train_prior, train_prior)
}

/// EM over `(posterior, weight)` points; posteriors must already be inside
/// [PROB_EPS, 1 - PROB_EPS] so the renormalising denominator can never be 0.
fn em_weighted(points: &[(f64, f64)], total_weight: f64, train_prior: f64, start: f64) -> f64 {
    if total_weight <= 0.0 {
        return 0.0;
    }
    let p_train = clamp_prob(train_prior);
    let mut p = clamp_prob(start);
    for _ in 0..EM_MAX_ITERATIONS {
        let up = p / p_train;
        let down = (1.0 - p) / (1.0 - p_train);
        let sum: f64 = points
            .iter()
            .map(|&(s, w)| {
                let a = s * up;
                w * a / (a + (1.0 - s) * down)
            })
            .sum();
        let next = sum / total_weight;
        let converged = (next - p).abs() < EM_TOLERANCE;
        p = next;
        if converged {
            break;
        }
    }
    p.clamp(0.0, 1.0)
}

/// Headline prevalence of a sample with a 95% bootstrap interval, plus every estimator.
/// See [`estimate_with`].
pub fn estimate(probs: &[f32], stats: &QuantificationStats) -> PrevalenceEstimate {
    estimate_with(probs, stats, &BootstrapConfig::default())
}

/// Like [`estimate`] with an explicit bootstrap size and seed.
///
/// Each replicate redraws everything the estimate depends on: the sample (multinomial over
/// binned probabilities: the sample-size uncertainty), tpr and fpr from their Jeffreys Beta
/// posteriors given the validation counts (ACC), the class-conditional mean probabilities
/// from their normal sampling distributions (PACC), and a recalibration `a + b·logit p` from
/// the validation Fisher information (EM: how well validation pins down the calibration it
/// trusts). Intervals are percentile intervals, widened to contain the point estimate and
/// never narrower than the Wilson interval of a perfectly classified sample of that size:
/// sampling alone costs that much, and a small sample with little variety otherwise
/// collapses the bootstrap to a point. An empty sample gives the uninformative [0, 1].
pub fn estimate_with(
    probs: &[f32],
    stats: &QuantificationStats,
    config: &BootstrapConfig,
) -> PrevalenceEstimate {
    let (method, _) = stats.headline_method();
    let bins = bin_sample(probs, stats.review_threshold);
    let n: u64 = bins.iter().map(|b| b.count).sum();
    if n == 0 {
        let unknown = Interval {
            estimate: 0.0,
            ci_low: 0.0,
            ci_high: 1.0,
        };
        return PrevalenceEstimate {
            estimate: unknown.estimate,
            ci_low: unknown.ci_low,
            ci_high: unknown.ci_high,
            method: method.as_str().to_string(),
            listings: 0,
            estimators: Estimators {
                cc: unknown,
                pcc: unknown,
                acc: unknown,
                pacc: unknown,
                em: unknown,
            },
        };
    }

    let points = [
        classify_and_count(probs, stats.review_threshold),
        probabilistic_classify_and_count(probs),
        adjusted_classify_and_count(probs, stats),
        probabilistic_adjusted_classify_and_count(probs, stats),
        em_prior_adjustment(probs, stats.train_prior),
    ];

    let noise = CalibrationNoise::from_information(stats.calibration_information);
    let seed = fingerprint(&bins, n) ^ config.seed;
    let replicates: Vec<[f64; 5]> = (0..config.replicates.max(1) as u64)
        .into_par_iter()
        .map(|r| {
            let mut rng = StdRng::seed_from_u64(splitmix64(seed.wrapping_add(r)));
            replicate(&bins, n, stats, noise.as_ref(), points[4], &mut rng)
        })
        .collect();

    let mut column = Vec::with_capacity(replicates.len());
    let mut intervals = [Interval {
        estimate: 0.0,
        ci_low: 0.0,
        ci_high: 0.0,
    }; 5];
    for (m, interval) in intervals.iter_mut().enumerate() {
        column.clear();
        column.extend(replicates.iter().map(|r| r[m]));
        *interval = percentile_interval(&mut column, points[m], n);
    }
    let estimators = Estimators {
        cc: intervals[0],
        pcc: intervals[1],
        acc: intervals[2],
        pacc: intervals[3],
        em: intervals[4],
    };
    let headline = estimators.get(method);
    PrevalenceEstimate {
        estimate: headline.estimate,
        ci_low: headline.ci_low,
        ci_high: headline.ci_high,
        method: method.as_str().to_string(),
        listings: usize::try_from(n).unwrap_or(usize::MAX),
        estimators,
    }
}

#[derive(Debug, Clone, Copy)]
struct Bin {
    slot: usize,
    count: u64,
    /// Mean probability of the bin's listings.
    prob: f64,
    logit: f64,
    flagged: bool,
}

/// Groups probabilities by narrow logit bins, split at the review threshold so a resampled
/// classify-and-count stays exact.
fn bin_sample(probs: &[f32], threshold: f32) -> Vec<Bin> {
    let mut acc = vec![(0u64, 0.0f64); 2 * LOGIT_BINS];
    for &p in probs {
        if !p.is_finite() {
            continue;
        }
        let p = p.clamp(0.0, 1.0);
        let pf = f64::from(p);
        let slot = logit_slot(logit(clamp_prob(pf))) + usize::from(p >= threshold) * LOGIT_BINS;
        acc[slot].0 += 1;
        acc[slot].1 += pf;
    }
    acc.into_iter()
        .enumerate()
        .filter(|(_, (count, _))| *count > 0)
        .map(|(slot, (count, sum))| {
            let prob = sum / count as f64;
            Bin {
                slot,
                count,
                prob,
                logit: logit(clamp_prob(prob)),
                flagged: slot >= LOGIT_BINS,
            }
        })
        .collect()
}

fn logit_slot(l: f64) -> usize {
    let x = ((l + LOGIT_LIMIT) / LOGIT_BIN_WIDTH).floor();
    // Clamped into range first, so the cast neither wraps nor exceeds the table.
    x.clamp(0.0, (LOGIT_BINS - 1) as f64) as usize
}

/// Draws (a, b) of a logistic recalibration `logit p' = a + (1 + b)·logit p` from the normal
/// approximation N(0, I⁻¹) around "already calibrated", via the Cholesky factor of I⁻¹.
#[derive(Debug, Clone, Copy)]
struct CalibrationNoise {
    l11: f64,
    l21: f64,
    l22: f64,
}

impl CalibrationNoise {
    fn from_information([i_aa, i_ab, i_bb]: [f64; 3]) -> Option<Self> {
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

    fn draw(&self, rng: &mut StdRng) -> (f64, f64) {
        let z1: f64 = rng.sample(StandardNormal);
        let z2: f64 = rng.sample(StandardNormal);
        (self.l11 * z1, self.l21 * z1 + self.l22 * z2)
    }
}

/// One bootstrap replicate of [cc, pcc, acc, pacc, em].
fn replicate(
    bins: &[Bin],
    n: u64,
    stats: &QuantificationStats,
    noise: Option<&CalibrationNoise>,
    em_start: f64,
    rng: &mut StdRng,
) -> [f64; 5] {
    // Multinomial resample of the sample via conditional binomials: O(bins), not O(rows).
    let mut remaining = n;
    let mut mass = n;
    let mut counts = Vec::with_capacity(bins.len());
    let (mut flagged, mut prob_sum) = (0u64, 0.0f64);
    for bin in bins {
        let k = if remaining == 0 {
            0
        } else if bin.count >= mass {
            remaining
        } else {
            binomial(rng, remaining, bin.count as f64 / mass as f64)
        };
        remaining -= k;
        mass -= bin.count;
        if bin.flagged {
            flagged += k;
        }
        prob_sum += k as f64 * bin.prob;
        counts.push(k);
    }
    let nf = n as f64;
    let cc = flagged as f64 / nf;
    let pcc = prob_sum / nf;

    let c = &stats.at_review;
    let tpr = beta(rng, c.tp as f64 + 0.5, c.fn_ as f64 + 0.5);
    let fpr = beta(rng, c.fp as f64 + 0.5, c.tn as f64 + 0.5);
    let acc = adjust(cc, fpr, tpr);

    let mean_pos = normal_mean(
        rng,
        stats.mean_prob_pos,
        stats.var_prob_pos,
        stats.positives,
    );
    let mean_neg = normal_mean(
        rng,
        stats.mean_prob_neg,
        stats.var_prob_neg,
        stats.negatives,
    );
    let pacc = adjust(pcc, mean_neg, mean_pos);

    let (shift, slope_delta) = noise.map_or((0.0, 0.0), |noise| noise.draw(rng));
    let slope = (1.0 + slope_delta).max(MIN_PERTURBED_SLOPE);
    let points: Vec<(f64, f64)> = bins
        .iter()
        .zip(&counts)
        .filter(|(_, &k)| k > 0)
        .map(|(bin, &k)| (clamp_prob(sigmoid(shift + slope * bin.logit)), k as f64))
        .collect();
    let em = em_weighted(&points, nf, stats.train_prior, em_start);

    [cc, pcc, acc, pacc, em]
}

fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    match Binomial::new(n, p.clamp(0.0, 1.0)) {
        Ok(d) => d.sample(rng),
        // Unreachable for p in [0, 1]; the expectation is the least surprising stand-in.
        Err(_) => (n as f64 * p).round() as u64,
    }
}

fn beta(rng: &mut StdRng, a: f64, b: f64) -> f64 {
    match Beta::new(a, b) {
        Ok(d) => d.sample(rng),
        // Unreachable for the positive parameters used here; fall back to the mean.
        Err(_) => a / (a + b),
    }
}

fn normal_mean(rng: &mut StdRng, mean: f64, variance: f64, n: u64) -> f64 {
    if n == 0 {
        return mean;
    }
    let z: f64 = rng.sample(StandardNormal);
    (mean + (variance / n as f64).sqrt() * z).clamp(0.0, 1.0)
}

fn percentile_interval(values: &mut [f64], estimate: f64, n: u64) -> Interval {
    values.sort_by(f64::total_cmp);
    let alpha = (1.0 - CONFIDENCE_LEVEL) / 2.0;
    let (wilson_low, wilson_high) = wilson(estimate, n);
    Interval {
        estimate,
        ci_low: quantile(values, alpha).min(estimate).min(wilson_low),
        ci_high: quantile(values, 1.0 - alpha).max(estimate).max(wilson_high),
    }
}

/// Linear-interpolated quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        len => {
            let pos = q.clamp(0.0, 1.0) * (len - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(len - 1);
            let frac = pos - lo as f64;
            sorted[lo] * (1.0 - frac) + sorted[hi] * frac
        }
    }
}

/// Wilson score interval for a share `p` observed on `n` items.
fn wilson(p: f64, n: u64) -> (f64, f64) {
    let n = n as f64;
    let z2 = Z_95 * Z_95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z_95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// FNV-1a over the bin layout: independent of row order, so shuffled input gets the same
/// draws.
fn fingerprint(bins: &[Bin], n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        for byte in x.to_le_bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(n);
    for bin in bins {
        eat(bin.slot as u64);
        eat(bin.count);
    }
    h
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn finite_probs(probs: &[f32]) -> impl Iterator<Item = f64> + '_ {
    probs
        .iter()
        .filter(|p| p.is_finite())
        .map(|&p| f64::from(p.clamp(0.0, 1.0)))
}

fn ratio(k: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        k as f64 / n as f64
    }
}

fn clamp_prob(p: f64) -> f64 {
    p.clamp(PROB_EPS, 1.0 - PROB_EPS)
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

// ---------------------------------------------------------------------------------------
// Group summaries
// ---------------------------------------------------------------------------------------

/// One scored listing as the report sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredRow {
    pub probability: f32,
    pub decision: Decision,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub currency: Option<String>,
    /// Ground truth when the listing was labelled; used only for `true_share`, never for
    /// the estimate, so a labelled sample can check the estimator.
    pub label: Option<bool>,
}

/// Which column a group is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Brand,
    Category,
    Currency,
}

impl GroupBy {
    pub const ALL: [GroupBy; 3] = [GroupBy::Brand, GroupBy::Category, GroupBy::Currency];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Brand => "brand",
            GroupBy::Category => "category",
            GroupBy::Currency => "currency",
        }
    }

    fn key(self, row: &ScoredRow) -> &str {
        let value = match self {
            GroupBy::Brand => row.brand.as_deref(),
            GroupBy::Category => row.category.as_deref(),
            GroupBy::Currency => row.currency.as_deref(),
        };
        match value.map(str::trim) {
            Some(v) if !v.is_empty() => v,
            _ => NONE_GROUP,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlaggedCounts {
    pub block: usize,
    pub review: usize,
}

/// The headline as it appears in report JSON under `"prevalence"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadlinePrevalence {
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub method: String,
}

impl From<&PrevalenceEstimate> for HeadlinePrevalence {
    fn from(e: &PrevalenceEstimate) -> Self {
        HeadlinePrevalence {
            estimate: e.estimate,
            ci_low: e.ci_low,
            ci_high: e.ci_high,
            method: e.method.clone(),
        }
    }
}

/// Counts and estimates for the whole sample or one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrevalenceSummary {
    pub listings: usize,
    /// From each row's own decision, i.e. what analysts were actually shown.
    pub flagged: FlaggedCounts,
    /// (block + review) / listings; null when there are no listings.
    pub share_flagged: Option<f64>,
    /// Null when the group is empty or below `min_group_rows`.
    pub prevalence: Option<HeadlinePrevalence>,
    pub estimators: Option<Estimators>,
    /// Set when the estimate was withheld for lack of rows: marked, not hidden.
    pub too_small: bool,
    /// Rows carrying a label, and the labelled counterfeit share, when any row is labelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeled: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub true_share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub by: GroupBy,
    pub value: String,
    #[serde(flatten)]
    pub summary: PrevalenceSummary,
}

/// Prevalence of a scored sample, overall and by brand, category and currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrevalenceReport {
    pub headline_method: String,
    pub headline_method_reason: String,
    pub confidence_level: f64,
    pub min_group_rows: usize,
    pub overall: PrevalenceSummary,
    /// Ordered by brand, category, currency; within each, most listings first.
    pub groups: Vec<GroupSummary>,
}

impl PrevalenceReport {
    /// Builds the report with the default bootstrap. Groups with fewer than
    /// `min_group_rows` rows are listed with `prevalence: null` and `too_small: true`; the
    /// overall estimate is withheld only when there are no rows at all.
    pub fn build(
        rows: &[ScoredRow],
        stats: &QuantificationStats,
        min_group_rows: usize,
    ) -> PrevalenceReport {
        Self::build_with(rows, stats, min_group_rows, &BootstrapConfig::default())
    }

    pub fn build_with(
        rows: &[ScoredRow],
        stats: &QuantificationStats,
        min_group_rows: usize,
        config: &BootstrapConfig,
    ) -> PrevalenceReport {
        let (method, reason) = stats.headline_method();

        let mut tasks: Vec<(GroupKey, Vec<usize>)> = vec![(None, (0..rows.len()).collect())];
        for by in GroupBy::ALL {
            let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (i, row) in rows.iter().enumerate() {
                groups.entry(by.key(row)).or_default().push(i);
            }
            tasks.extend(
                groups
                    .into_iter()
                    .map(|(value, idx)| (Some((by, value.to_string())), idx)),
            );
        }

        let mut summaries: Vec<(GroupKey, PrevalenceSummary)> = tasks
            .into_par_iter()
            .map(|(key, idx)| {
                let min_rows = if key.is_some() {
                    min_group_rows.max(1)
                } else {
                    1
                };
                let summary = summarise(rows, &idx, stats, min_rows, config);
                (key, summary)
            })
            .collect();

        // The overall task was pushed first and collect() keeps order.
        let overall = summaries.remove(0).1;
        let mut groups: Vec<GroupSummary> = summaries
            .into_iter()
            .filter_map(|(key, summary)| key.map(|(by, value)| GroupSummary { by, value, summary }))
            .collect();
        groups.sort_by(|a, b| {
            a.by.cmp(&b.by)
                .then(b.summary.listings.cmp(&a.summary.listings))
                .then(a.value.cmp(&b.value))
        });

        PrevalenceReport {
            headline_method: method.as_str().to_string(),
            headline_method_reason: reason,
            confidence_level: CONFIDENCE_LEVEL,
            min_group_rows,
            overall,
            groups,
        }
    }
}

/// `None` is the whole sample; `Some` one group.
type GroupKey = Option<(GroupBy, String)>;

fn summarise(
    rows: &[ScoredRow],
    idx: &[usize],
    stats: &QuantificationStats,
    min_rows: usize,
    config: &BootstrapConfig,
) -> PrevalenceSummary {
    let mut flagged = FlaggedCounts::default();
    let (mut labeled, mut positives) = (0usize, 0usize);
    let mut probs = Vec::with_capacity(idx.len());
    for row in idx.iter().filter_map(|&i| rows.get(i)) {
        match row.decision {
            Decision::Block => flagged.block += 1,
            Decision::Review => flagged.review += 1,
            Decision::Allow => {}
        }
        if let Some(label) = row.label {
            labeled += 1;
            positives += usize::from(label);
        }
        probs.push(row.probability);
    }
    let listings = probs.len();
    let too_small = listings < min_rows;
    let estimate = (!too_small).then(|| estimate_with(&probs, stats, config));
    PrevalenceSummary {
        listings,
        flagged,
        share_flagged: (listings > 0)
            .then(|| (flagged.block + flagged.review) as f64 / listings as f64),
        prevalence: estimate.as_ref().map(HeadlinePrevalence::from),
        estimators: estimate.map(|e| e.estimators),
        too_small,
        labeled: (labeled > 0).then_some(labeled),
        true_share: (labeled > 0).then(|| positives as f64 / labeled as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const THRESHOLDS: Thresholds = Thresholds {
        review: 0.5,
        block: 0.9,
    };

    /// Raw scores x ~ N(+mu, 1) for counterfeits and N(-mu, 1) for genuine listings; the
    /// model reports sigmoid(a + b·x).
    #[derive(Clone, Copy)]
    struct World {
        mu: f64,
        a: f64,
        b: f64,
    }

    impl World {
        /// The exact posterior when the counterfeit share is `prior`: perfectly calibrated.
        fn calibrated(mu: f64, prior: f64) -> World {
            World {
                mu,
                a: logit(prior),
                b: 2.0 * mu,
            }
        }

        fn prob(&self, x: f64) -> f32 {
            sigmoid(self.a + self.b * x) as f32
        }
    }

    fn draw_raw(rng: &mut StdRng, n: usize, prevalence: f64, mu: f64) -> (Vec<f64>, Vec<bool>) {
        (0..n)
            .map(|_| {
                let y = rng.random::<f64>() < prevalence;
                let z: f64 = rng.sample(StandardNormal);
                (if y { mu + z } else { -mu + z }, y)
            })
            .unzip()
    }

    fn draw(rng: &mut StdRng, n: usize, prevalence: f64, world: World) -> (Vec<f32>, Vec<bool>) {
        let (x, y) = draw_raw(rng, n, prevalence, world.mu);
        (x.iter().map(|&x| world.prob(x)).collect(), y)
    }

    /// Platt scaling by Newton's method, as a trainer would calibrate on validation.
    fn fit_platt(x: &[f64], y: &[bool]) -> (f64, f64) {
        let (mut a, mut b) = (0.0, 1.0);
        for _ in 0..50 {
            let mut g = [0.0; 2];
            let mut h = [0.0; 3];
            for (&xi, &yi) in x.iter().zip(y) {
                let p = sigmoid(a + b * xi);
                let r = f64::from(u8::from(yi)) - p;
                let w = p * (1.0 - p);
                g[0] += r;
                g[1] += r * xi;
                h[0] += w;
                h[1] += w * xi;
                h[2] += w * xi * xi;
            }
            let det = h[0] * h[2] - h[1] * h[1];
            let da = (h[2] * g[0] - h[1] * g[1]) / det;
            let db = (h[0] * g[1] - h[1] * g[0]) / det;
            a += da;
            b += db;
            if da.abs() + db.abs() < 1e-10 {
                break;
            }
        }
        (a, b)
    }

    fn stats_for(rng: &mut StdRng, n: usize, prior: f64, world: World) -> QuantificationStats {
        let (p, y) = draw(rng, n, prior, world);
        QuantificationStats::from_validation(&p, &y, &THRESHOLDS)
    }

    #[test]
    fn validation_stats_count_confusion_and_moments() {
        let probs = [0.95, 0.6, 0.2, 0.1, 0.7, 0.3, f32::NAN];
        let labels = [true, true, true, false, false, false, true];
        let s = QuantificationStats::from_validation(&probs, &labels, &THRESHOLDS);
        assert_eq!((s.positives, s.negatives), (3, 3));
        assert_eq!(
            s.at_review,
            ConfusionCounts {
                tp: 2,
                fn_: 1,
                fp: 1,
                tn: 2
            }
        );
        assert_eq!(
            s.at_block,
            ConfusionCounts {
                tp: 1,
                fn_: 2,
                fp: 0,
                tn: 3
            }
        );
        assert!((s.train_prior - 0.5).abs() < 1e-12);
        assert!((s.mean_prob_pos - 0.583_333).abs() < 1e-5);
        assert!((s.mean_prob_neg - 0.366_667).abs() < 1e-5);
        assert!((s.at_review.tpr() - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.at_review.fpr() - 1.0 / 3.0).abs() < 1e-12);

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
    fn simple_estimators_on_hand_computed_data() {
        let probs = [0.1, 0.4, 0.5, 0.9, f32::NAN];
        assert!((classify_and_count(&probs, 0.5) - 0.5).abs() < 1e-12);
        assert!((probabilistic_classify_and_count(&probs) - 0.475).abs() < 1e-6);
        assert_eq!(classify_and_count(&[], 0.5), 0.0);
        assert!((adjust(0.3, 0.1, 0.9) - 0.25).abs() < 1e-12);
        assert_eq!(adjust(0.05, 0.1, 0.9), 0.0);
        assert_eq!(adjust(0.99, 0.1, 0.9), 1.0);
        // No separation: nothing to invert, so the observed share passes through.
        assert_eq!(adjust(0.3, 0.5, 0.5), 0.3);
    }

    #[test]
    fn estimators_recover_known_prevalence() {
        let mut rng = StdRng::seed_from_u64(7);
        let world = World::calibrated(1.25, 0.3);
        let stats = stats_for(&mut rng, 20_000, 0.3, world);
        for &pi in &[0.05, 0.2, 0.4] {
            let (probs, _) = draw(&mut rng, 20_000, pi, world);
            let acc = adjusted_classify_and_count(&probs, &stats);
            let pacc = probabilistic_adjusted_classify_and_count(&probs, &stats);
            let em = em_prior_adjustment(&probs, stats.train_prior);
            assert!((acc - pi).abs() < 0.02, "acc {acc} vs {pi}");
            assert!((pacc - pi).abs() < 0.02, "pacc {pacc} vs {pi}");
            assert!((em - pi).abs() < 0.015, "em {em} vs {pi}");
            // The unadjusted estimators are pulled towards the validation prior (0.3): the
            // reason the adjusted ones exist.
            let pcc = probabilistic_classify_and_count(&probs);
            let cc = classify_and_count(&probs, stats.review_threshold);
            if pi < 0.1 {
                assert!(
                    pcc > pi + 0.05 && cc > pi + 0.03,
                    "pcc {pcc} cc {cc} vs {pi}"
                );
            } else if pi > 0.3 {
                assert!(pcc < pi - 0.01, "pcc {pcc} vs {pi}");
            }
        }
    }

    #[test]
    fn em_recovers_a_shifted_prior() {
        let mut rng = StdRng::seed_from_u64(11);
        let world = World::calibrated(1.0, 0.5);
        let stats = stats_for(&mut rng, 20_000, 0.5, world);
        let (probs, _) = draw(&mut rng, 20_000, 0.1, world);
        let em = em_prior_adjustment(&probs, stats.train_prior);
        let pcc = probabilistic_classify_and_count(&probs);
        assert!((em - 0.1).abs() < 0.015, "em {em}");
        assert!(
            pcc > 0.2,
            "pcc {pcc} should still sit near the validation prior"
        );
        // With no shift, EM stays at the training prior.
        let (same, _) = draw(&mut rng, 20_000, 0.5, world);
        assert!((em_prior_adjustment(&same, stats.train_prior) - 0.5).abs() < 0.02);
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
        assert_eq!(estimate(&probs, &shifted).method, "acc");
    }

    #[test]
    fn one_class_validation_falls_back_without_panicking() {
        let s = QuantificationStats::from_validation(&[0.1, 0.2], &[false, false], &THRESHOLDS);
        assert_eq!(s.headline_method().0, Method::Pcc);
        let e = estimate(&[0.1, 0.9, 0.5], &s);
        assert_eq!(e.method, "pcc");
        assert!(e.ci_low <= e.estimate && e.estimate <= e.ci_high);

        let empty = QuantificationStats::from_validation(&[], &[], &THRESHOLDS);
        let e = estimate(&[0.3], &empty);
        assert!(e.estimate.is_finite());
    }

    #[test]
    fn empty_sample_is_uninformative() {
        let mut rng = StdRng::seed_from_u64(5);
        let stats = stats_for(&mut rng, 2_000, 0.3, World::calibrated(1.0, 0.3));
        let e = estimate(&[], &stats);
        assert_eq!((e.listings, e.ci_low, e.ci_high), (0, 0.0, 1.0));
        let e = estimate(&[f32::NAN], &stats);
        assert_eq!(e.listings, 0);
    }

    #[test]
    fn interval_is_deterministic_and_contains_its_estimate() {
        let mut rng = StdRng::seed_from_u64(9);
        let world = World::calibrated(1.25, 0.3);
        let stats = stats_for(&mut rng, 3_000, 0.3, world);
        let (probs, _) = draw(&mut rng, 2_000, 0.15, world);
        let a = estimate(&probs, &stats);
        let b = estimate(&probs, &stats);
        assert_eq!(a, b);
        for m in Method::ALL {
            let i = a.estimators.get(m);
            assert!(
                i.ci_low <= i.estimate && i.estimate <= i.ci_high,
                "{m:?} {i:?}"
            );
            assert!(i.ci_high - i.ci_low > 0.0, "{m:?} {i:?}");
        }
    }

    #[test]
    fn tiny_sample_interval_does_not_collapse() {
        let mut rng = StdRng::seed_from_u64(13);
        let stats = stats_for(&mut rng, 3_000, 0.3, World::calibrated(1.25, 0.3));
        // Three identical listings: every bootstrap resample is the same sample.
        let e = estimate(&[0.01, 0.01, 0.01], &stats);
        assert!(e.ci_high > 0.3, "{e:?}");
    }

    #[test]
    fn smaller_validation_gives_wider_intervals() {
        let mut rng = StdRng::seed_from_u64(17);
        let world = World::calibrated(1.0, 0.3);
        let big = stats_for(&mut rng, 50_000, 0.3, world);
        let small = stats_for(&mut rng, 400, 0.3, world);
        let (probs, _) = draw(&mut rng, 20_000, 0.2, world);
        let wide = estimate(&probs, &small);
        let narrow = estimate(&probs, &big);
        for m in [Method::Acc, Method::Pacc, Method::Em] {
            let (w, n) = (wide.estimators.get(m), narrow.estimators.get(m));
            assert!(
                w.ci_high - w.ci_low > 1.3 * (n.ci_high - n.ci_low),
                "{m:?}: small validation {w:?} vs large {n:?}"
            );
        }
    }

    /// Each trial draws a fresh validation set, calibrates on it by Platt scaling (so the
    /// calibration itself is uncertain, as in training) and a fresh sample; the headline
    /// interval must cover the true prevalence in about 95% of trials.
    #[test]
    fn intervals_cover_the_truth() {
        let mut rng = StdRng::seed_from_u64(2024);
        let mu = 1.0;
        let config = BootstrapConfig {
            replicates: 200,
            seed: 1,
        };
        let trials = 100;
        let (mut covered_em, mut covered_acc) = (0, 0);
        for t in 0..trials {
            let pi = [0.05, 0.2, 0.4][t % 3];
            let (x, y) = draw_raw(&mut rng, 1_500, 0.3, mu);
            let (a, b) = fit_platt(&x, &y);
            let world = World { mu, a, b };
            let val: Vec<f32> = x.iter().map(|&x| world.prob(x)).collect();
            let stats = QuantificationStats::from_validation(&val, &y, &THRESHOLDS);
            let (probs, _) = draw(&mut rng, 1_500, pi, world);
            let e = estimate_with(&probs, &stats, &config);
            assert_eq!(e.method, "em");
            covered_em += usize::from(e.ci_low <= pi && pi <= e.ci_high);
            let acc = e.estimators.acc;
            covered_acc += usize::from(acc.ci_low <= pi && pi <= acc.ci_high);
        }
        println!("coverage over {trials} trials: EM {covered_em}, ACC {covered_acc}");
        assert!(covered_em >= 90, "EM covered {covered_em}/{trials}");
        assert!(covered_acc >= 90, "ACC covered {covered_acc}/{trials}");
    }

    #[test]
    #[ignore = "timing probe: cargo test --lib prevalence -- --ignored --nocapture"]
    fn bootstrap_timing_20k() {
        let mut rng = StdRng::seed_from_u64(99);
        let world = World::calibrated(1.25, 0.3);
        let stats = stats_for(&mut rng, 5_000, 0.3, world);
        let (probs, _) = draw(&mut rng, 20_000, 0.12, world);
        let start = Instant::now();
        let e = estimate(&probs, &stats);
        println!("20k rows, 400 replicates: {:?} -> {e:?}", start.elapsed());

        let rows: Vec<ScoredRow> = probs
            .iter()
            .enumerate()
            .map(|(i, &p)| ScoredRow {
                probability: p,
                decision: THRESHOLDS.decide(p),
                brand: Some(format!("brand-{}", i % 200)),
                category: Some(format!("category-{}", i % 20)),
                currency: Some(format!("C{}", i % 5)),
                label: None,
            })
            .collect();
        let start = Instant::now();
        let report = PrevalenceReport::build(&rows, &stats, 30);
        println!(
            "report over 20k rows and {} groups: {:?}",
            report.groups.len(),
            start.elapsed()
        );
    }

    fn row(p: f32, brand: Option<&str>, category: Option<&str>, label: Option<bool>) -> ScoredRow {
        ScoredRow {
            probability: p,
            decision: THRESHOLDS.decide(p),
            brand: brand.map(str::to_string),
            category: category.map(str::to_string),
            currency: Some("EUR".to_string()),
            label,
        }
    }

    fn report_fixture() -> (Vec<ScoredRow>, QuantificationStats) {
        let mut rng = StdRng::seed_from_u64(21);
        let world = World::calibrated(1.25, 0.3);
        let stats = stats_for(&mut rng, 3_000, 0.3, world);
        let (probs, labels) = draw(&mut rng, 300, 0.2, world);
        let mut rows: Vec<ScoredRow> = probs
            .iter()
            .zip(&labels)
            .enumerate()
            .map(|(i, (&p, &y))| {
                let brand = if i % 3 == 0 { "Acme" } else { "Globex" };
                let category = if i % 2 == 0 { Some("bags") } else { Some("  ") };
                row(p, Some(brand), category, (i % 2 == 0).then_some(y))
            })
            .collect();
        rows.push(row(0.95, Some("Rare & <Co>"), None, None));
        (rows, stats)
    }

    #[test]
    fn report_groups_small_and_missing_values() {
        let (rows, stats) = report_fixture();
        let report = PrevalenceReport::build(&rows, &stats, 20);
        assert_eq!(report.overall.listings, 301);
        let flagged = report.overall.flagged;
        let expected_block = rows
            .iter()
            .filter(|r| r.decision == Decision::Block)
            .count();
        assert_eq!(flagged.block, expected_block);
        assert!(report.overall.prevalence.is_some());
        assert_eq!(report.headline_method, "em");

        let find = |by: GroupBy, value: &str| {
            report
                .groups
                .iter()
                .find(|g| g.by == by && g.value == value)
                .unwrap_or_else(|| panic!("missing group {by:?}={value}"))
        };
        let rare = find(GroupBy::Brand, "Rare & <Co>");
        assert_eq!(rare.summary.listings, 1);
        assert!(rare.summary.too_small);
        assert!(rare.summary.prevalence.is_none());
        assert!(rare.summary.estimators.is_none());
        // Blank and missing categories both land in "(none)".
        let none = find(GroupBy::Category, NONE_GROUP);
        assert_eq!(none.summary.listings, 151);
        assert!(!none.summary.too_small && none.summary.prevalence.is_some());
        // Only even rows are labelled, and "(none)" holds odd rows plus the unlabelled extra.
        assert!(none.summary.true_share.is_none() && none.summary.labeled.is_none());
        assert_eq!(find(GroupBy::Category, "bags").summary.labeled, Some(150));
        assert_eq!(find(GroupBy::Currency, "EUR").summary.listings, 301);

        let brands: Vec<&str> = report
            .groups
            .iter()
            .filter(|g| g.by == GroupBy::Brand)
            .map(|g| g.value.as_str())
            .collect();
        assert_eq!(brands, ["Globex", "Acme", "Rare & <Co>"]);
    }

    #[test]
    fn report_json_has_the_agreed_shape() {
        let (rows, stats) = report_fixture();
        let report = PrevalenceReport::build(&rows, &stats, 20);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["headline_method_reason"].as_str().unwrap().len() > 20);
        let overall = &json["overall"];
        assert_eq!(overall["listings"], 301);
        assert!(overall["flagged"]["block"].is_u64() && overall["flagged"]["review"].is_u64());
        let prevalence = overall["prevalence"].as_object().unwrap();
        let mut keys: Vec<&str> = prevalence.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["ci_high", "ci_low", "estimate", "method"]);
        assert!(overall["true_share"].is_f64());

        let group = json["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["value"] == "Rare & <Co>")
            .unwrap();
        assert_eq!(group["by"], "brand");
        assert_eq!(group["listings"], 1);
        assert!(group["prevalence"].is_null());
        assert_eq!(group["too_small"], true);
        assert!(group.get("true_share").is_none());

        let back: PrevalenceReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn empty_report_has_no_prevalence() {
        let mut rng = StdRng::seed_from_u64(23);
        let stats = stats_for(&mut rng, 1_000, 0.3, World::calibrated(1.0, 0.3));
        let report = PrevalenceReport::build(&[], &stats, 10);
        assert_eq!(report.overall.listings, 0);
        assert!(report.overall.prevalence.is_none());
        assert!(report.overall.share_flagged.is_none());
        assert!(report.groups.is_empty());
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["overall"]["prevalence"].is_null());
    }
}
