//! Fixed-size summaries of scored listings: per group (overall, brand, category, currency)
//! the decision counts, label counts and a score histogram in the bootstrap's logit bins.
//! A prevalence report built from them matches the row-based one within tolerance, their
//! size does not grow with the number of rows, and summaries of shards add up.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bootstrap::{bin, estimate_from_bins, slot_of, Bin, BootstrapConfig, SLOTS};
use super::grouped::{sort_groups, summary_of, GroupBy, GroupSummary, PrevalenceReport, ScoredRow};
use super::{QuantificationStats, CONFIDENCE_LEVEL};
use crate::eval::evaluation::DecisionCounts;

/// Value of the bucket that holds every group beyond the `max_groups` largest.
pub const OTHER_GROUP: &str = "(other)";
/// Default cap on distinct groups per dimension (knockoff-score's `--max-groups`).
pub const MAX_GROUPS: usize = 1000;

/// Probabilities binned by logit (560 bins of width 0.05), split at the review threshold:
/// per bin the count and the sum of probabilities. 1,120 slots whatever the sample size.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreBins {
    /// Empty until the first probability arrives, then [`SLOTS`] long.
    slots: Vec<(u64, f64)>,
}

impl ScoreBins {
    /// Counts one probability (non-finite ones are not counted, as the estimators skip them).
    pub fn add(&mut self, p: f32, review_threshold: f32) {
        let Some(slot) = slot_of(p, review_threshold) else {
            return;
        };
        if self.slots.is_empty() {
            self.slots = vec![(0, 0.0); SLOTS];
        }
        let entry = &mut self.slots[slot];
        entry.0 += 1;
        entry.1 += f64::from(p.clamp(0.0, 1.0));
    }

    /// Adds another summary's counts and sums.
    pub fn merge(&mut self, other: &ScoreBins) {
        if other.slots.is_empty() {
            return;
        }
        if self.slots.is_empty() {
            self.slots = vec![(0, 0.0); SLOTS];
        }
        for (mine, theirs) in self.slots.iter_mut().zip(&other.slots) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
    }

    /// Probabilities counted.
    pub fn count(&self) -> u64 {
        self.slots.iter().map(|s| s.0).sum()
    }

    pub(super) fn probability_sum(&self) -> f64 {
        self.slots.iter().map(|s| s.1).sum()
    }

    /// The non-empty bins, in slot order.
    pub(super) fn bins(&self) -> Vec<Bin> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, (count, _))| *count > 0)
            .map(|(slot, &(count, sum))| bin(slot, count, sum))
            .collect()
    }
}

/// JSON form of [`ScoreBins`]: only the non-empty slots, as `[slot, count, sum]`.
impl Serialize for ScoreBins {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let sparse: Vec<(usize, u64, f64)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, (count, _))| *count > 0)
            .map(|(slot, &(count, sum))| (slot, count, sum))
            .collect();
        sparse.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ScoreBins {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let sparse = Vec::<(usize, u64, f64)>::deserialize(deserializer)?;
        let mut bins = ScoreBins::default();
        for (slot, count, sum) in sparse {
            if slot >= SLOTS {
                return Err(serde::de::Error::custom(format!(
                    "score bin {slot} is out of range (0..{SLOTS})"
                )));
            }
            if !sum.is_finite() || sum < 0.0 || sum > count as f64 {
                return Err(serde::de::Error::custom(format!(
                    "score bin {slot}: sum {sum} does not fit {count} probabilities"
                )));
            }
            if bins.slots.is_empty() {
                bins.slots = vec![(0, 0.0); SLOTS];
            }
            bins.slots[slot].0 += count;
            bins.slots[slot].1 += sum;
        }
        Ok(bins)
    }
}

/// Everything the report needs about one group, in fixed size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupTally {
    /// Every row recorded, including any without a finite probability.
    pub listings: u64,
    pub flagged: DecisionCounts,
    pub labeled: u64,
    pub positives: u64,
    pub scores: ScoreBins,
}

impl GroupTally {
    fn record(&mut self, row: &ScoredRow, review_threshold: f32) {
        self.listings += 1;
        self.flagged.record(row.decision);
        if let Some(label) = row.label {
            self.labeled += 1;
            self.positives += u64::from(label);
        }
        self.scores.add(row.probability, review_threshold);
    }

    fn merge(&mut self, other: &GroupTally) {
        self.listings += other.listings;
        self.flagged.allow += other.flagged.allow;
        self.flagged.review += other.flagged.review;
        self.flagged.block += other.flagged.block;
        self.labeled += other.labeled;
        self.positives += other.positives;
        self.scores.merge(&other.scores);
    }
}

/// The fixed-size summary of a scored sample, overall and per group, with at most
/// `max_groups` named groups per dimension: rows of further values land in [`OTHER_GROUP`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrevalenceTally {
    /// The threshold the histograms are split at (the model's quantification threshold).
    pub review_threshold: f32,
    pub max_groups: usize,
    pub overall: GroupTally,
    pub groups: BTreeMap<GroupBy, BTreeMap<String, GroupTally>>,
}

impl PrevalenceTally {
    pub fn new(review_threshold: f32, max_groups: usize) -> PrevalenceTally {
        PrevalenceTally {
            review_threshold,
            max_groups,
            overall: GroupTally::default(),
            groups: BTreeMap::new(),
        }
    }

    /// Counts one scored row overall and in its groups. A value first seen once a dimension
    /// already has `max_groups` groups is counted under [`OTHER_GROUP`].
    pub fn record(&mut self, row: &ScoredRow) {
        let threshold = self.review_threshold;
        self.overall.record(row, threshold);
        for by in GroupBy::ALL {
            let groups = self.groups.entry(by).or_default();
            let key = by.key(row);
            // A group already counted is the common case: one lookup.
            if let Some(tally) = groups.get_mut(key) {
                tally.record(row, threshold);
                continue;
            }
            let named = groups.len() - usize::from(groups.contains_key(OTHER_GROUP));
            let key = if named < self.max_groups {
                key
            } else {
                OTHER_GROUP
            };
            groups
                .entry(key.to_string())
                .or_default()
                .record(row, threshold);
        }
    }

    /// Adds another sample's summary (same threshold), then keeps the `max_groups` largest
    /// groups per dimension and folds the rest into [`OTHER_GROUP`].
    pub fn merge(&mut self, other: &PrevalenceTally) {
        self.overall.merge(&other.overall);
        for (by, theirs) in &other.groups {
            let mine = self.groups.entry(*by).or_default();
            for (value, tally) in theirs {
                mine.entry(value.clone()).or_default().merge(tally);
            }
        }
        let cap = self.max_groups;
        for groups in self.groups.values_mut() {
            let mut named: Vec<(String, u64)> = groups
                .iter()
                .filter(|(value, _)| value.as_str() != OTHER_GROUP)
                .map(|(value, tally)| (value.clone(), tally.listings))
                .collect();
            if named.len() <= cap {
                continue;
            }
            named.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut other = groups.remove(OTHER_GROUP).unwrap_or_default();
            for (value, _) in &named[cap..] {
                if let Some(tally) = groups.remove(value) {
                    other.merge(&tally);
                }
            }
            groups.insert(OTHER_GROUP.to_string(), other);
        }
    }
}

impl PrevalenceReport {
    /// The report of a summarised sample; see [`PrevalenceReport::build_with`] for the
    /// row-based report it matches.
    pub fn from_tally(
        tally: &PrevalenceTally,
        stats: &QuantificationStats,
        min_group_rows: usize,
        config: &BootstrapConfig,
    ) -> PrevalenceReport {
        let (method, reason) = stats.headline_method();
        let summarise = |tally: &GroupTally, min_rows: u64| {
            let too_small = tally.listings < min_rows;
            let estimate = (!too_small).then(|| estimate_from_bins(&tally.scores, stats, config));
            summary_of(
                to_usize(tally.listings),
                tally.flagged,
                to_usize(tally.labeled),
                to_usize(tally.positives),
                estimate,
            )
        };
        let min_rows = min_group_rows.max(1) as u64;
        let tasks: Vec<(GroupBy, &String, &GroupTally)> = tally
            .groups
            .iter()
            .flat_map(|(by, groups)| groups.iter().map(move |(v, t)| (*by, v, t)))
            .collect();
        let mut groups: Vec<GroupSummary> = tasks
            .into_par_iter()
            .map(|(by, value, t)| GroupSummary {
                by,
                value: value.clone(),
                summary: summarise(t, min_rows),
            })
            .collect();
        sort_groups(&mut groups);
        PrevalenceReport {
            headline_method: method,
            headline_method_reason: reason,
            confidence_level: CONFIDENCE_LEVEL,
            min_group_rows,
            overall: summarise(&tally.overall, 1),
            groups,
        }
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::prevalence::testutil::{draw, stats_for, World, THRESHOLDS};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn rows(seed: u64, n: usize, prevalence: f64) -> (Vec<ScoredRow>, QuantificationStats) {
        let mut rng = StdRng::seed_from_u64(seed);
        let world = World::calibrated(1.25, 0.3);
        let stats = stats_for(&mut rng, 3_000, 0.3, world);
        let (probs, labels) = draw(&mut rng, n, prevalence, world);
        let rows = probs
            .iter()
            .zip(&labels)
            .enumerate()
            .map(|(i, (&p, &y))| ScoredRow {
                probability: p,
                decision: THRESHOLDS.decide(p),
                brand: Some(format!("brand-{}", i % 7)),
                category: (i % 3 != 0).then(|| format!("category-{}", i % 4)),
                currency: Some("EUR".to_string()),
                label: (i % 2 == 0).then_some(y),
            })
            .collect();
        (rows, stats)
    }

    fn tally_of(rows: &[ScoredRow], stats: &QuantificationStats, cap: usize) -> PrevalenceTally {
        let mut tally = PrevalenceTally::new(stats.review_threshold, cap);
        for row in rows {
            tally.record(row);
        }
        tally
    }

    /// The stated tolerance: the summary-based report equals the row-based one in every
    /// count, and every estimate and interval end is within 0.0005 (0.05 points).
    fn assert_reports_agree(a: &PrevalenceReport, b: &PrevalenceReport) {
        const TOLERANCE: f64 = 5e-4;
        let close = |x: f64, y: f64, what: &str| {
            assert!((x - y).abs() < TOLERANCE, "{what}: {x} vs {y}");
        };
        let pairs = std::iter::once((&a.overall, &b.overall, "overall".to_string())).chain(
            a.groups.iter().zip(&b.groups).map(|(ga, gb)| {
                assert_eq!((ga.by, &ga.value), (gb.by, &gb.value));
                (&ga.summary, &gb.summary, ga.value.clone())
            }),
        );
        assert_eq!(a.groups.len(), b.groups.len());
        for (sa, sb, name) in pairs {
            assert_eq!(
                (sa.listings, sa.flagged, sa.labeled, sa.too_small),
                (sb.listings, sb.flagged, sb.labeled, sb.too_small),
                "{name}"
            );
            match (&sa.estimators, &sb.estimators) {
                (Some(ea), Some(eb)) => {
                    for (ia, ib) in [
                        (ea.cc, eb.cc),
                        (ea.pcc, eb.pcc),
                        (ea.acc, eb.acc),
                        (ea.pacc, eb.pacc),
                        (ea.em, eb.em),
                    ] {
                        close(ia.estimate, ib.estimate, &name);
                        close(ia.ci_low, ib.ci_low, &name);
                        close(ia.ci_high, ib.ci_high, &name);
                    }
                }
                (None, None) => {}
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn summary_report_matches_the_row_based_report() {
        let (rows, stats) = rows(31, 5_000, 0.12);
        let config = BootstrapConfig::default();
        let by_rows = PrevalenceReport::build_with(&rows, &stats, 50, &config);
        let tally = tally_of(&rows, &stats, MAX_GROUPS);
        let by_tally = PrevalenceReport::from_tally(&tally, &stats, 50, &config);
        assert_reports_agree(&by_rows, &by_tally);
        // CC and ACC count the same rows on both sides: exactly equal.
        let (a, b) = (
            by_rows.overall.estimators.unwrap(),
            by_tally.overall.estimators.unwrap(),
        );
        assert_eq!((a.cc, a.acc), (b.cc, b.acc));
    }

    #[test]
    fn shards_merge_into_the_whole() {
        let (rows, stats) = rows(37, 3_000, 0.2);
        let config = BootstrapConfig::default();
        let whole = tally_of(&rows, &stats, MAX_GROUPS);
        let mut merged = PrevalenceTally::new(stats.review_threshold, MAX_GROUPS);
        for shard in rows.chunks(1_100) {
            merged.merge(&tally_of(shard, &stats, MAX_GROUPS));
        }
        assert_eq!(merged.overall.listings, whole.overall.listings);
        assert_eq!(merged.overall.flagged, whole.overall.flagged);
        let a = PrevalenceReport::from_tally(&whole, &stats, 50, &config);
        let b = PrevalenceReport::from_tally(&merged, &stats, 50, &config);
        assert_reports_agree(&a, &b);
        let back: PrevalenceTally =
            serde_json::from_str(&serde_json::to_string(&merged).unwrap()).unwrap();
        let c = PrevalenceReport::from_tally(&back, &stats, 50, &config);
        assert_reports_agree(&b, &c);
    }

    #[test]
    fn groups_beyond_the_cap_go_to_other() {
        let (rows, stats) = rows(41, 700, 0.2);
        let tally = tally_of(&rows, &stats, 3);
        let brands = &tally.groups[&GroupBy::Brand];
        assert_eq!(brands.len(), 4, "{:?}", brands.keys().collect::<Vec<_>>());
        let total: u64 = brands.values().map(|t| t.listings).sum();
        assert_eq!(total, 700);
        // brand-3 .. brand-6 were first seen after the cap was reached.
        assert_eq!(brands[OTHER_GROUP].listings, 400);

        // Merging keeps the largest groups named and folds the rest into "(other)".
        let mut merged = tally_of(&rows[..7], &stats, 2);
        merged.merge(&tally_of(&rows[7..], &stats, 2));
        let brands = &merged.groups[&GroupBy::Brand];
        assert_eq!(brands.len(), 3);
        assert_eq!(brands.values().map(|t| t.listings).sum::<u64>(), 700);
    }

    #[test]
    fn bad_bins_are_refused() {
        assert!(serde_json::from_str::<ScoreBins>("[[5000, 1, 0.5]]").is_err());
        assert!(serde_json::from_str::<ScoreBins>("[[3, 1, 2.5]]").is_err());
        let ok: ScoreBins = serde_json::from_str("[[3, 2, 0.5]]").unwrap();
        assert_eq!(ok.count(), 2);
    }
}
