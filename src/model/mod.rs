//! A trained model: configuration, feature pipeline and network, and the one scoring path
//! (features → logit → calibrated probability → decision → reasons) every caller uses.

pub mod artifact;
pub mod network;
pub mod operating;
pub mod verdicts;

use crate::brand::Relation;
use crate::data::currency::CurrencyRates;
use crate::data::listing::{FieldLimits, Listing};
use crate::decision::{Decision, Evidence, EvidenceRule, Thresholds};
use crate::eval::calibration::PlattCalibration;
use crate::eval::prevalence::QuantificationStats;
use crate::features::{
    ExplainedFeatures, FeatureConfig, Features, Featurizer, TermKind, DENSE_FEATURES,
    LOG_RATIO_INDEX,
};
use crate::reference::RefLevel;
use crate::registry::{RegisteredBrand, RegistryView};
use network::{dot, Network, NetworkConfig};
use operating::{OperatingError, OperatingStats, Targets};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use verdicts::ReviewVerdicts;
use xxhash_rust::xxh3::xxh3_64;

pub use artifact::ArtifactError;

/// Version of the on-disk model layout; loaders refuse any other. 2: the known-terms
/// bitset in the weights file. 3: brand identification (`brands.json`, two dense features) and
/// the evidence rule.
pub const FORMAT_VERSION: u32 = 3;

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
                        found.insert(0, verdict_reason(verdict));
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

    /// Reasons for one explained listing, strongest first, at most `top`.
    ///
    /// Attribution is gradient × input at the listing's own input, which is exact per linear
    /// piece of the ReLU network: each n-gram contributes its share of the mean embedding.
    fn reasons(&self, explained: &ExplainedFeatures, input: &[f32], top: usize) -> Vec<Reason> {
        if top == 0 {
            return Vec::new();
        }
        let dim = self.network.config.embedding_dim;
        let gradient = self.network.mlp.input_gradient(input);
        let n = explained.features.ids.len().max(1) as f32;

        // A word's character n-grams and the word itself are one reason for a reviewer,
        // and a repeated term is one reason: add their pushes up. Each entry carries a hash
        // of its text so that grouping equal terms compares integers, not strings.
        let mut pushes: Vec<(u64, TermKind, &str, f32)> = Vec::with_capacity(64);
        for (id, kind, term) in explained.terms.iter() {
            let row = self.network.table.row(id as usize);
            let push = match row.as_slice() {
                Some(row) => dot(row, &gradient[..dim]),
                None => row.iter().zip(&gradient[..dim]).map(|(e, g)| e * g).sum(),
            } / n;
            let kind = if kind == TermKind::TitleCharGram {
                TermKind::TitleWord
            } else {
                kind
            };
            // A word's n-grams follow it and share its text in the arena: merging them
            // here leaves far fewer entries for the sort below.
            match pushes.last_mut() {
                Some(last) if last.1 == kind && std::ptr::eq(last.2, term) => last.3 += push,
                _ => pushes.push((xxh3_64(term.as_bytes()), kind, term, push)),
            }
        }
        // Equal hashes fall back to comparing kind and text, so a collision never merges
        // two different terms.
        pushes.sort_unstable_by(|a, b| (a.0, a.1 as u8, a.2).cmp(&(b.0, b.1 as u8, b.2)));
        pushes.dedup_by(|later, kept| {
            let same = later.1 == kept.1 && later.2 == kept.2;
            if same {
                kept.3 += later.3;
            }
            same
        });
        // Rank first and word only the winners: formatting every term of every listing
        // would cost more than scoring it.
        enum Source<'a> {
            Term(TermKind, &'a str),
            Dense(usize),
        }
        let mut candidates: Vec<(f32, Source)> = pushes
            .into_iter()
            .map(|(_, kind, term, weight)| (weight, Source::Term(kind, term)))
            .collect();
        for (k, name) in DENSE_FEATURES.iter().enumerate() {
            let describable = k == LOG_RATIO_INDEX
                || describe_brand(name, explained, 0.0).is_some()
                || describe_dense(name, explained.features.dense[k]).is_some();
            if describable {
                candidates.push((gradient[dim + k] * input[dim + k], Source::Dense(k)));
            }
        }
        candidates.retain(|(w, _)| w.is_finite() && w.abs() > 1e-4);
        // Strongest first; equally strong ones in text order, so the answer never depends
        // on how the selection below happened to partition them.
        let mut ranked: Vec<(f32, usize, Source)> = candidates
            .into_iter()
            .enumerate()
            .map(|(i, (w, source))| (w, i, source))
            .collect();
        let stronger = |a: &(f32, usize, Source), b: &(f32, usize, Source)| {
            b.0.abs().total_cmp(&a.0.abs()).then(a.1.cmp(&b.1))
        };
        let top = top.min(MAX_REASONS);
        if ranked.len() > top {
            ranked.select_nth_unstable_by(top, stronger);
            ranked.truncate(top);
        }
        ranked.sort_unstable_by(stronger);
        ranked
            .into_iter()
            .map(|(weight, _, source)| Reason {
                text: match source {
                    Source::Term(kind, term) => describe_term(kind, term),
                    Source::Dense(k) if k == LOG_RATIO_INDEX => {
                        describe_price(&explained.price, &self.config.currency.base)
                    }
                    Source::Dense(k) => describe_brand(DENSE_FEATURES[k], explained, weight)
                        .or_else(|| describe_dense(DENSE_FEATURES[k], explained.features.dense[k]))
                        .unwrap_or_default(),
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
    if let Some(registered) = &price.registered {
        return describe_registered_price(registered, base, currency);
    }
    // A product or brand+category reference may rest on a missing brand or category.
    let fields = [price.brand.trim(), price.category.trim()]
        .into_iter()
        .filter(|f| !f.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let group = match price.level {
        RefLevel::Product if fields.is_empty() => format!("\"{}\"", price.phrase),
        RefLevel::Product => format!("\"{}\" in {fields}", price.phrase),
        RefLevel::BrandCategory => fields,
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

/// "price is 9% of Verdanne's registered list price for Aurora tote (...)".
fn describe_registered_price(
    registered: &crate::registry::RegisteredPrice,
    base: f64,
    currency: &str,
) -> String {
    let what = match (&registered.product, &registered.category) {
        (Some(product), _) => format!("{}'s registered list price for {product}", registered.brand),
        (None, Some(category)) => format!(
            "the median of {}'s registered list prices in {category}",
            registered.brand
        ),
        (None, None) => format!(
            "the median of {}'s registered list prices",
            registered.brand
        ),
    };
    let ratio = base / registered.base_price.max(0.01);
    format!(
        "price is {:.0}% of {what} (list ≈ {:.2} {currency}, here {:.2} {currency})",
        (ratio * 100.0).max(0.0),
        registered.base_price,
        base
    )
}

/// The identified brand as a reason: "imitates Rolex: title has \"r0lex\", ...".
fn describe_brand(name: &str, explained: &ExplainedFeatures, weight: f32) -> Option<String> {
    let brand = explained.features.brand.as_ref()?;
    let verb = match (name, brand.relation) {
        ("claims_known_brand", Relation::Is) if weight > 0.0 => "imitates",
        ("claims_known_brand", Relation::Is) => "claims to be",
        ("accessory_for_known_brand", Relation::For) => "is an accessory for",
        _ => return None,
    };
    Some(format!("{verb} {}", brand.describe()))
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

/// The reason a kept verdict gives: it decides the listing, so it comes first, and it
/// has no weight on the log-odds (the probability stays the model's own).
fn verdict_reason(verdict: crate::data::reviews::Verdict) -> Reason {
    let label = if verdict.counterfeit {
        "counterfeit"
    } else {
        "genuine"
    };
    Reason {
        text: format!(
            "a reviewer decided this same listing {label} on {}",
            verdict.reviewed_at.date_naive()
        ),
        weight: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::PriceContext;

    fn context(level: RefLevel, brand: &str, category: &str) -> PriceContext {
        PriceContext {
            base_price: Some(2.0),
            level,
            usual_price: 10.0,
            usual_count: 40,
            phrase: "dog leash".into(),
            brand: brand.into(),
            category: category.into(),
            registered: None,
        }
    }

    #[test]
    fn price_reasons_name_the_group_without_gaps_for_missing_fields() {
        let text = describe_price(&context(RefLevel::Product, "", "pets"), "USD");
        assert!(
            text.contains("usual price for \"dog leash\" in pets (usual"),
            "{text}"
        );
        let text = describe_price(&context(RefLevel::Product, "Acme", "pets"), "USD");
        assert!(text.contains("\"dog leash\" in Acme pets ("), "{text}");
        let text = describe_price(&context(RefLevel::Product, "", ""), "USD");
        assert!(text.contains("for \"dog leash\" (usual"), "{text}");
        let text = describe_price(&context(RefLevel::BrandCategory, "Acme", "pets"), "USD");
        assert!(
            text.starts_with("price is 20% of the usual price for Acme pets ("),
            "{text}"
        );
        assert!(!text.contains("  "), "{text}");
    }
}
