//! Turns a listing into model inputs: hashed word and character n-gram ids from its text,
//! and price features relative to the usual price. The only feature code in knockoff:
//! training, batch scoring and serving all call [`Featurizer`].

use crate::brand::{BrandIndex, BrandMatch, BrandSource, Relation};
use crate::data::currency::CurrencyRates;
use crate::data::listing::Listing;
use crate::data::reviews::Verdict;
use crate::decision::Evidence;
use crate::reference::{group_key, PriceKey, RefLevel, RefStat, ReferencePrices};
use crate::registry::{RegisteredBrand, RegisteredPrice, RegistryView};
use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokenizers::normalizers::{Lowercase, Sequence as NormalizerSequence, StripAccents, NFKD};
use tokenizers::pre_tokenizers::punctuation::Punctuation;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::{
    NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer,
    Tokenizer,
};
use xxhash_rust::xxh3::xxh3_64_with_seed;

mod emit;
mod known;
mod price;
mod registered;
#[cfg(test)]
mod tests;
mod tokenize;

use emit::*;
pub use known::{KnownTermCounter, KnownTerms, KNOWN_TERM_BITS};
use price::*;
use registered::*;
pub use tokenize::standard_tokenizer;
use tokenize::*;

/// Names of the dense (price and field) features, in model-input order.
pub const DENSE_FEATURES: [&str; 14] = [
    "has_price",
    "log_price",
    "log_price_ratio",
    "log_price_ratio_brand_category",
    "reference_product",
    "reference_brand_category",
    "reference_brand",
    "reference_category",
    "reference_global",
    "brand_missing",
    "brand_in_title",
    "claims_known_brand",
    "accessory_for_known_brand",
    "brand_disguised",
];
pub const DENSE_LEN: usize = DENSE_FEATURES.len();
/// Index of the log price ratio in [`DENSE_FEATURES`]; reasons single it out.
pub const LOG_RATIO_INDEX: usize = 2;
const GROUP_RATIO_INDEX: usize = 3;
const LEVEL_INDEX: usize = 4;
const BRAND_MISSING_INDEX: usize = 9;
const BRAND_IN_TITLE_INDEX: usize = 10;
/// The listing claims a brand of the [`BrandIndex`] (field, name or alias in the text).
const CLAIMS_BRAND_INDEX: usize = 11;
/// The listing names a known brand as what it fits ("case for iPhone").
const ACCESSORY_INDEX: usize = 12;
/// The brand the listing claims is written in disguise ("r0lex", "R O L E X", look-alike
/// letters): how much that says is learned from the training listings that do it.
const DISGUISED_INDEX: usize = 13;
/// Leading title words used as a product key for usual prices.
const PRODUCT_WORDS: usize = 3;
/// Ratios beyond e^±5 (≈150×) carry no more information and only destabilise training.
const MAX_ABS_LOG_RATIO: f32 = 5.0;

/// Settings of the hashed n-gram features, stored in the model's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureConfig {
    /// Number of hash buckets (a power of two): rows of the embedding table.
    pub buckets: u32,
    pub char_ngram_min: usize,
    pub char_ngram_max: usize,
    pub hash_seed: u64,
    /// Upper bound on ids per listing, so one huge description cannot stall a batch.
    pub max_ids: usize,
    /// Terms (words, n-grams, brands, ...) found in fewer training listings than this are
    /// left out of every listing's features (see [`KnownTerms`]); 0 keeps every term.
    #[serde(default)]
    pub known_term_min_listings: u8,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            buckets: 1 << 18,
            char_ngram_min: 3,
            char_ngram_max: 5,
            hash_seed: 0x6b6e_6f63_6b6f_6666,
            max_ids: 512,
            known_term_min_listings: 3,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("feature config: {0}")]
    Config(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// Where a hashed id came from; namespaces keep e.g. a title word and a brand apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TermKind {
    TitleWord,
    TitleBigram,
    TitleCharGram,
    DescriptionWord,
    DescriptionBigram,
    Brand,
    Category,
    BrandCategory,
}

impl TermKind {
    fn namespace(self) -> u64 {
        self as u64 + 1
    }
}

/// Model inputs of one listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Features {
    pub ids: Vec<u32>,
    pub dense: [f32; DENSE_LEN],
    /// Terms left out because the model does not know them (see [`KnownTerms`]).
    pub unknown: u32,
    /// The known brand the listing claims or fits, if any.
    pub brand: Option<BrandMatch>,
    /// Whether the price features compare with a registered list price.
    pub registered_price: bool,
    /// A reviewer's verdict on this very listing, kept by the model (see
    /// [`crate::model::verdicts`]); set by the model, not the featurizer.
    pub reviewed: Option<Verdict>,
}

impl Features {
    /// Share of the listing's terms that the model knows; `None` for a listing without
    /// terms. Falling across many listings, it shows new words the model never learned.
    pub fn known_share(&self) -> Option<f32> {
        let total = self.ids.len() + self.unknown as usize;
        (total > 0).then(|| self.ids.len() as f32 / total as f32)
    }

    /// What the listing offers beyond its probability, for the decision.
    pub fn evidence(&self) -> Evidence {
        Evidence {
            claims_known_brand: self
                .brand
                .as_ref()
                .is_some_and(|b| b.relation == Relation::Is && b.names_brand()),
            known_share: self.known_share(),
            registered_log_ratio: self
                .registered_price
                .then(|| self.brand_log_price_ratio())
                .flatten(),
            reviewed: self.reviewed.map(|v| v.counterfeit),
        }
    }

    /// Log ratio of the price to the usual price of the listing's brand (its product, brand
    /// and category, or brand); `None` without a price or such a reference.
    pub fn brand_log_price_ratio(&self) -> Option<f32> {
        let brand_level = (0..3).any(|k| self.dense[LEVEL_INDEX + k] > 0.5);
        (self.dense[0] > 0.5 && brand_level).then_some(self.dense[LOG_RATIO_INDEX])
    }
}

/// The price side of a listing, kept for explanations ("6% of the usual price for ...").
#[derive(Debug, Clone, PartialEq)]
pub struct PriceContext {
    pub base_price: Option<f64>,
    pub level: RefLevel,
    /// The usual price in the base currency, and how many genuine listings it rests on.
    pub usual_price: f64,
    pub usual_count: usize,
    /// Title words of a product-level reference (empty at other levels).
    pub phrase: String,
    pub brand: String,
    pub category: String,
    /// The registered list price used instead of a learned usual price, if any.
    pub registered: Option<RegisteredPrice>,
}

/// Features plus what each id stands for, for reasons shown to reviewers.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainedFeatures {
    pub features: Features,
    pub terms: Terms,
    pub price: PriceContext,
}

/// Listing → features. Cheap to share across threads.
#[derive(Clone)]
pub struct Featurizer {
    config: FeatureConfig,
    tokenizer: Tokenizer,
    references: ReferencePrices,
    /// Normalised words of every known brand, computed once.
    brand_words: HashMap<String, Vec<String>>,
    /// Whether the tokenizer is [`standard_tokenizer`], so ASCII words may take the exact
    /// shortcut of [`Featurizer::direct_standard_pipeline`].
    standard_pipeline: bool,
    /// Terms outside these are left out; `None` keeps every term.
    known_terms: Option<Arc<KnownTerms>>,
    /// The brands a listing may claim or fit.
    brands: Arc<BrandIndex>,
    /// Registered brands and their list prices, swapped whole on every registry change.
    registry: RegistrySlot,
}

impl Featurizer {
    pub fn new(
        config: FeatureConfig,
        tokenizer: Tokenizer,
        references: ReferencePrices,
    ) -> Result<Featurizer, FeatureError> {
        if !config.buckets.is_power_of_two() || config.buckets < 2 {
            return Err(FeatureError::Config(format!(
                "buckets must be a power of two, got {}",
                config.buckets
            )));
        }
        if config.char_ngram_min == 0 || config.char_ngram_min > config.char_ngram_max {
            return Err(FeatureError::Config(format!(
                "character n-gram range {}..={} is empty",
                config.char_ngram_min, config.char_ngram_max
            )));
        }
        if tokenizer.get_normalizer().is_none() || tokenizer.get_pre_tokenizer().is_none() {
            return Err(FeatureError::Tokenizer(
                "tokenizer.json must define a normalizer and a pre-tokenizer".into(),
            ));
        }
        let standard_pipeline = same_pipeline(&tokenizer, &standard_tokenizer());
        let mut featurizer = Featurizer {
            config,
            tokenizer,
            references,
            brand_words: HashMap::new(),
            standard_pipeline,
            known_terms: None,
            brands: Arc::new(BrandIndex::empty()),
            registry: RegistrySlot::default(),
        };
        featurizer.brand_words = featurizer.known_brand_words();
        Ok(featurizer)
    }

    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn references(&self) -> &ReferencePrices {
        &self.references
    }

    /// Reads a tokenizer file. Damaged files are errors, never panics: the text must be
    /// well-formed JSON before `tokenizers` sees it (some of its deserialisers panic on a
    /// truncated file), and a panic inside `tokenizers` is still turned into an error.
    pub fn load_tokenizer(path: &Path) -> Result<Tokenizer, FeatureError> {
        let error = |e: &dyn std::fmt::Display| FeatureError::Tokenizer(e.to_string());
        let text = std::fs::read_to_string(path).map_err(|e| error(&e))?;
        serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| error(&e))?;
        std::panic::catch_unwind(|| text.parse::<Tokenizer>())
            .map_err(|_| error(&"the tokenizer file is malformed"))?
            .map_err(|e| error(&e))
    }

    /// The same featurizer keeping only `known` terms (`None`: all of them).
    pub fn with_known_terms(mut self, known: Option<Arc<KnownTerms>>) -> Featurizer {
        self.known_terms = known;
        self
    }

    pub fn known_terms(&self) -> Option<&KnownTerms> {
        self.known_terms.as_deref()
    }

    /// The same featurizer identifying the brands of `brands`.
    pub fn with_brands(mut self, brands: Arc<BrandIndex>) -> Featurizer {
        self.brands = brands;
        // A registry view extends the index it was built on: it would hide the new one.
        self.registry = RegistrySlot::default();
        self
    }

    pub fn brands(&self) -> &Arc<BrandIndex> {
        &self.brands
    }

    /// The same featurizer with other usual prices (the trainer learns them after keys).
    pub fn with_references(mut self, references: ReferencePrices) -> Featurizer {
        self.references = references;
        self.brand_words = self.known_brand_words();
        self
    }

    fn known_brand_words(&self) -> HashMap<String, Vec<String>> {
        self.references
            .known_brands()
            .map(|brand| {
                let tokenized = self.tokenize([brand]);
                let [analyzed] = tokenized.fields();
                let words = analyzed.words.iter().map(|w| w.to_string()).collect();
                (brand.to_string(), words)
            })
            .collect()
    }

    fn build(&self, listing: &Listing, terms: Option<&mut Terms>) -> Features {
        self.build_with_price(listing, terms, EmitMode::Buckets).0
    }

    /// Features, and the usual price their price features came from.
    fn build_with_price(
        &self,
        listing: &Listing,
        terms: Option<&mut Terms>,
        mode: EmitMode,
    ) -> (Features, PriceBasis) {
        // Only explanations show the product phrase; plain scoring skips copying it.
        let explaining = terms.is_some();
        let view = self.registry.0.load();
        let brands = view.as_ref().map_or(&self.brands, |v| v.brands());
        let mut identified = brands.identify(&listing.brand, &listing.title, &listing.description);
        let (mut brand, category) = self.known_fields(listing);
        // A learned brand named in a category it never sells in is another brand of that
        // name: the listing is read as an unknown brand's, without the name.
        let namesake = identified
            .as_mut()
            .filter(|b| brands.is_namesake(b, &category))
            .map(|b| {
                b.relation = Relation::Namesake;
                brand.clear();
                without_brand(listing, b)
            });
        // A registered brand's name is no term the model learned, and training saw such
        // listings without it (see `featurize_as_registered`): its text goes without the
        // name, and without its registered product names, whose words the model knows
        // only from other brands' listings ("meridian", "solstice").
        let masked = identified
            .as_ref()
            .filter(|b| b.registered && b.relation == Relation::Is)
            .map(|found| {
                let masked = without_brand(listing, found);
                match view.as_deref().and_then(|v| v.product_words(&found.name)) {
                    Some(words) => without_words(masked, words),
                    None => masked,
                }
            });
        let text = masked.as_ref().or(namesake.as_ref()).unwrap_or(listing);
        let tokenized = self.tokenize([text.title.as_str(), text.description.as_str()]);
        let [title, description] = tokenized.fields();
        let mut ids = Vec::with_capacity(192);
        let mut emitter = Emitter {
            config: &self.config,
            // Fingerprints are collected to learn which terms are known: all of them.
            known: match mode {
                EmitMode::Buckets => self.known_terms.as_deref(),
                EmitMode::Fingerprints => None,
            },
            mode,
            ids: &mut ids,
            unknown: 0,
            terms,
            buffer: String::with_capacity(64),
            bounds: Vec::with_capacity(64),
        };
        self.emit_listing(&mut emitter, &title, &description, &brand, &category);
        let unknown = emitter.unknown;
        let key = PriceLookup {
            title_words: &title.words,
            brand,
            category,
            explaining,
        };
        let side = self.price_side(listing, key, identified, view.as_deref());
        let features = Features {
            ids,
            dense: side.dense(),
            unknown,
            brand: side.identified,
            registered_price: side.basis.registered.is_some(),
            reviewed: None,
        };
        (features, side.basis)
    }

    pub fn featurize(&self, listing: &Listing) -> Features {
        self.build(listing, None)
    }

    /// Like [`Featurizer::featurize`], also returning what each id stands for.
    pub fn explain(&self, listing: &Listing) -> ExplainedFeatures {
        let mut terms = Terms::default();
        let (features, basis) = self.build_with_price(listing, Some(&mut terms), EmitMode::Buckets);
        ExplainedFeatures {
            features,
            terms,
            price: PriceContext {
                base_price: basis.base_price,
                level: basis.level,
                usual_price: basis.stat.median,
                usual_count: basis.stat.count,
                phrase: basis.phrase,
                brand: listing.brand.clone(),
                category: listing.category.clone(),
                registered: basis.registered,
            },
        }
    }
}
