//! The headline estimate of a sample with its 95% bootstrap interval: each replicate
//! resamples the sample and redraws the validation error rates and calibration.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Binomial, Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::estimators::{
    adjust, adjust_cc, adjust_pcc, adjusted_classify_and_count, classify_and_count,
    em_prior_adjustment, em_weighted, probabilistic_adjusted_classify_and_count,
    probabilistic_classify_and_count,
};
use super::interval::{percentile_interval, Estimators, Interval};
use super::stats::CalibrationNoise;
use super::tally::ScoreBins;
use super::{clamp_prob, Method, QuantificationStats};
use crate::eval::math::{logit, sigmoid};

/// Half-width of the logit range the bootstrap bins cover; just beyond logit(1 - PROB_EPS).
const LOGIT_LIMIT: f64 = 14.0;
/// Bins this narrow move a posterior by at most ~1.3% of its odds, far below the noise the
/// interval describes, while letting a replicate run EM on a few hundred points, not 20k rows.
const LOGIT_BIN_WIDTH: f64 = 0.05;
const LOGIT_BINS: usize = 560;
/// Slots of a [`ScoreBins`]: the logit bins below and at-or-above the review threshold.
pub(super) const SLOTS: usize = 2 * LOGIT_BINS;

/// A drawn recalibration slope below this would invert or flatten the classifier, which is
/// not a plausible calibration error but an artefact of the normal approximation's tails.
const MIN_PERTURBED_SLOPE: f64 = 0.05;

/// Result of [`estimate`]: the headline method's interval plus every estimator's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrevalenceEstimate {
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// The headline method; JSON shows its code ([`Method::as_str`]).
    pub method: Method,
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
    let bins = bin_sample(probs, stats.review_threshold);
    let points = [
        classify_and_count(probs, stats.review_threshold),
        probabilistic_classify_and_count(probs),
        adjusted_classify_and_count(probs, stats),
        probabilistic_adjusted_classify_and_count(probs, stats),
        em_prior_adjustment(probs, stats.train_prior),
    ];
    estimate_binned(&bins, points, stats, config)
}

/// Like [`estimate_with`], from a [`ScoreBins`] summary instead of the probabilities: the
/// bootstrap is the same (it only ever saw the bins), CC and ACC are exact, PCC and PACC
/// equal up to rounding, and EM runs on the bins' mean probabilities (within 0.0005 of the
/// row-based EM on real score distributions; tested in `tally`).
pub fn estimate_from_bins(
    summary: &ScoreBins,
    stats: &QuantificationStats,
    config: &BootstrapConfig,
) -> PrevalenceEstimate {
    let bins = summary.bins();
    let n: u64 = bins.iter().map(|b| b.count).sum();
    if n == 0 {
        return estimate_binned(&bins, [0.0; 5], stats, config);
    }
    let nf = n as f64;
    let flagged: u64 = bins.iter().filter(|b| b.flagged).map(|b| b.count).sum();
    let cc = flagged as f64 / nf;
    let pcc = summary.probability_sum() / nf;
    let points: Vec<(f64, f64)> = bins
        .iter()
        .map(|b| (clamp_prob(b.prob), b.count as f64))
        .collect();
    let em = em_weighted(&points, nf, stats.train_prior, stats.train_prior);
    let points = [cc, pcc, adjust_cc(cc, stats), adjust_pcc(pcc, stats), em];
    estimate_binned(&bins, points, stats, config)
}

/// The bootstrap around point estimates `[cc, pcc, acc, pacc, em]` of a binned sample.
fn estimate_binned(
    bins: &[Bin],
    points: [f64; 5],
    stats: &QuantificationStats,
    config: &BootstrapConfig,
) -> PrevalenceEstimate {
    let (method, _) = stats.headline_method();
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
            method,
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

    let noise = CalibrationNoise::from_information(stats.calibration_information);
    let seed = fingerprint(bins, n) ^ config.seed;
    let replicates: Vec<[f64; 5]> = (0..config.replicates.max(1) as u64)
        .into_par_iter()
        .map(|r| {
            let mut rng = StdRng::seed_from_u64(splitmix64(seed.wrapping_add(r)));
            replicate(bins, n, stats, noise.as_ref(), points[4], &mut rng)
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
    // `headline_method` names model-based estimators only, which `get` always has.
    let headline = estimators.get(method).unwrap_or(estimators.em);
    PrevalenceEstimate {
        estimate: headline.estimate,
        ci_low: headline.ci_low,
        ci_high: headline.ci_high,
        method,
        listings: usize::try_from(n).unwrap_or(usize::MAX),
        estimators,
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Bin {
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
    let mut summary = ScoreBins::default();
    for &p in probs {
        summary.add(p, threshold);
    }
    summary.bins()
}

/// The slot of a probability among [`SLOTS`]: its logit bin, in the upper half when it is
/// at or above the review threshold; `None` when it is not finite.
pub(super) fn slot_of(p: f32, threshold: f32) -> Option<usize> {
    if !p.is_finite() {
        return None;
    }
    let p = p.clamp(0.0, 1.0);
    let pf = f64::from(p);
    Some(logit_slot(logit(clamp_prob(pf))) + usize::from(p >= threshold) * LOGIT_BINS)
}

/// One bin of a [`ScoreBins`] with its count and probability sum, as the bootstrap uses it.
pub(super) fn bin(slot: usize, count: u64, sum: f64) -> Bin {
    let prob = sum / count as f64;
    Bin {
        slot,
        count,
        prob,
        logit: logit(clamp_prob(prob)),
        flagged: slot >= LOGIT_BINS,
    }
}

fn logit_slot(l: f64) -> usize {
    let x = ((l + LOGIT_LIMIT) / LOGIT_BIN_WIDTH).floor();
    // Clamped into range first, so the cast neither wraps nor exceeds the table.
    x.clamp(0.0, (LOGIT_BINS - 1) as f64) as usize
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

fn normal_mean(rng: &mut StdRng, mean: f64, variance: f64, n: usize) -> f64 {
    if n == 0 {
        return mean;
    }
    let z: f64 = rng.sample(StandardNormal);
    (mean + (variance / n as f64).sqrt() * z).clamp(0.0, 1.0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::prevalence::testutil::{
        draw, draw_raw, fit_platt, stats_for, World, THRESHOLDS,
    };
    use crate::eval::prevalence::{PrevalenceReport, ScoredRow};
    use std::time::Instant;

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
            let i = a.estimators.get(m).unwrap();
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
            let (w, n) = (
                wide.estimators.get(m).unwrap(),
                narrow.estimators.get(m).unwrap(),
            );
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
            assert_eq!(e.method, Method::Em);
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
}
