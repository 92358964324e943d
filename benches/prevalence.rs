//! Prevalence accuracy bench: how close the headline estimate and "share flagged" come to
//! the true counterfeit share of samples with a known mix, and how often the 95% interval
//! covers it.
//!
//! Run: `cargo bench --bench prevalence` (repetitions per target: `KNOCKOFF_BENCH_REPS`,
//! default 200; sample size: `KNOCKOFF_BENCH_SAMPLE`, default 2,000 listings;
//! `KNOCKOFF_BENCH_DUMP=<path>` also writes each validation row's probability and label).
//!
//! The shipped model (`models/default`) scores the labelled validation file once. For each
//! target share, seeded samples are drawn with replacement from its counterfeit and genuine
//! listings in that proportion, and every sample is estimated with
//! `prevalence::estimate` as a report would.
//!
//! Two protocols, because the validation file is also where the model's thresholds and
//! quantification statistics were measured:
//! - `full-validation`: the shipped statistics, samples from the whole validation file
//!   (in-sample, so optimistic);
//! - `disjoint-halves`: validation split 50/50 (seeded); statistics recomputed with
//!   `QuantificationStats::from_validation` on half A (the model's calibrated probabilities
//!   and shipped thresholds), samples drawn only from half B (an honest held-out check).
//!
//! And two sampling designs, because "the truth" can mean two things:
//! - `fixed`: exactly round(target × n) counterfeits; the truth is the sample's own share;
//! - `population`: each listing is counterfeit with probability `target`; the truth is the
//!   share in the population the sample came from (the sample's own share varies around it).
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs a small smoke version
//! on the first rows of the file so the test suite stays fast.

use std::path::{Path, PathBuf};
use std::time::Instant;

use knockoff::data::reader::RowReader;
use knockoff::decision::Decision;
use knockoff::eval::prevalence::{self, QuantificationStats};
use knockoff::model::Model;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

const TARGETS: [f64; 4] = [0.05, 0.10, 0.20, 0.40];
const DEFAULT_REPS: usize = 200;
const DEFAULT_SAMPLE: usize = 2_000;
const SEED: u64 = 20_261_129;
/// The bar for the headline: absolute error and interval coverage.
const BAR_ERROR_PP: f64 = 1.5;
const BAR_COVERAGE: f64 = 0.95;
/// Rows read per `score_chunk` call.
const CHUNK_ROWS: usize = 8192;
/// Categories smaller than this are skipped by the per-category check (the
/// `knockoff-score` default for `--min-group-rows`).
const MIN_GROUP_ROWS: usize = 100;
/// Smoke mode (no `--bench`): rows scored, repetitions, sample size.
const SMOKE_ROWS: usize = 3_000;
const SMOKE_REPS: usize = 3;
const SMOKE_SAMPLE: usize = 500;

/// One validation listing as the bench needs it.
#[derive(Debug, Clone, Copy)]
struct Scored {
    probability: f32,
    decision: Decision,
    label: bool,
    /// Index into the category names [`score_validation`] returns.
    category: usize,
}

/// Per-target results of one protocol.
#[derive(Debug, Clone)]
struct TargetResult {
    target: f64,
    /// Mean of the samples' true shares (equal to `target` up to rounding of counts).
    truth: f64,
    mean_estimate: f64,
    mae_pp: f64,
    max_err_pp: f64,
    within_bar: f64,
    coverage: f64,
    mean_width_pp: f64,
    flagged_mean: f64,
    flagged_mae_pp: f64,
    block_mean: f64,
    block_mae_pp: f64,
    /// Mean absolute error (pp) and coverage of every estimator, in `Method::ALL` order.
    estimators: Vec<(String, f64, f64)>,
}

/// How a sample's counterfeits are drawn, and so what "the truth" is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Design {
    /// Exactly `round(target × n)` counterfeits: the truth is the sample's own share.
    Fixed,
    /// Each listing counterfeit with probability `target` (the count is binomial): the
    /// truth is the share in the population the sample was drawn from.
    Population,
}

impl Design {
    fn as_str(self) -> &'static str {
        match self {
            Design::Fixed => "fixed",
            Design::Population => "population",
        }
    }
}

struct Protocol {
    name: &'static str,
    description: String,
    stats: QuantificationStats,
    method: String,
    positives: Vec<Scored>,
    negatives: Vec<Scored>,
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let reps = env_usize("KNOCKOFF_BENCH_REPS").unwrap_or(if bench_mode {
        DEFAULT_REPS
    } else {
        SMOKE_REPS
    });
    let sample_size = env_usize("KNOCKOFF_BENCH_SAMPLE").unwrap_or(if bench_mode {
        DEFAULT_SAMPLE
    } else {
        SMOKE_SAMPLE
    });
    assert!(reps > 0, "KNOCKOFF_BENCH_REPS must be at least 1");
    assert!(sample_size > 0, "KNOCKOFF_BENCH_SAMPLE must be at least 1");
    let row_limit = (!bench_mode).then_some(SMOKE_ROWS);

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model_dir = root.join("models/default");
    let valid = root.join("training/data/listings-valid.csv.gz");
    let model =
        Model::load(&model_dir).unwrap_or_else(|e| panic!("loading {}: {e}", model_dir.display()));

    let started = Instant::now();
    let (rows, categories, unscored) = score_validation(&model, &valid, row_limit);
    let scoring_seconds = started.elapsed().as_secs_f64();
    let positives = rows.iter().filter(|r| r.label).count();
    println!(
        "prevalence bench{}: model {} {}, {} validation rows scored in {:.1}s ({} positives, \
         {} could not be scored), {} samples of {} listings per target, seed {}, {} threads",
        if bench_mode {
            ""
        } else {
            " (smoke mode: run `cargo bench --bench prevalence`)"
        },
        model.name(),
        model.version(),
        rows.len(),
        scoring_seconds,
        positives,
        unscored,
        reps,
        sample_size,
        SEED,
        rayon::current_num_threads(),
    );

    if let Some(path) = std::env::var_os("KNOCKOFF_BENCH_DUMP") {
        // One line per scored validation row: probability (shortest exact f32), label.
        let lines: String = rows
            .iter()
            .map(|r| format!("{},{}\n", r.probability, u8::from(r.label)))
            .collect();
        std::fs::write(&path, lines)
            .unwrap_or_else(|e| panic!("{}: {e}", Path::new(&path).display()));
    }
    let thresholds = model.thresholds();
    let shipped = model.config.quantification.clone();
    if bench_mode {
        // The shipped stats should be exactly what this scoring gives on the whole file.
        let probs: Vec<f32> = rows.iter().map(|r| r.probability).collect();
        let labels: Vec<bool> = rows.iter().map(|r| r.label).collect();
        let again = QuantificationStats::from_validation(&probs, &labels, &thresholds);
        println!(
            "recomputed stats on the whole file match the shipped confusion counts: {} \
             (review {:?} vs {:?})",
            again.at_review == shipped.at_review && again.at_block == shipped.at_block,
            again.at_review,
            shipped.at_review
        );
    }
    let (pos, neg): (Vec<Scored>, Vec<Scored>) = rows.iter().partition(|r| r.label);
    let full = Protocol {
        name: "full-validation",
        description: format!(
            "shipped quantification stats ({} rows); samples from the whole validation file \
             (in-sample)",
            shipped.positives + shipped.negatives
        ),
        method: shipped.headline_method().0.as_str().to_string(),
        stats: shipped,
        positives: pos,
        negatives: neg,
    };

    let mut shuffled = rows.clone();
    shuffled.shuffle(&mut StdRng::seed_from_u64(SEED ^ 0xa5a5));
    let (half_a, half_b) = shuffled.split_at(shuffled.len() / 2);
    let probs_a: Vec<f32> = half_a.iter().map(|r| r.probability).collect();
    let labels_a: Vec<bool> = half_a.iter().map(|r| r.label).collect();
    let stats_a = QuantificationStats::from_validation(&probs_a, &labels_a, &thresholds);
    let (pos_b, neg_b): (Vec<Scored>, Vec<Scored>) = half_b.iter().partition(|r| r.label);
    let disjoint = Protocol {
        name: "disjoint-halves",
        description: format!(
            "stats recomputed on half A ({} rows, {} positives); samples from half B only \
             ({} rows, {} positives)",
            half_a.len(),
            stats_a.positives,
            half_b.len(),
            pos_b.len()
        ),
        method: stats_a.headline_method().0.as_str().to_string(),
        stats: stats_a,
        positives: pos_b,
        negatives: neg_b,
    };

    let mut table = vec![
        "| protocol | design | target | headline | mean estimate | MAE (pp) | max abs err (pp) \
         | within ±1.5 pp | 95% CI coverage | mean CI width (pp) | flagged (review+block) \
         mean / MAE (pp) | block only mean / MAE (pp) |"
            .to_string(),
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|".to_string(),
    ];
    let mut estimator_table = vec![
        "| protocol | design | target | cc MAE / cov | pcc MAE / cov | acc MAE / cov \
         | pacc MAE / cov | em MAE / cov |"
            .to_string(),
        "|---|---|---:|---:|---:|---:|---:|---:|".to_string(),
    ];
    let mut runs_json = Vec::new();
    for protocol in [&full, &disjoint] {
        println!(
            "{}: {} (headline method {})",
            protocol.name, protocol.description, protocol.method
        );
        for design in [Design::Fixed, Design::Population] {
            let started = Instant::now();
            let results: Vec<TargetResult> = TARGETS
                .iter()
                .enumerate()
                .map(|(i, &target)| {
                    let seed = SEED + 16 * i as u64 + design as u64;
                    run_target(protocol, design, target, reps, sample_size, seed)
                })
                .collect();
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "  {} design: {:.1}s for {} estimates",
                design.as_str(),
                seconds,
                reps * TARGETS.len()
            );
            for r in &results {
                table.push(format!(
                    "| {} | {} | {:.0}% | {} | {:.2}% | {:.2} | {:.2} | {:.1}% | {:.1}% | {:.2} | \
                     {:.2}% / {:.2} | {:.2}% / {:.2} |",
                    protocol.name,
                    design.as_str(),
                    100.0 * r.target,
                    protocol.method,
                    100.0 * r.mean_estimate,
                    r.mae_pp,
                    r.max_err_pp,
                    100.0 * r.within_bar,
                    100.0 * r.coverage,
                    r.mean_width_pp,
                    100.0 * r.flagged_mean,
                    r.flagged_mae_pp,
                    100.0 * r.block_mean,
                    r.block_mae_pp,
                ));
                let cells: Vec<String> = r
                    .estimators
                    .iter()
                    .map(|(_, mae, cov)| format!("{mae:.2} / {:.0}%", 100.0 * cov))
                    .collect();
                estimator_table.push(format!(
                    "| {} | {} | {:.0}% | {} |",
                    protocol.name,
                    design.as_str(),
                    100.0 * r.target,
                    cells.join(" | ")
                ));
            }
            runs_json.push(run_json(protocol, design, &results, seconds));
        }
    }

    println!();
    println!(
        "Headline and share flagged (fixed: truth = the sample's own share; population: \
         truth = the share of the population sampled, the count of counterfeits is binomial):"
    );
    println!();
    println!("{}", table.join("\n"));
    println!();
    println!("Every estimator (MAE in pp / 95% CI coverage):");
    println!();
    println!("{}", estimator_table.join("\n"));
    println!();
    println!(
        "bar: headline MAE <= {BAR_ERROR_PP} pp and coverage >= {:.0}%",
        100.0 * BAR_COVERAGE
    );
    for run in &runs_json {
        let misses: Vec<String> = run["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["meets_bar"] != true)
            .map(|t| format!("{:.0}%", 100.0 * t["target"].as_f64().unwrap_or(f64::NAN)))
            .collect();
        println!(
            "  {} / {}: {}",
            run["protocol"].as_str().unwrap_or("?"),
            run["design"].as_str().unwrap_or("?"),
            if misses.is_empty() {
                "meets the bar at every target".to_string()
            } else {
                format!("misses the bar at {}", misses.join(", "))
            }
        );
    }
    println!();
    println!(
        "Per-category check: every category with at least {MIN_GROUP_ROWS} listings is one \
         real sample whose listings differ from validation's in more than the counterfeit \
         share (the report's per-group figures; label shift holds only approximately):"
    );
    println!();
    let mut group_table = vec![
        "| protocol | category | listings | labelled share | headline (95% CI) | covered \
         | share flagged | acc | pacc |"
            .to_string(),
        "|---|---|---:|---:|---:|---|---:|---:|---:|".to_string(),
    ];
    let mut groups_json = Vec::new();
    let mut group_summaries = Vec::new();
    for (protocol, rows) in [(&full, &rows[..]), (&disjoint, half_b)] {
        let checks = group_check(rows, &protocol.stats, categories.len());
        for g in &checks {
            group_table.push(format!(
                "| {} | {} | {} | {:.1}% | {:.1}% ({:.1}–{:.1}%) | {} | {:.1}% | {:.1}% | {:.1}% |",
                protocol.name,
                categories[g.category],
                g.listings,
                100.0 * g.truth,
                100.0 * g.estimate,
                100.0 * g.ci_low,
                100.0 * g.ci_high,
                if g.covered() { "yes" } else { "**no**" },
                100.0 * g.flagged,
                100.0 * g.acc,
                100.0 * g.pacc,
            ));
        }
        let n = checks.len().max(1) as f64;
        let mae = |f: fn(&GroupCheck) -> f64| {
            100.0 * checks.iter().map(|g| (f(g) - g.truth).abs()).sum::<f64>() / n
        };
        let covered = checks.iter().filter(|g| g.covered()).count();
        let summary = json!({
            "protocol": protocol.name,
            "groups": checks.len(),
            "covered": covered,
            "headline_mae_pp": mae(|g| g.estimate),
            "flagged_mae_pp": mae(|g| g.flagged),
            "acc_mae_pp": mae(|g| g.acc),
            "pacc_mae_pp": mae(|g| g.pacc),
        });
        group_summaries.push(format!(
            "  {}: interval covers the labelled share in {covered} of {} categories; MAE \
             (pp) headline {:.2}, share flagged {:.2}, acc {:.2}, pacc {:.2}",
            protocol.name,
            checks.len(),
            mae(|g| g.estimate),
            mae(|g| g.flagged),
            mae(|g| g.acc),
            mae(|g| g.pacc),
        ));
        groups_json.push(json!({
            "summary": summary,
            "categories": checks
                .iter()
                .map(|g| json!({
                    "category": categories[g.category],
                    "listings": g.listings,
                    "truth": g.truth,
                    "estimate": g.estimate,
                    "ci_low": g.ci_low,
                    "ci_high": g.ci_high,
                    "flagged": g.flagged,
                    "acc": g.acc,
                    "pacc": g.pacc,
                }))
                .collect::<Vec<_>>(),
        }));
    }
    println!("{}", group_table.join("\n"));
    println!();
    println!("{}", group_summaries.join("\n"));

    let summary = json!({
        "bench": "prevalence",
        "mode": if bench_mode { "bench" } else { "smoke" },
        "model": model.name(),
        "model_version": model.version(),
        "validation_rows": rows.len(),
        "unscored_rows": unscored,
        "reps": reps,
        "sample_size": sample_size,
        "seed": SEED,
        "threads": rayon::current_num_threads(),
        "bar": {"max_error_pp": BAR_ERROR_PP, "min_coverage": BAR_COVERAGE},
        "runs": runs_json,
        "category_checks": groups_json,
    });
    println!();
    println!("{summary}");
}

fn env_usize(name: &str) -> Option<usize> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={value:?}: {e}")),
    )
}

/// Scores the labelled file (all of it, or its first `limit` rows) with the model, as
/// `knockoff-score` does; returns the scored labelled rows, the category names their
/// `category` indexes, and how many rows failed.
fn score_validation(
    model: &Model,
    path: &Path,
    limit: Option<usize>,
) -> (Vec<Scored>, Vec<String>, usize) {
    let reader = RowReader::open(path).unwrap_or_else(|e| panic!("{e}"));
    let file = path.display().to_string();
    let mut items = reader.take(limit.unwrap_or(usize::MAX)).peekable();
    let mut rows = Vec::new();
    let mut categories: Vec<String> = Vec::new();
    let mut failed = 0usize;
    while items.peek().is_some() {
        let chunk: Vec<_> = items.by_ref().take(CHUNK_ROWS).collect();
        let outcomes = knockoff::batch::score_chunk(model, &file, chunk)
            .unwrap_or_else(|e| panic!("scoring {file}: {e}"));
        for outcome in outcomes {
            match outcome.scored {
                Some(row) => match row.label {
                    Some(label) => {
                        let name = row.category.as_deref().unwrap_or(prevalence::NONE_GROUP);
                        let category = match categories.iter().position(|c| c == name) {
                            Some(i) => i,
                            None => {
                                categories.push(name.to_string());
                                categories.len() - 1
                            }
                        };
                        rows.push(Scored {
                            probability: row.probability,
                            decision: row.decision,
                            label,
                            category,
                        })
                    }
                    None => failed += 1,
                },
                None => failed += 1,
            }
        }
    }
    (rows, categories, failed)
}

fn run_target(
    protocol: &Protocol,
    design: Design,
    target: f64,
    reps: usize,
    sample_size: usize,
    seed: u64,
) -> TargetResult {
    assert!(
        !protocol.positives.is_empty() && !protocol.negatives.is_empty(),
        "{}: need both counterfeit and genuine listings to sample from",
        protocol.name
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let k = (target * sample_size as f64).round() as usize;
    let truth = match design {
        Design::Fixed => k as f64 / sample_size as f64,
        Design::Population => target,
    };
    let mut probs = Vec::with_capacity(sample_size);
    let (mut sum_est, mut sum_err, mut max_err, mut within, mut covered, mut sum_width) =
        (0.0, 0.0, 0.0f64, 0usize, 0usize, 0.0);
    let (mut sum_flagged, mut sum_flagged_err, mut sum_block, mut sum_block_err) =
        (0.0, 0.0, 0.0, 0.0);
    let mut per_method = vec![(0.0f64, 0usize); prevalence::Method::ALL.len()];
    for _ in 0..reps {
        probs.clear();
        let (mut flagged, mut blocked) = (0usize, 0usize);
        for i in 0..sample_size {
            let positive = match design {
                Design::Fixed => i < k,
                Design::Population => rng.random_bool(target),
            };
            let pool = if positive {
                &protocol.positives
            } else {
                &protocol.negatives
            };
            let row = pool[rng.random_range(0..pool.len())];
            probs.push(row.probability);
            flagged += usize::from(row.decision != Decision::Allow);
            blocked += usize::from(row.decision == Decision::Block);
        }
        let e = prevalence::estimate(&probs, &protocol.stats);
        let err = (e.estimate - truth).abs();
        sum_est += e.estimate;
        sum_err += err;
        max_err = max_err.max(err);
        within += usize::from(err <= BAR_ERROR_PP / 100.0 + 1e-12);
        covered += usize::from(e.ci_low <= truth && truth <= e.ci_high);
        sum_width += e.ci_high - e.ci_low;
        let flagged_share = flagged as f64 / sample_size as f64;
        let block_share = blocked as f64 / sample_size as f64;
        sum_flagged += flagged_share;
        sum_flagged_err += (flagged_share - truth).abs();
        sum_block += block_share;
        sum_block_err += (block_share - truth).abs();
        for (slot, method) in per_method.iter_mut().zip(prevalence::Method::ALL) {
            let Some(i) = e.estimators.get(method) else {
                continue;
            };
            slot.0 += (i.estimate - truth).abs();
            slot.1 += usize::from(i.ci_low <= truth && truth <= i.ci_high);
        }
    }
    let n = reps as f64;
    TargetResult {
        target,
        truth,
        mean_estimate: sum_est / n,
        mae_pp: 100.0 * sum_err / n,
        max_err_pp: 100.0 * max_err,
        within_bar: within as f64 / n,
        coverage: covered as f64 / n,
        mean_width_pp: 100.0 * sum_width / n,
        flagged_mean: sum_flagged / n,
        flagged_mae_pp: 100.0 * sum_flagged_err / n,
        block_mean: sum_block / n,
        block_mae_pp: 100.0 * sum_block_err / n,
        estimators: prevalence::Method::ALL
            .iter()
            .zip(per_method)
            .map(|(m, (err, cov))| (m.as_str().to_string(), 100.0 * err / n, cov as f64 / n))
            .collect(),
    }
}

fn run_json(
    protocol: &Protocol,
    design: Design,
    results: &[TargetResult],
    seconds: f64,
) -> serde_json::Value {
    let targets: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let estimators: serde_json::Map<String, serde_json::Value> = r
                .estimators
                .iter()
                .map(|(name, mae, cov)| (name.clone(), json!({"mae_pp": mae, "coverage": cov})))
                .collect();
            json!({
                "target": r.target,
                "truth": r.truth,
                "mean_estimate": r.mean_estimate,
                "mae_pp": r.mae_pp,
                "max_abs_error_pp": r.max_err_pp,
                "share_within_1_5pp": r.within_bar,
                "coverage": r.coverage,
                "mean_ci_width_pp": r.mean_width_pp,
                "flagged_mean": r.flagged_mean,
                "flagged_mae_pp": r.flagged_mae_pp,
                "block_mean": r.block_mean,
                "block_mae_pp": r.block_mae_pp,
                "meets_bar": r.mae_pp <= BAR_ERROR_PP && r.coverage >= BAR_COVERAGE,
                "estimators": estimators,
            })
        })
        .collect();
    json!({
        "protocol": protocol.name,
        "design": design.as_str(),
        "description": protocol.description,
        "headline_method": protocol.method,
        "stats_positives": protocol.stats.positives,
        "stats_negatives": protocol.stats.negatives,
        "pool_positives": protocol.positives.len(),
        "pool_negatives": protocol.negatives.len(),
        "seconds": seconds,
        "targets": targets,
    })
}

/// One category of a labelled set, estimated as a report would estimate it.
struct GroupCheck {
    category: usize,
    listings: usize,
    truth: f64,
    estimate: f64,
    ci_low: f64,
    ci_high: f64,
    flagged: f64,
    acc: f64,
    pacc: f64,
}

impl GroupCheck {
    fn covered(&self) -> bool {
        self.ci_low <= self.truth && self.truth <= self.ci_high
    }
}

/// Estimates every category of `rows` with at least [`MIN_GROUP_ROWS`] listings, largest
/// first.
fn group_check(rows: &[Scored], stats: &QuantificationStats, categories: usize) -> Vec<GroupCheck> {
    let mut members: Vec<Vec<&Scored>> = vec![Vec::new(); categories];
    for row in rows {
        members[row.category].push(row);
    }
    let mut checks: Vec<GroupCheck> = members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.len() >= MIN_GROUP_ROWS)
        .map(|(category, m)| {
            let probs: Vec<f32> = m.iter().map(|r| r.probability).collect();
            let n = m.len() as f64;
            let e = prevalence::estimate(&probs, stats);
            GroupCheck {
                category,
                listings: m.len(),
                truth: m.iter().filter(|r| r.label).count() as f64 / n,
                estimate: e.estimate,
                ci_low: e.ci_low,
                ci_high: e.ci_high,
                flagged: m.iter().filter(|r| r.decision != Decision::Allow).count() as f64 / n,
                acc: e.estimators.acc.estimate,
                pacc: e.estimators.pacc.estimate,
            }
        })
        .collect();
    checks.sort_by(|a, b| {
        b.listings
            .cmp(&a.listings)
            .then(a.category.cmp(&b.category))
    });
    checks
}
