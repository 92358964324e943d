//! Intervals: a point estimate with its 95% interval, one per estimator, and how a
//! bootstrap's replicates become one (percentile interval with a Wilson floor).

use serde::{Deserialize, Serialize};

use super::{Method, CONFIDENCE_LEVEL};

/// Two-sided 95% normal quantile, for the Wilson floor on interval width.
pub(crate) const Z_95: f64 = 1.959_963_984_540_054;

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
    /// The interval of a model-based estimator; `None` for [`Method::Audit`], which needs
    /// labels and is not computed from scores.
    pub fn get(&self, method: Method) -> Option<Interval> {
        match method {
            Method::Cc => Some(self.cc),
            Method::Pcc => Some(self.pcc),
            Method::Acc => Some(self.acc),
            Method::Pacc => Some(self.pacc),
            Method::Em => Some(self.em),
            Method::Audit => None,
        }
    }
}

pub(super) fn percentile_interval(values: &mut [f64], estimate: f64, n: u64) -> Interval {
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
    wilson_effective(p, n as f64)
}

/// Wilson score interval for a share `p` on an effective sample size `n` (which a survey
/// design's variance may make fractional: `p(1 - p) / variance`).
pub(crate) fn wilson_effective(p: f64, n: f64) -> (f64, f64) {
    let z2 = Z_95 * Z_95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z_95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}
