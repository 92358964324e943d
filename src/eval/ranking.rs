//! Ranking metrics: ROC-AUC, average precision, the ROC and precision–recall curves for
//! charts, and the thresholds that reach a precision or recall target.

use serde::{Deserialize, Serialize};

use super::clean_pairs;
use super::confusion::Confusion;
use super::nan_serde::inf_as_null;

/// Curves handed to charts are thinned to at most this many points.
pub const MAX_CURVE_POINTS: usize = 200;

/// Cumulative counts for the rule `score >= threshold`, at one distinct score.
#[derive(Debug, Clone, Copy)]
struct OpPoint {
    threshold: f32,
    tp: usize,
    fp: usize,
}

/// Distinct-score operating points in decreasing threshold order: every threshold worth
/// considering, since between two adjacent distinct scores the confusion does not change.
pub(super) struct Ranked {
    points: Vec<OpPoint>,
    pub(super) positives: usize,
    pub(super) negatives: usize,
}

impl Ranked {
    pub(super) fn from_pairs(mut pairs: Vec<(f32, bool)>) -> Self {
        // NaN was removed by `clean_pairs`, so `total_cmp` is the plain numeric order here.
        pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut points = Vec::new();
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut iter = pairs.iter().peekable();
        while let Some(&(score, label)) = iter.next() {
            if label {
                tp += 1;
            } else {
                fp += 1;
            }
            // Emit only at the end of a tie group: tied rows are all in or all out. IEEE `!=`
            // (not `total_cmp`) so that -0.0 and 0.0, adjacent in the sort, tie as under `>=`.
            if iter.peek().is_none_or(|next| next.0 != score) {
                points.push(OpPoint {
                    threshold: score,
                    tp,
                    fp,
                });
            }
        }
        Ranked {
            points,
            positives: tp,
            negatives: fp,
        }
    }

    fn new(scores: &[f32], labels: &[bool]) -> Option<Self> {
        clean_pairs(scores, labels).map(Self::from_pairs)
    }

    /// Operating points of scores already grouped, as `(threshold, positives, negatives)` in
    /// decreasing threshold order: every group is treated as tied at its threshold (the
    /// bins of [`super::binned::LabelledBins`]). Empty groups are skipped.
    pub(super) fn from_groups(groups: impl IntoIterator<Item = (f32, u64, u64)>) -> Self {
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut points = Vec::new();
        for (threshold, positives, negatives) in groups {
            if positives == 0 && negatives == 0 {
                continue;
            }
            tp += usize::try_from(positives).unwrap_or(usize::MAX);
            fp += usize::try_from(negatives).unwrap_or(usize::MAX);
            points.push(OpPoint { threshold, tp, fp });
        }
        Ranked {
            points,
            positives: tp,
            negatives: fp,
        }
    }

    pub(super) fn roc_auc(&self) -> f64 {
        if self.positives == 0 || self.negatives == 0 {
            return f64::NAN;
        }
        // Mann–Whitney U: each negative scores 1 per positive strictly above it and ½ per
        // positive tied with it.
        let mut wins = 0.0f64;
        let (mut prev_tp, mut prev_fp) = (0usize, 0usize);
        for p in &self.points {
            let group_pos = (p.tp - prev_tp) as f64;
            let group_neg = (p.fp - prev_fp) as f64;
            wins += group_neg * (prev_tp as f64 + 0.5 * group_pos);
            prev_tp = p.tp;
            prev_fp = p.fp;
        }
        wins / (self.positives as f64 * self.negatives as f64)
    }

    pub(super) fn average_precision(&self) -> f64 {
        if self.positives == 0 {
            return f64::NAN;
        }
        let mut ap = 0.0f64;
        let mut prev_tp = 0usize;
        for p in &self.points {
            // Every point has tp + fp >= 1, so the precision below is finite.
            let precision = p.tp as f64 / (p.tp + p.fp) as f64;
            ap += (p.tp - prev_tp) as f64 * precision;
            prev_tp = p.tp;
        }
        ap / self.positives as f64
    }

    fn threshold_for_precision(&self, target: f64) -> Option<f32> {
        // Precision is not monotone in the threshold, so scan them all and keep the lowest
        // that qualifies: recall only grows as the threshold falls.
        self.points
            .iter()
            .rev()
            .find(|p| p.tp as f64 / (p.tp + p.fp) as f64 >= target)
            .map(|p| p.threshold)
    }

    fn threshold_for_recall(&self, target: f64) -> Option<f32> {
        if self.positives == 0 {
            return None;
        }
        let positives = self.positives as f64;
        self.points
            .iter()
            .find(|p| p.tp as f64 / positives >= target)
            .map(|p| p.threshold)
    }

    pub(super) fn recall_at_precision(&self, target: f64) -> f64 {
        if self.positives == 0 {
            return f64::NAN;
        }
        self.points
            .iter()
            .rev()
            .find(|p| p.tp as f64 / (p.tp + p.fp) as f64 >= target)
            .map_or(0.0, |p| p.tp as f64 / self.positives as f64)
    }

    pub(super) fn confusion_at(&self, threshold: f32) -> Confusion {
        // Thresholds are decreasing, so the rows with `score >= threshold` are a prefix.
        let k = self.points.partition_point(|p| p.threshold >= threshold);
        let (tp, fp) = k
            .checked_sub(1)
            .and_then(|last| self.points.get(last))
            .map_or((0, 0), |p| (p.tp, p.fp));
        Confusion {
            tp,
            fp,
            tn: self.negatives - fp,
            fn_: self.positives - tp,
        }
    }

    pub(super) fn roc_points(&self) -> Vec<CurvePoint> {
        if self.positives == 0 || self.negatives == 0 {
            return Vec::new();
        }
        let (pos, neg) = (self.positives as f64, self.negatives as f64);
        self.curve((0.0, 0.0), |p| (p.fp as f64 / neg, p.tp as f64 / pos))
    }

    pub(super) fn pr_points(&self) -> Vec<CurvePoint> {
        if self.positives == 0 {
            return Vec::new();
        }
        let pos = self.positives as f64;
        // The conventional (recall 0, precision 1) anchor, as sklearn draws it.
        self.curve((0.0, 1.0), |p| {
            (p.tp as f64 / pos, p.tp as f64 / (p.tp + p.fp) as f64)
        })
    }

    /// A chart curve: `anchor` at `threshold = +inf`, then `(x, y)` of every operating
    /// point, thinned.
    fn curve(&self, anchor: (f64, f64), xy: impl Fn(&OpPoint) -> (f64, f64)) -> Vec<CurvePoint> {
        let mut curve = Vec::with_capacity(self.points.len() + 1);
        curve.push(CurvePoint {
            x: anchor.0,
            y: anchor.1,
            threshold: f32::INFINITY,
        });
        curve.extend(self.points.iter().map(|p| {
            let (x, y) = xy(p);
            CurvePoint {
                x,
                y,
                threshold: p.threshold,
            }
        }));
        downsample(curve, MAX_CURVE_POINTS)
    }
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting ½.
///
/// NaN when either class is absent (including empty input) or on length mismatch.
pub fn roc_auc(scores: &[f32], labels: &[bool]) -> f64 {
    Ranked::new(scores, labels).map_or(f64::NAN, |r| r.roc_auc())
}

/// Average precision, step-wise and without interpolation, as sklearn's
/// `average_precision_score`: Σ (Rₖ − Rₖ₋₁)·Pₖ over the distinct-score thresholds.
///
/// NaN when there are no positives (recall is undefined) or on length mismatch; 1.0 when
/// every row is positive.
pub fn pr_auc(scores: &[f32], labels: &[bool]) -> f64 {
    Ranked::new(scores, labels).map_or(f64::NAN, |r| r.average_precision())
}

/// One point of a chart curve, with the threshold (`score >= threshold`) that produced it.
///
/// The first point of each curve has `threshold = +inf` (nothing predicted positive), which
/// serialises as `null` and deserialises back to `+inf`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct CurvePoint {
    pub x: f64,
    pub y: f64,
    #[serde(with = "inf_as_null")]
    pub threshold: f32,
}

/// ROC curve: `x` = false-positive rate, `y` = true-positive rate, from (0, 0) at
/// `threshold = +inf` to (1, 1) at the lowest score, in decreasing threshold order.
///
/// Thinned to at most [`MAX_CURVE_POINTS`] points, keeping both ends. Empty when either
/// class is absent or on length mismatch.
pub fn roc_curve(scores: &[f32], labels: &[bool]) -> Vec<CurvePoint> {
    Ranked::new(scores, labels).map_or_else(Vec::new, |r| r.roc_points())
}

/// Precision–recall curve: `x` = recall, `y` = precision, in decreasing threshold order,
/// starting with the conventional (0, 1) anchor at `threshold = +inf`.
///
/// Thinned to at most [`MAX_CURVE_POINTS`] points, keeping both ends. Empty when there are
/// no positives or on length mismatch.
pub fn pr_curve(scores: &[f32], labels: &[bool]) -> Vec<CurvePoint> {
    Ranked::new(scores, labels).map_or_else(Vec::new, |r| r.pr_points())
}

/// Thins a curve for charting by arc length (L1 in x + y), not by index: raw points crowd
/// where scores are dense, which is rarely where the curve bends.
fn downsample(points: Vec<CurvePoint>, max_points: usize) -> Vec<CurvePoint> {
    if points.len() <= max_points || max_points < 2 {
        return points;
    }
    let dist = |a: &CurvePoint, b: &CurvePoint| (b.x - a.x).abs() + (b.y - a.y).abs();
    let total: f64 = points.windows(2).map(|w| dist(&w[0], &w[1])).sum();
    let (first, last) = (points[0], points[points.len() - 1]); // len > max_points >= 2
    let mut out = Vec::with_capacity(max_points);
    out.push(first);
    if total > 0.0 {
        // Each kept interior point consumes at least `step` of the length, so at most
        // `max_points - 2` of them fit; the length check guards against rounding.
        let step = total / (max_points - 2) as f64;
        let mut travelled = 0.0;
        for w in points[..points.len() - 1].windows(2) {
            travelled += dist(&w[0], &w[1]);
            if travelled >= step && out.len() < max_points - 1 {
                out.push(w[1]);
                travelled = 0.0;
            }
        }
    }
    out.push(last);
    out
}

/// Lowest distinct score `t` whose rule `score >= t` reaches `precision >= target`: of all
/// thresholds meeting the precision target, the one with the most recall.
///
/// `None` when no threshold reaches the target (including empty input, a NaN target, or
/// length mismatch). With no positives only `target <= 0` can be reached.
pub fn threshold_for_precision(scores: &[f32], labels: &[bool], target: f64) -> Option<f32> {
    Ranked::new(scores, labels)?.threshold_for_precision(target)
}

/// Highest distinct score `t` whose rule `score >= t` reaches `recall >= target`: of all
/// thresholds meeting the recall target, the one flagging the fewest rows.
///
/// `None` when there are no positives (recall undefined), the target is unreachable
/// (`> 1` or NaN), or on length mismatch.
pub fn threshold_for_recall(scores: &[f32], labels: &[bool], target: f64) -> Option<f32> {
    Ranked::new(scores, labels)?.threshold_for_recall(target)
}

/// Best recall over the thresholds whose precision is at least `target`; 0.0 when no
/// threshold reaches it. NaN when there are no positives or on length mismatch.
pub fn recall_at_precision(scores: &[f32], labels: &[bool], target: f64) -> f64 {
    Ranked::new(scores, labels).map_or(f64::NAN, |r| r.recall_at_precision(target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::confusion::confusion_at;
    use crate::eval::testutil::{close, F, SEL_LABELS, SEL_SCORES, T};

    /// sklearn's documented example: roc_auc 0.75, average precision 0.8333….
    const EX_SCORES: [f32; 4] = [0.1, 0.4, 0.35, 0.8];
    const EX_LABELS: [bool; 4] = [F, F, T, T];

    // ---- ROC-AUC -------------------------------------------------------------------

    #[test]
    fn roc_auc_known_example() {
        close(roc_auc(&EX_SCORES, &EX_LABELS), 0.75);
    }

    #[test]
    fn roc_auc_perfect_inverted_and_constant() {
        let labels = [F, F, T, T];
        close(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels), 1.0);
        close(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels), 0.0);
        // A constant score is a random classifier: every pair is a tie.
        close(roc_auc(&[0.5; 4], &labels), 0.5);
    }

    #[test]
    fn roc_auc_ties_get_half_credit() {
        // Positives {0.5, 0.8}, negatives {0.5, 0.2}: pairs 0.5 + 1 + 1 + 1 = 3.5 of 4.
        close(roc_auc(&[0.5, 0.5, 0.2, 0.8], &[T, F, F, T]), 0.875);
    }

    #[test]
    fn roc_auc_treats_negative_zero_as_zero() {
        // -0.0 and 0.0 are equal under `>=`, so this pair is a tie, not a win.
        close(roc_auc(&[0.0, -0.0], &[T, F]), 0.5);
    }

    #[test]
    fn roc_auc_undefined_cases_are_nan() {
        assert!(roc_auc(&[], &[]).is_nan());
        assert!(roc_auc(&[0.1, 0.9], &[T, T]).is_nan());
        assert!(roc_auc(&[0.1, 0.9], &[F, F]).is_nan());
        assert!(roc_auc(&[0.1, 0.9], &[F]).is_nan());
    }

    #[test]
    fn nan_scores_are_dropped() {
        let scores = [0.1, f32::NAN, 0.4, 0.35, 0.8, f32::NAN];
        let labels = [F, T, F, T, T, F];
        close(roc_auc(&scores, &labels), 0.75);
        assert_eq!(confusion_at(&scores, &labels, 0.0).total(), 4);
    }

    #[test]
    fn roc_auc_matches_trapezoid_area_of_roc_curve() {
        // Pseudo-random scores with plenty of ties, few enough points to avoid thinning.
        let scores: Vec<f32> = (0..150u32).map(|i| ((i * 37) % 23) as f32 / 23.0).collect();
        let labels: Vec<bool> = (0..150u32).map(|i| (i * 11) % 7 < 3).collect();
        let curve = roc_curve(&scores, &labels);
        let area: f64 = curve
            .windows(2)
            .map(|w| (w[1].x - w[0].x) * (w[1].y + w[0].y) / 2.0)
            .sum();
        close(roc_auc(&scores, &labels), area);
    }

    #[test]
    fn roc_auc_large_input_is_fast_and_exact() {
        // 200k rows; positives are exactly the top half, so AUC = 1. O(n²) would time out.
        let n = 200_000;
        let scores: Vec<f32> = (0..n).map(|i| i as f32 / n as f32).collect();
        let labels: Vec<bool> = (0..n).map(|i| i >= n / 2).collect();
        close(roc_auc(&scores, &labels), 1.0);
    }

    // ---- PR-AUC --------------------------------------------------------------------

    #[test]
    fn pr_auc_known_example() {
        // Desc: 0.8 T (P 1, R .5), 0.4 F, 0.35 T (P 2/3, R 1): AP = .5·1 + .5·2/3.
        close(pr_auc(&EX_SCORES, &EX_LABELS), 0.5 + 0.5 * 2.0 / 3.0);
    }

    #[test]
    fn pr_auc_edge_cases() {
        close(pr_auc(&[0.1, 0.2, 0.8, 0.9], &[F, F, T, T]), 1.0);
        // A tie between a positive and a negative is one threshold with precision ½.
        close(pr_auc(&[0.5, 0.5], &[T, F]), 0.5);
        close(pr_auc(&[0.5, 0.1], &[T, T]), 1.0);
        assert!(pr_auc(&[0.5, 0.1], &[F, F]).is_nan());
        assert!(pr_auc(&[], &[]).is_nan());
    }

    // ---- Curves --------------------------------------------------------------------

    fn pt(x: f64, y: f64, threshold: f32) -> CurvePoint {
        CurvePoint { x, y, threshold }
    }

    #[test]
    fn roc_curve_known_example() {
        let curve = roc_curve(&EX_SCORES, &EX_LABELS);
        let expected = vec![
            pt(0.0, 0.0, f32::INFINITY),
            pt(0.0, 0.5, 0.8),
            pt(0.5, 0.5, 0.4),
            pt(0.5, 1.0, 0.35),
            pt(1.0, 1.0, 0.1),
        ];
        assert_eq!(curve, expected);
        assert!(roc_curve(&[0.1], &[T]).is_empty());
    }

    #[test]
    fn pr_curve_known_example() {
        let curve = pr_curve(&EX_SCORES, &EX_LABELS);
        let expected = vec![
            pt(0.0, 1.0, f32::INFINITY),
            pt(0.5, 1.0, 0.8),
            pt(0.5, 0.5, 0.4),
            pt(1.0, 2.0 / 3.0, 0.35),
            pt(1.0, 0.5, 0.1),
        ];
        assert_eq!(curve, expected);
        assert!(pr_curve(&[0.1], &[F]).is_empty());
    }

    #[test]
    fn curves_are_thinned_keeping_ends_and_order() {
        let n = 10_000u32;
        let scores: Vec<f32> = (0..n).map(|i| i as f32 / n as f32).collect();
        let labels: Vec<bool> = (0..n).map(|i| (i * 7919) % 10 < (i * 10 / n)).collect();
        for curve in [roc_curve(&scores, &labels), pr_curve(&scores, &labels)] {
            assert!(curve.len() <= MAX_CURVE_POINTS, "{} points", curve.len());
            assert!(curve.len() > MAX_CURVE_POINTS / 2, "{} points", curve.len());
            assert_eq!(curve[0].threshold, f32::INFINITY);
            assert_eq!(curve[curve.len() - 1].threshold, 0.0);
            assert!(curve.windows(2).all(|w| w[0].threshold > w[1].threshold));
            assert!(curve.windows(2).all(|w| w[0].x <= w[1].x));
        }
        let roc = roc_curve(&scores, &labels);
        assert_eq!((roc[0].x, roc[0].y), (0.0, 0.0));
        let end = roc[roc.len() - 1];
        assert_eq!((end.x, end.y), (1.0, 1.0));
        // Spread evenly along the curve (raw ROC steps are ≤ 1/N, and the L1 length is 2,
        // so ~2/198 per kept point), not bunched where scores are dense.
        let max_gap = roc
            .windows(2)
            .map(|w| (w[1].x - w[0].x) + (w[1].y - w[0].y))
            .fold(0.0, f64::max);
        assert!(max_gap < 0.02, "gap {max_gap}");
    }

    #[test]
    fn curve_point_threshold_round_trips_infinity() {
        let p = pt(0.0, 0.0, f32::INFINITY);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"x":0.0,"y":0.0,"threshold":null}"#);
        assert_eq!(serde_json::from_str::<CurvePoint>(&json).unwrap(), p);
    }

    // ---- Threshold selection ---------------------------------------------------------

    #[test]
    fn threshold_for_precision_picks_lowest_qualifying() {
        let t = |target| threshold_for_precision(&SEL_SCORES, &SEL_LABELS, target);
        assert_eq!(t(1.0), Some(0.8));
        // Precision dips to 2/3 at 0.7 and recovers to 3/4 at 0.6: the lower one wins.
        assert_eq!(t(0.7), Some(0.6));
        assert_eq!(t(0.75), Some(0.6));
        assert_eq!(t(0.6), Some(0.5));
        assert_eq!(t(0.5), Some(0.4));
        assert_eq!(t(1.01), None);
        assert_eq!(t(f64::NAN), None);
        assert_eq!(threshold_for_precision(&[], &[], 0.5), None);
        assert_eq!(threshold_for_precision(&[0.9, 0.1], &[F, T], 0.9), None);
    }

    #[test]
    fn threshold_for_precision_respects_ties() {
        // The 0.9 group is T+F (precision ½) and no threshold can split it, so the
        // positive alone never yields precision 1.
        let (scores, labels) = ([0.9, 0.9, 0.1], [T, F, F]);
        assert_eq!(threshold_for_precision(&scores, &labels, 0.6), None);
        assert_eq!(threshold_for_precision(&scores, &labels, 0.5), Some(0.9));
        // Lowest qualifying, even if it lies beyond a tie group: 2/3 at 0.1.
        assert_eq!(threshold_for_precision(&scores, &[T, F, T], 0.6), Some(0.1));
    }

    #[test]
    fn threshold_for_recall_picks_highest_qualifying() {
        let t = |target| threshold_for_recall(&SEL_SCORES, &SEL_LABELS, target);
        assert_eq!(t(0.3), Some(0.9));
        assert_eq!(t(0.5), Some(0.8));
        assert_eq!(t(2.0 / 3.0), Some(0.8));
        assert_eq!(t(0.9), Some(0.6));
        assert_eq!(t(1.0), Some(0.6));
        assert_eq!(t(1.1), None);
        assert_eq!(threshold_for_recall(&[0.3], &[F], 0.5), None);
    }

    #[test]
    fn recall_at_precision_values() {
        let r = |target| recall_at_precision(&SEL_SCORES, &SEL_LABELS, target);
        close(r(1.0), 2.0 / 3.0);
        close(r(0.99), 2.0 / 3.0);
        close(r(0.75), 1.0);
        // Top-ranked row is a negative and the rest cannot recover to 90%.
        close(recall_at_precision(&[0.9, 0.1], &[F, T], 0.9), 0.0);
        assert!(recall_at_precision(&[0.9], &[F], 0.9).is_nan());
    }
}
