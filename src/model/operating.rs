//! Operating points: validation score histograms by evidence and class, and the thresholds
//! they give for the precision and recall targets at any expected share of counterfeits.
//!
//! The corpus is about 16% counterfeit; a marketplace may be 2%. At a lower prevalence the
//! same threshold blocks many more genuine listings per counterfeit, so thresholds are chosen
//! for the deployment: each class's histogram is re-weighted to the expected prevalence, and
//! probabilities are shifted to that prior (Bayes' rule on the odds).

use crate::decision::{EvidenceRule, Thresholds};
use crate::eval::math::{logit, sigmoid};
use serde::{Deserialize, Serialize};

/// Histogram range on the calibrated logit; scores beyond it fall in the end bins.
const LOGIT_MIN: f32 = -12.0;
const LOGIT_MAX: f32 = 12.0;
const BINS: usize = 960;

/// Counts per calibrated-logit bin of one group of validation listings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassHistograms {
    pub counterfeit: Vec<u32>,
    pub genuine: Vec<u32>,
}

impl ClassHistograms {
    fn new() -> Self {
        ClassHistograms {
            counterfeit: vec![0; BINS],
            genuine: vec![0; BINS],
        }
    }
}

/// What thresholds are chosen from: validation listings' calibrated scores, split by whether
/// their evidence is strong enough to block (see [`EvidenceRule`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingStats {
    /// Counterfeit share of validation: the prior the calibrated probabilities refer to.
    pub prior: f64,
    pub logit_min: f32,
    pub logit_max: f32,
    pub strong: ClassHistograms,
    pub weak: ClassHistograms,
}

/// Targets the thresholds are chosen for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Targets {
    /// Share of blocked listings that are counterfeit.
    pub block_precision: f64,
    /// Share of reviewed weak-evidence listings (no known brand claimed, or mostly unknown
    /// terms) that are counterfeit. Higher than for blocks: the model is least sure of what
    /// it knows least, and a reviewer's time is the cost.
    pub weak_review_precision: f64,
    /// Share of all counterfeits reviewed or blocked.
    pub review_recall: f64,
}

/// Thresholds and rule for one expected prevalence, with the shift that takes calibrated
/// probabilities (at the validation prior) to that prevalence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OperatingPoint {
    pub thresholds: Thresholds,
    pub weak_review: f32,
    /// Added to the calibrated log-odds: `logit(prevalence) - logit(validation prior)`.
    pub logit_shift: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum OperatingError {
    #[error("expected prevalence must be in (0, 1), got {0}")]
    Prevalence(f64),
    #[error("the model's validation statistics hold no {0} listings")]
    Empty(&'static str),
}

impl OperatingStats {
    /// Histograms of calibrated logits (`logits[i]` of a listing with strong evidence when
    /// `strong[i]`).
    pub fn from_validation(logits: &[f32], labels: &[bool], strong: &[bool]) -> OperatingStats {
        let mut stats = OperatingStats {
            prior: 0.0,
            logit_min: LOGIT_MIN,
            logit_max: LOGIT_MAX,
            strong: ClassHistograms::new(),
            weak: ClassHistograms::new(),
        };
        let mut positives = 0usize;
        for ((&l, &y), &s) in logits.iter().zip(labels).zip(strong) {
            let bin = stats.bin(l);
            let group = if s {
                &mut stats.strong
            } else {
                &mut stats.weak
            };
            let counts = if y {
                &mut group.counterfeit
            } else {
                &mut group.genuine
            };
            counts[bin] += 1;
            positives += usize::from(y);
        }
        stats.prior = positives as f64 / logits.len().max(1) as f64;
        stats
    }

    fn bin(&self, logit: f32) -> usize {
        let width = (self.logit_max - self.logit_min) / BINS as f32;
        let b = ((logit - self.logit_min) / width).floor();
        if b.is_nan() {
            0
        } else {
            (b.max(0.0) as usize).min(BINS - 1)
        }
    }

    /// Lower edge of bin `b` on the calibrated logit.
    fn edge(&self, b: usize) -> f64 {
        let width = f64::from(self.logit_max - self.logit_min) / BINS as f64;
        f64::from(self.logit_min) + b as f64 * width
    }

    /// Thresholds for `targets` when a share `prevalence` of listings is counterfeit (the
    /// validation prior when `None`).
    pub fn operating_point(
        &self,
        targets: Targets,
        prevalence: Option<f64>,
    ) -> Result<OperatingPoint, OperatingError> {
        let prevalence = prevalence.unwrap_or(self.prior);
        if !(prevalence > 0.0 && prevalence < 1.0) {
            return Err(OperatingError::Prevalence(prevalence));
        }
        let total = |h: &[u32]| h.iter().map(|&c| f64::from(c)).sum::<f64>();
        let positives = total(&self.strong.counterfeit) + total(&self.weak.counterfeit);
        let negatives = total(&self.strong.genuine) + total(&self.weak.genuine);
        if positives == 0.0 || negatives == 0.0 {
            return Err(OperatingError::Empty(if positives == 0.0 {
                "counterfeit"
            } else {
                "genuine"
            }));
        }
        // Each listing's weight at the expected prevalence.
        let (w1, w0) = (prevalence / positives, (1.0 - prevalence) / negatives);
        let block = self.precision_bin(&self.strong, w1, w0, targets.block_precision);
        let weak = self.precision_bin(&self.weak, w1, w0, targets.weak_review_precision);
        let weak_caught: f64 = self.weak.counterfeit[weak..]
            .iter()
            .map(|&c| f64::from(c))
            .sum();
        // Review: the highest threshold at which strong and weak reviews together reach
        // the recall target.
        let mut caught = weak_caught;
        let mut review = 0;
        for b in (0..BINS).rev() {
            caught += f64::from(self.strong.counterfeit[b]);
            if caught >= targets.review_recall * positives {
                review = b;
                break;
            }
        }
        let review = review.min(block);
        let shift = logit(prevalence) - logit(self.prior);
        let at = |b: usize| -> f32 {
            if b >= BINS {
                1.0
            } else {
                sigmoid(self.edge(b) + shift) as f32
            }
        };
        Ok(OperatingPoint {
            thresholds: Thresholds {
                review: at(review),
                block: at(block),
            },
            weak_review: at(weak),
            logit_shift: shift,
        })
    }

    /// The lowest bin from which the group's listings are at least `target` counterfeit at
    /// the given weights (`BINS` when no bin is: nothing in the group may pass).
    fn precision_bin(&self, group: &ClassHistograms, w1: f64, w0: f64, target: f64) -> usize {
        let (mut tp, mut fp) = (0.0, 0.0);
        let mut lowest = BINS;
        for b in (0..BINS).rev() {
            tp += w1 * f64::from(group.counterfeit[b]);
            fp += w0 * f64::from(group.genuine[b]);
            if tp > 0.0 && tp / (tp + fp) >= target {
                lowest = b;
            }
        }
        lowest
    }
}

impl OperatingPoint {
    /// `base` with this point's weak-evidence review threshold.
    pub fn evidence_rule(&self, base: EvidenceRule) -> EvidenceRule {
        EvidenceRule {
            weak_review: self.weak_review,
            ..base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGETS: Targets = Targets {
        block_precision: 0.95,
        weak_review_precision: 0.99,
        review_recall: 0.9,
    };

    /// Strong listings: counterfeits around logit 3, genuine around -3; weak ones all genuine
    /// but a few counterfeits at logit 6.
    fn stats() -> OperatingStats {
        let mut logits = Vec::new();
        let mut labels = Vec::new();
        let mut strong = Vec::new();
        for i in 0..2000 {
            let jitter = (i % 100) as f32 / 25.0 - 2.0;
            logits.push(3.0 + jitter);
            labels.push(true);
            strong.push(true);
            for _ in 0..4 {
                logits.push(-3.0 + jitter);
                labels.push(false);
                strong.push(true);
            }
            logits.push(-1.0 + jitter);
            labels.push(false);
            strong.push(false);
        }
        for _ in 0..50 {
            logits.push(6.0);
            labels.push(true);
            strong.push(false);
        }
        OperatingStats::from_validation(&logits, &labels, &strong)
    }

    #[test]
    fn thresholds_meet_their_targets_and_ordering() {
        let s = stats();
        let p = s.operating_point(TARGETS, None).unwrap();
        assert!(p.thresholds.review <= p.thresholds.block);
        assert!(p.logit_shift.abs() < 1e-12);
        // Weak listings: only the counterfeits at 6 are sure enough.
        assert!(p.weak_review > sigmoid(0.0) as f32 && p.weak_review <= sigmoid(6.0) as f32 + 1e-6);
    }

    #[test]
    fn a_rarer_prevalence_raises_the_block_threshold_and_shifts_probabilities() {
        let s = stats();
        let at_prior = s.operating_point(TARGETS, None).unwrap();
        let rare = s.operating_point(TARGETS, Some(0.01)).unwrap();
        assert!(rare.logit_shift < -2.0);
        // In the calibrated (unshifted) scale the rare block threshold is higher.
        let unshift = |p: f32, shift: f64| logit(f64::from(p)) - shift;
        assert!(
            unshift(rare.thresholds.block, rare.logit_shift)
                > unshift(at_prior.thresholds.block, at_prior.logit_shift)
        );
    }

    #[test]
    fn bad_prevalences_are_refused() {
        let s = stats();
        for p in [0.0, 1.0, -0.1, f64::NAN] {
            assert!(s.operating_point(TARGETS, Some(p)).is_err(), "{p}");
        }
    }
}
