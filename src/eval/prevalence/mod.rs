//! Prevalence (quantification): what share of a sample of listings is counterfeit, with 95%
//! intervals, overall and per brand, category and currency.
//!
//! Counting flagged listings answers "how many would we act on", not "how many are
//! counterfeit": the classifier misses some counterfeits and flags some genuine listings, and
//! how those errors balance depends on how common counterfeits are in the sample. The
//! estimators here correct for that with rates measured on held-out labelled validation data
//! ([`QuantificationStats`]), and the intervals carry both the sample's size and the limited
//! size of that validation set, because regulators read the interval as "what we know".
//!
//! [`stats`] holds what validation teaches the estimators, [`estimators`] the point
//! estimators, [`bootstrap`] the intervals around them, and [`grouped`] the report over a
//! scored sample, overall and per group.

pub mod bootstrap;
pub mod estimators;
pub mod grouped;
pub mod interval;
pub mod method;
pub mod stats;
pub mod tally;

#[cfg(test)]
mod testutil;

pub use bootstrap::{estimate, estimate_with, BootstrapConfig, PrevalenceEstimate};
pub use grouped::{
    GroupBy, GroupSummary, HeadlinePrevalence, PrevalenceReport, PrevalenceSummary, ScoredRow,
};
pub use interval::{Estimators, Interval};
pub use method::Method;
pub use stats::QuantificationStats;
pub use tally::{GroupTally, PrevalenceTally, ScoreBins, MAX_GROUPS, OTHER_GROUP};

/// Coverage of every interval this module reports.
pub const CONFIDENCE_LEVEL: f64 = 0.95;
/// Value of a group key that was missing or blank in the data.
pub const NONE_GROUP: &str = "(none)";
/// Default of the smallest group (brand, category, currency) that gets a prevalence
/// estimate: knockoff-score's `--min-group-rows` and the validation report beside a trained
/// model. Smaller groups are listed as too small. Larger than
/// [`crate::eval::evaluation::MIN_EVAL_GROUP_ROWS`] because a prevalence interval on fewer
/// listings is too wide to act on.
pub const MIN_GROUP_ROWS: usize = 100;

/// Probabilities are held this far from 0 and 1 so odds and logits stay finite.
const PROB_EPS: f64 = 1e-6;

fn clamp_prob(p: f64) -> f64 {
    p.clamp(PROB_EPS, 1.0 - PROB_EPS)
}

/// Finite probabilities, clamped to [0, 1], as `f64`.
fn finite_probs(probs: &[f32]) -> impl Iterator<Item = f64> + '_ {
    probs
        .iter()
        .filter(|p| p.is_finite())
        .map(|&p| f64::from(p.clamp(0.0, 1.0)))
}
