//! A trained model: configuration, feature pipeline and network, and the one scoring path
//! (features → logit → calibrated probability → decision → reasons) every caller uses.

pub mod artifact;
pub mod network;

use crate::currency::CurrencyRates;
use crate::decision::{Decision, Thresholds};
use crate::features::{
    FeatureConfig, Features, Featurizer, TermKind, DENSE_FEATURES, LOG_RATIO_INDEX,
};
use crate::listing::{FieldLimits, Listing};
use crate::metrics::PlattCalibration;
use crate::prevalence::QuantificationStats;
use crate::reference::RefLevel;
use network::{Network, NetworkConfig};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub use artifact::ArtifactError;

/// Version of the on-disk model layout; loaders refuse any other.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model computation failed: {0}")]
    Compute(#[from] candle_core::Error),
}

/// The targets the thresholds were chosen for, kept so a reader knows what they mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdTargets {
    pub block_precision: f64,
    pub review_recall: f64,
}

/// Where the model came from: enough to tell two runs apart and to reproduce one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub train_file: String,
    pub train_sha256: String,
    pub valid_file: String,
    pub valid_sha256: String,
    pub train_rows: usize,
    pub calibration_rows: usize,
    pub valid_rows: usize,
    pub skipped_rows: usize,
    pub seed: u64,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub hyperparameters: serde_json::Value,
}

/// Everything in `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub format_version: u32,
    pub name: String,
    pub version: String,
    pub created_at: String,
    pub features: FeatureConfig,
    pub network: NetworkConfig,
    pub dense_features: Vec<String>,
    pub dense_scaler: network::DenseScaler,
    pub currency: CurrencyRates,
    pub limits: FieldLimits,
    pub thresholds: Thresholds,
    pub threshold_targets: ThresholdTargets,
    pub calibration: PlattCalibration,
    pub quantification: QuantificationStats,
    pub training: TrainingInfo,
    /// SHA-256 of `model.safetensors`, checked on load to catch corrupt copies.
    pub weights_sha256: String,
}

/// A listing's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    pub logit: f32,
    pub probability: f32,
    pub decision: Decision,
}

/// One reason behind a score, in words for a reviewer, with its push on the log-odds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    pub text: String,
    /// Contribution to the log-odds of "counterfeit": positive pushes towards block.
    pub weight: f32,
}

/// A trained model, ready to score.
#[derive(Debug, Clone)]
pub struct Model {
    pub config: ModelConfig,
    pub featurizer: Featurizer,
    pub network: Network,
}

impl std::fmt::Debug for Featurizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Featurizer")
            .field("config", self.config())
            .finish()
    }
}

/// Batches below this size are featurised on the calling thread: spawning costs more.
const PARALLEL_MIN: usize = 64;

impl Model {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn version(&self) -> &str {
        &self.config.version
    }

    pub fn thresholds(&self) -> Thresholds {
        self.config.thresholds
    }

    /// Replaces the decision thresholds (operators tune them to their review capacity).
    pub fn set_thresholds(&mut self, thresholds: Thresholds) {
        self.config.thresholds = thresholds;
    }

    pub fn rates(&self) -> &CurrencyRates {
        &self.config.currency
    }

    pub fn limits(&self) -> &FieldLimits {
        &self.config.limits
    }

    pub fn featurize(&self, listings: &[Listing]) -> Vec<Features> {
        if listings.len() < PARALLEL_MIN {
            listings
                .iter()
                .map(|l| self.featurizer.featurize(l))
                .collect()
        } else {
            listings
                .par_iter()
                .map(|l| self.featurizer.featurize(l))
                .collect()
        }
    }

    pub fn score_from_logit(&self, logit: f32) -> Score {
        let probability = self.config.calibration.apply(logit);
        Score {
            logit,
            probability,
            decision: self.config.thresholds.decide(probability),
        }
    }

    pub fn score_features(&self, features: &[&Features]) -> Result<Vec<Score>, ModelError> {
        let logits = self.network.logits(features)?;
        Ok(logits
            .into_iter()
            .map(|l| self.score_from_logit(l))
            .collect())
    }

    pub fn score(&self, listings: &[Listing]) -> Result<Vec<Score>, ModelError> {
        let features = self.featurize(listings);
        let refs: Vec<&Features> = features.iter().collect();
        self.score_features(&refs)
    }

    /// The `top` features that pushed this listing's score most, as reviewer-readable text.
    ///
    /// Attribution is gradient × input at the listing's own input, which is exact per linear
    /// piece of the ReLU network: each n-gram contributes its share of the mean embedding.
    pub fn explain(&self, listing: &Listing, top: usize) -> Vec<Reason> {
        let explained = self.featurizer.explain(listing);
        let width = self.network.config.input_dim();
        let dim = self.network.config.embedding_dim;
        let mut input = vec![0f32; width];
        Network::input_row(
            &self.network.table,
            &self.network.scaler,
            &explained.features,
            &mut input,
        );
        let gradient = self
            .network
            .mlp
            .input_gradient(ndarray::ArrayView1::from(&input));
        let n = explained.features.ids.len().max(1) as f32;

        // The same term can be emitted more than once (e.g. a repeated word): add them up.
        let mut by_term: HashMap<(TermKind, &str), f32> = HashMap::new();
        for (id, kind, term) in &explained.terms {
            let row = self.network.table.row(*id as usize);
            let push: f32 = row
                .iter()
                .zip(gradient.iter())
                .map(|(e, g)| e * g)
                .sum::<f32>()
                / n;
            // A word's character n-grams and the word itself are one reason for a reviewer.
            let kind = if *kind == TermKind::TitleCharGram {
                TermKind::TitleWord
            } else {
                *kind
            };
            *by_term.entry((kind, term.as_str())).or_default() += push;
        }
        // Rank first and word only the winners: formatting every term of every listing
        // would cost more than scoring it.
        enum Source<'a> {
            Term(TermKind, &'a str),
            Dense(usize),
        }
        let mut candidates: Vec<(f32, Source)> = by_term
            .into_iter()
            .map(|((kind, term), weight)| (weight, Source::Term(kind, term)))
            .collect();
        for (k, name) in DENSE_FEATURES.iter().enumerate() {
            let describable =
                k == LOG_RATIO_INDEX || describe_dense(name, explained.features.dense[k]).is_some();
            if describable {
                candidates.push((gradient[dim + k] * input[dim + k], Source::Dense(k)));
            }
        }
        candidates.retain(|(w, _)| w.is_finite() && w.abs() > 1e-4);
        candidates.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
        candidates
            .into_iter()
            .take(top)
            .map(|(weight, source)| Reason {
                text: match source {
                    Source::Term(kind, term) => describe_term(kind, term),
                    Source::Dense(k) if k == LOG_RATIO_INDEX => {
                        describe_price(&explained.price, &self.config.currency.base)
                    }
                    Source::Dense(k) => {
                        describe_dense(DENSE_FEATURES[k], explained.features.dense[k])
                            .unwrap_or_default()
                    }
                },
                weight,
            })
            .collect()
    }
}

fn describe_term(kind: TermKind, term: &str) -> String {
    match kind {
        TermKind::TitleWord => format!("title has the word \"{term}\""),
        TermKind::TitleBigram => format!("title has \"{term}\""),
        TermKind::TitleCharGram => format!("title has a word spelled like \"{term}\""),
        TermKind::DescriptionWord => format!("description has the word \"{term}\""),
        TermKind::DescriptionBigram => format!("description has \"{term}\""),
        TermKind::Brand => format!("brand is \"{term}\""),
        TermKind::Category => format!("category is \"{term}\""),
        TermKind::BrandCategory => format!("brand and category are \"{term}\""),
    }
}

fn describe_price(price: &crate::features::PriceContext, currency: &str) -> String {
    let Some(base) = price.base_price else {
        return "no price given".to_string();
    };
    let group = match price.level {
        RefLevel::Product => format!("\"{}\" in {} {}", price.phrase, price.brand, price.category),
        RefLevel::BrandCategory => format!("{} {}", price.brand, price.category),
        RefLevel::Brand => price.brand.clone(),
        RefLevel::Category => price.category.clone(),
        RefLevel::Global => "all listings".to_string(),
    };
    let ratio = base / price.usual_price.max(0.01);
    let share = if ratio < 0.995 {
        format!("{:.0}% of", (ratio * 100.0).max(0.0))
    } else if ratio <= 1.005 {
        "about".to_string()
    } else {
        format!("{ratio:.1}× ")
    };
    let share = share.trim_end();
    format!(
        "price is {share} the usual price for {group} (usual ≈ {:.2} {currency}, here {:.2} {currency})",
        price.usual_price, base
    )
}

fn describe_dense(name: &str, value: f32) -> Option<String> {
    let on = value > 0.5;
    match name {
        "has_price" if !on => Some("no price given".into()),
        "brand_missing" if on => Some("no brand selected".into()),
        "brand_in_title" if on => Some("the selected brand is named in the title".into()),
        "reference_global" if on => Some("brand and category are unfamiliar to the model".into()),
        _ => None,
    }
}
