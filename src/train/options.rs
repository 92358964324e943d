//! What a training run can be told: the options (defaults are the shipped model's), the
//! brands and categories held out, and the hyperparameters recorded in the model.

use crate::brand::BrandLearning;
use crate::data::currency::CurrencyRates;
use crate::data::listing::{FieldLimits, Listing};
use crate::features::FeatureConfig;
use crate::model::network::NetworkConfig;
use crate::reference::group_key;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Whole brands and categories kept out of training, to measure how the model treats
/// listings it has never seen anything like (most of a real marketplace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Holdout {
    pub categories: Vec<String>,
    /// Share of brands (chosen by a seeded hash of the brand name) kept out.
    pub brand_share: f64,
}

impl Holdout {
    pub fn is_active(&self) -> bool {
        !self.categories.is_empty() || self.brand_share > 0.0
    }

    /// Whether `listing` is kept out (its category is listed, or its brand drawn).
    pub fn holds_out(&self, listing: &Listing, seed: u64) -> bool {
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

impl TrainOptions {
    /// The settings that shaped the weights, as recorded in the model's `config.json`
    /// (files, seeds and targets are recorded beside them); `review_weight` only when
    /// reviews were used.
    pub fn hyperparameters(&self, review_weight: Option<usize>) -> serde_json::Value {
        serde_json::json!({
            "batch_size": self.batch_size,
            "embedding_learning_rate": self.embedding_learning_rate,
            "mlp_learning_rate": self.mlp_learning_rate,
            "mlp_weight_decay": self.mlp_weight_decay,
            "token_dropout": self.token_dropout,
            "brand_dropout": self.brand_dropout,
            "category_dropout": self.category_dropout,
            "registered_copies": self.registered_copies,
            "registered_floor_quantile": self.registered_floor_quantile,
            "reference_min_count": self.reference_min_count,
            "calibration_share": self.calibration_share,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "min_improvement": self.min_improvement,
            "holdout": self.holdout,
            "brand_learning": self.brand_learning,
            "min_known_share": self.min_known_share,
            "review_weight": review_weight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
