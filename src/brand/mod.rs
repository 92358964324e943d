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

/// Version of `brands.json`; loaders refuse any other.
pub const BRANDS_FORMAT: &str = "knockoff-brands-1";
/// Names shorter than this (folded, without spaces) are matched in the brand field only: in
/// free text two letters are too often something else.
const MIN_TEXT_NAME_CHARS: usize = 3;
/// Aliases are words of at least this many characters (or a pair of CJK characters).
const MIN_ALIAS_CHARS: usize = 3;
/// Longest run of words a name is looked for in ("r o l e x" is five words).
const MAX_NAME_WORDS: usize = 12;
/// A brand with at least this many training listings, none of them in a category, is not
/// claimed by a listing in that category but shares its name ("Anker" toys, "Pandora" school
/// bags): by the rule of three, under 3/60 = 5% of the brand's listings would be there at 95%
/// confidence. Fewer listings say too little about where a brand sells.
pub const NAMESAKE_MIN_LISTINGS: usize = 60;

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
    /// Whether the name was written so that it looks like the brand's but does not match it
    /// as text: spaced out, with digits or symbols, full-width or look-alike letters.
    pub fn is_disguise(self) -> bool {
        matches!(
            self,
            MatchKind::Spaced | MatchKind::Leet | MatchKind::FullWidth | MatchKind::Homoglyph
        )
    }

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
    /// Another brand of the same name: a learned brand named in a category its training
    /// listings never were in ("Anker" crayons; see [`BrandIndex::is_namesake`]).
    Namesake,
}

impl Relation {
    /// The name JSON and `scores.csv` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Is => "is",
            Relation::For => "for",
            Relation::Namesake => "namesake",
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
    /// Whether the listing writes the brand's name, in any disguise or script, rather than
    /// only a term its listings use. A product-line word ("submariner", "love", "charger")
    /// went with one brand in training, but a marketplace with a wider catalogue uses it for
    /// many: on its own it can point to a brand, not prove a claim to be it. A name written in
    /// Chinese characters is a name.
    pub fn names_brand(&self) -> bool {
        self.how != MatchKind::Alias || self.text.chars().any(fold::is_cjk)
    }

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
    /// The (normalised) categories training listings claiming the brand were listed in;
    /// empty for registered brands and models trained before categories were learned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
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
    /// Display name → brand (what a [`BrandMatch`] names).
    by_name: FastMap<u32>,
    markers: HashSet<String>,
    /// Every beginning of a key of `names` (the keys too): a run of words that begins no
    /// name ends the search from its first word, so a title costs about one lookup a word.
    name_prefixes: HashSet<String, Xxh3DefaultBuilder>,
}

mod fold;
mod identify;
mod learn;
mod store;

pub use fold::compact_name;
pub use learn::BrandExample;

#[cfg(test)]
mod tests {
    use super::*;

    fn example<'a>(brand: &'a str, title: &'a str, counterfeit: bool) -> BrandExample<'a> {
        BrandExample {
            brand,
            title,
            category: "",
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
    fn a_disguise_in_the_title_outranks_the_plain_field() {
        let index = index();
        let m = found(&index, "Rolex", "Rоlеx Submariner automatic").unwrap();
        assert_eq!(
            (m.1, m.2, m.3.as_str(), m.4),
            (
                BrandSource::Title,
                MatchKind::Homoglyph,
                "Rоlеx",
                Relation::Is
            )
        );
        // A plain name in the title leaves the field as found; an accessory's disguised
        // mention of the brand is no disguised claim.
        let m = found(&index, "Rolex", "Rolex Submariner").unwrap();
        assert_eq!((m.1, m.2), (BrandSource::Field, MatchKind::Exact));
        let m = found(&index, "Rolex", "strap for r0lex").unwrap();
        assert_eq!((m.1, m.4), (BrandSource::Field, Relation::For));
        assert!(MatchKind::Leet.is_disguise() && MatchKind::Spaced.is_disguise());
        assert!(!MatchKind::Exact.is_disguise() && !MatchKind::Alias.is_disguise());
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
    fn words_of_a_longer_name_are_no_aliases() {
        let mut rows = Vec::new();
        for i in 0..30 {
            rows.push(example(
                "The North Face",
                "The North Face Nuptse down jacket",
                i % 2 == 0,
            ));
            rows.push(example("Cedar Home", "cotton towel set", false));
        }
        let index = BrandIndex::fit(&rows, BrandLearning::default());
        // "nuptse" goes only with the brand; "north" and "face" are parts of its name.
        assert_eq!(
            found(&index, "", "nuptse jacket").map(|m| m.2),
            Some(MatchKind::Alias)
        );
        assert_eq!(found(&index, "", "face mask for the north wind"), None);
        assert_eq!(
            found(&index, "", "the north face jacket").map(|m| m.2),
            Some(MatchKind::Exact)
        );
    }

    #[test]
    fn only_names_and_cjk_aliases_name_the_brand() {
        let index = index();
        let named = |title: &str| found_match(&index, title).names_brand();
        assert!(named("Rolex Submariner"));
        assert!(named("r0lex watch"));
        assert!(
            named("精品劳力士手表"),
            "a name in Chinese characters is a name"
        );
        assert!(
            !named("automatic submariner 40mm"),
            "a product-line word is not the name"
        );
    }

    fn found_match(index: &BrandIndex, title: &str) -> BrandMatch {
        index
            .identify("", title, "")
            .unwrap_or_else(|| panic!("{title}: not found"))
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
            categories: Vec::new(),
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

    /// The search from a word stops as soon as the words so far begin no name; names of
    /// several words, and "Louis" beside the longer "Louis Vuitton", are still found
    /// in every form, anywhere in the title.
    #[test]
    fn names_of_several_words_are_found_in_every_form() {
        let brand = |name: &str| KnownBrand {
            name: name.into(),
            listings: 0,
            counterfeits: 0,
            aliases: Vec::new(),
            registered: true,
            categories: Vec::new(),
        };
        let index = index().with_registered([brand("Louis Vuitton"), brand("Louis")]);
        let cases = [
            ("Louis Vuitton tote", "Louis Vuitton", MatchKind::Registered),
            ("tote by L0uis Vu1tton", "L0uis Vu1tton", MatchKind::Leet),
            (
                "L O U I S V U I T T O N tote",
                "L O U I S V U I T T O N",
                MatchKind::Spaced,
            ),
            ("Louis tote", "Louis", MatchKind::Registered),
            ("new Rolex, Louis Vuitton strap", "Rolex", MatchKind::Exact),
        ];
        for (title, text, how) in cases {
            let m = index
                .identify("", title, "")
                .unwrap_or_else(|| panic!("{title}: not found"));
            assert_eq!((m.text.as_str(), m.how), (text, how), "{title}");
        }
        assert_eq!(index.identify("", "Vuitton tote", ""), None);
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
