//! A trained model: configuration, feature pipeline and network, and the one scoring path
//! (features → logit → calibrated probability → decision → reasons) every caller uses.

pub mod artifact;
mod load;
pub mod network;
pub mod operating;
mod reasons;
mod swap;
pub mod verdicts;

use crate::data::currency::CurrencyRates;
use crate::data::listing::{FieldLimits, Listing};
use crate::decision::{Decision, Evidence, EvidenceRule, Thresholds};
use crate::eval::calibration::PlattCalibration;
use crate::eval::prevalence::QuantificationStats;
use crate::features::{ExplainedFeatures, FeatureConfig, Features, Featurizer};
use crate::registry::{RegisteredBrand, RegistryView};
use network::{Network, NetworkConfig};
use operating::{OperatingError, OperatingStats, Targets};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use verdicts::ReviewVerdicts;

pub use artifact::ArtifactError;

/// Version of the on-disk model layout; loaders refuse any other. 2: the known-terms
/// bitset in the weights file. 3: brand identification (`brands.json`, two dense features) and
/// the evidence rule.
pub const FORMAT_VERSION: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model computation failed: {0}")]
    Compute(#[from] candle_core::Error),
    #[error("the network gave {got} scores for {expected} listings")]
    ScoreCount { expected: usize, got: usize },
}

/// The targets the thresholds were chosen for, kept so a reader knows what they mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdTargets {
    pub block_precision: f64,
    pub review_recall: f64,
    pub weak_review_precision: f64,
}

impl From<ThresholdTargets> for Targets {
    fn from(t: ThresholdTargets) -> Targets {
        Targets {
            block_precision: t.block_precision,
            review_recall: t.review_recall,
            weak_review_precision: t.weak_review_precision,
        }
    }
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
    /// What a listing needs beyond its probability to be blocked.
    pub evidence_rule: EvidenceRule,
    pub threshold_targets: ThresholdTargets,
    pub calibration: PlattCalibration,
    pub quantification: QuantificationStats,
    /// Validation score histograms the thresholds are chosen from, at any prevalence.
    pub operating: OperatingStats,
    /// The counterfeit share thresholds and probabilities refer to: the validation share
    /// unless the deployment set another (see [`Model::with_expected_prevalence`]).
    pub expected_prevalence: f64,
    pub training: TrainingInfo,
    /// SHA-256 of `model.safetensors`, checked on load to catch corrupt copies.
    pub weights_sha256: String,
    /// Reviewers' verdicts on listings, which decide those listings while unchanged.
    #[serde(default, skip_serializing_if = "ReviewVerdicts::is_empty")]
    pub reviewed: ReviewVerdicts,
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
/// The same for batches that are also explained (several times the work per listing).
const PARALLEL_EXPLAINED_MIN: usize = 8;
/// Batches at least this large get their reasons worked out on all cores. Above the
/// server's usual queue batches (tens of listings), where spreading costs more than it saves.
const PARALLEL_REASONS_MIN: usize = 256;
/// No listing gets more reasons than this: past it they are noise to a reviewer.
pub const MAX_REASONS: usize = 20;

/// A listing's features, with what they stand for when its reasons are wanted: the part
/// of scoring that needs no network, so callers can do it before queueing for the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    Plain(Features),
    Explained(Box<ExplainedFeatures>),
}

impl Prepared {
    pub fn features(&self) -> &Features {
        match self {
            Prepared::Plain(features) => features,
            Prepared::Explained(explained) => &explained.features,
        }
    }
}

/// What the model says about one listing: its score and the reasons behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub score: Score,
    pub reasons: Vec<Reason>,
}

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

    /// The same model for a deployment where a share `prevalence` of listings is counterfeit:
    /// probabilities shifted to that prior, and thresholds (and the weak-evidence review
    /// threshold) chosen so the model's precision and recall targets hold at it.
    pub fn with_expected_prevalence(mut self, prevalence: f64) -> Result<Model, OperatingError> {
        let targets = Targets::from(self.config.threshold_targets);
        let point = self
            .config
            .operating
            .operating_point(targets, Some(prevalence))?;
        // Calibration at the validation prior, then the shift: undo any earlier shift.
        let earlier = self.config.expected_prevalence;
        let prior = self.config.operating.prior;
        let undo = (earlier / (1.0 - earlier)).ln() - (prior / (1.0 - prior)).ln();
        self.config.calibration.b += point.logit_shift - undo;
        self.config.thresholds = point.thresholds;
        self.config.evidence_rule = point.evidence_rule(self.config.evidence_rule);
        self.config.expected_prevalence = prevalence;
        Ok(self)
    }

    /// Replaces the decision thresholds (operators tune them to their review capacity).
    pub fn set_thresholds(&mut self, thresholds: Thresholds) {
        self.config.thresholds = thresholds;
    }

    /// Scores from now on with the `registered` brands known and their list prices as the
    /// usual prices of their products (see [`Featurizer::use_registry`]).
    pub fn use_registry(&self, registered: &[RegisteredBrand]) -> Arc<RegistryView> {
        self.featurizer
            .use_registry(registered, &self.config.currency)
    }

    pub fn rates(&self) -> &CurrencyRates {
        &self.config.currency
    }

    pub fn limits(&self) -> &FieldLimits {
        &self.config.limits
    }

    pub fn featurize(&self, listings: &[Listing]) -> Vec<Features> {
        if listings.len() < PARALLEL_MIN {
            listings.iter().map(|l| self.featurize_one(l)).collect()
        } else {
            listings.par_iter().map(|l| self.featurize_one(l)).collect()
        }
    }

    /// One listing's features, with a reviewer's verdict on it if the model keeps one.
    pub fn featurize_one(&self, listing: &Listing) -> Features {
        let mut features = self.featurizer.featurize(listing);
        features.reviewed = self.config.reviewed.get(listing);
        features
    }

    /// The decision for a probability, given what else the listing offers.
    pub fn decide(&self, probability: f32, evidence: Evidence) -> Decision {
        self.config
            .evidence_rule
            .decide(&self.config.thresholds, probability, evidence)
    }

    pub fn score_from_logit(&self, logit: f32, evidence: Evidence) -> Score {
        let probability = self.config.calibration.apply(logit);
        Score {
            logit,
            probability,
            decision: self.decide(probability, evidence),
        }
    }

    pub fn score_features(&self, features: &[&Features]) -> Result<Vec<Score>, ModelError> {
        let logits = self.network.logits(features)?;
        Ok(logits
            .into_iter()
            .zip(features)
            .map(|(l, f)| self.score_from_logit(l, f.evidence()))
            .collect())
    }

    pub fn score(&self, listings: &[Listing]) -> Result<Vec<Score>, ModelError> {
        let features = self.featurize(listings);
        let refs: Vec<&Features> = features.iter().collect();
        self.score_features(&refs)
    }

    /// Features of one listing, with its terms when it will be given `reasons` reasons.
    pub fn prepare(&self, listing: &Listing, reasons: usize) -> Prepared {
        if reasons == 0 {
            Prepared::Plain(self.featurize_one(listing))
        } else {
            let mut explained = self.featurizer.explain(listing);
            explained.features.reviewed = self.config.reviewed.get(listing);
            Prepared::Explained(Box::new(explained))
        }
    }

    /// [`Model::prepare`] for many listings, on all cores when there are enough of them.
    pub fn prepare_all(&self, listings: &[Listing], reasons: usize) -> Vec<Prepared> {
        // Explained listings cost several times a plain one: worth spreading sooner.
        let parallel_min = if reasons > 0 {
            PARALLEL_EXPLAINED_MIN
        } else {
            PARALLEL_MIN
        };
        if listings.len() >= parallel_min {
            listings
                .par_iter()
                .map(|l| self.prepare(l, reasons))
                .collect()
        } else {
            listings.iter().map(|l| self.prepare(l, reasons)).collect()
        }
    }

    /// Scores prepared listings in one network pass and gives each explained one its
    /// `reasons[i]` strongest reasons (missing entries mean none).
    pub fn assess_prepared(
        &self,
        prepared: &[Prepared],
        reasons: &[usize],
    ) -> Result<Vec<Assessment>, ModelError> {
        let width = self.network.config.input_dim();
        let mut inputs = vec![0f32; prepared.len() * width];
        // Each listing's reasons are worked out right after its input row, while the
        // embedding rows they read again are still in cache.
        let row = |(i, (item, input)): (usize, (&Prepared, &mut [f32]))| -> Vec<Reason> {
            Network::input_row(
                &self.network.table,
                &self.network.scaler,
                item.features(),
                input,
            );
            match item {
                Prepared::Plain(_) => Vec::new(),
                Prepared::Explained(explained) => {
                    let top = reasons.get(i).copied().unwrap_or(0);
                    let mut found = self.reasons(explained, input, top);
                    if let Some(verdict) = explained.features.reviewed {
                        found.insert(0, reasons::verdict_reason(verdict));
                        found.truncate(top);
                    }
                    found
                }
            }
        };
        let explaining = reasons.iter().any(|&r| r > 0);
        // Reasons cost several times the network: a large explained batch (one big
        // request) is worth spreading over the cores; the queue's small ones are not.
        let reasons: Vec<Vec<Reason>> = if explaining && prepared.len() >= PARALLEL_REASONS_MIN {
            prepared
                .par_iter()
                .zip(inputs.par_chunks_mut(width))
                .enumerate()
                .map(row)
                .collect()
        } else {
            prepared
                .iter()
                .zip(inputs.chunks_mut(width))
                .enumerate()
                .map(row)
                .collect()
        };
        let logits = self.network.logits_from_inputs(&inputs, prepared.len())?;
        Ok(logits
            .into_iter()
            .zip(reasons)
            .zip(prepared)
            .map(|((logit, reasons), item)| Assessment {
                score: self.score_from_logit(logit, item.features().evidence()),
                reasons,
            })
            .collect())
    }

    /// Scores listings and gives each its `reasons` strongest reasons; each listing is
    /// featurised once, and its reasons reuse the network input that scored it.
    pub fn assess(
        &self,
        listings: &[Listing],
        reasons: usize,
    ) -> Result<Vec<Assessment>, ModelError> {
        let prepared = self.prepare_all(listings, reasons);
        self.assess_prepared(&prepared, &vec![reasons; prepared.len()])
    }

    /// The `top` features that pushed this listing's score most, as reviewer-readable text.
    pub fn explain(&self, listing: &Listing, top: usize) -> Vec<Reason> {
        self.assess(std::slice::from_ref(listing), top)
            .map(|mut a| a.pop().map(|a| a.reasons).unwrap_or_default())
            .unwrap_or_default()
    }
}
