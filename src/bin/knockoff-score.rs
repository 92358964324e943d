//! `knockoff-score`: scores a file of listings with a model directory, prints evaluation
//! metrics when the file is labelled and prevalence estimates, and writes optional reports.

// Featurisation makes many small allocations on every core: mimalloc keeps them cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use knockoff::batch::summary::RunSummary;
use knockoff::batch::{BatchOptions, ScoreSummary};
use knockoff::decision::Thresholds;
use knockoff::eval::audit::{self, file::AuditLabel, Population};
use knockoff::eval::evaluation::{evaluate, evaluate_by_group, MIN_EVAL_GROUP_ROWS};
use knockoff::eval::prevalence::{PrevalenceReport, PrevalenceSummary, MAX_GROUPS, MIN_GROUP_ROWS};
use knockoff::eval::summary::summary_table;
use knockoff::model::Model;
use knockoff::registry::RegisteredBrand;
use knockoff::report::{headline_sentence, write_report, ReportFormat, ReportInput};
use knockoff::serve::overrides::ThresholdOverrides;
use knockoff::store::Store;
use knockoff::telemetry::{self, LogFormat};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Score listings from a file (.csv, .csv.gz, .jsonl, .jsonl.gz, .parquet) into a CSV, JSONL
/// or Parquet file; or merge the summaries of several runs into one report.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Model directory.
    #[arg(long, env = "KNOCKOFF_MODEL", default_value = "models/default")]
    model: PathBuf,
    /// Listings to score.
    #[arg(long, env = "KNOCKOFF_INPUT", required_unless_present = "merge")]
    input: Option<PathBuf>,
    /// Output file (.csv, .jsonl or .parquet): `id, probability, decision`, the brand columns
    /// and `error`, one row per input row, in order.
    #[arg(long, env = "KNOCKOFF_OUTPUT", required_unless_present = "merge")]
    output: Option<PathBuf>,
    /// Write this run's summary (counts, score histograms, per-group tallies, the model's
    /// name and version) as JSON, for `--merge`.
    #[arg(long, env = "KNOCKOFF_SUMMARY_OUT")]
    summary_out: Option<PathBuf>,
    /// Merge summaries written by `--summary-out` (one per shard) into one report instead of
    /// scoring: the figures one run over all their rows would give.
    #[arg(long, env = "KNOCKOFF_MERGE", num_args = 1.., value_delimiter = ',',
          conflicts_with_all = ["input", "output", "audit_sample", "audit_labels"])]
    merge: Vec<PathBuf>,
    /// Groups per dimension (brand, category, currency) that get their own line in the
    /// prevalence summary; rows of further values are counted under `(other)`.
    #[arg(long, env = "KNOCKOFF_MAX_GROUPS", default_value_t = MAX_GROUPS as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_groups: u64,
    /// Prevalence report: `.html` (self-contained page) or `.json`.
    #[arg(long, env = "KNOCKOFF_REPORT")]
    report: Option<PathBuf>,
    /// Groups (brand, category, currency) with fewer listings get no prevalence estimate.
    #[arg(long, env = "KNOCKOFF_MIN_GROUP_ROWS", default_value_t = MIN_GROUP_ROWS)]
    min_group_rows: usize,
    /// Share of counterfeits expected among the listings scored, in (0, 1): probabilities are
    /// shifted to it and thresholds chosen so the model's precision and recall targets hold
    /// at it. Default: the model's validation share.
    #[arg(long, env = "KNOCKOFF_EXPECTED_PREVALENCE", value_parser = knockoff::decision::parse_prevalence)]
    expected_prevalence: Option<f64>,
    /// Override the model's review threshold (calibrated probability).
    #[arg(long, env = "KNOCKOFF_REVIEW_THRESHOLD")]
    review_threshold: Option<f32>,
    /// Override the model's block threshold (calibrated probability).
    #[arg(long, env = "KNOCKOFF_BLOCK_THRESHOLD")]
    block_threshold: Option<f32>,
    /// Currency rate overrides, CODE=VALUE in the model's base currency; repeatable.
    #[arg(
        long = "currency-rate",
        env = "KNOCKOFF_CURRENCY_RATES",
        value_delimiter = ','
    )]
    currency_rates: Vec<String>,
    /// Worker threads (default: all cores).
    #[arg(long, env = "KNOCKOFF_THREADS")]
    threads: Option<usize>,
    #[arg(long, env = "KNOCKOFF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// The embedded store whose brand registry scoring uses (created on first start).
    #[arg(long, env = "KNOCKOFF_STORE", default_value = knockoff::store::DEFAULT_STORE)]
    store: PathBuf,
    /// Draw a stratified random sample of this many scored listings for people to label,
    /// written to --audit-out (see docs/prevalence.md).
    #[arg(long, env = "KNOCKOFF_AUDIT_SAMPLE", requires = "audit_out",
          conflicts_with = "audit_labels", value_parser = clap::value_parser!(u64).range(1..))]
    audit_sample: Option<u64>,
    /// CSV file for the audit sample: the input's columns, then `probability`, `stratum`,
    /// `weight` and an empty `label` (0 genuine, 1 counterfeit) for reviewers to fill.
    #[arg(long, env = "KNOCKOFF_AUDIT_OUT", requires = "audit_sample")]
    audit_out: Option<PathBuf>,
    /// A labelled audit file drawn from this input: its estimate becomes the headline.
    #[arg(long, env = "KNOCKOFF_AUDIT_LABELS")]
    audit_labels: Option<PathBuf>,
    /// Seed of the audit draw: the same input, model and seed draw the same rows.
    #[arg(long, env = "KNOCKOFF_SEED", default_value_t = 42)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(args.log_format);
    knockoff::threads::set_worker_threads(args.threads);
    if let Some(report) = &args.report {
        // Refuse a bad report path before spending time on scoring.
        ReportFormat::from_path(report)?;
    }
    if !args.merge.is_empty() {
        return merge(&args);
    }
    let (Some(input_path), Some(output)) = (&args.input, &args.output) else {
        anyhow::bail!("--input and --output are required unless --merge is given");
    };
    knockoff::batch::check_output(output)?;
    let model = load_model(&args)?;
    let brands = load_registry(&args.store)?;
    let view = model.use_registry(&brands);
    if view.skipped_products() > 0 {
        tracing::warn!(
            skipped = view.skipped_products(),
            "registered products in currencies this model cannot convert are left out"
        );
    }
    // Refuse a malformed audit file before spending time on scoring.
    let audit_labels = match &args.audit_labels {
        Some(path) => Some(audit::file::read_labels(path)?),
        None => None,
    };
    tracing::info!(model = model.name(), version = model.version(), input = %input_path.display(), "scoring");

    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos} rows {per_sec} {elapsed}")
            .context("progress template")?,
    );
    let started = std::time::Instant::now();
    let options = BatchOptions {
        max_groups: usize::try_from(args.max_groups).context("--max-groups")?,
    };
    let summary =
        knockoff::batch::score_file_with(&model, input_path, output, &options, &progress)?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    let mut out = std::io::stdout().lock();
    write_run_summary(&mut out, &summary, seconds, output)?;
    write_evaluation(&mut out, &summary, &model.thresholds())?;
    // The report's evaluation comes from the run summary, as a merge of shards would.
    let mut input = summary.run.report_input(
        &format!("Counterfeit prevalence in {}", input_path.display()),
        args.min_group_rows,
    );
    run_audit(&args, &model, audit_labels.as_deref(), &mut input, &mut out)?;
    if let Some(path) = &args.summary_out {
        summary.run.write(path)?;
        writeln!(out, "wrote summary {}", path.display())?;
    }
    finish_report(&args, &input, &mut out)
}

/// `--merge`: adds up the summaries of several runs and reports on all their rows.
fn merge(args: &Args) -> anyhow::Result<()> {
    let total = RunSummary::merge_files(&args.merge)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "merged {} summaries of model {} version {}: {} of {} rows scored; {} rows could not be scored",
        args.merge.len(),
        total.model_name,
        total.model_version,
        total.scored,
        total.rows,
        total.errors
    )?;
    if let Some(binned) = total.labelled.evaluate() {
        // The same table as one labelled run prints, from the summaries' bins (no groups).
        writeln!(
            out,
            "{}",
            summary_table(&binned.evaluation, &Default::default())
        )?;
    }
    let input = total.report_input(
        &format!(
            "Counterfeit prevalence in {} merged parts",
            total.inputs.len()
        ),
        args.min_group_rows,
    );
    if let Some(path) = &args.summary_out {
        total.write(path)?;
        writeln!(out, "wrote summary {}", path.display())?;
    }
    finish_report(args, &input, &mut out)
}

/// Prints the headline and the per-group table, and writes the report when asked.
fn finish_report(args: &Args, input: &ReportInput, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "{}", headline_sentence(&input.prevalence))?;
    writeln!(out, "{}", prevalence_table(&input.prevalence))?;
    if let Some(report) = &args.report {
        write_report(report, input)?;
        writeln!(out, "wrote {}", report.display())?;
    }
    Ok(())
}

/// Draws the audit sample, or makes a labelled audit the report's headline, when asked.
fn run_audit(
    args: &Args,
    model: &Model,
    labels: Option<&[AuditLabel]>,
    input: &mut ReportInput,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if args.audit_sample.is_none() && labels.is_none() {
        return Ok(());
    }
    let (Some(input_path), Some(output)) = (&args.input, &args.output) else {
        return Ok(());
    };
    if let (Some(n), Some(path)) = (args.audit_sample, &args.audit_out) {
        let n = usize::try_from(n).context("--audit-sample")?;
        let draw = audit::draw(|| audit::scored_rows(output), n, args.seed)?;
        audit::file::write_sample(input_path, path, &draw.picks)?;
        writeln!(
            out,
            "drew {} of {} listings in {} strata for the audit: {} (fill its label column with 0 or 1)",
            draw.picks.len(),
            draw.strata.iter().map(|s| s.rows).sum::<usize>(),
            draw.strata.len(),
            path.display()
        )?;
    }
    if let (Some(labels), Some(path)) = (labels, &args.audit_labels) {
        let keep: HashSet<&str> = labels.iter().map(|l| l.id.as_str()).collect();
        let population =
            Population::load(input_path, output, model.rates(), model.limits(), &keep)?;
        let file = path.display().to_string();
        let report = audit::audit_report(labels, &population, &file, &input.prevalence)?;
        audit::combine::apply(&mut input.prevalence, &report);
        writeln!(
            out,
            "audit: {} labelled listings, {} not labelled yet",
            report.labelled, report.unlabelled
        )?;
        if let Some(warning) = &report.warning {
            tracing::warn!(%warning, "audit and model disagree");
            writeln!(out, "warning: {warning}")?;
        }
        input.audit = Some(report);
    }
    Ok(())
}

/// Loads the model with the operator's threshold and currency-rate overrides applied.
fn load_model(args: &Args) -> anyhow::Result<Model> {
    let mut model = Model::load(&args.model)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let overrides = ThresholdOverrides {
        review: args.review_threshold,
        block: args.block_threshold,
        expected_prevalence: args.expected_prevalence,
    };
    model = overrides.apply_to(model)?;
    if !args.currency_rates.is_empty() {
        model.config.currency = model
            .config
            .currency
            .clone()
            .with_overrides(&args.currency_rates)
            .context("--currency-rate")?;
    }
    Ok(model)
}

/// The registered brands in the store (read only; the file is created if it is new).
fn load_registry(path: &Path) -> anyhow::Result<Vec<RegisteredBrand>> {
    let brands = Store::open(path)?.brands()?;
    tracing::info!(store = %path.display(), brands = brands.len(), "brand registry loaded");
    Ok(brands)
}

/// How many rows were scored, how fast, and the first few that could not be.
fn write_run_summary(
    out: &mut impl Write,
    summary: &ScoreSummary,
    seconds: f64,
    output: &Path,
) -> std::io::Result<()> {
    writeln!(
        out,
        "scored {} of {} rows in {:.2}s ({:.0} rows/s); {} rows could not be scored (see the error column of {})",
        summary.scored(),
        summary.rows,
        seconds,
        summary.rows as f64 / seconds.max(1e-9),
        summary.error_count,
        output.display()
    )?;
    for error in &summary.errors {
        writeln!(out, "  {error}")?;
    }
    if summary.error_count > summary.errors.len() {
        writeln!(
            out,
            "  ... and {} more",
            summary.error_count - summary.errors.len()
        )?;
    }
    Ok(())
}

/// For a labelled file, the same metrics table as training prints; nothing otherwise.
fn write_evaluation(
    out: &mut impl Write,
    summary: &ScoreSummary,
    thresholds: &Thresholds,
) -> std::io::Result<()> {
    let labelled = summary.labelled();
    if labelled.labels.is_empty() {
        return Ok(());
    }
    let evaluation = evaluate(&labelled.probabilities, &labelled.labels, thresholds);
    let per_category = evaluate_by_group(
        &labelled.probabilities,
        &labelled.labels,
        summary.categories_of_labelled(),
        thresholds,
        MIN_EVAL_GROUP_ROWS,
    )
    .into_iter()
    .map(|(index, e)| (summary.category_name(index).to_owned(), e))
    .collect();
    writeln!(out, "{}", summary_table(&evaluation, &per_category))
}

/// The per-group figures as an aligned text table (groups without an estimate say why).
fn prevalence_table(report: &PrevalenceReport) -> String {
    let mut lines = vec![format!(
        "{:<10} {:<24} {:>8} {:>7} {:>7} {:>24}",
        "by", "value", "listings", "block", "review", "prevalence (95% CI)"
    )];
    let row = |by: &str, value: &str, s: &PrevalenceSummary| -> String {
        let estimate = match &s.prevalence {
            Some(p) => format!(
                "{:.1}% ({:.1}–{:.1}%)",
                100.0 * p.estimate,
                100.0 * p.ci_low,
                100.0 * p.ci_high
            ),
            None => "too few listings".to_string(),
        };
        let value: String = value.chars().take(24).collect();
        format!(
            "{:<10} {:<24} {:>8} {:>7} {:>7} {:>24}",
            by, value, s.listings, s.flagged.block, s.flagged.review, estimate
        )
    };
    lines.push(row("overall", "", &report.overall));
    let mut small = 0usize;
    for group in &report.groups {
        if group.summary.prevalence.is_none() {
            small += 1;
            continue;
        }
        lines.push(row(group.by.as_str(), &group.value, &group.summary));
    }
    if small > 0 {
        lines.push(format!(
            "{small} more groups have fewer than {} listings: no estimate (listed in the report)",
            report.min_group_rows
        ));
    }
    lines.join("\n")
}
