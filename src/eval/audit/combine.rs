//! Labels meet scores: checks a labelled audit file against the scored input, estimates the
//! counterfeit share overall and per group from it, sets it beside the model-based estimate,
//! and makes it the headline of a prevalence report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::estimate::{domain_estimate, AuditInterval, SampleUnit, StratumSample};
use super::file::AuditLabel;
use super::{AuditError, Population};
use crate::eval::prevalence::{
    GroupBy, HeadlinePrevalence, Method, PrevalenceReport, PrevalenceSummary,
};

/// Fewer labelled rows than this give no estimate at all (a clear error instead).
pub const MIN_LABELLED: usize = 20;
/// A group (brand, category, currency) gets an audited estimate from this many labelled rows.
pub const MIN_AUDIT_GROUP_LABELS: usize = 30;

/// One group's audited estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditGroup {
    pub by: GroupBy,
    pub value: String,
    #[serde(flatten)]
    pub interval: AuditInterval,
}

/// One stratum as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditStratum {
    pub stratum: usize,
    pub rows: usize,
    pub drawn: usize,
    pub labelled: usize,
    pub counterfeit: usize,
}

/// The audit: its rows, the design-based estimate, the model-based one beside it, and a
/// warning when the two disagree beyond their intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    pub rows: usize,
    pub labelled: usize,
    pub unlabelled: usize,
    pub overall: AuditInterval,
    pub strata: Vec<AuditStratum>,
    pub groups: Vec<AuditGroup>,
    pub min_group_labels: usize,
    pub model_based: Option<HeadlinePrevalence>,
    pub warning: Option<String>,
}

/// A labelled row found in the population: which unit, which stratum.
struct Found {
    unit: usize,
    stratum: usize,
    label: Option<bool>,
}

/// The audit rows found in the population, and each stratum's (number, size).
struct Located {
    found: Vec<Found>,
    sizes: Vec<(usize, usize)>,
}

/// Finds every audit row in the population and recovers the stratum sizes from the weights
/// (size = weight × rows drawn); refuses ids the input lacks and weights that disagree.
fn locate(
    labels: &[AuditLabel],
    population: &Population,
    file: &str,
) -> Result<Located, AuditError> {
    let mut found = Vec::with_capacity(labels.len());
    let mut strata: BTreeMap<usize, (f64, usize, u64)> = BTreeMap::new();
    for row in labels {
        let unit = population.find(&row.id).ok_or_else(|| {
            AuditError::row(
                file,
                row.line,
                format!("field `id`: `{}` is not in the input", row.id),
            )
        })?;
        let entry = strata
            .entry(row.stratum)
            .or_insert((row.weight, 0, row.line));
        if (entry.0 - row.weight).abs() > 1e-3 * entry.0 {
            return Err(AuditError::row(
                file,
                row.line,
                format!(
                    "field `weight`: {} differs from {} on line {} of the same stratum",
                    row.weight, entry.0, entry.2
                ),
            ));
        }
        entry.1 += 1;
        found.push(Found {
            unit,
            stratum: row.stratum,
            label: row.label,
        });
    }
    let sizes: Vec<(usize, usize)> = strata
        .into_iter()
        .map(|(h, (weight, drawn, _))| (h, (weight * drawn as f64).round() as usize))
        .collect();
    let covered: usize = sizes.iter().map(|s| s.1).sum();
    if covered != population.len() {
        return Err(AuditError::File { path: file.to_string(), message: format!(
            "its strata cover {covered} listings but the input has {} scored: was it drawn from this input and model?",
            population.len()) });
    }
    Ok(Located { found, sizes })
}

/// The stratum samples for one domain (all rows when `domain` is `None`).
fn samples(
    found: &[Found],
    sizes: &[(usize, usize)],
    in_domain: impl Fn(usize) -> bool,
) -> Vec<StratumSample> {
    sizes
        .iter()
        .map(|&(h, rows)| StratumSample {
            rows,
            units: found
                .iter()
                .filter(|f| f.stratum == h)
                .filter_map(|f| {
                    f.label.map(|label| SampleUnit {
                        label,
                        in_domain: in_domain(f.unit),
                    })
                })
                .collect(),
        })
        .collect()
}

/// Checks the labelled rows are enough: [`MIN_LABELLED`] in all, one in every stratum.
fn check_enough(
    found: &[Found],
    strata: &[StratumSample],
    sizes: &[(usize, usize)],
) -> Result<(), AuditError> {
    let labelled = found.iter().filter(|f| f.label.is_some()).count();
    let empty: Vec<String> = strata
        .iter()
        .zip(sizes)
        .filter(|(s, _)| s.units.is_empty())
        .map(|(_, (h, _))| format!("stratum {h} has none"))
        .collect();
    if labelled < MIN_LABELLED || !empty.is_empty() {
        return Err(AuditError::TooFewLabels {
            rows: found.len(),
            labelled,
            unlabelled: found.len() - labelled,
            needed: MIN_LABELLED,
            missing: if empty.is_empty() {
                "each has".to_string()
            } else {
                empty.join(", ")
            },
        });
    }
    Ok(())
}

/// Estimates from a labelled audit file of `population`; `model` is the model-based report
/// of the same listings, set beside the audit.
pub fn audit_report(
    labels: &[AuditLabel],
    population: &Population,
    file: &str,
    model: &PrevalenceReport,
) -> Result<AuditReport, AuditError> {
    let Located { found, sizes } = locate(labels, population, file)?;
    let all = samples(&found, &sizes, |_| true);
    check_enough(&found, &all, &sizes)?;
    let overall = domain_estimate(&all).ok_or(AuditError::EmptyPopulation)?;
    let mut groups = Vec::new();
    for by in GroupBy::ALL {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for f in found.iter().filter(|f| f.label.is_some()) {
            *counts
                .entry(by.key(&population.units[f.unit].row))
                .or_default() += 1;
        }
        for (value, _) in counts
            .into_iter()
            .filter(|(_, n)| *n >= MIN_AUDIT_GROUP_LABELS)
        {
            let strata = samples(&found, &sizes, |u| {
                by.key(&population.units[u].row) == value
            });
            if let Some(interval) = domain_estimate(&strata) {
                groups.push(AuditGroup {
                    by,
                    value: value.to_string(),
                    interval,
                });
            }
        }
    }
    let strata = sizes
        .iter()
        .zip(&all)
        .map(|(&(h, rows), s)| AuditStratum {
            stratum: h,
            rows,
            drawn: found.iter().filter(|f| f.stratum == h).count(),
            labelled: s.units.len(),
            counterfeit: s.units.iter().filter(|u| u.label).count(),
        })
        .collect();
    let model_based = model.overall.prevalence.clone();
    let warning = model_based.as_ref().and_then(|m| disagreement(&overall, m));
    let labelled = all.iter().map(|s| s.units.len()).sum();
    Ok(AuditReport {
        rows: found.len(),
        labelled,
        unlabelled: found.len() - labelled,
        overall,
        strata,
        groups,
        min_group_labels: MIN_AUDIT_GROUP_LABELS,
        model_based,
        warning,
    })
}

/// A warning when the intervals of the audit and the model do not overlap.
fn disagreement(audit: &AuditInterval, model: &HeadlinePrevalence) -> Option<String> {
    let apart = audit.ci_high < model.ci_low || model.ci_high < audit.ci_low;
    apart.then(|| {
        format!(
        "The audited sample ({:.1}%, 95% CI {:.1}–{:.1}%) and the model-based estimate ({:.1}%, \
         {:.1}–{:.1}%, {}) disagree beyond their intervals: the listings have likely drifted \
         from what the model was validated on; trust the audit and consider retraining.",
        100.0 * audit.estimate, 100.0 * audit.ci_low, 100.0 * audit.ci_high,
        100.0 * model.estimate, 100.0 * model.ci_low, 100.0 * model.ci_high, model.method.label())
    })
}

fn headline(i: &AuditInterval) -> HeadlinePrevalence {
    HeadlinePrevalence {
        estimate: i.estimate,
        ci_low: i.ci_low,
        ci_high: i.ci_high,
        method: Method::Audit,
    }
}

/// Makes the audit the headline of `report`, overall and for every group it estimates; the
/// model-based estimators stay in each summary's `estimators`.
pub fn apply(report: &mut PrevalenceReport, audit: &AuditReport) {
    report.headline_method = Method::Audit;
    report.headline_method_reason = format!(
        "{} listings drawn at random within score strata were labelled by people; a \
         stratified estimate from them holds whatever the model gets wrong. Groups with at \
         least {} labelled listings get their own audited estimate; the others keep the \
         model-based one.",
        audit.labelled, audit.min_group_labels
    );
    set(&mut report.overall, &audit.overall);
    for group in &audit.groups {
        if let Some(g) = report
            .groups
            .iter_mut()
            .find(|g| g.by == group.by && g.value == group.value)
        {
            set(&mut g.summary, &group.interval);
        }
    }
}

fn set(summary: &mut PrevalenceSummary, interval: &AuditInterval) {
    summary.prevalence = Some(headline(interval));
    summary.too_small = false;
}
