//! `knockoff-train`: fits a model on labelled listings and writes a model directory.

// Featurisation makes many small allocations on every core: mimalloc keeps them cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use knockoff::data::currency::CurrencyRates;
use knockoff::features::FeatureConfig;
use knockoff::model::artifact::Extras;
use knockoff::model::network::NetworkConfig;
use knockoff::telemetry::{self, LogFormat};
use knockoff::train::{train, Holdout, TrainOptions};
use std::io::Write;
use std::path::PathBuf;

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
    #[arg(long, env = "KNOCKOFF_EPOCHS", default_value_t = 8)]
    max_epochs: usize,
    /// Epochs without validation improvement before stopping.
    #[arg(long, env = "KNOCKOFF_PATIENCE", default_value_t = 2)]
    patience: usize,
    #[arg(long, env = "KNOCKOFF_BATCH_SIZE", default_value_t = 128)]
    batch_size: usize,
    /// log2 of the number of hash buckets.
    #[arg(long, env = "KNOCKOFF_HASH_BITS", default_value_t = 18)]
    hash_bits: u32,
    /// Terms (words, n-grams, brands) found in fewer training listings than this are
    /// left out of every listing's features; 0 keeps them all.
    #[arg(long, env = "KNOCKOFF_KNOWN_TERM_MIN_LISTINGS", default_value_t = FeatureConfig::default().known_term_min_listings)]
    known_term_min_listings: u8,
    #[arg(long, env = "KNOCKOFF_EMBEDDING_DIM", default_value_t = 32)]
    embedding_dim: usize,
    #[arg(long, env = "KNOCKOFF_HIDDEN", default_value_t = 64)]
    hidden: usize,
    #[arg(long, env = "KNOCKOFF_EMBEDDING_LR", default_value_t = 0.1)]
    embedding_lr: f32,
    #[arg(long, env = "KNOCKOFF_MLP_LR", default_value_t = 2e-3)]
    mlp_lr: f64,
    #[arg(long, env = "KNOCKOFF_TOKEN_DROPOUT", default_value_t = 0.1)]
    token_dropout: f32,
    /// Share of training rows also shown with the brand blanked.
    #[arg(long, env = "KNOCKOFF_BRAND_DROPOUT", default_value_t = 0.2)]
    brand_dropout: f64,
    /// Share of training rows also shown with the category blanked.
    #[arg(long, env = "KNOCKOFF_CATEGORY_DROPOUT", default_value_t = 0.2)]
    category_dropout: f64,
    /// Precision the `block` threshold is chosen for on validation.
    #[arg(long, env = "KNOCKOFF_BLOCK_PRECISION", default_value_t = 0.95)]
    block_precision: f64,
    /// Recall the `review` threshold is chosen for on validation.
    #[arg(long, env = "KNOCKOFF_REVIEW_RECALL", default_value_t = 0.90)]
    review_recall: f64,
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
    #[arg(long, env = "KNOCKOFF_HOLDOUT_BRAND_SHARE", default_value_t = 0.0)]
    holdout_brand_share: f64,
    #[arg(long, env = "KNOCKOFF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    knockoff::threads::set_worker_threads(None);
    telemetry::init(args.log_format);
    if !(0.0..=1.0).contains(&args.holdout_brand_share) {
        anyhow::bail!("--holdout-brand-share must be between 0 and 1");
    }
    if !(1..=30).contains(&args.hash_bits) {
        anyhow::bail!("--hash-bits must be between 1 and 30");
    }
    let rates = CurrencyRates::default()
        .with_overrides(&args.currency_rates)
        .context("--currency-rate")?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    });
    let options = TrainOptions {
        train: args.train.clone(),
        valid: args.valid.clone(),
        name,
        seed: args.seed,
        max_epochs: args.max_epochs,
        patience: args.patience.max(1),
        batch_size: args.batch_size.max(1),
        embedding_learning_rate: args.embedding_lr,
        mlp_learning_rate: args.mlp_lr,
        token_dropout: args.token_dropout.clamp(0.0, 0.9),
        brand_dropout: args.brand_dropout.clamp(0.0, 1.0),
        category_dropout: args.category_dropout.clamp(0.0, 1.0),
        features: FeatureConfig {
            buckets: 1 << args.hash_bits,
            known_term_min_listings: args.known_term_min_listings,
            ..FeatureConfig::default()
        },
        network: NetworkConfig {
            embedding_dim: args.embedding_dim.max(1),
            hidden: args.hidden.max(1),
        },
        block_precision: args.block_precision,
        review_recall: args.review_recall,
        max_bad_rows: args.max_bad_rows,
        rates,
        holdout: Holdout {
            categories: args.holdout_categories.clone(),
            brand_share: args.holdout_brand_share,
        },
        ..TrainOptions::default()
    };
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
    let report = knockoff::reporting::training_report(&outcome).context("rendering report.html")?;
    outcome.model.save(
        &args.out,
        &Extras {
            metrics: Some(&metrics),
            report_html: Some(&report),
        },
    )?;

    let summary = knockoff::metrics::summary_table(
        &outcome.metrics.validation,
        &outcome.metrics.per_category,
    );
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
