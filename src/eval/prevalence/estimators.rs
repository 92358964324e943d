//! The point estimators of prevalence: classify and count (CC), its probabilistic version
//! (PCC), both adjusted by validation error rates (ACC, PACC), and EM prior adjustment.

use super::{clamp_prob, finite_probs, QuantificationStats};
use crate::eval::math::{or_zero, ratio};

const EM_MAX_ITERATIONS: usize = 1000;
const EM_TOLERANCE: f64 = 1e-7;

/// Share of finite probabilities at or above `threshold` (0 for an empty sample).
pub fn classify_and_count(probs: &[f32], threshold: f32) -> f64 {
    let (n, k) = probs
        .iter()
        .filter(|p| p.is_finite())
        .fold((0usize, 0usize), |(n, k), &p| {
            (n + 1, k + usize::from(p >= threshold))
        });
    or_zero(ratio(k, n))
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
    adjust_cc(classify_and_count(probs, stats.review_threshold), stats)
}

/// ACC from an already counted classify-and-count share.
pub fn adjust_cc(cc: f64, stats: &QuantificationStats) -> f64 {
    adjust(
        cc,
        // A validation set without genuine (resp. counterfeit) listings says 0 for the
        // unknown rate; `adjust` then falls back to the observed share where it must.
        or_zero(stats.at_review.false_positive_rate()),
        or_zero(stats.at_review.recall()),
    )
}

/// PACC: mean probability corrected by the validation class-conditional mean probabilities.
pub fn probabilistic_adjusted_classify_and_count(
    probs: &[f32],
    stats: &QuantificationStats,
) -> f64 {
    adjust_pcc(probabilistic_classify_and_count(probs), stats)
}

/// PACC from an already computed mean probability.
pub fn adjust_pcc(pcc: f64, stats: &QuantificationStats) -> f64 {
    adjust(pcc, stats.mean_prob_neg, stats.mean_prob_pos)
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
pub(super) fn em_weighted(
    points: &[(f64, f64)],
    total_weight: f64,
    train_prior: f64,
    start: f64,
) -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::prevalence::testutil::{draw, stats_for, World};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

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
}
