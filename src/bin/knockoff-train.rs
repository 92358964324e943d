//! `knockoff-train`: fits a model on labelled listings and writes a model directory.

// Featurisation makes many small allocations on every core: mimalloc keeps them cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use knockoff::data::currency::CurrencyRates;
use knockoff::eval::summary::summary_table;
use knockoff::features::FeatureConfig;
use knockoff::model::artifact::Extras;
use knockoff::model::network::NetworkConfig;
use knockoff::report::build::training_report;
use knockoff::telemetry::{self, LogFormat};
use knockoff::train::{train, Holdout, TrainOptions, DEFAULT_REVIEW_WEIGHT};
use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

/// Train a counterfeit-listing classifier and write it as a model directory.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Labelled training listings (.csv, .csv.gz, .jsonl, .jsonl.gz).
    #[arg(
        long,
        env = "KNOCKOFF_TRAIN",
        default_value = "training/data/listings-train.csv.gz"
    )]
    train: PathBuf,
    /// Labelled validation listings: early stopping, thresholds and the evaluation report.
    #[arg(
        long,
        env = "KNOCKOFF_VALID",
        default_value = "training/data/listings-valid.csv.gz"
    )]
    valid: PathBuf,
    /// Model directory to write (replaced atomically if it exists).
    #[arg(long, env = "KNOCKOFF_OUT")]
    out: PathBuf,
    /// Model name reported by the server; defaults to the directory name.
    #[arg(long, env = "KNOCKOFF_NAME")]
    name: Option<String>,
    #[arg(long, env = "KNOCKOFF_SEED", default_value_t = 42)]
    seed: u64,
    #[arg(long, env = "KNOCKOFF_EPOCHS", default_value_t = 8, value_parser = at_least_one)]
    max_epochs: usize,
    /// Epochs without validation improvement before stopping.
    #[arg(long, env = "KNOCKOFF_PATIENCE", default_value_t = 2, value_parser = at_least_one)]
    patience: usize,
    /// Smallest rise of validation ROC-AUC that counts as an improvement (smaller ones are
    /// noise on a validation file of this size).
    #[arg(long, env = "KNOCKOFF_MIN_IMPROVEMENT", default_value_t = 5e-4, value_parser = in_range(0.0, 0.1))]
    min_improvement: f64,
    #[arg(long, env = "KNOCKOFF_BATCH_SIZE", default_value_t = 128, value_parser = at_least_one)]
    batch_size: usize,
    /// log2 of the number of hash buckets.
    #[arg(long, env = "KNOCKOFF_HASH_BITS", default_value_t = 18, value_parser = in_range(1u32, 30))]
    hash_bits: u32,
    /// Terms (words, n-grams, brands) found in fewer training listings than this are
    /// left out of every listing's features; 0 keeps them all.
    #[arg(long, env = "KNOCKOFF_KNOWN_TERM_MIN_LISTINGS", default_value_t = FeatureConfig::default().known_term_min_listings)]
    known_term_min_listings: u8,
    #[arg(long, env = "KNOCKOFF_EMBEDDING_DIM", default_value_t = 32, value_parser = at_least_one)]
    embedding_dim: usize,
    #[arg(long, env = "KNOCKOFF_HIDDEN", default_value_t = 64, value_parser = at_least_one)]
    hidden: usize,
    #[arg(long, env = "KNOCKOFF_EMBEDDING_LR", default_value_t = 0.1)]
    embedding_lr: f32,
    #[arg(long, env = "KNOCKOFF_MLP_LR", default_value_t = 2e-3)]
    mlp_lr: f64,
    /// Share of n-gram ids dropped from each training example (at most 0.9).
    #[arg(long, env = "KNOCKOFF_TOKEN_DROPOUT", default_value_t = 0.1, value_parser = in_range(0.0f32, 0.9))]
    token_dropout: f32,
    /// Share of training rows also shown with the brand blanked.
    #[arg(long, env = "KNOCKOFF_BRAND_DROPOUT", default_value_t = 0.2, value_parser = in_range(0.0, 1.0))]
    brand_dropout: f64,
    /// Share of training rows also shown with the category blanked.
    #[arg(long, env = "KNOCKOFF_CATEGORY_DROPOUT", default_value_t = 0.2, value_parser = in_range(0.0, 1.0))]
    category_dropout: f64,
    /// Share of rows claiming a known brand also shown as if the brand were registered (its
    /// own terms unknown), so registered brands are judged by price and wording.
    #[arg(long, env = "KNOCKOFF_REGISTERED_COPIES", default_value_t = 0.3, value_parser = in_range(0.0, 1.0))]
    registered_copies: f64,
    /// Share of genuine branded validation listings priced below the floor under which a
    /// registered brand's listing may be blocked (at or above it, a registered brand's listing
    /// is priced as genuine ones are and is at most reviewed).
    #[arg(long, env = "KNOCKOFF_REGISTERED_FLOOR_QUANTILE", default_value_t = 0.1, value_parser = in_range(0.0, 1.0))]
    registered_floor_quantile: f64,
    /// Precision the `block` threshold is chosen for on validation.
    #[arg(long, env = "KNOCKOFF_BLOCK_PRECISION", default_value_t = 0.95)]
    block_precision: f64,
    /// Recall the `review` threshold is chosen for on validation.
    #[arg(long, env = "KNOCKOFF_REVIEW_RECALL", default_value_t = 0.90)]
    review_recall: f64,
    /// Precision asked of reviews of listings that cannot be blocked (no known brand claimed,
    /// or mostly unknown terms).
    #[arg(long, env = "KNOCKOFF_WEAK_REVIEW_PRECISION", default_value_t = 0.99, value_parser = in_range(0.0, 1.0))]
    weak_review_precision: f64,
    /// Below this share of terms known from training a listing is never blocked.
    #[arg(long, env = "KNOCKOFF_MIN_KNOWN_SHARE", default_value_t = 0.5, value_parser = in_range(0.0f32, 1.0))]
    min_known_share: f32,
    /// Bad rows to skip (and report) before training stops.
    #[arg(long, env = "KNOCKOFF_MAX_BAD_ROWS", default_value_t = 0)]
    max_bad_rows: usize,
    /// Currency rate overrides, CODE=VALUE in the base currency (USD); repeatable.
    #[arg(
        long = "currency-rate",
        env = "KNOCKOFF_CURRENCY_RATES",
        value_delimiter = ','
    )]
    currency_rates: Vec<String>,
    /// Categories kept out of training to measure behaviour on unfamiliar listings.
    #[arg(long, env = "KNOCKOFF_HOLDOUT_CATEGORIES", value_delimiter = ',')]
    holdout_categories: Vec<String>,
    /// Share of brands kept out of training for the same check.
    #[arg(long, env = "KNOCKOFF_HOLDOUT_BRAND_SHARE", default_value_t = 0.0, value_parser = in_range(0.0, 1.0))]
    holdout_brand_share: f64,
    /// Reviewers' decisions to learn from: a JSON Lines export of reviews
    /// (`GET /v1/reviews`) or knockoff-serve's store file itself (README, "Learning from
    /// reviews"). A review replaces the training row of its id.
    #[arg(long, env = "KNOCKOFF_REVIEWS")]
    reviews: Option<PathBuf>,
    /// Times each reviewed listing is shown per epoch (1 to 100).
    #[arg(long, env = "KNOCKOFF_REVIEW_WEIGHT", default_value_t = DEFAULT_REVIEW_WEIGHT, value_parser = in_range(1usize, 100))]
    review_weight: usize,
    #[arg(long, env = "KNOCKOFF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// A value parser for a number in `[low, high]`. Out-of-range values are refused, not
/// clamped: clap's error names the flag and this message the allowed range.
fn in_range<T>(low: T, high: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
    T::Err: Display,
{
    move |text: &str| {
        let value: T = text.trim().parse().map_err(|e| format!("{e}"))?;
        if low <= value && value <= high {
            Ok(value)
        } else {
            Err(format!("must be between {low} and {high}, got {value}"))
        }
    }
}

/// A value parser for counts that must be at least 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    let value: usize = text.trim().parse().map_err(|e| format!("{e}"))?;
    if value >= 1 {
        Ok(value)
    } else {
        Err(format!("must be at least 1, got {value}"))
    }
}

/// The training options the (already range-checked) flags ask for.
fn train_options(args: &Args) -> anyhow::Result<TrainOptions> {
    let rates = CurrencyRates::default()
        .with_overrides(&args.currency_rates)
        .context("--currency-rate")?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    });
    Ok(TrainOptions {
        train: args.train.clone(),
        valid: args.valid.clone(),
        name,
        seed: args.seed,
        max_epochs: args.max_epochs,
        patience: args.patience,
        min_improvement: args.min_improvement,
        batch_size: args.batch_size,
        embedding_learning_rate: args.embedding_lr,
        mlp_learning_rate: args.mlp_lr,
        token_dropout: args.token_dropout,
        brand_dropout: args.brand_dropout,
        category_dropout: args.category_dropout,
        registered_copies: args.registered_copies,
        registered_floor_quantile: args.registered_floor_quantile,
        features: FeatureConfig {
            buckets: 1 << args.hash_bits,
            known_term_min_listings: args.known_term_min_listings,
            ..FeatureConfig::default()
        },
        network: NetworkConfig {
            embedding_dim: args.embedding_dim,
            hidden: args.hidden,
        },
        block_precision: args.block_precision,
        review_recall: args.review_recall,
        weak_review_precision: args.weak_review_precision,
        min_known_share: args.min_known_share,
        max_bad_rows: args.max_bad_rows,
        rates,
        holdout: Holdout {
            categories: args.holdout_categories.clone(),
            brand_share: args.holdout_brand_share,
        },
        reviews: args.reviews.clone(),
        review_weight: args.review_weight,
        ..TrainOptions::default()
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    knockoff::threads::set_worker_threads(None);
    telemetry::init(args.log_format);
    let options = train_options(&args)?;
    tracing::info!(train = %options.train.display(), valid = %options.valid.display(), out = %args.out.display(), seed = options.seed, "training");

    let progress = ProgressBar::new(0);
    progress.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} rows {per_sec} {msg}")
            .context("progress template")?
            .progress_chars("=> "),
    );
    let mut outcome = train(&options, &progress)?;
    for error in &outcome.skipped {
        tracing::warn!(%error, "skipped");
    }
    let metrics = serde_json::to_value(&outcome.metrics)?;
    let report = training_report(&outcome).context("rendering report.html")?;
    outcome.model.save(
        &args.out,
        &Extras {
            metrics: Some(&metrics),
            report_html: Some(&report),
        },
    )?;

    let summary = summary_table(&outcome.metrics.validation, &outcome.metrics.per_category);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{summary}")?;
    if let Some(u) = &outcome.metrics.unfamiliar {
        writeln!(
            out,
            "unfamiliar brands/categories: {} listings, {} genuine: {:.2}% of genuine blocked, {:.2}% flagged; counterfeit recall at review {:.3}",
            u.listings,
            u.genuine,
            100.0 * u.genuine_blocked_share,
            100.0 * u.genuine_flagged_share,
            u.counterfeit_recall_at_review
        )?;
    }
    if let Some(r) = &outcome.metrics.reviews {
        writeln!(
            out,
            "reviews: {} used ({} added, {} replaced a training label), each shown {} times; \
             {} verdicts kept",
            r.used, r.added, r.replaced, r.weight, r.verdicts
        )?;
    }
    writeln!(
        out,
        "skipped rows: {}; thresholds: review {:.4}, block {:.4}; trained in {:.1}s ({} epochs, best {}); wrote {}",
        outcome.skipped.len(),
        outcome.model.config.thresholds.review,
        outcome.model.config.thresholds.block,
        outcome.metrics.seconds.total,
        outcome.metrics.epochs.len(),
        outcome.metrics.best_epoch,
        args.out.display()
    )?;
    Ok(())
}
