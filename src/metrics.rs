//! Evaluation metrics, calibration and threshold selection for counterfeit scores.
//!
//! Everything here is a pure function of `(score, label)` pairs, where a label of `true`
//! means "counterfeit". Conventions shared by every function:
//!
//! * **Undefined is not zero.** A metric that needs both classes (ROC-AUC), positives
//!   (recall, average precision) or any rows at all returns `f64::NAN`, `None` or an empty
//!   `Vec` rather than a made-up number; the doc of each function says which.
//! * **Length mismatch** between scores and labels is a caller bug: the result is the
//!   undefined value and a `tracing` warning is logged, rather than silently pairing a
//!   prefix.
//! * **NaN scores are dropped.** A NaN carries no ranking information; including it
//!   anywhere would make the populations of different metrics disagree. [`Evaluation`]
//!   reports how many were skipped.
//! * A row is **predicted positive when `score >= threshold`**, the same inclusive rule as
//!   [`Thresholds::decide`].
//! * NaN in a result struct serialises as JSON `null` and deserialises back to NaN (see
//!   [`nan_as_null`]); because NaN != NaN, `PartialEq` on a struct holding one is false.
//!
//! Rank-based metrics sort once (O(n log n)) and then work on the distinct-score
//! operating points, so they are cheap on a few hundred thousand rows.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::decision::{Decision, Thresholds};

/// Curves handed to charts are thinned to at most this many points.
pub const MAX_CURVE_POINTS: usize = 200;

/// Bin count used for [`Evaluation::expected_calibration_error`].
pub const ECE_BINS: usize = 10;

/// Precision target behind [`Evaluation::recall_at_95_precision`].
pub const PRECISION_TARGET: f64 = 0.95;

// ---------------------------------------------------------------------------------------
// Serde helpers
// ---------------------------------------------------------------------------------------

/// `#[serde(with)]` helper: NaN ⇄ `null`.
///
/// serde_json already writes a non-finite `f64` as `null` but refuses to read `null` into
/// an `f64`, so reports with an undefined metric would not load back. Keeping the field an
/// `f64` (instead of `Option<f64>`) keeps arithmetic on reports simple; NaN already means
/// "undefined" everywhere in this module.
pub mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_nan() {
            serializer.serialize_none()
        } else {
            serializer.serialize_some(value)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
    }
}

/// `#[serde(with)]` helper for curve thresholds: `+inf` ⇄ `null`.
///
/// The first point of every curve stands for "nothing predicted positive", which only an
/// infinite threshold expresses; JSON has no infinity.
mod inf_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f32, serializer: S) -> Result<S::Ok, S::Error> {
        if *value == f32::INFINITY {
            serializer.serialize_none()
        } else {
            serializer.serialize_some(value)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f32, D::Error> {
        Ok(Option::<f32>::deserialize(deserializer)?.unwrap_or(f32::INFINITY))
    }
}

// ---------------------------------------------------------------------------------------
// Shared preparation
// ---------------------------------------------------------------------------------------

/// Pairs scores with labels, dropping NaN scores. `None` when the lengths differ.
fn clean_pairs(scores: &[f32], labels: &[bool]) -> Option<Vec<(f32, bool)>> {
    if scores.len() != labels.len() {
        tracing::warn!(
            scores = scores.len(),
            labels = labels.len(),
            "metrics: scores and labels differ in length; result is undefined"
        );
        return None;
    }
    Some(
        scores
            .iter()
            .zip(labels)
            .filter(|(s, _)| !s.is_nan())
            .map(|(&s, &l)| (s, l))
            .collect(),
    )
}

/// Cumulative counts for the rule `score >= threshold`, at one distinct score.
#[derive(Debug, Clone, Copy)]
struct OpPoint {
    threshold: f32,
    tp: usize,
    fp: usize,
}

/// Distinct-score operating points in decreasing threshold order: every threshold worth
/// considering, since between two adjacent distinct scores the confusion does not change.
struct Ranked {
    points: Vec<OpPoint>,
    positives: usize,
    negatives: usize,
}

impl Ranked {
    fn from_pairs(mut pairs: Vec<(f32, bool)>) -> Self {
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

    fn roc_auc(&self) -> f64 {
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

    fn average_precision(&self) -> f64 {
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

    fn recall_at_precision(&self, target: f64) -> f64 {
        if self.positives == 0 {
            return f64::NAN;
        }
        self.points
            .iter()
            .rev()
            .find(|p| p.tp as f64 / (p.tp + p.fp) as f64 >= target)
            .map_or(0.0, |p| p.tp as f64 / self.positives as f64)
    }

    fn confusion_at(&self, threshold: f32) -> Confusion {
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

    fn roc_points(&self) -> Vec<CurvePoint> {
        if self.positives == 0 || self.negatives == 0 {
            return Vec::new();
        }
        let (pos, neg) = (self.positives as f64, self.negatives as f64);
        let mut curve = Vec::with_capacity(self.points.len() + 1);
        curve.push(CurvePoint {
            x: 0.0,
            y: 0.0,
            threshold: f32::INFINITY,
        });
        curve.extend(self.points.iter().map(|p| CurvePoint {
            x: p.fp as f64 / neg,
            y: p.tp as f64 / pos,
            threshold: p.threshold,
        }));
        downsample(curve, MAX_CURVE_POINTS)
    }

    fn pr_points(&self) -> Vec<CurvePoint> {
        if self.positives == 0 {
            return Vec::new();
        }
        let pos = self.positives as f64;
        let mut curve = Vec::with_capacity(self.points.len() + 1);
        // The conventional (recall 0, precision 1) anchor, as sklearn draws it.
        curve.push(CurvePoint {
            x: 0.0,
            y: 1.0,
            threshold: f32::INFINITY,
        });
        curve.extend(self.points.iter().map(|p| CurvePoint {
            x: p.tp as f64 / pos,
            y: p.tp as f64 / (p.tp + p.fp) as f64,
            threshold: p.threshold,
        }));
        downsample(curve, MAX_CURVE_POINTS)
    }
}

// ---------------------------------------------------------------------------------------
// Ranking metrics and curves
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Threshold selection
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Calibration
// ---------------------------------------------------------------------------------------

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
    let width = bins as f64;
    for &(p, label) in pairs {
        // Saturating float→int casts put p < 0 in the first bin; `min` puts p >= 1
        // (including exactly 1.0) in the last.
        let index = ((f64::from(p) * width).floor() as usize).min(bins.saturating_sub(1));
        if let Some(slot) = sums.get_mut(index) {
            slot.0 += 1;
            slot.1 += f64::from(p);
            slot.2 += usize::from(label);
        }
    }
    sums.into_iter()
        .enumerate()
        .map(|(i, (count, sum_p, positives))| {
            let n = count as f64; // 0/0 = NaN is exactly "empty bin"
            ReliabilityBin {
                lower: i as f64 / width,
                upper: (i + 1) as f64 / width,
                count,
                mean_predicted: sum_p / n,
                observed_rate: positives as f64 / n,
            }
        })
        .collect()
}

fn ece_of_pairs(pairs: &[(f32, bool)], bins: usize) -> f64 {
    if pairs.is_empty() || bins == 0 {
        return f64::NAN;
    }
    let n = pairs.len() as f64;
    bin_pairs(pairs, bins)
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| b.count as f64 / n * (b.mean_predicted - b.observed_rate).abs())
        .sum()
}

fn brier_of_pairs(pairs: &[(f32, bool)]) -> f64 {
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
// Confusion matrix
// ---------------------------------------------------------------------------------------

/// Confusion counts for one threshold. The rate methods return NaN when their denominator
/// is zero (e.g. precision when nothing is flagged) instead of sklearn's silent 0.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Confusion {
    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// 2·TP / (2·TP + FP + FN): equal to the harmonic mean of precision and recall, and
    /// 0 (not NaN) when there are positives or flags but no hits.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    pub fn false_positive_rate(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }
}

fn ratio(num: usize, den: usize) -> f64 {
    // 0/0 gives NaN, which is the documented "undefined".
    num as f64 / den as f64
}

/// Confusion counts for the rule `score >= threshold`. NaN scores are left out; on length
/// mismatch every count is 0 (so every rate is NaN).
pub fn confusion_at(scores: &[f32], labels: &[bool], threshold: f32) -> Confusion {
    let Some(pairs) = clean_pairs(scores, labels) else {
        return Confusion::default();
    };
    let mut c = Confusion::default();
    for (score, label) in pairs {
        match (score >= threshold, label) {
            (true, true) => c.tp += 1,
            (true, false) => c.fp += 1,
            (false, false) => c.tn += 1,
            (false, true) => c.fn_ += 1,
        }
    }
    c
}

// ---------------------------------------------------------------------------------------
// Evaluation report
// ---------------------------------------------------------------------------------------

/// Quality of one of the operating thresholds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThresholdReport {
    /// `"review"` or `"block"`.
    pub name: String,
    pub threshold: f32,
    #[serde(with = "nan_as_null")]
    pub precision: f64,
    #[serde(with = "nan_as_null")]
    pub recall: f64,
    #[serde(with = "nan_as_null")]
    pub f1: f64,
    pub confusion: Confusion,
}

/// How many rows got each [`Decision`].
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DecisionCounts {
    pub allow: usize,
    pub review: usize,
    pub block: usize,
}

impl DecisionCounts {
    pub fn get(&self, decision: Decision) -> usize {
        match decision {
            Decision::Allow => self.allow,
            Decision::Review => self.review,
            Decision::Block => self.block,
        }
    }

    fn add(&mut self, decision: Decision) {
        match decision {
            Decision::Allow => self.allow += 1,
            Decision::Review => self.review += 1,
            Decision::Block => self.block += 1,
        }
    }
}

/// Everything training and scoring report about a labelled set of probabilities.
///
/// Metrics that are undefined for this data (see the free functions) are NaN, `null` in
/// JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    /// Rows evaluated (NaN probabilities excluded).
    pub rows: usize,
    pub positives: usize,
    /// Rows left out because their probability was NaN; they would be allowed in
    /// production (`NaN >= t` is false), so a non-zero count points at a model bug.
    #[serde(default)]
    pub skipped_nan: usize,
    #[serde(with = "nan_as_null")]
    pub roc_auc: f64,
    #[serde(with = "nan_as_null")]
    pub pr_auc: f64,
    /// Recall at [`PRECISION_TARGET`] precision (0 if that precision is never reached).
    #[serde(with = "nan_as_null")]
    pub recall_at_95_precision: f64,
    /// With [`ECE_BINS`] bins.
    #[serde(with = "nan_as_null")]
    pub expected_calibration_error: f64,
    #[serde(with = "nan_as_null")]
    pub brier_score: f64,
    /// `review` then `block`.
    pub thresholds: Vec<ThresholdReport>,
    pub decisions: DecisionCounts,
}

/// Full report for `probs` against `labels` at the two operating thresholds. Sorts once.
///
/// On length mismatch the report has `rows = 0` and every metric NaN.
pub fn evaluate(probs: &[f32], labels: &[bool], thresholds: &Thresholds) -> Evaluation {
    let pairs = clean_pairs(probs, labels).unwrap_or_default();
    let skipped_nan = if probs.len() == labels.len() {
        probs.len() - pairs.len()
    } else {
        0
    };

    let mut decisions = DecisionCounts::default();
    for &(p, _) in &pairs {
        decisions.add(thresholds.decide(p));
    }
    let expected_calibration_error = ece_of_pairs(&pairs, ECE_BINS);
    let brier_score = brier_of_pairs(&pairs);
    let rows = pairs.len();

    let ranked = Ranked::from_pairs(pairs);
    let report = |name: &str, threshold: f32| {
        let confusion = ranked.confusion_at(threshold);
        ThresholdReport {
            name: name.to_owned(),
            threshold,
            precision: confusion.precision(),
            recall: confusion.recall(),
            f1: confusion.f1(),
            confusion,
        }
    };

    Evaluation {
        rows,
        positives: ranked.positives,
        skipped_nan,
        roc_auc: ranked.roc_auc(),
        pr_auc: ranked.average_precision(),
        recall_at_95_precision: ranked.recall_at_precision(PRECISION_TARGET),
        expected_calibration_error,
        brier_score,
        thresholds: vec![
            report(Decision::Review.as_str(), thresholds.review),
            report(Decision::Block.as_str(), thresholds.block),
        ],
        decisions,
    }
}

/// [`evaluate`] per group (e.g. category or marketplace), groups evaluated in parallel.
///
/// Groups with fewer than `min_rows` input rows are left out, since their metrics would
/// be noise; the caller can find them by comparing keys. Empty map on length mismatch.
pub fn evaluate_by_group(
    probs: &[f32],
    labels: &[bool],
    groups: &[&str],
    thresholds: &Thresholds,
    min_rows: usize,
) -> BTreeMap<String, Evaluation> {
    if probs.len() != labels.len() || probs.len() != groups.len() {
        tracing::warn!(
            probs = probs.len(),
            labels = labels.len(),
            groups = groups.len(),
            "metrics: per-group inputs differ in length; no groups evaluated"
        );
        return BTreeMap::new();
    }
    let mut split: BTreeMap<&str, (Vec<f32>, Vec<bool>)> = BTreeMap::new();
    for ((&p, &l), &g) in probs.iter().zip(labels).zip(groups) {
        let entry = split.entry(g).or_default();
        entry.0.push(p);
        entry.1.push(l);
    }
    split
        .into_iter()
        .filter(|(_, (p, _))| p.len() >= min_rows)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(g, (p, l))| (g.to_owned(), evaluate(&p, &l, thresholds)))
        .collect()
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

/// Overflow-free logistic function.
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Overflow-free `ln(1 + e^z)`.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

fn fit_platt(
    logits: &[f32],
    labels: &[bool],
    max_iter: usize,
) -> Result<PlattCalibration, PlattError> {
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
    let (hi, lo) = ((np + 1.0) / (np + 2.0), 1.0 / (nn + 2.0));
    let target = |label: bool| if label { hi } else { lo };
    // Cross-entropy against soft targets, written as softplus(z) − t·z to stay finite.
    let objective = |a: f64, b: f64| -> f64 {
        data.iter()
            .map(|&(f, y)| {
                let z = a * f + b;
                softplus(z) - target(y) * z
            })
            .sum()
    };

    let n = data.len() as f64;
    // Gradient tolerances scale with n because the gradient is a sum over rows. The loose
    // one accepts a point where rounding, not a bad direction, stops the line search.
    let (tol, loose_tol) = (1e-7 * n, 1e-4 * n);
    let (mut a, mut b) = (0.0f64, ((np + 1.0) / (nn + 1.0)).ln());
    let mut value = objective(a, b);

    for _ in 0..max_iter {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &(f, y) in &data {
            let p = sigmoid(a * f + b);
            let r = p - target(y);
            ga += r * f;
            gb += r;
            let w = p * (1.0 - p);
            haa += w * f * f;
            hab += w * f;
            hbb += w;
        }
        let gradient = ga.abs().max(gb.abs());
        if gradient < tol {
            return Ok(PlattCalibration { a, b });
        }
        // A ridge relative to the Hessian's scale keeps the 2×2 solve well-posed when all
        // logits are (nearly) equal and the Hessian is singular.
        let ridge = 1e-12 * haa.max(hbb).max(1e-300);
        let (haa, hbb) = (haa + ridge, hbb + ridge);
        let det = haa * hbb - hab * hab;
        let da = -(hbb * ga - hab * gb) / det;
        let db = -(haa * gb - hab * ga) / det;
        let slope = ga * da + gb * db;
        if !(da.is_finite() && db.is_finite() && slope < 0.0) {
            return if gradient < loose_tol {
                Ok(PlattCalibration { a, b })
            } else {
                Err(PlattError::LineSearch { gradient })
            };
        }
        let mut step = 1.0;
        loop {
            let (na, nb) = (a + step * da, b + step * db);
            let candidate = objective(na, nb);
            // Armijo sufficient decrease.
            if candidate <= value + 1e-4 * step * slope {
                a = na;
                b = nb;
                value = candidate;
                break;
            }
            step *= 0.5;
            if step < 1e-10 {
                return if gradient < loose_tol {
                    Ok(PlattCalibration { a, b })
                } else {
                    Err(PlattError::LineSearch { gradient })
                };
            }
        }
        if !(a.is_finite() && b.is_finite()) {
            return Err(PlattError::NonFinite);
        }
    }
    Err(PlattError::NoConvergence(max_iter))
}

// ---------------------------------------------------------------------------------------
// Text summary
// ---------------------------------------------------------------------------------------

fn fmt_metric(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.4}")
    } else {
        "n/a".to_owned()
    }
}

/// Aligns columns: the first left-aligned (labels), the rest right-aligned (numbers).
fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let parts: Vec<String> = cells
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &w))| {
                if i == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    out += &line(&mut rule.iter().map(String::as_str));
    for row in rows {
        out += &line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Human-readable report for the end of training or scoring: overall metrics, the two
/// thresholds, then one row per group. Undefined metrics print as `n/a`.
pub fn summary_table(eval: &Evaluation, per_group: &BTreeMap<String, Evaluation>) -> String {
    let mut out = format!(
        "{} rows, {} positives ({})",
        eval.rows,
        eval.positives,
        match eval.rows {
            0 => "n/a".to_owned(),
            rows => format!("{:.2}%", 100.0 * eval.positives as f64 / rows as f64),
        }
    );
    if eval.skipped_nan > 0 {
        out += &format!("; {} rows with NaN probability skipped", eval.skipped_nan);
    }
    let d = &eval.decisions;
    out += &format!(
        "\ndecisions: allow {} / review {} / block {}\n\n",
        d.allow, d.review, d.block
    );

    let overall = vec![
        vec!["ROC-AUC".to_owned(), fmt_metric(eval.roc_auc)],
        vec!["PR-AUC (AP)".to_owned(), fmt_metric(eval.pr_auc)],
        vec![
            "recall@95%P".to_owned(),
            fmt_metric(eval.recall_at_95_precision),
        ],
        vec![
            format!("ECE ({ECE_BINS} bins)"),
            fmt_metric(eval.expected_calibration_error),
        ],
        vec!["Brier".to_owned(), fmt_metric(eval.brier_score)],
    ];
    out += &render_table(&["metric", "value"], &overall);
    out += "\n";

    let thresholds: Vec<Vec<String>> = eval
        .thresholds
        .iter()
        .map(|t| {
            let c = &t.confusion;
            vec![
                t.name.clone(),
                format!("{:.4}", t.threshold),
                fmt_metric(t.precision),
                fmt_metric(t.recall),
                fmt_metric(t.f1),
                c.tp.to_string(),
                c.fp.to_string(),
                c.tn.to_string(),
                c.fn_.to_string(),
            ]
        })
        .collect();
    out += &render_table(
        &[
            "threshold",
            "value",
            "precision",
            "recall",
            "F1",
            "TP",
            "FP",
            "TN",
            "FN",
        ],
        &thresholds,
    );

    if !per_group.is_empty() {
        out += "\n";
        let groups: Vec<Vec<String>> = per_group
            .iter()
            .map(|(name, e)| {
                vec![
                    name.clone(),
                    e.rows.to_string(),
                    e.positives.to_string(),
                    fmt_metric(e.roc_auc),
                    fmt_metric(e.recall_at_95_precision),
                    fmt_metric(e.expected_calibration_error),
                ]
            })
            .collect();
        out += &render_table(
            &[
                "group",
                "rows",
                "positives",
                "ROC-AUC",
                "recall@95%P",
                "ECE",
            ],
            &groups,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: bool = true;
    const F: bool = false;

    fn close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 1e-9,
            "expected {expected}, got {actual}"
        );
    }

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

    // Descending: 0.9 T, 0.8 T, 0.7 F, 0.6 T, 0.5 F, 0.4 F.
    // Precision: 1, 1, 2/3, 3/4, 3/5, 1/2. Recall (3 positives): 1/3, 2/3, 2/3, 1, 1, 1.
    const SEL_SCORES: [f32; 6] = [0.4, 0.9, 0.6, 0.5, 0.8, 0.7];
    const SEL_LABELS: [bool; 6] = [F, T, T, F, T, F];

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

    // ---- Confusion -----------------------------------------------------------------

    #[test]
    fn confusion_at_is_inclusive() {
        let c = confusion_at(&SEL_SCORES, &SEL_LABELS, 0.6);
        assert_eq!(
            c,
            Confusion {
                tp: 3,
                fp: 1,
                tn: 2,
                fn_: 0
            }
        );
        close(c.precision(), 0.75);
        close(c.recall(), 1.0);
        close(c.f1(), 6.0 / 7.0);
        close(c.false_positive_rate(), 1.0 / 3.0);
    }

    #[test]
    fn confusion_rates_undefined_are_nan() {
        let nothing_flagged = confusion_at(&[0.1, 0.2], &[T, F], 0.9);
        assert!(nothing_flagged.precision().is_nan());
        close(nothing_flagged.recall(), 0.0);
        close(nothing_flagged.f1(), 0.0);
        let empty = Confusion::default();
        assert!(empty.f1().is_nan() && empty.recall().is_nan());
        assert!(empty.false_positive_rate().is_nan());
        assert_eq!(confusion_at(&[0.1], &[], 0.5), Confusion::default());
    }

    #[test]
    fn confusion_serialises_fn_field_as_fn() {
        let c = Confusion {
            tp: 1,
            fp: 2,
            tn: 3,
            fn_: 4,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"tp":1,"fp":2,"tn":3,"fn":4}"#);
        assert_eq!(serde_json::from_str::<Confusion>(&json).unwrap(), c);
    }

    // ---- Evaluation ----------------------------------------------------------------

    const TH: Thresholds = Thresholds {
        review: 0.5,
        block: 0.8,
    };

    #[test]
    fn evaluate_matches_the_free_functions() {
        let probs = [0.4, 0.9, 0.6, 0.5, 0.8, 0.7, f32::NAN];
        let labels = [F, T, T, F, T, F, T];
        let e = evaluate(&probs, &labels, &TH);
        assert_eq!((e.rows, e.positives, e.skipped_nan), (6, 3, 1));
        close(e.roc_auc, roc_auc(&probs, &labels));
        close(e.pr_auc, pr_auc(&probs, &labels));
        close(e.recall_at_95_precision, 2.0 / 3.0);
        close(
            e.expected_calibration_error,
            expected_calibration_error(&probs, &labels, ECE_BINS),
        );
        close(e.brier_score, brier_score(&probs, &labels));
        assert_eq!(
            e.decisions,
            DecisionCounts {
                allow: 1,
                review: 3,
                block: 2
            }
        );
        assert_eq!(e.decisions.get(Decision::Review), 3);

        let names: Vec<&str> = e.thresholds.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["review", "block"]);
        for (report, t) in e.thresholds.iter().zip([TH.review, TH.block]) {
            let c = confusion_at(&probs, &labels, t);
            assert_eq!(report.confusion, c);
            assert_eq!(report.threshold, t);
            close(report.precision, c.precision());
            close(report.recall, c.recall());
            close(report.f1, c.f1());
        }
        // Hand-checked: block at 0.8 flags 0.9 T and 0.8 T.
        assert_eq!(
            e.thresholds[1].confusion,
            Confusion {
                tp: 2,
                fp: 0,
                tn: 3,
                fn_: 1
            }
        );
    }

    #[test]
    fn evaluation_round_trips_through_json_including_nan() {
        let e = evaluate(&SEL_SCORES, &SEL_LABELS, &TH);
        let back: Evaluation = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        // serde_json's default float parsing may be off by an ulp, so floats are compared
        // with a tolerance and everything else exactly.
        assert_eq!(
            (back.rows, back.positives, back.skipped_nan, back.decisions),
            (e.rows, e.positives, e.skipped_nan, e.decisions)
        );
        close(back.roc_auc, e.roc_auc);
        close(back.pr_auc, e.pr_auc);
        close(back.recall_at_95_precision, e.recall_at_95_precision);
        close(
            back.expected_calibration_error,
            e.expected_calibration_error,
        );
        close(back.brier_score, e.brier_score);
        for (b, t) in back.thresholds.iter().zip(&e.thresholds) {
            assert_eq!(
                (&b.name, b.threshold, b.confusion),
                (&t.name, t.threshold, t.confusion)
            );
            close(b.f1, t.f1);
        }

        // One class: ROC-AUC and the block threshold's precision are undefined.
        let single = evaluate(&[0.1, 0.2], &[F, F], &TH);
        let json = serde_json::to_string(&single).unwrap();
        assert!(json.contains(r#""roc_auc":null"#), "{json}");
        let back: Evaluation = serde_json::from_str(&json).unwrap();
        assert!(back.roc_auc.is_nan() && back.pr_auc.is_nan());
        assert!(back.thresholds[1].precision.is_nan());
        close(back.brier_score, single.brier_score);
    }

    #[test]
    fn evaluate_empty_and_mismatched_do_not_panic() {
        for e in [evaluate(&[], &[], &TH), evaluate(&[0.5, 0.7], &[T], &TH)] {
            assert_eq!(e.rows, 0);
            assert!(e.roc_auc.is_nan() && e.brier_score.is_nan());
            assert!(e.expected_calibration_error.is_nan());
            assert_eq!(e.thresholds[0].confusion, Confusion::default());
        }
    }

    #[test]
    fn evaluate_by_group_splits_and_filters() {
        let probs = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3];
        let labels = [T, F, F, T, T, F];
        let groups = ["shoes", "shoes", "bags", "bags", "shoes", "watches"];
        let by = evaluate_by_group(&probs, &labels, &groups, &TH, 2);
        assert_eq!(by.keys().collect::<Vec<_>>(), ["bags", "shoes"]);
        assert_eq!(by["shoes"], evaluate(&[0.9, 0.1, 0.7], &[T, F, T], &TH));
        close(by["shoes"].roc_auc, 1.0);
        close(by["bags"].roc_auc, 0.0);
        assert!(evaluate_by_group(&probs, &labels, &groups[..2], &TH, 1).is_empty());
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

    // ---- Summary -------------------------------------------------------------------

    #[test]
    fn summary_table_lists_everything() {
        let e = evaluate(&SEL_SCORES, &SEL_LABELS, &TH);
        let mut groups = BTreeMap::new();
        groups.insert("handbags".to_owned(), e.clone());
        groups.insert("sneakers".to_owned(), evaluate(&[0.2], &[F], &TH));
        let table = summary_table(&e, &groups);
        for needle in [
            "6 rows, 3 positives (50.00%)",
            "ROC-AUC",
            "recall@95%P",
            "allow 1 / review 3 / block 2",
            "review     0.5000",
            "block      0.8000",
            "handbags",
            "sneakers",
            "n/a",
        ] {
            assert!(table.contains(needle), "missing {needle:?} in\n{table}");
        }
        assert!(table.lines().all(|l| l == l.trim_end()));
        assert!(!summary_table(&e, &BTreeMap::new()).contains("group"));
    }
}
