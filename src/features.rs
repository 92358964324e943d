//! Turns a listing into model inputs: hashed word and character n-gram ids from its text,
//! and price features relative to the usual price. The only feature code in knockoff:
//! training, batch scoring and serving all call [`Featurizer`].

use crate::brand::{BrandIndex, BrandMatch, BrandSource, Relation};
use crate::data::currency::CurrencyRates;
use crate::data::listing::Listing;
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

/// Names of the dense (price and field) features, in model-input order.
pub const DENSE_FEATURES: [&str; 13] = [
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

/// Bits of a term's hash that name it in [`KnownTerms`]: 2^24 bits (2 MiB), so that even
/// with a million known terms an unseen one is taken for a known one only about one time
/// in sixteen.
pub const KNOWN_TERM_BITS: u32 = 24;

/// The terms the training data held often enough for the model to have learned them,
/// learned by [`KnownTermCounter`]. Featurising leaves every other term out: the bucket of
/// an unseen term holds an untrained random row, or through a hash collision what some
/// other term learned, and neither says anything about the listing at hand. Terms are kept
/// by a fingerprint of their hash (bits the bucket index does not use), one bit each.
#[derive(Clone, PartialEq, Eq)]
pub struct KnownTerms {
    bits: Vec<u64>,
}

impl std::fmt::Debug for KnownTerms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownTerms")
            .field("terms", &self.len())
            .finish()
    }
}

impl KnownTerms {
    /// Bytes of [`KnownTerms::to_bytes`].
    pub const BYTES: usize = 1 << (KNOWN_TERM_BITS - 3);

    fn fingerprint(hash: u64) -> usize {
        (hash >> (64 - KNOWN_TERM_BITS)) as usize
    }

    /// The word of `bits` that holds fingerprint `f`, and its mask there.
    fn slot(f: usize) -> (usize, u64) {
        (f / 64, 1 << (f % 64))
    }

    fn contains_hash(&self, hash: u64) -> bool {
        let (word, mask) = Self::slot(Self::fingerprint(hash));
        self.bits[word] & mask != 0
    }

    /// Known fingerprints (set bits).
    pub fn len(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Little-endian bytes, for the weights file.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bits.iter().flat_map(|b| b.to_le_bytes()).collect()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<KnownTerms, FeatureError> {
        if bytes.len() != Self::BYTES {
            return Err(FeatureError::Config(format!(
                "known terms: {} bytes, expected {}",
                bytes.len(),
                Self::BYTES
            )));
        }
        let bits = bytes
            .chunks_exact(8)
            .map(|c| {
                let mut word = [0u8; 8];
                word.copy_from_slice(c);
                u64::from_le_bytes(word)
            })
            .collect();
        Ok(KnownTerms { bits })
    }
}

/// Counts in how many listings each term occurs, to learn [`KnownTerms`].
pub struct KnownTermCounter {
    /// Listing counts by fingerprint, saturating at 255.
    counts: Vec<u8>,
    /// Reused for each listing's fingerprints.
    listing: Vec<u32>,
}

impl Default for KnownTermCounter {
    fn default() -> Self {
        KnownTermCounter {
            counts: vec![0; 1 << KNOWN_TERM_BITS],
            listing: Vec::new(),
        }
    }
}

impl KnownTermCounter {
    /// Counts each distinct term of one listing once, however often the listing repeats it.
    pub fn add(&mut self, featurizer: &Featurizer, listing: &Listing) {
        let mut fingerprints = std::mem::take(&mut self.listing);
        fingerprints.clear();
        fingerprints.extend(
            featurizer
                .build_with_price(listing, None, EmitMode::Fingerprints)
                .0
                .ids,
        );
        fingerprints.sort_unstable();
        fingerprints.dedup();
        for &f in &fingerprints {
            let count = &mut self.counts[f as usize];
            *count = count.saturating_add(1);
        }
        self.listing = fingerprints;
    }

    /// Adds another counter's counts (counters of parallel chunks).
    pub fn merge(mut self, other: KnownTermCounter) -> KnownTermCounter {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a = a.saturating_add(b);
        }
        self
    }

    /// The terms found in at least `min_listings` listings.
    pub fn known(&self, min_listings: u8) -> KnownTerms {
        let mut bits = vec![0u64; (1 << KNOWN_TERM_BITS) / 64];
        for (f, &count) in self.counts.iter().enumerate() {
            if count >= min_listings.max(1) {
                let (word, mask) = KnownTerms::slot(f);
                bits[word] |= mask;
            }
        }
        KnownTerms { bits }
    }
}

/// What [`Emitter`] collects for each term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmitMode {
    /// Embedding rows, for the network.
    Buckets,
    /// [`KnownTerms`] fingerprints, for learning which terms are known.
    Fingerprints,
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
                .is_some_and(|b| b.relation == Relation::Is),
            known_share: self.known_share(),
        }
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

/// What each emitted id stands for. The texts share one buffer: a listing has about a
/// hundred terms, and a string each would cost more than scoring it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Terms {
    text: String,
    spans: Vec<TermSpan>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct TermSpan {
    id: u32,
    kind: TermKind,
    start: u32,
    end: u32,
}

impl Terms {
    fn push(&mut self, id: u32, kind: TermKind, shown: &str) {
        // A word's character n-grams are all shown as the word: store it once.
        let (start, end) = match self.spans.last() {
            Some(last) if &self.text[last.start as usize..last.end as usize] == shown => {
                (last.start, last.end)
            }
            _ => {
                let start = self.text.len() as u32;
                self.text.push_str(shown);
                (start, self.text.len() as u32)
            }
        };
        self.spans.push(TermSpan {
            id,
            kind,
            start,
            end,
        });
    }

    /// Records `id` as shown with the same text as the term before it.
    fn push_shown_as_previous(&mut self, id: u32, kind: TermKind) {
        let (start, end) = self
            .spans
            .last()
            .map_or((0, 0), |last| (last.start, last.end));
        self.spans.push(TermSpan {
            id,
            kind,
            start,
            end,
        });
    }

    /// `(id, kind, text)` in the order the ids were emitted.
    pub fn iter(&self) -> impl Iterator<Item = (u32, TermKind, &str)> + '_ {
        self.spans
            .iter()
            .map(|s| (s.id, s.kind, &self.text[s.start as usize..s.end as usize]))
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// The `tokenizers` pipeline: Unicode compatibility decomposition, accent stripping
/// (so "Guccì" meets "Gucci") and lower-casing, then splitting on white space and punctuation.
pub fn standard_tokenizer() -> Tokenizer {
    let mut tokenizer = Tokenizer::new(tokenizers::models::wordlevel::WordLevel::default());
    let normalizer =
        NormalizerSequence::new(vec![NFKD.into(), StripAccents.into(), Lowercase.into()]);
    let pre_tokenizer =
        PreTokenizerSequence::new(vec![WhitespaceSplit.into(), Punctuation::default().into()]);
    // Infallible for this normalizer type; the Result exists for other tokenizer builders.
    let _ = tokenizer.with_normalizer(Some(normalizer));
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer
}

/// The non-empty fields joined by line breaks, and the byte offset where each field ends.
fn join_fields<const N: usize>(fields: [&str; N]) -> (String, [usize; N]) {
    let mut joined = String::with_capacity(fields.iter().map(|f| f.len() + 1).sum());
    let mut ends = [0usize; N];
    for (i, field) in fields.iter().enumerate() {
        if !field.is_empty() {
            if !joined.is_empty() {
                joined.push('\n');
            }
            joined.push_str(field);
        }
        ends[i] = joined.len();
    }
    (joined, ends)
}

/// Whether two tokenizers normalise and pre-tokenise alike (same JSON definitions).
fn same_pipeline(a: &Tokenizer, b: &Tokenizer) -> bool {
    let definition = |t: &Tokenizer| {
        (
            serde_json::to_value(t.get_normalizer()).ok(),
            serde_json::to_value(t.get_pre_tokenizer()).ok(),
        )
    };
    let (a, b) = (definition(a), definition(b));
    a.0.is_some() && a.1.is_some() && a == b
}

/// One ASCII word (no white space in it) through the standard pipeline, appended to `text`:
/// lower-cased, each punctuation character a piece of its own. `origin` is where the word
/// starts in the original text.
fn push_ascii_word(word: &str, origin: usize, text: &mut String, pieces: &mut Vec<Piece>) {
    let base = text.len();
    text.push_str(word);
    text[base..].make_ascii_lowercase();
    let mut start = None;
    for (i, b) in word.bytes().enumerate() {
        if b.is_ascii_punctuation() {
            if let Some(s) = start.take() {
                pieces.push(Piece::moved(base + s, base + i, origin + s));
            }
            pieces.push(Piece::moved(base + i, base + i + 1, origin + i));
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        pieces.push(Piece::moved(base + s, base + word.len(), origin + s));
    }
}

/// The words of `text` between runs of white space, with their byte offsets.
fn whitespace_words(text: &str) -> impl Iterator<Item = (usize, &str)> + '_ {
    text.split(char::is_whitespace)
        .filter(|word| !word.is_empty())
        .map(move |word| (word.as_ptr() as usize - text.as_ptr() as usize, word))
}

/// CJK scripts are written without spaces between words: they get character uni- and bigrams.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x2FA1F) // CJK extensions B–F
}

/// Sellers write "r0lex" or "gucc1" to dodge filters: read digits as the letters they imitate.
fn deleet(word: &str) -> Option<String> {
    let has_alpha = word.chars().any(|c| c.is_alphabetic());
    let has_digit = word.chars().any(|c| c.is_ascii_digit());
    if !(has_alpha && has_digit) {
        return None;
    }
    Some(
        word.chars()
            .map(|c| match c {
                '0' => 'o',
                '1' => 'l',
                '3' => 'e',
                '4' => 'a',
                '5' => 's',
                '7' => 't',
                '8' => 'b',
                other => other,
            })
            .collect(),
    )
}

/// Words made only of digits (after normalisation, so full-width digits count too).
fn is_number(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit())
}

/// Text units after pre-tokenization: words, and single CJK characters.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit<'a> {
    Word(&'a str),
    Cjk(&'a str),
}

impl<'a> Unit<'a> {
    fn text(self) -> &'a str {
        match self {
            Unit::Word(text) | Unit::Cjk(text) => text,
        }
    }
}

/// One field after the tokenizer: units for n-grams, words for product keys. Both borrow
/// from the pre-tokenised text.
#[derive(Debug, Clone, Default, PartialEq)]
struct Analyzed<'a> {
    units: Vec<Unit<'a>>,
    words: Vec<&'a str>,
}

/// Several fields run through the tokenizer together.
struct Tokenized<const N: usize> {
    text: TokenizedText,
    /// Byte offset in the joined original text where each field ends.
    ends: [usize; N],
}

enum TokenizedText {
    Empty,
    /// The `tokenizers` pipeline's output.
    Pipeline(PreTokenizedString),
    /// The standard pipeline's pieces, laid end to end in `text`: ASCII words computed
    /// directly, and other words through the `tokenizers` pipeline.
    Direct {
        text: String,
        pieces: Vec<Piece>,
    },
}

/// A piece of pre-tokenised text: its bytes in [`TokenizedText::Direct`]'s text, and where
/// it came from in the original text (which decides its field).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Piece {
    start: usize,
    end: usize,
    origin: usize,
}

impl Piece {
    fn moved(start: usize, end: usize, origin: usize) -> Piece {
        Piece { start, end, origin }
    }
}

impl<const N: usize> Tokenized<N> {
    /// Hands each field its units (words and CJK characters) and words (pieces with a
    /// letter or digit, CJK runs kept whole).
    fn fields(&self) -> [Analyzed<'_>; N] {
        let mut out: [Analyzed; N] = std::array::from_fn(|_| Analyzed::default());
        let pieces: Vec<(&str, usize)> = match &self.text {
            TokenizedText::Empty => return out,
            TokenizedText::Pipeline(pre) => pre
                .get_splits(OffsetReferential::Original, OffsetType::Byte)
                .into_iter()
                .map(|(piece, (start, _), _)| (piece, start))
                .collect(),
            TokenizedText::Direct { text, pieces } => pieces
                .iter()
                .map(|p| (&text[p.start..p.end], p.origin))
                .collect(),
        };
        for (piece, start) in pieces {
            let field = self
                .ends
                .iter()
                .position(|end| start < *end)
                .unwrap_or(N - 1);
            let target = &mut out[field];
            if piece.chars().any(char::is_alphanumeric) {
                target.words.push(piece);
            }
            let mut word_start = 0;
            for (i, c) in piece.char_indices() {
                if is_cjk(c) {
                    if word_start < i {
                        target.units.push(Unit::Word(&piece[word_start..i]));
                    }
                    let end = i + c.len_utf8();
                    target.units.push(Unit::Cjk(&piece[i..end]));
                    word_start = end;
                }
            }
            if word_start < piece.len() {
                target.units.push(Unit::Word(&piece[word_start..]));
            }
        }
        out
    }
}

/// Collects hashed ids, and optionally the terms behind them.
struct Emitter<'a> {
    config: &'a FeatureConfig,
    /// Terms outside these are left out; `None` keeps all.
    known: Option<&'a KnownTerms>,
    mode: EmitMode,
    ids: &'a mut Vec<u32>,
    /// Terms left out as unknown so far.
    unknown: u32,
    terms: Option<&'a mut Terms>,
    /// Reused for bigrams, n-grams and joined keys, so emitting allocates nothing.
    buffer: String,
    bounds: Vec<usize>,
}

impl Emitter<'_> {
    fn emit(&mut self, kind: TermKind, term: &str) {
        self.emit_shown_as(kind, term, term);
    }

    /// Emits `term`, recording `shown` as what it stands for (a character n-gram is shown
    /// as the word it came from: "er>" means nothing to a reviewer).
    fn emit_shown_as(&mut self, kind: TermKind, term: &str, shown: &str) -> bool {
        let Some(id) = self.emit_id(kind, term) else {
            return false;
        };
        if let Some(terms) = self.terms.as_deref_mut() {
            terms.push(id, kind, shown);
        }
        true
    }

    /// Emits `term`, shown as whatever the previously emitted term was shown as.
    fn emit_shown_as_previous(&mut self, kind: TermKind, term: &str) {
        if let Some(id) = self.emit_id(kind, term) {
            if let Some(terms) = self.terms.as_deref_mut() {
                terms.push_shown_as_previous(id, kind);
            }
        }
    }

    /// Adds the id of `term` to the features; `None` once the listing has `max_ids`, or
    /// when the term is not a known one.
    fn emit_id(&mut self, kind: TermKind, term: &str) -> Option<u32> {
        if self.ids.len() >= self.config.max_ids {
            return None;
        }
        let hash = xxh3_64_with_seed(term.as_bytes(), self.config.hash_seed ^ kind.namespace());
        if self.known.is_some_and(|known| !known.contains_hash(hash)) {
            self.unknown += 1;
            return None;
        }
        let id = match self.mode {
            EmitMode::Buckets => (hash & u64::from(self.config.buckets - 1)) as u32,
            EmitMode::Fingerprints => KnownTerms::fingerprint(hash) as u32,
        };
        self.ids.push(id);
        Some(id)
    }

    /// Emits the text in the buffer (filled by `fill`), shown as itself.
    fn emit_buffered(&mut self, kind: TermKind, fill: impl FnOnce(&mut String)) {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        fill(&mut buffer);
        self.emit(kind, &buffer);
        self.buffer = buffer;
    }

    /// Character n-grams of `<word>`, each shown as the word.
    fn emit_char_grams(&mut self, word: &str, min: usize, max: usize) {
        if word.chars().count() < 2 {
            return;
        }
        let mut buffer = std::mem::take(&mut self.buffer);
        let mut bounds = std::mem::take(&mut self.bounds);
        buffer.clear();
        buffer.push('<');
        buffer.push_str(word);
        buffer.push('>');
        bounds.clear();
        if buffer.is_ascii() {
            bounds.extend(0..=buffer.len());
        } else {
            bounds.extend(
                buffer
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain(std::iter::once(buffer.len())),
            );
        }
        let chars = bounds.len() - 1;
        // The first gram kept records the word; the ones after it reuse that record.
        let mut word_recorded = false;
        for n in min..=max {
            // The whole "<word>" is never a gram: the word itself is emitted already.
            if n >= chars {
                break;
            }
            for start in 0..=(chars - n) {
                let gram = &buffer[bounds[start]..bounds[start + n]];
                if word_recorded {
                    self.emit_shown_as_previous(TermKind::TitleCharGram, gram);
                } else {
                    word_recorded = self.emit_shown_as(TermKind::TitleCharGram, gram, word);
                }
            }
        }
        self.buffer = buffer;
        self.bounds = bounds;
    }
}

/// `text` without any occurrence of `needle`, compared ignoring ASCII case.
fn remove_ignoring_case(text: &str, needle: &str) -> String {
    let needle = needle.trim().to_lowercase();
    if needle.is_empty() {
        return text.to_string();
    }
    // Outside ASCII, lower-casing may move byte offsets: there only exact matches go.
    if !text.is_ascii() {
        return text.replace(needle.as_str(), " ");
    }
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for (start, _) in lower.match_indices(needle.as_str()) {
        if start >= rest {
            out.push_str(&text[rest..start]);
            out.push(' ');
            rest = start + needle.len();
        }
    }
    out.push_str(&text[rest..]);
    out
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

/// The registry view in use; a clone starts with the view its original had then.
#[derive(Default)]
struct RegistrySlot(ArcSwapOption<RegistryView>);

impl Clone for RegistrySlot {
    fn clone(&self) -> Self {
        RegistrySlot(ArcSwapOption::new(self.0.load_full()))
    }
}

/// The usual price a listing's price features rest on.
struct PriceBasis {
    level: RefLevel,
    stat: RefStat,
    /// Title words of a product-level learned reference (only when explaining).
    phrase: String,
    base_price: Option<f64>,
    registered: Option<RegisteredPrice>,
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

    pub fn load_tokenizer(path: &Path) -> Result<Tokenizer, FeatureError> {
        Tokenizer::from_file(path).map_err(|e| FeatureError::Tokenizer(e.to_string()))
    }

    /// Runs the tokenizer once over several fields (joined by line breaks). One call instead
    /// of one per field: the tokenizer's per-call set-up is most of the cost on short texts.
    fn tokenize<const N: usize>(&self, fields: [&str; N]) -> Tokenized<N> {
        let (joined, ends) = join_fields(fields);
        if joined.is_empty() {
            return Tokenized {
                text: TokenizedText::Empty,
                ends,
            };
        }
        if self.standard_pipeline {
            return Tokenized {
                text: self.direct_standard_pipeline(&joined),
                ends,
            };
        }
        self.tokenize_with_pipeline(joined, ends)
    }

    /// The standard pipeline, with its result computed directly where it is known: on an
    /// ASCII word, the compatibility decomposition and accent stripping change nothing and
    /// lower-casing is ASCII lower-casing, so the word is lower-cased and split at
    /// punctuation without the byte-alignment bookkeeping of `tokenizers` (about half of all
    /// listings are plain ASCII). Each run of other words (with the white space between
    /// them) goes through `tokenizers`. Runs are cut only at white space, which every step
    /// of the pipeline keeps as white space and never looks across (normalisation is per
    /// character, and combining marks never follow a space), so the pieces are the ones the
    /// whole text would give. Tests compare the two on the fixture corpus and on random text.
    fn direct_standard_pipeline(&self, joined: &str) -> TokenizedText {
        let mut text = String::with_capacity(joined.len() + 16);
        let mut pieces = Vec::with_capacity(joined.len() / 4);
        let mut run: Option<(usize, usize)> = None;
        for (start, word) in whitespace_words(joined) {
            if word.is_ascii() {
                if let Some((s, e)) = run.take() {
                    self.push_pipeline_run(&joined[s..e], s, &mut text, &mut pieces);
                }
                push_ascii_word(word, start, &mut text, &mut pieces);
            } else {
                let run_start = run.map_or(start, |(s, _)| s);
                run = Some((run_start, start + word.len()));
            }
        }
        if let Some((s, e)) = run {
            self.push_pipeline_run(&joined[s..e], s, &mut text, &mut pieces);
        }
        TokenizedText::Direct { text, pieces }
    }

    /// Runs `run` (which starts at `origin` in the original text) through the `tokenizers`
    /// pipeline and appends its pieces.
    fn push_pipeline_run(
        &self,
        run: &str,
        origin: usize,
        text: &mut String,
        pieces: &mut Vec<Piece>,
    ) {
        let pre = self.pipeline(run.to_string());
        for (piece, (start, _), _) in pre.get_splits(OffsetReferential::Original, OffsetType::Byte)
        {
            let base = text.len();
            text.push_str(piece);
            pieces.push(Piece::moved(base, text.len(), origin + start));
        }
    }

    /// The tokenizer's normaliser and pre-tokenizer over `text`.
    fn pipeline(&self, text: String) -> PreTokenizedString {
        let mut normalized = NormalizedString::from(text);
        if let Some(normalizer) = self.tokenizer.get_normalizer() {
            // The normalizers used here never fail; on an exotic tokenizer.json that does,
            // the text is used un-normalised rather than dropped.
            let _ = normalizer.normalize(&mut normalized);
        }
        let mut pre = PreTokenizedString::from(normalized);
        if let Some(pre_tokenizer) = self.tokenizer.get_pre_tokenizer() {
            let _ = pre_tokenizer.pre_tokenize(&mut pre);
        }
        pre
    }

    /// The `tokenizers` pipeline itself, for any text.
    fn tokenize_with_pipeline<const N: usize>(
        &self,
        joined: String,
        ends: [usize; N],
    ) -> Tokenized<N> {
        Tokenized {
            text: TokenizedText::Pipeline(self.pipeline(joined)),
            ends,
        }
    }

    /// Normalised words of a brand; known brands are looked up, not re-tokenised.
    fn brand_words(&self, brand_key: &str) -> Cow<'_, [String]> {
        match self.brand_words.get(brand_key) {
            Some(words) => Cow::Borrowed(words.as_slice()),
            None => {
                let tokenized = self.tokenize([brand_key]);
                let [brand] = tokenized.fields();
                Cow::Owned(brand.words.iter().map(|w| w.to_string()).collect())
            }
        }
    }

    /// The key a listing's usual price is looked up (and learned) by.
    pub fn price_key(&self, listing: &Listing) -> PriceKey {
        let tokenized = self.tokenize([listing.title.as_str()]);
        let [title] = tokenized.fields();
        let (brand, category) = self.known_fields(listing);
        let brand_words = self.brand_words(&brand);
        Self::price_key_from(&title.words, &brand_words, brand, category)
    }

    /// Normalised brand and category, blanked when the model never learned about them:
    /// a hashed id for an unseen name would only collide with some other learned term.
    fn known_fields(&self, listing: &Listing) -> (String, String) {
        let mut brand = group_key(&listing.brand);
        let mut category = group_key(&listing.category);
        if !self.references.knows_brand(&brand) {
            brand.clear();
        }
        if !self.references.knows_category(&category) {
            category.clear();
        }
        (brand, category)
    }

    /// `brand` and `category` are normalised already (see [`Featurizer::known_fields`]).
    fn price_key_from(
        title_words: &[&str],
        brand_words: &[String],
        brand: String,
        category: String,
    ) -> PriceKey {
        let mut phrases = Vec::with_capacity(PRODUCT_WORDS);
        let mut phrase = String::new();
        for word in title_words
            .iter()
            .filter(|w| !brand_words.iter().any(|b| b == *w))
            .take(PRODUCT_WORDS)
        {
            if !phrase.is_empty() {
                phrase.push(' ');
            }
            phrase.push_str(word);
            phrases.push(phrase.clone());
        }
        PriceKey {
            brand,
            category,
            phrases,
        }
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

    /// Spaced-out words ("r o l e x") are joined so their letters still form the word.
    fn join_spaced_letters(units: &[Unit]) -> Vec<String> {
        let mut joined = Vec::new();
        let mut run = String::new();
        let mut run_len = 0;
        for unit in units.iter().chain(std::iter::once(&Unit::Word(""))) {
            match unit {
                Unit::Word(w) if w.chars().count() == 1 && w.chars().all(char::is_alphanumeric) => {
                    run.push_str(w);
                    run_len += 1;
                }
                _ => {
                    if run_len >= 3 {
                        joined.push(std::mem::take(&mut run));
                    }
                    run.clear();
                    run_len = 0;
                }
            }
        }
        joined
    }

    fn emit_text(&self, emitter: &mut Emitter, units: &[Unit], title: bool) {
        let (word_kind, bigram_kind) = if title {
            (TermKind::TitleWord, TermKind::TitleBigram)
        } else {
            (TermKind::DescriptionWord, TermKind::DescriptionBigram)
        };
        let (min, max) = (self.config.char_ngram_min, self.config.char_ngram_max);
        for (i, unit) in units.iter().enumerate() {
            match *unit {
                Unit::Word(word) => {
                    // A bare number means little on its own and what it means comes from
                    // its neighbours: the "1" of "1:1" (a replica grade) is not the "1" of
                    // "1.5 m". It keeps its bigrams and character n-grams but gets no
                    // word feature, which would learn whichever use is most common.
                    if !is_number(word) {
                        emitter.emit(word_kind, word);
                    }
                    if let Some(plain) = deleet(word) {
                        emitter.emit(word_kind, &plain);
                    }
                    if title {
                        emitter.emit_char_grams(word, min, max);
                    }
                }
                Unit::Cjk(c) => emitter.emit(word_kind, c),
            }
            if let Some(next) = units.get(i + 1) {
                emitter.emit_buffered(bigram_kind, |buffer| {
                    buffer.push_str(unit.text());
                    // Adjacent CJK characters: the bigram is the closest thing to a word.
                    if !matches!((unit, next), (Unit::Cjk(_), Unit::Cjk(_))) {
                        buffer.push(' ');
                    }
                    buffer.push_str(next.text());
                });
            }
        }
        for word in Self::join_spaced_letters(units) {
            emitter.emit(word_kind, &word);
            if title {
                emitter.emit_char_grams(&word, min, max);
            }
        }
    }

    fn build(&self, listing: &Listing, terms: Option<&mut Terms>) -> Features {
        self.build_with_price(listing, terms, EmitMode::Buckets).0
    }

    /// The listing as it would look if its brand were known by registration only: the same
    /// price and brand features, but none of the brand's own terms (its name in the field
    /// and text is unknown to the model, as a newly registered name is). `None` when the
    /// listing claims no known brand. Training shows the model such copies so that it judges
    /// registered brands by price and wording, not by a name it has never seen.
    pub fn featurize_as_registered(&self, listing: &Listing) -> Option<Features> {
        let full = self.featurize(listing);
        let found = full.brand.as_ref().filter(|b| b.relation == Relation::Is)?;
        let mut masked = listing.clone();
        masked.brand.clear();
        for name in [
            listing.brand.as_str(),
            found.text.as_str(),
            found.name.as_str(),
        ] {
            masked.title = remove_ignoring_case(&masked.title, name);
            masked.description = remove_ignoring_case(&masked.description, name);
        }
        let text_only = self.featurize(&masked);
        // The brand's terms were there and unknown: they count against the known share.
        let removed = (full.ids.len() + full.unknown as usize)
            .saturating_sub(text_only.ids.len() + text_only.unknown as usize);
        Some(Features {
            ids: text_only.ids,
            dense: full.dense,
            unknown: text_only.unknown + removed as u32,
            brand: full.brand,
        })
    }

    /// A text's words as the pipeline normalises titles ("Aurora Tote" → `aurora`, `tote`).
    pub fn words_of(&self, text: &str) -> Vec<String> {
        let tokenized = self.tokenize([text]);
        let [field] = tokenized.fields();
        field.words.iter().map(|w| w.to_string()).collect()
    }

    /// Scores from now on with `registered` brands known and their list prices as usual
    /// prices, converted by `rates`; replaces any registry given before. Every clone made
    /// before keeps its own registry.
    pub fn use_registry(
        &self,
        registered: &[RegisteredBrand],
        rates: &CurrencyRates,
    ) -> Arc<RegistryView> {
        let view = Arc::new(RegistryView::build(&self.brands, registered, rates, |t| {
            self.words_of(t)
        }));
        self.registry.0.store(Some(Arc::clone(&view)));
        view
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
        let tokenized = self.tokenize([listing.title.as_str(), listing.description.as_str()]);
        let [title, description] = tokenized.fields();
        self.emit_text(&mut emitter, &title.units, true);
        let (brand, category) = self.known_fields(listing);
        if !brand.is_empty() {
            emitter.emit(TermKind::Brand, &brand);
        }
        if !category.is_empty() {
            emitter.emit(TermKind::Category, &category);
        }
        if !brand.is_empty() && !category.is_empty() {
            emitter.emit_buffered(TermKind::BrandCategory, |buffer| {
                buffer.push_str(&brand);
                buffer.push_str(" / ");
                buffer.push_str(&category);
            });
        }
        self.emit_text(&mut emitter, &description.units, false);

        let brand_words = self.brand_words(&brand);
        let named = !brand_words.is_empty()
            && title.words.windows(brand_words.len()).any(|window| {
                window
                    .iter()
                    .zip(brand_words.iter())
                    .all(|(word, brand_word)| word == brand_word)
            });
        let key = Self::price_key_from(&title.words, &brand_words, brand, category);
        let reference = self.references.lookup(&key);
        let (mut level, mut stat) = (reference.level, reference.stat);
        let phrase = if explaining {
            reference.phrase.to_string()
        } else {
            String::new()
        };
        let mut group_median = self
            .references
            .lookup_group(&key.brand, &key.category)
            .stat
            .median;
        let mut brand_missing = key.brand.is_empty();
        let mut named = named;
        let view = self.registry.0.load();
        let brands = view.as_ref().map_or(&self.brands, |v| v.brands());
        let identified = brands.identify(&listing.brand, &listing.title, &listing.description);
        // A registered brand's own list prices are the usual prices of its products.
        let registered = match (view.as_deref(), &identified) {
            (Some(view), Some(found)) if found.registered && found.relation == Relation::Is => {
                let category_key = group_key(&listing.category);
                view.price(&found.name, &title.words, &category_key)
                    .map(|price| {
                        level = price.level;
                        stat = RefStat {
                            median: price.base_price,
                            count: price.products,
                        };
                        group_median = view
                            .group_price(&found.name, &category_key)
                            .unwrap_or(price.base_price);
                        if found.found_in == BrandSource::Field {
                            brand_missing = false;
                            let words = self.words_of(&found.name);
                            named = !words.is_empty()
                                && title.words.windows(words.len()).any(|w| w == words);
                        }
                        price
                    })
            }
            _ => None,
        };
        let base_price = listing
            .price
            .as_ref()
            .map(|p| p.base_amount)
            .filter(|p| p.is_finite());
        let mut dense = [0f32; DENSE_LEN];
        let log_ratio = |price: f64, usual: f64| -> f32 {
            ((price.max(0.01) / usual.max(0.01)).ln() as f32)
                .clamp(-MAX_ABS_LOG_RATIO, MAX_ABS_LOG_RATIO)
        };
        if let Some(price) = base_price {
            dense[0] = 1.0;
            dense[1] = (price.max(0.0) + 1.0).ln() as f32;
            // Against all listings a price says nothing about this kind of item: a cheap dog
            // leash is not a cheap Rolex. Unknown groups get no ratio, only the flag.
            if level != RefLevel::Global {
                dense[LOG_RATIO_INDEX] = log_ratio(price, stat.median);
                dense[GROUP_RATIO_INDEX] = log_ratio(price, group_median);
            }
        }
        let level_index = RefLevel::ALL
            .iter()
            .position(|l| *l == level)
            .unwrap_or(RefLevel::ALL.len() - 1);
        dense[LEVEL_INDEX + level_index] = 1.0;
        dense[BRAND_MISSING_INDEX] = f32::from(brand_missing);
        dense[BRAND_IN_TITLE_INDEX] = f32::from(named);
        if let Some(found) = &identified {
            let index = match found.relation {
                Relation::Is => CLAIMS_BRAND_INDEX,
                Relation::For => ACCESSORY_INDEX,
            };
            dense[index] = 1.0;
        }
        let unknown = emitter.unknown;
        let features = Features {
            ids,
            dense,
            unknown,
            brand: identified,
        };
        let basis = PriceBasis {
            level,
            stat,
            phrase,
            base_price,
            registered,
        };
        (features, basis)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::currency::CurrencyRates;
    use crate::data::listing::{FieldLimits, RawListing, RawPrice};
    use rand::{Rng, SeedableRng};

    fn featurizer() -> Featurizer {
        let plain = Featurizer::new(
            FeatureConfig::default(),
            standard_tokenizer(),
            ReferencePrices::empty(),
        )
        .unwrap();
        let rolex = listing("Rolex Submariner Date", "Rolex", "watches", Some(10000.0));
        let strap = listing(
            "Rolex strap for Submariner",
            "Rolex",
            "watches",
            Some(100.0),
        );
        let mut rows: Vec<_> = (0..5).map(|_| (plain.price_key(&rolex), 10000.0)).collect();
        rows.push((plain.price_key(&strap), 100.0));
        plain.with_references(ReferencePrices::fit(rows, 3))
    }

    fn listing(title: &str, brand: &str, category: &str, price: Option<f64>) -> Listing {
        RawListing {
            title: Some(title.into()),
            brand: Some(brand.into()),
            category: Some(category.into()),
            price: price.map(RawPrice::Number),
            currency: price.map(|_| "USD".into()),
            ..Default::default()
        }
        .validate(&CurrencyRates::default(), &FieldLimits::default())
        .unwrap()
    }

    /// The test featurizer knowing Rolex as a counterfeiting target.
    fn with_rolex(f: Featurizer) -> Featurizer {
        use crate::brand::{BrandExample, BrandLearning};
        let rows: Vec<BrandExample> = (0..40)
            .map(|i| BrandExample {
                brand: "Rolex",
                title: "Rolex Submariner Date",
                counterfeit: i % 2 == 0,
            })
            .collect();
        f.with_brands(Arc::new(BrandIndex::fit(&rows, BrandLearning::default())))
    }

    fn verdanne() -> RegisteredBrand {
        use crate::registry::{BrandEntry, RegisteredProduct};
        RegisteredBrand {
            name: "Verdanne".into(),
            entry: BrandEntry {
                aliases: vec!["维丹妮".into()],
                products: vec![RegisteredProduct {
                    name: "Aurora tote".into(),
                    category: "bags".into(),
                    list_price: 400.0,
                    currency: "USD".into(),
                }],
            },
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn a_registered_brand_is_claimed_and_priced_by_its_list_price() {
        let f = with_rolex(featurizer());
        let fake = listing("V3rdanne Aurora tote", "", "bags", Some(40.0));
        let before = f.clone();
        assert_eq!(f.featurize(&fake).brand, None, "unknown before registering");
        f.use_registry(&[verdanne()], &CurrencyRates::default());
        let explained = f.explain(&fake);
        let found = explained.features.brand.clone().unwrap();
        assert_eq!((found.name.as_str(), found.registered), ("Verdanne", true));
        assert_eq!(explained.features.dense[CLAIMS_BRAND_INDEX], 1.0);
        let price = explained.price.registered.clone().unwrap();
        assert_eq!(
            (price.level, price.product.as_deref(), price.base_price),
            (RefLevel::Product, Some("Aurora tote"), 400.0)
        );
        assert_eq!(explained.price.usual_price, 400.0);
        let ratio = explained.features.dense[LOG_RATIO_INDEX];
        assert!((ratio - (0.1f32).ln()).abs() < 1e-5, "{ratio}");
        // Learned brands still come first, and a clone made before keeps no registry.
        assert_eq!(
            f.featurize(&listing("Rolex Submariner", "", "", None))
                .brand
                .unwrap()
                .registered,
            false
        );
        assert_eq!(before.featurize(&fake).brand, None);
        // The brand field naming it counts as a selected brand named in the title.
        let genuine = f.featurize(&listing(
            "Verdanne Aurora tote",
            "Verdanne",
            "bags",
            Some(400.0),
        ));
        assert_eq!(genuine.dense[BRAND_MISSING_INDEX], 0.0);
        assert_eq!(genuine.dense[BRAND_IN_TITLE_INDEX], 1.0);
        assert_eq!(genuine.dense[LOG_RATIO_INDEX], 0.0);
    }

    #[test]
    fn as_registered_copies_keep_price_and_brand_features_without_the_brand_terms() {
        let f = with_rolex(featurizer());
        let l = listing("ROLEX Submariner Date aaa", "Rolex", "watches", Some(500.0));
        let full = f.featurize(&l);
        let copy = f.featurize_as_registered(&l).unwrap();
        assert_eq!(copy.dense, full.dense);
        assert_eq!(copy.brand, full.brand);
        let without = f.featurize(&listing("Submariner Date aaa", "", "watches", Some(500.0)));
        assert_eq!(
            copy.ids, without.ids,
            "no term of the brand's name or field"
        );
        assert_eq!(
            copy.ids.len() + copy.unknown as usize,
            full.ids.len() + full.unknown as usize,
            "the brand's terms count as unknown"
        );
        assert_eq!(
            f.featurize_as_registered(&listing("plain towel", "", "", None)),
            None
        );
    }

    #[test]
    fn removal_ignores_ascii_case_and_never_splits_characters() {
        assert_eq!(
            remove_ignoring_case("ROLEX watch rolex", "Rolex"),
            "  watch  "
        );
        assert_eq!(
            remove_ignoring_case("İstanbul Rolex", "rolex"),
            "İstanbul Rolex"
        );
        assert_eq!(remove_ignoring_case("劳力士 watch", "劳力士"), "  watch");
        assert_eq!(remove_ignoring_case("abc", " "), "abc");
    }

    fn terms(f: &Featurizer, title: &str) -> Vec<(TermKind, String)> {
        f.explain(&listing(title, "", "", None))
            .terms
            .iter()
            .map(|(_, k, t)| (k, t.to_string()))
            .collect()
    }

    fn has(terms: &[(TermKind, String)], kind: TermKind, text: &str) -> bool {
        terms.iter().any(|(k, t)| *k == kind && t == text)
    }

    #[test]
    fn normalises_case_accents_and_width() {
        let f = featurizer();
        let t = terms(&f, "GUCCÌ Ｂａｇ!");
        assert!(has(&t, TermKind::TitleWord, "gucci"), "{t:?}");
        assert!(has(&t, TermKind::TitleWord, "bag"), "{t:?}");
        assert!(
            has(&t, TermKind::TitleWord, "!"),
            "punctuation is its own unit: {t:?}"
        );
    }

    #[test]
    fn chinese_gets_character_unigrams_and_bigrams() {
        let f = featurizer();
        let t = terms(&f, "Rolex潜航者41mm");
        assert!(has(&t, TermKind::TitleWord, "rolex"), "{t:?}");
        assert!(has(&t, TermKind::TitleWord, "潜"), "{t:?}");
        assert!(has(&t, TermKind::TitleBigram, "潜航"), "{t:?}");
        assert!(has(&t, TermKind::TitleBigram, "航者"), "{t:?}");
        assert!(has(&t, TermKind::TitleWord, "41mm"), "{t:?}");
    }

    #[test]
    fn bare_numbers_count_only_with_their_neighbours() {
        let f = featurizer();
        let grade = terms(&f, "Rolex 1:1 ２０２４");
        for number in ["1", "2024"] {
            assert!(!has(&grade, TermKind::TitleWord, number), "{grade:?}");
        }
        // The replica grade is still seen, as the bigrams around its digits.
        assert!(has(&grade, TermKind::TitleBigram, "1 :"), "{grade:?}");
        assert!(has(&grade, TermKind::TitleBigram, ": 1"), "{grade:?}");
        assert!(has(&grade, TermKind::TitleBigram, "1 2024"), "{grade:?}");
        assert!(has(&grade, TermKind::TitleWord, "rolex"), "{grade:?}");
        let leash = terms(&f, "狗绳 1.5米");
        assert!(!has(&leash, TermKind::TitleWord, "1"), "{leash:?}");
        assert!(!has(&leash, TermKind::TitleWord, "5"), "{leash:?}");
        assert!(has(&leash, TermKind::TitleBigram, "1 ."), "{leash:?}");
        assert!(has(&leash, TermKind::TitleBigram, "5 米"), "{leash:?}");
        // Words with letters keep their own feature.
        let sized = terms(&f, "41mm r0lex");
        assert!(has(&sized, TermKind::TitleWord, "41mm"), "{sized:?}");
        assert!(has(&sized, TermKind::TitleWord, "r0lex"), "{sized:?}");
        assert!(has(&sized, TermKind::TitleWord, "rolex"), "{sized:?}");
        // Descriptions alike.
        let mut described = listing("watch", "", "", None);
        described.description = "grade 1:1".into();
        let described: Vec<_> = f
            .explain(&described)
            .terms
            .iter()
            .map(|(_, k, t)| (k, t.to_string()))
            .collect();
        assert!(
            !has(&described, TermKind::DescriptionWord, "1"),
            "{described:?}"
        );
        assert!(
            has(&described, TermKind::DescriptionBigram, "1 :"),
            "{described:?}"
        );
    }

    #[test]
    fn odd_spellings_share_features_with_the_plain_word() {
        let f = featurizer();
        let leet = terms(&f, "R0lex watch");
        assert!(has(&leet, TermKind::TitleWord, "rolex"), "{leet:?}");
        let spaced = terms(&f, "R o l e x watch");
        assert!(has(&spaced, TermKind::TitleWord, "rolex"), "{spaced:?}");
        // A misspelling still shares most character n-grams with the real name.
        let grams = |title: &str| -> std::collections::HashSet<u32> {
            f.explain(&listing(title, "", "", None))
                .terms
                .iter()
                .filter(|(_, k, _)| *k == TermKind::TitleCharGram)
                .map(|(id, _, shown)| {
                    assert_eq!(shown, title, "n-grams are shown as their word");
                    id
                })
                .collect()
        };
        let a = grams("rolex");
        let b = grams("rollex");
        assert!(a.intersection(&b).count() >= 4, "{a:?} vs {b:?}");
    }

    #[test]
    fn each_words_n_grams_are_shown_as_that_word() {
        let f = featurizer();
        let explained = f.explain(&listing("rolex watch", "", "", None));
        let mut shown_as = std::collections::HashMap::new();
        for (_, kind, shown) in explained.terms.iter() {
            if kind == TermKind::TitleCharGram {
                *shown_as.entry(shown).or_insert(0) += 1;
            }
        }
        // "<rolex>" has 5 + 4 + 3 grams of 3..=5 characters, "<watch>" the same.
        assert_eq!(shown_as.get("rolex"), Some(&12), "{shown_as:?}");
        assert_eq!(shown_as.get("watch"), Some(&12), "{shown_as:?}");
        assert_eq!(shown_as.len(), 2, "{shown_as:?}");
    }

    /// `f` keeping only the terms of at least `min` of `titles`.
    fn knowing(f: &Featurizer, titles: &[&str], min: u8) -> Featurizer {
        let mut counter = KnownTermCounter::default();
        for title in titles {
            counter.add(f, &listing(title, "", "", None));
        }
        f.clone()
            .with_known_terms(Some(Arc::new(counter.known(min))))
    }

    #[test]
    fn unknown_terms_are_left_out() {
        let f = featurizer();
        // "mug" is in two listings, "sword" twice in one, "lamp" in none.
        let known = knowing(&f, &["mug set", "blue mug", "sword sword"], 2);
        let t = terms(&known, "blue mug lamp sword");
        assert!(has(&t, TermKind::TitleWord, "mug"), "{t:?}");
        assert!(!has(&t, TermKind::TitleWord, "blue"), "one listing: {t:?}");
        assert!(
            !has(&t, TermKind::TitleWord, "sword"),
            "counted once per listing: {t:?}"
        );
        assert!(!t.iter().any(|(_, text)| text.contains("lamp")), "{t:?}");
        // The same listing keeps every term without known terms, and loses ids with them.
        let all = f.featurize(&listing("blue mug lamp sword", "", "", None));
        let kept = known.featurize(&listing("blue mug lamp sword", "", "", None));
        assert!(kept.ids.len() < all.ids.len() && !kept.ids.is_empty());
        assert!(kept.ids.iter().all(|id| all.ids.contains(id)));
        assert_eq!(
            kept.dense, all.dense,
            "price features do not depend on terms"
        );
        assert_eq!(all.unknown, 0);
        assert_eq!(kept.ids.len() + kept.unknown as usize, all.ids.len());
        assert!(kept.known_share().is_some_and(|s| s > 0.0 && s < 1.0));
        assert_eq!(all.known_share(), Some(1.0));
        // A listing of only unknown terms has no ids at all: nothing to go on but price.
        let lamp = known.featurize(&listing("lamp", "", "", None));
        assert!(lamp.ids.is_empty());
        assert_eq!(lamp.known_share(), Some(0.0));
    }

    #[test]
    fn a_words_kept_n_grams_are_shown_as_that_word_when_its_first_is_unknown() {
        let f = featurizer();
        // "sword" teaches "wor", "ord", "rd>", ... but not "<wo", the first gram of "word".
        let known = knowing(&f, &["big sword", "big sword", "big sword"], 3);
        let explained = known.explain(&listing("big word", "", "", None));
        let grams: Vec<&str> = explained
            .terms
            .iter()
            .filter(|(_, kind, _)| *kind == TermKind::TitleCharGram)
            .map(|(_, _, shown)| shown)
            .collect();
        assert!(grams.contains(&"word"), "{grams:?}");
        assert!(
            grams.iter().all(|g| *g == "big" || *g == "word"),
            "{grams:?}"
        );
    }

    #[test]
    fn known_terms_survive_their_bytes_and_refuse_a_wrong_length() {
        let f = featurizer();
        let known = knowing(&f, &["mug set", "mug"], 2);
        let terms = known.known_terms().unwrap();
        assert!(!terms.is_empty());
        let bytes = terms.to_bytes();
        assert_eq!(bytes.len(), KnownTerms::BYTES);
        assert_eq!(&KnownTerms::from_bytes(&bytes).unwrap(), terms);
        let e = KnownTerms::from_bytes(&bytes[1..]).unwrap_err();
        assert!(e.to_string().contains("bytes"), "{e}");
    }

    #[test]
    fn ids_are_deterministic_and_within_buckets() {
        let f = featurizer();
        let l = listing("Nike Air Jordan 1 复刻", "Nike", "sneakers", Some(50.0));
        let a = f.featurize(&l);
        let b = f.featurize(&l);
        assert_eq!(a, b);
        assert!(!a.ids.is_empty());
        assert!(a.ids.iter().all(|&id| id < f.config().buckets));
    }

    #[test]
    fn max_ids_bounds_huge_descriptions() {
        let f = featurizer();
        let mut l = listing("bag", "", "", None);
        l.description = "word ".repeat(5000);
        assert_eq!(f.featurize(&l).ids.len(), f.config().max_ids);
    }

    #[test]
    fn price_features_compare_with_the_usual_price() {
        let f = featurizer();
        let cheap = f.explain(&listing(
            "ROLEX Submariner 41mm",
            "Rolex",
            "watches",
            Some(100.0),
        ));
        let d = cheap.features.dense;
        assert_eq!(d[0], 1.0);
        assert!((d[LOG_RATIO_INDEX] - (100f32 / 10000.0).ln()).abs() < 1e-4);
        assert_eq!(d[LEVEL_INDEX], 1.0, "product reference used");
        assert_eq!(cheap.price.level, RefLevel::Product);
        assert_eq!(cheap.price.phrase, "submariner");
        assert_eq!(d[BRAND_IN_TITLE_INDEX], 1.0, "brand appears in the title");

        let other = f.explain(&listing("Rolex Daytona", "Rolex", "watches", Some(100.0)));
        assert_eq!(
            other.price.level,
            RefLevel::BrandCategory,
            "unknown model falls back"
        );

        let unknown = f
            .featurize(&listing("Teapot", "Acme", "kitchen", None))
            .dense;
        assert_eq!(unknown[0], 0.0, "missing price is flagged, not zero");
        assert_eq!(unknown[LOG_RATIO_INDEX], 0.0);
        assert_eq!(
            unknown[LEVEL_INDEX + 4],
            1.0,
            "global fallback for unseen brand and category"
        );
        assert_eq!(unknown[BRAND_MISSING_INDEX], 0.0);
        assert_eq!(unknown[BRAND_IN_TITLE_INDEX], 0.0);
    }

    #[test]
    fn invalid_config_is_refused() {
        let config = FeatureConfig {
            buckets: 1000,
            ..Default::default()
        };
        assert!(Featurizer::new(config, standard_tokenizer(), ReferencePrices::empty()).is_err());
    }

    #[test]
    fn tokenizer_survives_a_json_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        standard_tokenizer().save(&path, false).unwrap();
        let loaded = Featurizer::load_tokenizer(&path).unwrap();
        let refs = ReferencePrices::empty();
        let a =
            Featurizer::new(FeatureConfig::default(), standard_tokenizer(), refs.clone()).unwrap();
        let b = Featurizer::new(FeatureConfig::default(), loaded, refs).unwrap();
        assert!(
            b.standard_pipeline,
            "a saved standard tokenizer keeps the ASCII shortcut"
        );
        let l = listing("Ｌｏｕｉｓ Vuitton 手袋", "", "", None);
        assert_eq!(a.featurize(&l), b.featurize(&l));
    }

    /// Pieces per field, as owned strings, from either path.
    fn pieces<const N: usize>(t: &Tokenized<N>) -> Vec<(Vec<String>, Vec<String>)> {
        t.fields()
            .iter()
            .map(|a| {
                (
                    a.units.iter().map(|u| u.text().to_string()).collect(),
                    a.words.iter().map(|w| w.to_string()).collect(),
                )
            })
            .collect()
    }

    /// Up to `max - 1` characters drawn from `alphabet`.
    fn random_text(rng: &mut rand::rngs::StdRng, alphabet: &[char], max: usize) -> String {
        let len = rng.random_range(0..max);
        (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect()
    }

    /// Title and description of every row of the test fixture.
    fn fixture_texts() -> Vec<(String, String)> {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tiny-listings.csv"
        );
        csv::Reader::from_path(fixture)
            .unwrap()
            .records()
            .map(|record| {
                let record = record.unwrap();
                (record[1].to_string(), record[2].to_string())
            })
            .collect()
    }

    fn assert_ascii_shortcut_is_exact(f: &Featurizer, fields: [&str; 2]) {
        let fast = f.tokenize(fields);
        assert!(
            matches!(
                fast.text,
                TokenizedText::Direct { .. } | TokenizedText::Empty
            ),
            "{fields:?} took the pipeline"
        );
        let (joined, ends) = join_fields(fields);
        if joined.is_empty() {
            return;
        }
        let slow = f.tokenize_with_pipeline(joined, ends);
        assert_eq!(pieces(&fast), pieces(&slow), "{fields:?}");
    }

    #[test]
    fn ascii_shortcut_matches_the_tokenizers_pipeline() {
        let f = featurizer();
        assert!(f.standard_pipeline);
        let mut checked = 0;
        for (title, description) in fixture_texts() {
            if title.is_ascii() && description.is_ascii() {
                assert_ascii_shortcut_is_exact(&f, [&title, &description]);
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} ASCII rows in the fixture");
        // Every ASCII character, in random mixes with runs of spaces and punctuation.
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let alphabet: Vec<char> = (0u8..128)
            .map(char::from)
            .chain("  aZ9-.".chars())
            .collect();
        for _ in 0..2000 {
            let title = random_text(&mut rng, &alphabet, 40);
            let description = random_text(&mut rng, &alphabet, 80);
            assert_ascii_shortcut_is_exact(&f, [&title, &description]);
        }
    }

    #[test]
    fn other_tokenizers_always_take_the_pipeline() {
        let mut cased = standard_tokenizer();
        let normalizer = NormalizerSequence::new(vec![NFKD.into(), StripAccents.into()]);
        let _ = cased.with_normalizer(Some(normalizer));
        let f = Featurizer::new(FeatureConfig::default(), cased, ReferencePrices::empty()).unwrap();
        assert!(!f.standard_pipeline);
        let tokenized = f.tokenize(["GUCCI Bag", ""]);
        assert!(matches!(tokenized.text, TokenizedText::Pipeline(_)));
        let [title, _] = tokenized.fields();
        assert_eq!(
            title.words,
            vec!["GUCCI", "Bag"],
            "no lower-casing in this pipeline"
        );
    }

    #[test]
    fn mixed_text_gets_the_pieces_of_the_whole_pipeline() {
        let f = featurizer();
        let check = |fields: [&str; 2]| {
            let (joined, ends) = join_fields(fields);
            if joined.is_empty() {
                return;
            }
            let fast = f.tokenize(fields);
            assert!(matches!(fast.text, TokenizedText::Direct { .. }));
            let slow = f.tokenize_with_pipeline(joined, ends);
            assert_eq!(pieces(&fast), pieces(&slow), "{fields:?}");
        };
        let mut mixed = 0;
        for (title, description) in fixture_texts() {
            check([&title, &description]);
            mixed += usize::from(!(title.is_ascii() && description.is_ascii()));
        }
        assert!(mixed > 50, "only {mixed} non-ASCII rows in the fixture");
        check(["Guccì bag", "Ｌｏｕｉｓ Vuitton 手袋"]);
        // Random mixes of ASCII, other white space, CJK, precomposed and combining accents,
        // compatibility forms (full width, ligatures, circled and squared letters), letters
        // whose lower case is longer, and punctuation of several scripts.
        let alphabet: Vec<char> = concat!(
            "aZ9 -.:/",
            "\u{a0}\u{3000}\u{2003}\u{1680}\u{85}\u{202f}\t\n",
            "手袋狗绳米가나ひカ",
            "éÉñ\u{301}\u{308}\u{327}",
            "ＬｏＡ１ﬁﬀ⑵㎏①ⅻ",
            "İΣßǅ",
            "「」、。！？¿¡–—…€£",
            "🔥💯✨",
            "\u{fdfa}\u{200b}"
        )
        .chars()
        .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        for _ in 0..3000 {
            let title = random_text(&mut rng, &alphabet, 30);
            let description = random_text(&mut rng, &alphabet, 60);
            check([&title, &description]);
        }
    }
}
