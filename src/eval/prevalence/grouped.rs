//! The prevalence report of a scored sample: counts and estimates overall and per brand,
//! category and currency, with groups too small for an estimate marked, not hidden.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bootstrap::{estimate_with, BootstrapConfig, PrevalenceEstimate};
use super::interval::Estimators;
use super::{Method, QuantificationStats, CONFIDENCE_LEVEL, NONE_GROUP};
use crate::data::listing::Listing;
use crate::decision::Decision;
use crate::eval::evaluation::DecisionCounts;

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

impl ScoredRow {
    /// The row for a scored listing; an empty brand or category counts as missing. The one
    /// place a listing becomes a report row, for batch scoring and training alike.
    pub fn new(
        listing: &Listing,
        probability: f32,
        decision: Decision,
        label: Option<bool>,
    ) -> ScoredRow {
        let present = |text: &str| Some(text.to_string()).filter(|t| !t.is_empty());
        ScoredRow {
            probability,
            decision,
            brand: present(&listing.brand),
            category: present(&listing.category),
            currency: listing.price.as_ref().map(|p| p.currency.clone()),
            label,
        }
    }
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

    /// The group value of a row ([`NONE_GROUP`] when missing or blank).
    pub fn key(self, row: &ScoredRow) -> &str {
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

/// The headline as it appears in report JSON under `"prevalence"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadlinePrevalence {
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub method: Method,
}

impl From<&PrevalenceEstimate> for HeadlinePrevalence {
    fn from(e: &PrevalenceEstimate) -> Self {
        HeadlinePrevalence {
            estimate: e.estimate,
            ci_low: e.ci_low,
            ci_high: e.ci_high,
            method: e.method,
        }
    }
}

/// Counts and estimates for the whole sample or one group.
///
/// Serde is derived with `remote = "Self"` and wrapped below: JSON shows `flagged` as
/// `{"block", "review"}` only, and reading it back restores `allow` from `listings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct PrevalenceSummary {
    pub listings: usize,
    /// From each row's own decision, i.e. what analysts were actually shown.
    #[serde(with = "flagged_json")]
    pub flagged: DecisionCounts,
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

impl Serialize for PrevalenceSummary {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PrevalenceSummary::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for PrevalenceSummary {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut summary = PrevalenceSummary::deserialize(deserializer)?;
        summary.flagged.allow = summary.listings.saturating_sub(summary.flagged.flagged());
        Ok(summary)
    }
}

/// `flagged` in report JSON: the review and block counts of [`DecisionCounts`], in the
/// order `block`, `review`; `allow` is what is left of `listings`.
mod flagged_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::eval::evaluation::DecisionCounts;

    #[derive(Serialize, Deserialize)]
    struct Flagged {
        block: usize,
        review: usize,
    }

    pub fn serialize<S: Serializer>(
        counts: &DecisionCounts,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        Flagged {
            block: counts.block,
            review: counts.review,
        }
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DecisionCounts, D::Error> {
        let Flagged { block, review } = Flagged::deserialize(deserializer)?;
        Ok(DecisionCounts {
            allow: 0,
            review,
            block,
        })
    }
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
    pub headline_method: Method,
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
        sort_groups(&mut groups);

        PrevalenceReport {
            headline_method: method,
            headline_method_reason: reason,
            confidence_level: CONFIDENCE_LEVEL,
            min_group_rows,
            overall,
            groups,
        }
    }
}

/// The report's group order: by brand, category, currency; within each, most listings first.
pub(super) fn sort_groups(groups: &mut [GroupSummary]) {
    groups.sort_by(|a, b| {
        a.by.cmp(&b.by)
            .then(b.summary.listings.cmp(&a.summary.listings))
            .then(a.value.cmp(&b.value))
    });
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
    let mut flagged = DecisionCounts::default();
    let (mut labeled, mut positives) = (0usize, 0usize);
    let mut probs = Vec::with_capacity(idx.len());
    for row in idx.iter().filter_map(|&i| rows.get(i)) {
        flagged.record(row.decision);
        if let Some(label) = row.label {
            labeled += 1;
            positives += usize::from(label);
        }
        probs.push(row.probability);
    }
    let listings = probs.len();
    let too_small = listings < min_rows;
    let estimate = (!too_small).then(|| estimate_with(&probs, stats, config));
    summary_of(listings, flagged, labeled, positives, estimate)
}

/// A group's summary from its counts and, unless it is too small, its estimate.
pub(super) fn summary_of(
    listings: usize,
    flagged: DecisionCounts,
    labeled: usize,
    positives: usize,
    estimate: Option<PrevalenceEstimate>,
) -> PrevalenceSummary {
    PrevalenceSummary {
        listings,
        flagged,
        share_flagged: (listings > 0).then(|| flagged.flagged() as f64 / listings as f64),
        too_small: estimate.is_none(),
        prevalence: estimate.as_ref().map(HeadlinePrevalence::from),
        estimators: estimate.map(|e| e.estimators),
        labeled: (labeled > 0).then_some(labeled),
        true_share: (labeled > 0).then(|| positives as f64 / labeled as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::prevalence::testutil::{draw, stats_for, World, THRESHOLDS};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

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
        assert_eq!(report.headline_method, Method::Em);

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

    #[test]
    fn flagged_json_keeps_block_and_review_and_reading_restores_allow() {
        let (rows, stats) = report_fixture();
        let report = PrevalenceReport::build(&rows, &stats, 20);
        let flagged = report.overall.flagged;
        assert_eq!(flagged.total(), report.overall.listings);
        assert!(flagged.allow > 0);
        let json = serde_json::to_value(&report.overall).unwrap();
        let keys: Vec<&str> = json["flagged"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["block", "review"]);
        let back: PrevalenceSummary = serde_json::from_value(json).unwrap();
        assert_eq!(back.flagged, flagged);
    }

    #[test]
    fn scored_row_from_a_listing_treats_empty_fields_as_missing() {
        let listing = Listing {
            id: "l-1".into(),
            title: "bag".into(),
            description: String::new(),
            price: Some(crate::data::listing::Price {
                amount: 10.0,
                currency: "EUR".into(),
                base_amount: 11.0,
            }),
            brand: String::new(),
            category: "bags".into(),
        };
        let row = ScoredRow::new(&listing, 0.7, Decision::Review, Some(true));
        assert_eq!(
            row,
            ScoredRow {
                probability: 0.7,
                decision: Decision::Review,
                brand: None,
                category: Some("bags".into()),
                currency: Some("EUR".into()),
                label: Some(true),
            }
        );
        let no_price = Listing {
            price: None,
            ..listing
        };
        assert_eq!(
            ScoredRow::new(&no_price, 0.1, Decision::Allow, None).currency,
            None
        );
    }

    #[test]
    fn group_size_defaults_are_named_and_differ_on_purpose() {
        use crate::eval::evaluation::MIN_EVAL_GROUP_ROWS;
        use crate::eval::prevalence::MIN_GROUP_ROWS;
        // knockoff-score's --min-group-rows and the training report: 100 (README).
        assert_eq!(MIN_GROUP_ROWS, 100);
        // Per-category evaluation metrics in training and knockoff-score: 50.
        assert_eq!(MIN_EVAL_GROUP_ROWS, 50);
    }
}
