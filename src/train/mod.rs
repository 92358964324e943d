//! Fits a model on labelled listings, in steps a module each: [`data`] (load, merge reviews,
//! split), [`featurize`] (the featurizer learned from the fitting rows, augmented examples),
//! [`fit`] (the epoch loop: sparse Adagrad on the embedding table, AdamW on the MLP, early
//! stopping), [`finish`] (calibration, thresholds, evaluation, the model's configuration),
//! reported as [`metrics`]. [`options`] holds what a run can be told.

mod data;
mod featurize;
mod finish;
mod fit;
pub mod metrics;
pub mod options;

use crate::data::reader::{LoadError, Row, RowError};
use crate::model::artifact::sha256_hex;
use crate::model::Model;
use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use fit::stable_bce;
pub use metrics::{DecisionFigures, EpochReport, Timing, TrainingMetrics, UnfamiliarReport};
pub use options::{Holdout, TrainOptions, DEFAULT_REVIEW_WEIGHT};

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

/// Trains a model. `progress` shows rows/s, loss and validation ROC-AUC (hidden in tests).
pub fn train(options: &TrainOptions, progress: &ProgressBar) -> Result<TrainOutcome, TrainError> {
    let started = Instant::now();
    let data = data::TrainingData::load(options)?;
    let load_seconds = started.elapsed().as_secs_f64();

    let featurizer = featurize::fit_featurizer(options, &data.fit)?;
    let featurize_started = Instant::now();
    // One seeded stream draws the augmented copies, then the epochs' order and dropout.
    let mut rng = StdRng::seed_from_u64(options.seed);
    let examples = featurize::augmented_examples(options, &featurizer, &data.fit, &mut rng);
    let valid = featurize::featurize_rows(&featurizer, &data.valid);
    let calibration = featurize::featurize_rows(&featurizer, &data.calibration);
    let unfamiliar = featurize::featurize_rows(&featurizer, &data.unfamiliar);
    let featurize_seconds = featurize_started.elapsed().as_secs_f64();
    let valid_labels = data::labels_of(&data.valid);

    let train_started = Instant::now();
    let fitted = fit::fit_network(
        options,
        &examples,
        &valid,
        &valid_labels,
        &mut rng,
        progress,
    )?;
    drop(examples);
    let train_seconds = train_started.elapsed().as_secs_f64();

    let sets = finish::JudgedSets {
        calibration: &calibration,
        valid: &valid,
        valid_labels: &valid_labels,
        unfamiliar: &unfamiliar,
    };
    let judgement = finish::judge(options, &fitted.network, &data, &sets)?;
    let config = finish::model_config(options, &data, &fitted, &judgement)?;
    let metrics = TrainingMetrics {
        model: options.name.clone(),
        version: config.version.clone(),
        validation: judgement.validation,
        decisions: judgement.operating.figures,
        per_category: judgement.per_category,
        calibration_rows: data.calibration.len(),
        epochs: fitted.epochs,
        best_epoch: fitted.best_epoch,
        unfamiliar: judgement.unfamiliar,
        skipped_rows: data.skipped.len(),
        reviews: data.reviews,
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
            network: fitted.network,
        },
        metrics,
        skipped: data.skipped,
        valid_probabilities: judgement.valid_probabilities,
        valid_labels,
        valid_rows: data.valid,
    })
}
