//! Brand identification: which known brand a listing claims (or is an accessory for), where
//! that was found and how, learned from training listings and extended by registered brands.
//!
//! A counterfeit imitates a particular brand, so this is the spine of the decision: only a
//! listing that claims a brand the model knows can be blocked. Everything here is learned:
//! - **Target brands**: brand-field values with enough training listings, and enough of them
//!   counterfeit, to be a counterfeiting target ([`BrandLearning`]).
//! - **Names**: each target's name, folded the same way as listing text: case, accents,
//!   full-width forms, homoglyphs (Unicode's confusables, UTS #39), digits and symbols used as
//!   letters ("r0lex", "ch@nel"), spaced or joined words ("r o l e x", "LouisVuitton").
//! - **Aliases**: title terms (words, Chinese character pairs) that nearly always come with one
//!   target's brand field in training ("submariner", "劳力").
//! - **Accessory markers**: the words before a brand's name in titles of listings that are not
//!   that brand and rarely counterfeit ("case *for* iPhone"): "for X" is not "is X".

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

/// Lookups by folded text happen for every word of every listing: a fast hash.
type FastMap<V> = HashMap<String, V, Xxh3DefaultBuilder>;
use unicode_normalization::UnicodeNormalization;

/// Version of `brands.json`; loaders refuse any other.
pub const BRANDS_FORMAT: &str = "knockoff-brands-1";
/// Names shorter than this (folded, without spaces) are matched in the brand field only: in
/// free text two letters are too often something else.
const MIN_TEXT_NAME_CHARS: usize = 3;
/// Aliases are words of at least this many characters (or a pair of CJK characters).
const MIN_ALIAS_CHARS: usize = 3;
/// Longest run of words a name is looked for in ("r o l e x" is five words).
const MAX_NAME_WORDS: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum BrandError {
    #[error("brands: format `{found}`, this knockoff reads `{BRANDS_FORMAT}`")]
    Format { found: String },
    #[error("brands: {0}")]
    Invalid(String),
}

/// Where in the listing a brand was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BrandSource {
    Field,
    Title,
    Description,
}

impl BrandSource {
    /// The name JSON and `scores.csv` use.
    pub fn as_str(self) -> &'static str {
        match self {
            BrandSource::Field => "field",
            BrandSource::Title => "title",
            BrandSource::Description => "description",
        }
    }
}

/// How the text found matched the brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The name as it is (up to case, accents and spacing between its words).
    Exact,
    /// Letters written apart: "r o l e x".
    Spaced,
    /// Digits or symbols for letters: "r0lex", "ch@nel".
    Leet,
    /// Full-width forms: "ＲＯＬＥＸ".
    FullWidth,
    /// Letters of other scripts that look the same: Cyrillic "о" for Latin "o".
    Homoglyph,
    /// A term that training listings of the brand use ("submariner", a Chinese name).
    Alias,
    /// A brand registered by its rights holder, by one of its registered names.
    Registered,
}

impl MatchKind {
    /// The name JSON and `scores.csv` use.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Spaced => "spaced",
            MatchKind::Leet => "leet",
            MatchKind::FullWidth => "full_width",
            MatchKind::Homoglyph => "homoglyph",
            MatchKind::Alias => "alias",
            MatchKind::Registered => "registered",
        }
    }
}

/// Whether the listing claims to be the brand or names it as what it fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// The listing is (or pretends to be) the brand's product.
    Is,
    /// An accessory or part for the brand's products ("case for iPhone").
    For,
}

impl Relation {
    /// The name JSON and `scores.csv` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Is => "is",
            Relation::For => "for",
        }
    }
}

/// The brand a listing claims or refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BrandMatch {
    /// The brand's name as training listings (or its registration) write it.
    pub name: String,
    pub found_in: BrandSource,
    pub how: MatchKind,
    /// The listing's own text that matched, as written.
    pub text: String,
    pub relation: Relation,
    /// Whether the brand is in the brand registry rather than learned from training.
    #[serde(default)]
    pub registered: bool,
}

impl BrandMatch {
    /// "Rolex (title has \"r0lex\", spelled with digits for letters)", for reasons.
    pub fn describe(&self) -> String {
        let place = match self.found_in {
            BrandSource::Field => "brand field is",
            BrandSource::Title => "title has",
            BrandSource::Description => "description has",
        };
        let how = match self.how {
            MatchKind::Exact | MatchKind::Registered => "",
            MatchKind::Spaced => ", letters spaced out",
            MatchKind::Leet => ", digits or symbols for letters",
            MatchKind::FullWidth => ", in full-width letters",
            MatchKind::Homoglyph => ", in look-alike letters of another script",
            MatchKind::Alias => ", a term of its listings",
        };
        format!("{}: {place} \"{}\"{how}", self.name, self.text)
    }
}

/// How target brands, aliases and accessory markers are learned; stored with the index.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BrandLearning {
    /// A brand is a counterfeiting target with at least this many training listings...
    pub min_listings: usize,
    /// ...of which at least this many...
    pub min_counterfeits: usize,
    /// ...and this share are counterfeit (minor brands with a stray mislabelled row are not).
    pub min_counterfeit_share: f64,
    /// A title term is an alias of a brand when at least this many listings with a brand field
    /// use it...
    pub alias_min_listings: usize,
    /// ...and at least this share of them name that brand.
    pub alias_min_share: f64,
    /// A word before brand names is an accessory marker when it precedes at least this many...
    pub marker_min_listings: usize,
    /// ...whose counterfeit rate is at most this fraction of all title mentions' rate.
    pub marker_max_relative_rate: f64,
}

impl Default for BrandLearning {
    fn default() -> Self {
        BrandLearning {
            min_listings: 30,
            min_counterfeits: 10,
            min_counterfeit_share: 0.05,
            alias_min_listings: 10,
            alias_min_share: 0.9,
            marker_min_listings: 20,
            marker_max_relative_rate: 0.35,
        }
    }
}

/// A brand the index knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownBrand {
    /// Display name: the brand field's most common spelling in training.
    pub name: String,
    pub listings: usize,
    pub counterfeits: usize,
    /// Other names (registered aliases); training brands have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub registered: bool,
}

/// On-disk shape of `brands.json`.
#[derive(Serialize, Deserialize)]
struct Stored {
    format: String,
    learning: BrandLearning,
    brands: Vec<KnownBrand>,
    /// Learned alias term → brand name.
    aliases: std::collections::BTreeMap<String, String>,
    markers: Vec<String>,
}

/// Target brands with their names, aliases and accessory markers, ready to identify.
#[derive(Debug, Clone, PartialEq)]
pub struct BrandIndex {
    learning: BrandLearning,
    brands: Vec<KnownBrand>,
    /// Folded name without spaces → brand.
    names: FastMap<u32>,
    /// Learned alias term → brand.
    aliases: FastMap<u32>,
    markers: HashSet<String>,
    longest_name: usize,
}

// ---------------------------------------------------------------------------------------
// Folding text into words

/// How a word's letters were written, beyond case and accents.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Disguise {
    full_width: bool,
    homoglyph: bool,
}

/// A folded word (or one CJK character) and where it stands in the original text.
#[derive(Debug, Clone, PartialEq)]
struct Word {
    text: String,
    /// The word with digits and symbols read as letters, when it mixes the two.
    leet: Option<String>,
    /// The same with "1" read as "i" rather than "l", when it has one.
    leet_alt: Option<String>,
    start: usize,
    end: usize,
    cjk: bool,
    disguise: Disguise,
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF
        | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Folds one character: lower case, no accents, full-width and look-alike letters to the
/// letters they show. Returns what it became and how it was disguised.
fn fold_char(c: char, out: &mut String) -> Disguise {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return Disguise::default();
    }
    // Punctuation and symbols (full-width ones too) only separate words.
    if !c.is_alphanumeric() {
        out.push(' ');
        return Disguise::default();
    }
    // Chinese, Japanese and Korean characters have no case, accents or look-alikes to undo.
    if is_cjk(c) && !(0xF900..=0xFAFF).contains(&(c as u32)) {
        out.push(c);
        return Disguise::default();
    }
    let mut disguise = Disguise::default();
    let compat: String = std::iter::once(c).nfkc().collect();
    let base: String = compat
        .nfd()
        .filter(|d| !unicode_normalization::char::is_combining_mark(*d))
        .collect();
    if base.is_ascii() {
        // Full-width forms change under compatibility normalisation; accented letters don't.
        disguise.full_width = compat.chars().any(|d| d.is_ascii()) && compat != c.to_string();
        out.extend(base.chars().map(|d| d.to_ascii_lowercase()));
        return disguise;
    }
    let lower = base.to_lowercase();
    if lower.chars().all(is_cjk) {
        out.push_str(&lower);
        return disguise;
    }
    let skeleton: String = unicode_security::skeleton(&lower)
        .filter(|d| !unicode_normalization::char::is_combining_mark(*d))
        .collect();
    if skeleton.is_ascii() && skeleton.chars().all(|d| d.is_ascii_alphanumeric()) {
        disguise.homoglyph = true;
        out.extend(skeleton.chars().map(|d| d.to_ascii_lowercase()));
    } else {
        out.push_str(&lower);
    }
    disguise
}

/// Digits and symbols sellers write for letters ("1" and "|" also stand for "i": see
/// [`leet_alternative`]).
fn leet_letter(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '!' => 'i',
        '1' | '|' => 'l',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        _ => return None,
    })
}

/// The other reading of a leet word: "1" and "|" as "i" ("n1ke"), not "l" ("r0l3x").
fn leet_alternative(leet: &str, original: &str) -> Option<String> {
    original.contains(['1', '|']).then(|| {
        original
            .chars()
            .zip(leet.chars())
            .map(|(o, l)| if matches!(o, '1' | '|') { 'i' } else { l })
            .collect()
    })
}

/// Characters that belong to a word: letters, digits, and the symbols used as letters.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '@' | '$' | '!' | '|')
}

/// Splits text into folded words and single CJK characters.
fn words(text: &str) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    let mut current: Option<Word> = None;
    let mut folded = String::new();
    let flush = |current: &mut Option<Word>, out: &mut Vec<Word>| {
        if let Some(mut word) = current.take() {
            let trimmed = word.text.trim_matches(|c: char| !c.is_alphanumeric());
            if trimmed.is_empty() {
                return;
            }
            let has_alpha = word.text.chars().any(char::is_alphabetic);
            let leety = word.text.chars().any(|c| leet_letter(c).is_some());
            if has_alpha && leety {
                let leet: String = word
                    .text
                    .chars()
                    .map(|c| leet_letter(c).unwrap_or(c))
                    .collect();
                word.leet_alt = leet_alternative(&leet, &word.text);
                word.leet = Some(leet);
            }
            if trimmed.len() != word.text.len() {
                word.text = trimmed.to_string();
            }
            out.push(word);
        }
    };
    for (start, c) in text.char_indices() {
        let end = start + c.len_utf8();
        folded.clear();
        let disguise = fold_char(c, &mut folded);
        for f in folded.chars() {
            if is_cjk(f) {
                flush(&mut current, &mut out);
                out.push(Word {
                    text: f.to_string(),
                    leet: None,
                    leet_alt: None,
                    start,
                    end,
                    cjk: true,
                    disguise,
                });
            } else if is_word_char(f) {
                let word = current.get_or_insert_with(|| Word {
                    text: String::new(),
                    leet: None,
                    leet_alt: None,
                    start,
                    end,
                    cjk: false,
                    disguise: Disguise::default(),
                });
                word.text.push(f);
                word.end = end;
                word.disguise.full_width |= disguise.full_width;
                word.disguise.homoglyph |= disguise.homoglyph;
            } else {
                flush(&mut current, &mut out);
            }
        }
    }
    flush(&mut current, &mut out);
    out
}

/// A name folded as listing text is, without spaces: "Louis Vuitton" → "louisvuitton".
pub fn compact_name(name: &str) -> String {
    words(name).into_iter().map(|w| w.text).collect()
}

// ---------------------------------------------------------------------------------------
// Identification

/// A name or alias found in text, before its relation is known.
#[derive(Debug, Clone, PartialEq)]
struct Found {
    brand: u32,
    how: MatchKind,
    /// Word positions `[first, last]`.
    first: usize,
    last: usize,
}

impl BrandIndex {
    /// An index that knows no brand (models trained before brand identification, tests).
    pub fn empty() -> BrandIndex {
        BrandIndex::from_parts(BrandLearning::default(), Vec::new(), Vec::new(), Vec::new())
    }

    fn from_parts(
        learning: BrandLearning,
        brands: Vec<KnownBrand>,
        aliases: Vec<(String, u32)>,
        markers: Vec<String>,
    ) -> BrandIndex {
        let mut names = FastMap::default();
        for (i, brand) in brands.iter().enumerate() {
            for name in std::iter::once(&brand.name).chain(&brand.aliases) {
                let key = compact_name(name);
                if !key.is_empty() {
                    names.entry(key).or_insert(i as u32);
                }
            }
        }
        let longest_name = names.keys().map(|k| k.len()).max().unwrap_or(0);
        BrandIndex {
            learning,
            brands,
            names,
            aliases: aliases.into_iter().collect(),
            markers: markers.into_iter().collect(),
            longest_name,
        }
    }

    pub fn brands(&self) -> &[KnownBrand] {
        &self.brands
    }

    pub fn learning(&self) -> &BrandLearning {
        &self.learning
    }

    pub fn aliases(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.aliases
            .iter()
            .map(|(term, &b)| (term.as_str(), self.brands[b as usize].name.as_str()))
    }

    pub fn markers(&self) -> impl Iterator<Item = &str> + '_ {
        self.markers.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.brands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.brands.is_empty()
    }

    /// The same index with more brands (the registry's): their names and aliases count as
    /// names; a registered name already taken by a learned brand keeps the learned one.
    pub fn with_registered(&self, registered: impl IntoIterator<Item = KnownBrand>) -> BrandIndex {
        let mut brands = self.brands.clone();
        brands.extend(registered.into_iter().map(|mut b| {
            b.registered = true;
            b
        }));
        let aliases = self.aliases.iter().map(|(t, &b)| (t.clone(), b)).collect();
        let markers = self.markers.iter().cloned().collect();
        BrandIndex::from_parts(self.learning, brands, aliases, markers)
    }

    /// The brand a listing claims or refers to, if it names one the index knows.
    pub fn identify(
        &self,
        brand_field: &str,
        title: &str,
        description: &str,
    ) -> Option<BrandMatch> {
        if self.brands.is_empty() {
            return None;
        }
        let field_words = words(brand_field);
        if let Some(found) = self.find_field(&field_words) {
            // Accessory sellers often select the brand their product fits: "case for Apple
            // iPhone" with brand Apple is still an accessory when the title only says "for".
            let title_words = words(title);
            let mentions: Vec<Found> = self
                .find_names(&title_words, false)
                .into_iter()
                .filter(|f| f.brand == found.brand)
                .collect();
            let relation = if !mentions.is_empty()
                && mentions
                    .iter()
                    .all(|f| self.relation(&title_words, f) == Relation::For)
            {
                Relation::For
            } else {
                Relation::Is
            };
            return Some(self.describe(
                found,
                &field_words,
                brand_field,
                BrandSource::Field,
                relation,
            ));
        }
        // A brand field naming another brand outranks an alias, but not the name itself:
        // "Hasbro" + "Star Wars ..." is Hasbro's; "Generic" + "Rolex Submariner" claims Rolex.
        let field_named = !field_words.is_empty();
        for (text, source) in [
            (title, BrandSource::Title),
            (description, BrandSource::Description),
        ] {
            let text_words = words(text);
            let names = self.find_names(&text_words, source == BrandSource::Title && !field_named);
            if let Some(found) = names.first().cloned() {
                // Any claim ("Rolex ... for Rolex") outranks an accessory mention.
                let claim = names
                    .iter()
                    .find(|f| self.relation(&text_words, f) == Relation::Is);
                let (found, relation) = match claim {
                    Some(claim) => (claim.clone(), Relation::Is),
                    None => (found, Relation::For),
                };
                return Some(self.describe(found, &text_words, text, source, relation));
            }
        }
        None
    }

    fn relation(&self, words: &[Word], found: &Found) -> Relation {
        match found.first.checked_sub(1).map(|i| &words[i]) {
            Some(before) if self.markers.contains(&before.text) => Relation::For,
            _ => Relation::Is,
        }
    }

    fn describe(
        &self,
        found: Found,
        words: &[Word],
        text: &str,
        source: BrandSource,
        relation: Relation,
    ) -> BrandMatch {
        let brand = &self.brands[found.brand as usize];
        let how = if brand.registered && found.how == MatchKind::Exact {
            MatchKind::Registered
        } else {
            found.how
        };
        BrandMatch {
            name: brand.name.clone(),
            found_in: source,
            how,
            text: text[words[found.first].start..words[found.last].end].to_string(),
            relation,
            registered: brand.registered,
        }
    }

    fn find_field(&self, words: &[Word]) -> Option<Found> {
        if words.is_empty() {
            return None;
        }
        let all: String = words.iter().map(|w| w.text.as_str()).collect();
        let leet: String = words
            .iter()
            .map(|w| w.leet.as_deref().unwrap_or(&w.text))
            .collect();
        let disguise = disguise_of(words);
        let last = words.len() - 1;
        if let Some(&brand) = self.names.get(&all) {
            return Some(Found {
                brand,
                how: disguise.unwrap_or(MatchKind::Exact),
                first: 0,
                last,
            });
        }
        let alt: String = words
            .iter()
            .map(|w| {
                w.leet_alt
                    .as_deref()
                    .or(w.leet.as_deref())
                    .unwrap_or(&w.text)
            })
            .collect();
        self.names
            .get(&leet)
            .or_else(|| self.names.get(&alt))
            .map(|&brand| Found {
                brand,
                how: MatchKind::Leet,
                first: 0,
                last,
            })
    }

    /// Names (and, when `with_aliases`, aliases) in text, in order of position.
    fn find_names(&self, words: &[Word], with_aliases: bool) -> Vec<Found> {
        let mut found = Vec::new();
        let mut plain = String::new();
        let mut leet = String::new();
        let mut alt = String::new();
        let mut i = 0;
        while i < words.len() {
            plain.clear();
            leet.clear();
            alt.clear();
            let mut best: Option<Found> = None;
            let mut any_leet = false;
            for j in i..words.len().min(i + MAX_NAME_WORDS) {
                let word = &words[j];
                plain.push_str(&word.text);
                leet.push_str(word.leet.as_deref().unwrap_or(&word.text));
                alt.push_str(
                    word.leet_alt
                        .as_deref()
                        .or(word.leet.as_deref())
                        .unwrap_or(&word.text),
                );
                any_leet |= word.leet.is_some();
                if plain.len() > self.longest_name && leet.len() > self.longest_name {
                    break;
                }
                if plain.len() < MIN_TEXT_NAME_CHARS {
                    continue;
                }
                let spaced = j > i
                    && words[i..=j]
                        .iter()
                        .all(|w| !w.cjk && w.text.chars().count() == 1);
                let hit = match self.names.get(&plain) {
                    Some(&brand) => Some((brand, None)),
                    None if any_leet => self
                        .names
                        .get(&leet)
                        .or_else(|| self.names.get(&alt))
                        .map(|&b| (b, Some(MatchKind::Leet))),
                    None => None,
                };
                if let Some((brand, leet_kind)) = hit {
                    let how = leet_kind
                        .or(disguise_of(&words[i..=j]))
                        .unwrap_or(if spaced {
                            MatchKind::Spaced
                        } else {
                            MatchKind::Exact
                        });
                    best = Some(Found {
                        brand,
                        how,
                        first: i,
                        last: j,
                    });
                }
            }
            if best.is_none() && with_aliases {
                best = self.find_alias(words, i);
            }
            match best {
                Some(f) => {
                    i = f.last + 1;
                    found.push(f);
                }
                None => i += 1,
            }
        }
        // An alias only stands in when no name is written ("strap for Rolex Submariner"
        // is about Rolex as written, not about the alias after it).
        if found.iter().any(|f| f.how != MatchKind::Alias) {
            found.retain(|f| f.how != MatchKind::Alias);
        }
        found
    }

    fn find_alias(&self, words: &[Word], i: usize) -> Option<Found> {
        let word = &words[i];
        if word.cjk {
            let next = words.get(i + 1).filter(|n| n.cjk && n.start == word.end)?;
            let pair = format!("{}{}", word.text, next.text);
            return self.aliases.get(&pair).map(|&brand| Found {
                brand,
                how: MatchKind::Alias,
                first: i,
                last: i + 1,
            });
        }
        let term = word.leet.as_deref().unwrap_or(&word.text);
        self.aliases
            .get(&word.text)
            .or_else(|| self.aliases.get(term))
            .map(|&brand| Found {
                brand,
                how: MatchKind::Alias,
                first: i,
                last: i,
            })
    }
}

fn disguise_of(words: &[Word]) -> Option<MatchKind> {
    if words.iter().any(|w| w.disguise.homoglyph) {
        Some(MatchKind::Homoglyph)
    } else if words.iter().any(|w| w.disguise.full_width) {
        Some(MatchKind::FullWidth)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------
// Learning

/// One training listing as the learner sees it.
#[derive(Debug, Clone, Copy)]
pub struct BrandExample<'a> {
    pub brand: &'a str,
    pub title: &'a str,
    pub counterfeit: bool,
}

#[derive(Default)]
struct FieldCount {
    listings: usize,
    counterfeits: usize,
    spellings: HashMap<String, usize>,
}

/// Alias candidates: a term's listings with a brand field, and how many name each target.
#[derive(Default)]
struct TermCount {
    branded: usize,
    by_brand: HashMap<u32, usize>,
}

/// Words before title names: listings and counterfeits among them.
#[derive(Default)]
struct MarkerCount {
    listings: usize,
    counterfeits: usize,
}

impl BrandIndex {
    /// Learns target brands, aliases and accessory markers from labelled training listings.
    pub fn fit(examples: &[BrandExample<'_>], learning: BrandLearning) -> BrandIndex {
        let brands = learn_targets(examples, &learning);
        let base = BrandIndex::from_parts(learning, brands, Vec::new(), Vec::new());
        let field_brand: Vec<Option<u32>> = examples
            .iter()
            .map(|e| base.find_field(&words(e.brand)).map(|f| f.brand))
            .collect();
        let aliases = learn_aliases(&base, examples, &field_brand, &learning);
        let markers = learn_markers(&base, examples, &learning);
        BrandIndex::from_parts(learning, base.brands, aliases, markers)
    }
}

fn learn_targets(examples: &[BrandExample<'_>], learning: &BrandLearning) -> Vec<KnownBrand> {
    let mut fields: HashMap<String, FieldCount> = HashMap::new();
    for e in examples {
        let key = compact_name(e.brand);
        if key.chars().count() < 2 {
            continue;
        }
        let count = fields.entry(key).or_default();
        count.listings += 1;
        count.counterfeits += usize::from(e.counterfeit);
        *count
            .spellings
            .entry(e.brand.trim().to_string())
            .or_default() += 1;
    }
    let mut brands: Vec<KnownBrand> = fields
        .into_values()
        .filter(|c| {
            c.listings >= learning.min_listings
                && c.counterfeits >= learning.min_counterfeits
                && c.counterfeits as f64 >= learning.min_counterfeit_share * c.listings as f64
        })
        .map(|c| {
            let name = c
                .spellings
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                .map(|(s, _)| s)
                .unwrap_or_default();
            KnownBrand {
                name,
                listings: c.listings,
                counterfeits: c.counterfeits,
                aliases: Vec::new(),
                registered: false,
            }
        })
        .collect();
    brands.sort_by(|a, b| {
        b.listings
            .cmp(&a.listings)
            .then_with(|| a.name.cmp(&b.name))
    });
    brands
}

/// Terms of a title an alias may be: words with letters, and adjacent CJK pairs.
fn alias_terms(words: &[Word]) -> HashSet<String> {
    let mut terms = HashSet::new();
    for (i, w) in words.iter().enumerate() {
        if w.cjk {
            if let Some(next) = words.get(i + 1).filter(|n| n.cjk && n.start == w.end) {
                terms.insert(format!("{}{}", w.text, next.text));
            }
        } else if w.text.chars().count() >= MIN_ALIAS_CHARS
            && w.text.chars().any(char::is_alphabetic)
        {
            terms.insert(w.leet.clone().unwrap_or_else(|| w.text.clone()));
        }
    }
    terms
}

fn learn_aliases(
    base: &BrandIndex,
    examples: &[BrandExample<'_>],
    field_brand: &[Option<u32>],
    learning: &BrandLearning,
) -> Vec<(String, u32)> {
    let mut counts: HashMap<String, TermCount> = HashMap::new();
    for (e, brand) in examples.iter().zip(field_brand) {
        if e.brand.trim().is_empty() {
            continue;
        }
        for term in alias_terms(&words(e.title)) {
            let count = counts.entry(term).or_default();
            count.branded += 1;
            if let Some(b) = brand {
                *count.by_brand.entry(*b).or_default() += 1;
            }
        }
    }
    let mut aliases: Vec<(String, u32)> = counts
        .into_iter()
        .filter(|(term, _)| !base.names.contains_key(term))
        .filter_map(|(term, count)| {
            let (&brand, &n) = count
                .by_brand
                .iter()
                .max_by_key(|(b, n)| (**n, u32::MAX - **b))?;
            let share = n as f64 / count.branded as f64;
            (n >= learning.alias_min_listings && share >= learning.alias_min_share)
                .then_some((term, brand))
        })
        .collect();
    aliases.sort();
    aliases
}

fn learn_markers(
    base: &BrandIndex,
    examples: &[BrandExample<'_>],
    learning: &BrandLearning,
) -> Vec<String> {
    let mut before: HashMap<String, MarkerCount> = HashMap::new();
    let (mut mentions, mut mention_counterfeits) = (0usize, 0usize);
    for e in examples {
        let title = words(e.title);
        let names = base.find_names(&title, false);
        if names.is_empty() {
            continue;
        }
        mentions += 1;
        mention_counterfeits += usize::from(e.counterfeit);
        let mut seen = HashSet::new();
        for found in names {
            let Some(prev) = found.first.checked_sub(1).map(|i| &title[i]) else {
                continue;
            };
            if !seen.insert(prev.text.clone()) {
                continue;
            }
            let count = before.entry(prev.text.clone()).or_default();
            count.listings += 1;
            count.counterfeits += usize::from(e.counterfeit);
        }
    }
    let base_rate = mention_counterfeits as f64 / mentions.max(1) as f64;
    let mut markers: Vec<String> = before
        .into_iter()
        .filter(|(word, c)| {
            !word.chars().all(|ch| ch.is_ascii_digit())
                && c.listings >= learning.marker_min_listings
                && (c.counterfeits as f64 / c.listings as f64)
                    <= learning.marker_max_relative_rate * base_rate
        })
        .map(|(word, _)| word)
        .collect();
    markers.sort();
    markers
}

// ---------------------------------------------------------------------------------------
// Storage

impl BrandIndex {
    pub fn to_json(&self) -> serde_json::Result<String> {
        let stored = Stored {
            format: BRANDS_FORMAT.to_string(),
            learning: self.learning,
            brands: self
                .brands
                .iter()
                .filter(|b| !b.registered)
                .cloned()
                .collect(),
            aliases: self
                .aliases()
                .map(|(t, b)| (t.to_string(), b.to_string()))
                .collect(),
            markers: {
                let mut m: Vec<String> = self.markers.iter().cloned().collect();
                m.sort();
                m
            },
        };
        serde_json::to_string_pretty(&stored)
    }

    pub fn from_json(text: &str) -> Result<BrandIndex, BrandError> {
        let stored: Stored =
            serde_json::from_str(text).map_err(|e| BrandError::Invalid(e.to_string()))?;
        if stored.format != BRANDS_FORMAT {
            return Err(BrandError::Format {
                found: stored.format,
            });
        }
        let by_name: HashMap<&str, u32> = stored
            .brands
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.as_str(), i as u32))
            .collect();
        let mut aliases = Vec::with_capacity(stored.aliases.len());
        for (term, brand) in &stored.aliases {
            let Some(&b) = by_name.get(brand.as_str()) else {
                return Err(BrandError::Invalid(format!(
                    "alias `{term}` names brand `{brand}`, which is not in the list"
                )));
            };
            aliases.push((term.clone(), b));
        }
        Ok(BrandIndex::from_parts(
            stored.learning,
            stored.brands,
            aliases,
            stored.markers,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example<'a>(brand: &'a str, title: &'a str, counterfeit: bool) -> BrandExample<'a> {
        BrandExample {
            brand,
            title,
            counterfeit,
        }
    }

    /// A small training set: Rolex and Nike are targets, "Cedar Home" never counterfeited.
    fn index() -> BrandIndex {
        let mut rows = Vec::new();
        for i in 0..40 {
            let fake = i % 3 == 0;
            rows.push(example("Rolex", "Rolex Submariner 41mm 劳力士 watch", fake));
            rows.push(example("Nike", "Nike Air Max running shoes", fake));
            rows.push(example("Cedar Home", "cotton towel set", false));
            rows.push(example("", "phone case for Rolex fans", false));
            rows.push(example("Strapco", "strap for Rolex watches", false));
            rows.push(example("Lacecraft", "laces for Nike shoes", false));
        }
        BrandIndex::fit(
            &rows,
            BrandLearning {
                marker_min_listings: 10,
                ..Default::default()
            },
        )
    }

    fn found(
        index: &BrandIndex,
        field: &str,
        title: &str,
    ) -> Option<(String, BrandSource, MatchKind, String, Relation)> {
        index
            .identify(field, title, "")
            .map(|m| (m.name, m.found_in, m.how, m.text, m.relation))
    }

    #[test]
    fn targets_need_counterfeits_and_listings() {
        let index = index();
        let names: Vec<&str> = index.brands().iter().map(|b| b.name.as_str()).collect();
        assert!(
            names.contains(&"Rolex") && names.contains(&"Nike"),
            "{names:?}"
        );
        assert!(
            !names.contains(&"Cedar Home"),
            "a never-counterfeited brand is no target"
        );
        assert!(!names.contains(&"Strapco"));
    }

    #[test]
    fn the_brand_field_is_found_first_whatever_its_spelling() {
        let index = index();
        let m = found(&index, "ROLEX", "watch").unwrap();
        assert_eq!(
            (m.0.as_str(), m.1, m.2),
            ("Rolex", BrandSource::Field, MatchKind::Exact)
        );
        let m = found(&index, "R0LEX", "watch").unwrap();
        assert_eq!((m.1, m.2), (BrandSource::Field, MatchKind::Leet));
    }

    #[test]
    fn disguised_names_in_the_title_are_found_and_named() {
        let index = index();
        let cases = [
            ("Men's r0lex automatic", MatchKind::Leet, "r0lex"),
            ("R O L E X watch", MatchKind::Spaced, "R O L E X"),
            ("ＲＯＬＥＸ watch", MatchKind::FullWidth, "ＲＯＬＥＸ"),
            // Cyrillic о and е.
            ("Rоlеx watch", MatchKind::Homoglyph, "Rоlеx"),
            ("N!ke sneakers", MatchKind::Leet, "N!ke"),
            ("Nike Air", MatchKind::Exact, "Nike"),
        ];
        for (title, how, text) in cases {
            let m = found(&index, "", title).unwrap_or_else(|| panic!("{title}: not found"));
            assert_eq!(
                (m.2, m.3.as_str(), m.4),
                (how, text, Relation::Is),
                "{title}"
            );
        }
    }

    #[test]
    fn aliases_are_learned_from_the_brands_own_listings() {
        let index = index();
        let m = found(&index, "", "automatic submariner 40mm").unwrap();
        assert_eq!(
            (m.0.as_str(), m.2, m.3.as_str()),
            ("Rolex", MatchKind::Alias, "submariner")
        );
        let m = found(&index, "", "精品劳力士手表").unwrap();
        assert_eq!((m.0.as_str(), m.2), ("Rolex", MatchKind::Alias));
        // Another brand in the field outranks an alias, not a name.
        assert_eq!(found(&index, "Hornby", "submariner model kit"), None);
        assert_eq!(
            found(&index, "Generic", "Rolex Submariner").unwrap().0,
            "Rolex"
        );
    }

    #[test]
    fn for_x_is_told_from_is_x() {
        let index = index();
        assert!(
            index.markers().any(|m| m == "for"),
            "{:?}",
            index.markers().collect::<Vec<_>>()
        );
        let m = found(&index, "", "silicone strap for Rolex Submariner").unwrap();
        assert_eq!((m.0.as_str(), m.4), ("Rolex", Relation::For));
        let m = found(&index, "Rolex", "silicone strap for Rolex").unwrap();
        assert_eq!(
            (m.1, m.4),
            (BrandSource::Field, Relation::For),
            "field of the brand it fits"
        );
        let m = found(&index, "", "Rolex Submariner with strap for Rolex").unwrap();
        assert_eq!(m.4, Relation::Is, "a claim outranks an accessory mention");
    }

    #[test]
    fn unknown_brands_and_plain_text_identify_nothing() {
        let index = index();
        assert_eq!(found(&index, "Cedar Home", "cotton towel set"), None);
        assert_eq!(found(&index, "", "Hornby coach R4410A"), None);
        assert_eq!(BrandIndex::empty().identify("Rolex", "Rolex", ""), None);
    }

    #[test]
    fn registered_brands_are_found_by_all_their_names() {
        let index = index().with_registered([KnownBrand {
            name: "Verdanne".into(),
            listings: 0,
            counterfeits: 0,
            aliases: vec!["维丹妮".into()],
            registered: true,
        }]);
        let m = index.identify("", "V3rdanne Aurora tote", "").unwrap();
        assert_eq!(
            (m.name.as_str(), m.how, m.registered),
            ("Verdanne", MatchKind::Leet, true)
        );
        let m = index.identify("", "正品维丹妮托特包", "").unwrap();
        assert_eq!(
            (m.name.as_str(), m.how),
            ("Verdanne", MatchKind::Registered)
        );
    }

    #[test]
    fn the_index_survives_json_and_refuses_a_wrong_format() {
        let index = index();
        let back = BrandIndex::from_json(&index.to_json().unwrap()).unwrap();
        assert_eq!(back, index);
        let wrong = index
            .to_json()
            .unwrap()
            .replace(BRANDS_FORMAT, "knockoff-brands-0");
        assert!(matches!(
            BrandIndex::from_json(&wrong),
            Err(BrandError::Format { .. })
        ));
    }

    #[test]
    fn folding_never_panics_on_odd_text() {
        let index = index();
        for text in [
            "",
            " ",
            "!!!",
            "@$|",
            "\u{301}",
            "ｒ\u{301}",
            "🙂 rolex 🙂",
            "Ⅻ ℌ 𝐑𝐨𝐥𝐞𝐱",
        ] {
            let _ = index.identify(text, text, text);
        }
        assert_eq!(compact_name("Louis  Vuitton"), "louisvuitton");
        assert_eq!(compact_name("Hermès"), "hermes");
    }
}
