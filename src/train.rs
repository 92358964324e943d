//! Fits a model on labelled listings: sparse Adagrad on the hashed embedding table, candle
//! AdamW on the MLP, early stopping on validation, Platt calibration on a held-out split,
//! thresholds for target precision and recall, and the evaluation that ships with the model.

use crate::brand::{BrandExample, BrandIndex, BrandLearning};
use crate::data::currency::CurrencyRates;
use crate::data::listing::{FieldLimits, Listing};
use crate::data::reader::{load_rows, LoadError, Row, RowError};
use crate::data::reviews::{merge, Merged, ReviewUse};
use crate::decision::{Decision, EvidenceRule, Thresholds};
use crate::eval::calibration::PlattCalibration;
use crate::eval::evaluation::{self, Evaluation};
use crate::eval::math::{logit, ratio};
use crate::eval::prevalence::QuantificationStats;
use crate::eval::ranking;
use crate::features::{
    standard_tokenizer, FeatureConfig, Features, Featurizer, KnownTermCounter, KnownTerms,
};
use crate::model::artifact::sha256_hex;
use crate::model::network::{DenseScaler, Network, NetworkConfig, TrainableMlp};
use crate::model::operating::{OperatingStats, Targets};
use crate::model::verdicts::ReviewVerdicts;
use crate::model::{Model, ModelConfig, ThresholdTargets, TrainingInfo, FORMAT_VERSION};
use crate::reference::{group_key, PriceKey, ReferencePrices, Vocabulary};
use crate::store::reviews::load_reviews;
use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use indicatif::ProgressBar;
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use xxhash_rust::xxh3::xxh3_64_with_seed;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Data(String),
    #[error("training computation failed: {0}")]
    Compute(#[from] candle_core::Error),
    #[error(transparent)]
    Feature(#[from] crate::features::FeatureError),
    #[error(transparent)]
    Reviews(#[from] crate::data::reviews::ReviewError),
}

/// Whole brands and categories kept out of training, to measure how the model treats
/// listings it has never seen anything like (most of a real marketplace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Holdout {
    pub categories: Vec<String>,
    /// Share of brands (chosen by a seeded hash of the brand name) kept out.
    pub brand_share: f64,
}

impl Holdout {
    fn is_active(&self) -> bool {
        !self.categories.is_empty() || self.brand_share > 0.0
    }

    fn holds_out(&self, listing: &Listing, seed: u64) -> bool {
        let category = group_key(&listing.category);
        if self.categories.iter().any(|c| group_key(c) == category) {
            return true;
        }
        let brand = group_key(&listing.brand);
        !brand.is_empty()
            && (xxh3_64_with_seed(brand.as_bytes(), seed) % 10_000) as f64 / 10_000.0
                < self.brand_share
    }
}

/// Everything a training run can be told; defaults are the shipped model's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    pub train: PathBuf,
    pub valid: PathBuf,
    pub name: String,
    pub seed: u64,
    pub max_epochs: usize,
    pub patience: usize,
    /// Smallest rise of validation ROC-AUC that counts as an improvement for early stopping.
    pub min_improvement: f64,
    pub batch_size: usize,
    pub embedding_learning_rate: f32,
    pub mlp_learning_rate: f64,
    pub mlp_weight_decay: f64,
    /// Share of n-gram ids dropped from each training example, so no single memorised
    /// phrase can carry a decision.
    pub token_dropout: f32,
    /// Share of training rows also seen with the brand (resp. category) blanked, so the
    /// model learns what a missing or unknown brand/category looks like.
    pub brand_dropout: f64,
    pub category_dropout: f64,
    /// Share of rows claiming a known brand also shown as if the brand were registered
    /// rather than learned: same price and brand features, none of the brand's own terms
    /// (see [`Featurizer::featurize_as_registered`]).
    pub registered_copies: f64,
    /// Share of genuine branded validation listings priced below the floor under which a
    /// registered brand's listing may be blocked (see [`EvidenceRule`]).
    pub registered_floor_quantile: f64,
    pub features: FeatureConfig,
    pub network: NetworkConfig,
    pub reference_min_count: usize,
    pub calibration_share: f64,
    pub block_precision: f64,
    pub review_recall: f64,
    /// Precision asked of reviews of listings without the evidence to be blocked.
    pub weak_review_precision: f64,
    pub max_bad_rows: usize,
    pub rates: CurrencyRates,
    pub limits: FieldLimits,
    pub holdout: Holdout,
    pub min_group_rows: usize,
    /// How target brands, aliases and accessory markers are learned.
    pub brand_learning: BrandLearning,
    /// Below this share of known terms a listing is never blocked.
    pub min_known_share: f32,
    /// Reviewers' decisions to learn from: a JSON Lines export or the store file itself
    /// (see [`crate::data::reviews`], [`crate::store::reviews::load_reviews`]).
    #[serde(default)]
    pub reviews: Option<PathBuf>,
    /// Times each reviewed listing is shown per epoch.
    #[serde(default = "default_review_weight")]
    pub review_weight: usize,
}

/// Default of `--review-weight`: see README, "Learning from reviews".
pub const DEFAULT_REVIEW_WEIGHT: usize = 4;

fn default_review_weight() -> usize {
    DEFAULT_REVIEW_WEIGHT
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            train: PathBuf::from("training/data/listings-train.csv.gz"),
            valid: PathBuf::from("training/data/listings-valid.csv.gz"),
            name: "default".into(),
            seed: 42,
            max_epochs: 8,
            patience: 2,
            min_improvement: 5e-4,
            batch_size: 128,
            embedding_learning_rate: 0.1,
            mlp_learning_rate: 2e-3,
            mlp_weight_decay: 1e-4,
            token_dropout: 0.1,
            brand_dropout: 0.2,
            category_dropout: 0.2,
            registered_copies: 0.3,
            registered_floor_quantile: 0.1,
            features: FeatureConfig::default(),
            network: NetworkConfig::default(),
            reference_min_count: 5,
            calibration_share: 0.1,
            block_precision: 0.95,
            review_recall: 0.90,
            weak_review_precision: 0.99,
            max_bad_rows: 0,
            rates: CurrencyRates::default(),
            limits: FieldLimits::default(),
            holdout: Holdout::default(),
            min_group_rows: 50,
            brand_learning: BrandLearning::default(),
            min_known_share: 0.5,
            reviews: None,
            review_weight: DEFAULT_REVIEW_WEIGHT,
        }
    }
}

/// One epoch's figures, for the progress display and `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_roc_auc: f64,
    pub rows_per_second: f64,
}

/// The served decisions on a labelled set: what blocks and flags catch, and how many
/// listings have the evidence to be blocked at all.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionFigures {
    pub listings: usize,
    /// Share of blocked listings that are counterfeit.
    pub block_precision: f64,
    /// Share of counterfeits blocked.
    pub block_recall: f64,
    /// Share of counterfeits reviewed or blocked.
    pub flagged_recall: f64,
    /// Share of genuine listings blocked, and reviewed or blocked.
    pub genuine_blocked_share: f64,
    pub genuine_flagged_share: f64,
    /// Share of counterfeits (and of genuine listings) with the evidence to be blocked.
    pub counterfeit_strong_share: f64,
    pub genuine_strong_share: f64,
}

impl DecisionFigures {
    pub fn new(decisions: &[Decision], labels: &[bool], strong: &[bool]) -> DecisionFigures {
        let count = |f: &dyn Fn(Decision, bool, bool) -> bool| {
            decisions
                .iter()
                .zip(labels)
                .zip(strong)
                .filter(|((&d, &y), &s)| f(d, y, s))
                .count()
        };
        let fakes = count(&|_, y, _| y);
        let genuine = count(&|_, y, _| !y);
        let blocked_fakes = count(&|d, y, _| y && d == Decision::Block);
        DecisionFigures {
            listings: decisions.len(),
            block_precision: ratio(blocked_fakes, count(&|d, _, _| d == Decision::Block)),
            block_recall: ratio(blocked_fakes, fakes),
            flagged_recall: ratio(count(&|d, y, _| y && d != Decision::Allow), fakes),
            genuine_blocked_share: ratio(count(&|d, y, _| !y && d == Decision::Block), genuine),
            genuine_flagged_share: ratio(count(&|d, y, _| !y && d != Decision::Allow), genuine),
            counterfeit_strong_share: ratio(count(&|_, y, s| y && s), fakes),
            genuine_strong_share: ratio(count(&|_, y, s| !y && s), genuine),
        }
    }
}

/// How the model treats genuine listings of brands and categories it never saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnfamiliarReport {
    pub holdout: Holdout,
    pub listings: usize,
    pub genuine: usize,
    pub genuine_blocked_share: f64,
    pub genuine_flagged_share: f64,
    pub counterfeit_recall_at_review: f64,
}

/// `metrics.json`: what the model achieved on validation and how training went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingMetrics {
    pub model: String,
    pub version: String,
    pub validation: Evaluation,
    /// The decisions as served (thresholds and the evidence rule) on validation.
    pub decisions: DecisionFigures,
    pub per_category: BTreeMap<String, Evaluation>,
    pub calibration_rows: usize,
    pub epochs: Vec<EpochReport>,
    pub best_epoch: usize,
    pub unfamiliar: Option<UnfamiliarReport>,
    pub skipped_rows: usize,
    /// Reviews learned from (`--reviews`): used, added, replaced, and their weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviews: Option<ReviewUse>,
    pub seconds: Timing,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timing {
    pub load: f64,
    pub featurize: f64,
    pub train: f64,
    pub total: f64,
}

/// What a run produced; the caller saves `model` (with `metrics` beside it).
pub struct TrainOutcome {
    pub model: Model,
    pub metrics: TrainingMetrics,
    pub skipped: Vec<RowError>,
    /// Validation probabilities and labels, for reports.
    pub valid_probabilities: Vec<f32>,
    pub valid_labels: Vec<bool>,
    pub valid_rows: Vec<Row>,
}

fn file_sha256(path: &Path) -> Result<String, TrainError> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(sha256_hex(&bytes))
}

/// Numerically stable mean binary cross-entropy on logits:
/// `max(x, 0) - x·y + log(1 + e^{-|x|})`, never a log of a sigmoid.
pub fn stable_bce(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    ((logits.relu()? - (logits * targets)?)? + softplus)?.mean_all()
}

/// Row-wise Adagrad for the embedding table (one accumulator per row, as in large
/// recommendation models): only rows a batch touches are updated, and one square root per
/// row instead of one per weight keeps the update cheap.
struct SparseAdagrad {
    accumulator: Vec<f32>,
    learning_rate: f32,
}

impl SparseAdagrad {
    fn new(rows: usize, learning_rate: f32) -> Self {
        SparseAdagrad {
            accumulator: vec![0.0; rows],
            learning_rate,
        }
    }

    fn update(&mut self, table: &mut Array2<f32>, id: u32, gradient: &[f32], mean_square: f32) {
        let (Some(row), Some(acc)) = (
            table.row_mut(id as usize).into_slice(),
            self.accumulator.get_mut(id as usize),
        ) else {
            return;
        };
        *acc += mean_square;
        let step = self.learning_rate / (acc.sqrt() + 1e-6);
        for (w, g) in row.iter_mut().zip(gradient) {
            *w -= step * g;
        }
    }
}

fn split_holdout(rows: Vec<Row>, share: f64, seed: u64) -> (Vec<Row>, Vec<Row>) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xca11_b8a7);
    let (mut fit, mut held) = (Vec::new(), Vec::new());
    for row in rows {
        if rng.random::<f64>() < share {
            held.push(row);
        } else {
            fit.push(row);
        }
    }
    (fit, held)
}

fn labels_of(rows: &[Row]) -> Vec<bool> {
    rows.iter().map(|r| r.label.unwrap_or(false)).collect()
}

/// Trains a model. `progress` shows rows/s, loss and validation ROC-AUC (hidden in tests).
pub fn train(options: &TrainOptions, progress: &ProgressBar) -> Result<TrainOutcome, TrainError> {
    let started = Instant::now();
    let loaded_train = load_rows(
        &options.train,
        &options.rates,
        &options.limits,
        true,
        options.max_bad_rows,
    )?;
    let remaining = options
        .max_bad_rows
        .saturating_sub(loaded_train.skipped.len());
    let loaded_valid = load_rows(
        &options.valid,
        &options.rates,
        &options.limits,
        true,
        remaining,
    )?;
    let mut skipped = loaded_train.skipped;
    skipped.extend(loaded_valid.skipped);
    let (merged, verdicts) = match &options.reviews {
        Some(path) => {
            let reviews = load_reviews(path, &options.rates, &options.limits)?;
            let verdicts = ReviewVerdicts::from_reviews(&reviews);
            let mut merged = merge(loaded_train.rows, reviews, options.review_weight);
            merged.usage.verdicts = verdicts.len();
            (merged, verdicts)
        }
        None => (
            Merged {
                rows: loaded_train.rows,
                ..Merged::default()
            },
            ReviewVerdicts::default(),
        ),
    };
    let load_seconds = started.elapsed().as_secs_f64();

    let (train_rows, excluded): (Vec<Row>, Vec<Row>) = if options.holdout.is_active() {
        merged
            .rows
            .into_iter()
            .partition(|r| !options.holdout.holds_out(&r.listing, options.seed))
    } else {
        (merged.rows, Vec::new())
    };
    let (valid_rows, unfamiliar_rows): (Vec<Row>, Vec<Row>) = if options.holdout.is_active() {
        loaded_valid
            .rows
            .into_iter()
            .partition(|r| !options.holdout.holds_out(&r.listing, options.seed))
    } else {
        (loaded_valid.rows, Vec::new())
    };
    if !excluded.is_empty() {
        tracing::info!(
            rows = excluded.len(),
            "training rows held out as unfamiliar brands/categories"
        );
    }
    let (mut fit_rows, calibration_rows) =
        split_holdout(train_rows, options.calibration_share, options.seed);
    // Reviewed listings are fitted on, never calibrated or validated on.
    fit_rows.extend(merged.reviewed);
    let review_use = options.reviews.is_some().then_some(merged.usage);
    for (what, rows) in [
        ("training", &fit_rows),
        ("calibration", &calibration_rows),
        ("validation", &valid_rows),
    ] {
        let positives = rows.iter().filter(|r| r.label == Some(true)).count();
        if positives == 0 || positives == rows.len() {
            return Err(TrainError::Data(format!(
                "the {what} set has {} rows of which {positives} counterfeit: both classes are needed",
                rows.len()
            )));
        }
    }

    // Usual prices come from the genuine listings the network trains on, nothing else.
    let featurizer = Featurizer::new(
        options.features.clone(),
        standard_tokenizer(),
        ReferencePrices::empty(),
    )?;
    let priced: Vec<(PriceKey, f64)> = fit_rows
        .par_iter()
        .filter(|r| r.label == Some(false))
        .filter_map(|r| {
            r.listing
                .price
                .as_ref()
                .map(|p| (featurizer.price_key(&r.listing), p.base_amount))
        })
        .collect();
    let vocabulary = Vocabulary::fit(
        fit_rows
            .iter()
            .map(|r| (r.listing.brand.as_str(), r.listing.category.as_str())),
        options.reference_min_count,
    );
    let featurizer = featurizer.with_references(
        ReferencePrices::fit(priced, options.reference_min_count).with_vocabulary(vocabulary),
    );
    let brands = learn_brands(&fit_rows, options.brand_learning);
    let featurizer = featurizer.with_brands(Arc::new(brands));
    let featurizer = match options.features.known_term_min_listings {
        0 => featurizer,
        min_listings => {
            let known = learn_known_terms(&featurizer, &fit_rows, min_listings);
            tracing::info!(terms = known.len(), min_listings, "learned the known terms");
            featurizer.with_known_terms(Some(Arc::new(known)))
        }
    };

    let featurize_started = Instant::now();
    let mut rng = StdRng::seed_from_u64(options.seed);
    // Augmented copies: the same listing with brand or category blanked, or its brand
    // known by registration only.
    let mut examples: Vec<(Listing, bool)> = Vec::with_capacity(fit_rows.len() * 11 / 10);
    let mut as_registered: Vec<(&Listing, bool)> = Vec::new();
    for row in &fit_rows {
        let label = row.label.unwrap_or(false);
        examples.push((row.listing.clone(), label));
        if rng.random::<f64>() < options.registered_copies {
            as_registered.push((&row.listing, label));
        }
        // The brand field blanked, where the text still names the brand: the model learns to
        // read a claimed brand from the title too. Listings whose brand only the field gives
        // are not copied: a blank field and no brand in the text would otherwise learn the
        // branded rate, and unfamiliar brands (which look just like that) would inherit it.
        if !row.listing.brand.is_empty() && rng.random::<f64>() < options.brand_dropout {
            let mut l = row.listing.clone();
            l.brand.clear();
            let still_claimed = featurizer
                .brands()
                .identify("", &l.title, &l.description)
                .is_some();
            if still_claimed {
                examples.push((l, label));
            }
        }
        if !row.listing.category.is_empty() && rng.random::<f64>() < options.category_dropout {
            let mut l = row.listing.clone();
            l.category.clear();
            examples.push((l, label));
        }
    }
    let mut train_features: Vec<Features> = examples
        .par_iter()
        .map(|(l, _)| featurizer.featurize(l))
        .collect();
    let mut train_labels: Vec<f32> = examples
        .iter()
        .map(|(_, y)| f32::from(u8::from(*y)))
        .collect();
    let registered: Vec<(Features, bool)> = as_registered
        .par_iter()
        .filter_map(|(l, y)| featurizer.featurize_as_registered(l).map(|f| (f, *y)))
        .collect();
    tracing::info!(
        copies = registered.len(),
        "rows also shown as registered brands"
    );
    for (features, label) in registered {
        train_features.push(features);
        train_labels.push(f32::from(u8::from(label)));
    }
    drop(examples);
    let featurize_rows = |rows: &[Row]| -> Vec<Features> {
        rows.par_iter()
            .map(|r| featurizer.featurize(&r.listing))
            .collect()
    };
    let valid_features = featurize_rows(&valid_rows);
    let calibration_features = featurize_rows(&calibration_rows);
    let unfamiliar_features = featurize_rows(&unfamiliar_rows);
    let featurize_seconds = featurize_started.elapsed().as_secs_f64();
    let valid_labels = labels_of(&valid_rows);

    let device = Device::Cpu;
    let net_config = options.network;
    let scaler = DenseScaler::fit(&train_features);
    let trainable = TrainableMlp::new(&net_config, options.seed, &device)?;
    let mut network = Network {
        config: net_config,
        table: init_table(
            options.features.buckets as usize,
            net_config.embedding_dim,
            options.seed,
        ),
        scaler,
        mlp: trainable.mlp.clone(),
    };
    let mut adagrad = SparseAdagrad::new(network.table.nrows(), options.embedding_learning_rate);
    let mut adam = AdamW::new(
        trainable.vars.clone(),
        ParamsAdamW {
            lr: options.mlp_learning_rate,
            weight_decay: options.mlp_weight_decay,
            ..Default::default()
        },
    )?;

    let train_started = Instant::now();
    let width = net_config.input_dim();
    let dim = net_config.embedding_dim;
    let mut order: Vec<usize> = (0..train_features.len()).collect();
    let mut epochs = Vec::new();
    let mut best: Option<(f64, usize, Array2<f32>, crate::model::network::Mlp)> = None;
    let mut inputs = vec![0f32; options.batch_size * width];
    let mut kept: Vec<Features> = (0..options.batch_size)
        .map(|_| Features::default())
        .collect();
    let mut since_best = 0;
    for epoch in 1..=options.max_epochs {
        let epoch_started = Instant::now();
        order.shuffle(&mut rng);
        progress.reset();
        progress.set_length(order.len() as u64);
        progress.set_prefix(format!("epoch {epoch}/{}", options.max_epochs));
        let mut loss_sum = 0f64;
        let mut batches = 0usize;
        for batch in order.chunks(options.batch_size) {
            let b = batch.len();
            for (slot, &index) in batch.iter().enumerate() {
                let source = &train_features[index];
                let target = &mut kept[slot];
                target.ids.clear();
                target.ids.extend(
                    source
                        .ids
                        .iter()
                        .copied()
                        .filter(|_| rng.random::<f32>() >= options.token_dropout),
                );
                if target.ids.is_empty() {
                    target.ids.extend_from_slice(&source.ids);
                }
                target.dense = source.dense;
                Network::input_row(
                    &network.table,
                    &network.scaler,
                    target,
                    &mut inputs[slot * width..(slot + 1) * width],
                );
            }
            let x = Var::from_slice(&inputs[..b * width], (b, width), &device)?;
            let y: Vec<f32> = batch.iter().map(|&i| train_labels[i]).collect();
            let y = Tensor::from_vec(y, b, &device)?;
            let logits = network.mlp.forward(x.as_tensor())?.flatten_all()?;
            let loss = stable_bce(&logits, &y)?;
            let grads = loss.backward()?;
            adam.step(&grads)?;
            let grad_x = grads
                .get(x.as_tensor())
                .ok_or_else(|| TrainError::Data("no gradient reached the embedding input".into()))?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let mut row_gradient = vec![0f32; dim];
            for slot in 0..b {
                let ids = &kept[slot].ids;
                let scale = 1.0 / ids.len().max(1) as f32;
                for (g, source) in row_gradient
                    .iter_mut()
                    .zip(&grad_x[slot * width..slot * width + dim])
                {
                    *g = source * scale;
                }
                let mean_square = row_gradient.iter().map(|g| g * g).sum::<f32>() / dim as f32;
                for &id in ids {
                    adagrad.update(&mut network.table, id, &row_gradient, mean_square);
                }
            }
            loss_sum += f64::from(loss.to_scalar::<f32>()?);
            batches += 1;
            if batches.is_multiple_of(64) {
                progress.inc((64 * options.batch_size) as u64);
                progress.set_message(format!("loss {:.4}", loss_sum / batches as f64));
            }
        }
        let train_loss = loss_sum / batches.max(1) as f64;
        let valid_logits = logits_of(&network, &valid_features)?;
        let auc = ranking::roc_auc(&valid_logits, &valid_labels);
        let report = EpochReport {
            epoch,
            train_loss,
            valid_roc_auc: auc,
            rows_per_second: order.len() as f64 / epoch_started.elapsed().as_secs_f64(),
        };
        progress.println(format!(
            "epoch {epoch}: loss {train_loss:.4}, validation ROC-AUC {auc:.4}, {:.0} rows/s",
            report.rows_per_second
        ));
        tracing::info!(
            epoch,
            loss = train_loss,
            valid_roc_auc = auc,
            rows_per_second = report.rows_per_second,
            "epoch finished"
        );
        epochs.push(report);
        let improved = best
            .as_ref()
            .is_none_or(|(best_auc, ..)| auc > *best_auc + options.min_improvement);
        if improved {
            best = Some((auc, epoch, network.table.clone(), trainable.snapshot()?));
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= options.patience {
                tracing::info!(
                    epoch,
                    "early stopping: validation ROC-AUC stopped improving"
                );
                break;
            }
        }
    }
    progress.finish_and_clear();
    let train_seconds = train_started.elapsed().as_secs_f64();
    let Some((_, best_epoch, table, mlp)) = best else {
        return Err(TrainError::Data("no epoch ran (max_epochs is 0)".into()));
    };
    network.table = table;
    network.mlp = mlp;
    // The artifact stores the table in f16: calibrate and pick thresholds on the weights
    // that ship, so a reloaded model reproduces the measured figures exactly.
    network
        .table
        .mapv_inplace(|w| half::f16::from_f32(w).to_f32());

    let calibration_logits = logits_of(&network, &calibration_features)?;
    let calibration = PlattCalibration::fit(&calibration_logits, &labels_of(&calibration_rows));
    let valid_probabilities: Vec<f32> = logits_of(&network, &valid_features)?
        .into_iter()
        .map(|l| calibration.apply(l))
        .collect();
    let Operating {
        stats: operating,
        thresholds,
        rule: evidence_rule,
        figures: decisions,
    } = choose_operating_point(
        options,
        &valid_probabilities,
        &valid_features,
        &valid_labels,
    )?;
    let validation = evaluation::evaluate(&valid_probabilities, &valid_labels, &thresholds);
    let categories: Vec<&str> = valid_rows
        .iter()
        .map(|r| r.listing.category.as_str())
        .collect();
    let per_category = evaluation::evaluate_by_group(
        &valid_probabilities,
        &valid_labels,
        &categories,
        &thresholds,
        options.min_group_rows,
    );
    let quantification =
        QuantificationStats::from_validation(&valid_probabilities, &valid_labels, &thresholds);

    let unfamiliar = if options.holdout.is_active() {
        let probabilities: Vec<f32> = logits_of(&network, &unfamiliar_features)?
            .into_iter()
            .map(|l| calibration.apply(l))
            .collect();
        let decisions: Vec<Decision> = probabilities
            .iter()
            .zip(&unfamiliar_features)
            .map(|(&p, f)| evidence_rule.decide(&thresholds, p, f.evidence()))
            .collect();
        Some(unfamiliar_report(
            &options.holdout,
            &unfamiliar_rows,
            &decisions,
        ))
    } else {
        None
    };

    let train_sha256 = file_sha256(&options.train)?;
    let created = chrono::Utc::now();
    let version = format!("{}-{}", created.format("%Y%m%d.%H%M%S"), &train_sha256[..8]);
    let config = ModelConfig {
        format_version: FORMAT_VERSION,
        name: options.name.clone(),
        version: version.clone(),
        created_at: created.to_rfc3339(),
        features: options.features.clone(),
        network: net_config,
        dense_features: crate::features::DENSE_FEATURES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        dense_scaler: network.scaler.clone(),
        currency: options.rates.clone(),
        limits: options.limits,
        thresholds,
        evidence_rule,
        threshold_targets: ThresholdTargets {
            block_precision: options.block_precision,
            review_recall: options.review_recall,
            weak_review_precision: options.weak_review_precision,
        },
        calibration,
        quantification,
        expected_prevalence: operating.prior,
        operating,
        training: TrainingInfo {
            train_file: options.train.display().to_string(),
            train_sha256,
            valid_file: options.valid.display().to_string(),
            valid_sha256: file_sha256(&options.valid)?,
            train_rows: fit_rows.len(),
            calibration_rows: calibration_rows.len(),
            valid_rows: valid_rows.len(),
            skipped_rows: skipped.len(),
            seed: options.seed,
            epochs_run: epochs.len(),
            best_epoch,
            hyperparameters: serde_json::json!({
                "batch_size": options.batch_size,
                "embedding_learning_rate": options.embedding_learning_rate,
                "mlp_learning_rate": options.mlp_learning_rate,
                "mlp_weight_decay": options.mlp_weight_decay,
                "token_dropout": options.token_dropout,
                "brand_dropout": options.brand_dropout,
                "category_dropout": options.category_dropout,
                "registered_copies": options.registered_copies,
                "registered_floor_quantile": options.registered_floor_quantile,
                "reference_min_count": options.reference_min_count,
                "calibration_share": options.calibration_share,
                "max_epochs": options.max_epochs,
                "patience": options.patience,
                "min_improvement": options.min_improvement,
                "holdout": options.holdout,
                "brand_learning": options.brand_learning,
                "min_known_share": options.min_known_share,
                "review_weight": review_use.map(|r| r.weight),
            }),
        },
        weights_sha256: String::new(),
        reviewed: verdicts,
    };
    let metrics = TrainingMetrics {
        model: options.name.clone(),
        version,
        validation,
        decisions,
        per_category,
        calibration_rows: calibration_rows.len(),
        epochs,
        best_epoch,
        unfamiliar,
        skipped_rows: skipped.len(),
        reviews: review_use,
        seconds: Timing {
            load: load_seconds,
            featurize: featurize_seconds,
            train: train_seconds,
            total: started.elapsed().as_secs_f64(),
        },
    };
    Ok(TrainOutcome {
        model: Model {
            config,
            featurizer,
            network,
        },
        metrics,
        skipped,
        valid_probabilities,
        valid_labels,
        valid_rows,
    })
}

/// The terms of at least `min_listings` training listings, counted on all cores (one
/// counter per core: each is 16 MiB).
fn learn_known_terms(featurizer: &Featurizer, rows: &[Row], min_listings: u8) -> KnownTerms {
    let chunk = rows.len().div_ceil(rayon::current_num_threads()).max(1);
    rows.par_chunks(chunk)
        .map(|chunk| {
            let mut counter = KnownTermCounter::default();
            for row in chunk {
                counter.add(featurizer, &row.listing);
            }
            counter
        })
        .reduce_with(KnownTermCounter::merge)
        .unwrap_or_default()
        .known(min_listings)
}

/// Target brands, aliases and accessory markers of the rows the network trains on.
fn learn_brands(rows: &[Row], learning: BrandLearning) -> BrandIndex {
    let examples: Vec<BrandExample> = rows
        .iter()
        .map(|r| BrandExample {
            brand: &r.listing.brand,
            title: &r.listing.title,
            counterfeit: r.label == Some(true),
        })
        .collect();
    let brands = BrandIndex::fit(&examples, learning);
    tracing::info!(
        brands = brands.len(),
        aliases = brands.aliases().count(),
        markers = brands.markers().count(),
        "learned the brands"
    );
    brands
}

/// The log price ratio (to the usual price of the brand) below which only a share `quantile`
/// of genuine validation listings that claim a known brand are priced: above it, a listing of
/// a registered brand is priced as genuine ones are. `None` without such listings.
fn registered_price_floor(features: &[Features], labels: &[bool], quantile: f64) -> Option<f32> {
    let mut ratios: Vec<f32> = features
        .iter()
        .zip(labels)
        .filter(|(f, &counterfeit)| !counterfeit && f.evidence().claims_known_brand)
        .filter_map(|(f, _)| f.brand_log_price_ratio())
        .collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f32::total_cmp);
    let index = ((ratios.len() as f64 * quantile) as usize).min(ratios.len() - 1);
    Some(ratios[index])
}

/// What the served decisions rest on, chosen on validation.
struct Operating {
    stats: OperatingStats,
    thresholds: Thresholds,
    rule: EvidenceRule,
    /// How those decisions do on validation.
    figures: DecisionFigures,
}

/// Validation histograms by class and evidence, the thresholds and evidence rule they give
/// for the options' targets at the validation share, and the decisions' figures.
fn choose_operating_point(
    options: &TrainOptions,
    probabilities: &[f32],
    features: &[Features],
    labels: &[bool],
) -> Result<Operating, TrainError> {
    let probe = EvidenceRule {
        min_known_share: options.min_known_share,
        weak_review: 1.0,
        registered_price_floor: registered_price_floor(
            features,
            labels,
            options.registered_floor_quantile,
        ),
    };
    let strong: Vec<bool> = features
        .iter()
        .map(|f| probe.is_strong(f.evidence()))
        .collect();
    let logits: Vec<f32> = probabilities
        .iter()
        .map(|&p| logit(f64::from(p).clamp(1e-9, 1.0 - 1e-9)) as f32)
        .collect();
    let stats = OperatingStats::from_validation(&logits, labels, &strong);
    let targets = Targets {
        block_precision: options.block_precision,
        review_recall: options.review_recall,
        weak_review_precision: options.weak_review_precision,
    };
    let point = stats
        .operating_point(targets, None)
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let (thresholds, rule) = (point.thresholds, point.evidence_rule(probe));
    if thresholds.review >= thresholds.block {
        tracing::warn!(
            review = thresholds.review,
            block = thresholds.block,
            "the recall target is already met at the block threshold: no review band"
        );
    }
    let decisions: Vec<Decision> = probabilities
        .iter()
        .zip(features)
        .map(|(&p, f)| rule.decide(&thresholds, p, f.evidence()))
        .collect();
    Ok(Operating {
        stats,
        thresholds,
        rule,
        figures: DecisionFigures::new(&decisions, labels, &strong),
    })
}

/// Small random rows (fastText-style uniform ±1/dim), seeded.
fn init_table(buckets: usize, dim: usize, seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7ab1e);
    let bound = 1.0 / dim as f32;
    Array2::from_shape_simple_fn((buckets, dim), || rng.random_range(-bound..bound))
}

fn logits_of(network: &Network, features: &[Features]) -> Result<Vec<f32>, TrainError> {
    let mut out = Vec::with_capacity(features.len());
    for chunk in features.chunks(4096) {
        let refs: Vec<&Features> = chunk.iter().collect();
        out.extend(network.logits(&refs)?);
    }
    Ok(out)
}

fn unfamiliar_report(holdout: &Holdout, rows: &[Row], decisions: &[Decision]) -> UnfamiliarReport {
    let labels = labels_of(rows);
    let figures = DecisionFigures::new(decisions, &labels, &vec![true; rows.len()]);
    UnfamiliarReport {
        holdout: holdout.clone(),
        listings: rows.len(),
        genuine: labels.iter().filter(|&&y| !y).count(),
        genuine_blocked_share: figures.genuine_blocked_share,
        genuine_flagged_share: figures.genuine_flagged_share,
        counterfeit_recall_at_review: figures.flagged_recall,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_bce_matches_the_textbook_formula_and_survives_extremes() {
        let device = Device::Cpu;
        let logits = Tensor::new(&[0.0f32, 2.0, -3.0], &device).unwrap();
        let targets = Tensor::new(&[1.0f32, 0.0, 0.0], &device).unwrap();
        let got = stable_bce(&logits, &targets)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let sig = |x: f32| 1.0 / (1.0 + (-x).exp());
        let expected = (-(sig(0.0)).ln() - (1.0 - sig(2.0)).ln() - (1.0 - sig(-3.0)).ln()) / 3.0;
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        let extreme = Tensor::new(&[200.0f32, -200.0], &device).unwrap();
        let wrong = Tensor::new(&[0.0f32, 1.0], &device).unwrap();
        let loss = stable_bce(&extreme, &wrong)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(loss.is_finite() && (loss - 200.0).abs() < 1e-3, "{loss}");
    }

    #[test]
    fn sparse_adagrad_touches_only_the_given_row() {
        let mut table = Array2::ones((4, 2));
        let mut opt = SparseAdagrad::new(4, 0.5);
        opt.update(&mut table, 2, &[1.0, -1.0], 1.0);
        assert!(table[[2, 0]] < 1.0 && table[[2, 1]] > 1.0);
        assert_eq!(table.row(0).to_vec(), vec![1.0, 1.0]);
        assert_eq!(table.row(3).to_vec(), vec![1.0, 1.0]);
        // Steps shrink as the row's squared gradients accumulate.
        let first = 1.0 - table[[2, 0]];
        opt.update(&mut table, 2, &[1.0, -1.0], 1.0);
        let second = 1.0 - first - table[[2, 0]];
        assert!(second < first, "{second} vs {first}");
    }

    #[test]
    fn holdout_is_deterministic_and_covers_listed_categories() {
        let h = Holdout {
            categories: vec!["Home".into()],
            brand_share: 0.5,
        };
        let mut l = Listing {
            id: String::new(),
            title: "x".into(),
            description: String::new(),
            price: None,
            brand: String::new(),
            category: "home".into(),
        };
        assert!(h.holds_out(&l, 1));
        l.category = "bags".into();
        let held: Vec<bool> = (0..200)
            .map(|i| {
                l.brand = format!("brand{i}");
                h.holds_out(&l, 1)
            })
            .collect();
        let share = held.iter().filter(|b| **b).count() as f64 / 200.0;
        assert!((0.35..0.65).contains(&share), "{share}");
        l.brand = "brand7".into();
        assert_eq!(h.holds_out(&l, 1), held[7]);
    }
}
