//! Learning target brands, aliases and accessory markers from labelled training listings
//! (counted on all cores; every result is a sum, so the same whatever the split).

use super::fold::{words, Word};
use super::*;
use rayon::prelude::*;

/// One training listing as the learner sees it.
#[derive(Debug, Clone, Copy)]
pub struct BrandExample<'a> {
    pub brand: &'a str,
    pub title: &'a str,
    /// The marketplace category, as the listing gives it.
    pub category: &'a str,
    pub counterfeit: bool,
}

#[derive(Default)]
pub(super) struct FieldCount {
    listings: usize,
    counterfeits: usize,
    spellings: HashMap<String, usize>,
}

/// Alias candidates: a term's listings with a brand field, and how many name each target.
#[derive(Default)]
pub(super) struct TermCount {
    branded: usize,
    by_brand: HashMap<u32, usize>,
}

/// Words before title names: listings and counterfeits among them.
#[derive(Default)]
pub(super) struct MarkerCount {
    listings: usize,
    counterfeits: usize,
}

impl BrandIndex {
    /// Learns target brands, aliases and accessory markers from labelled training listings.
    pub fn fit(examples: &[BrandExample<'_>], learning: BrandLearning) -> BrandIndex {
        let brands = learn_targets(examples, &learning);
        let base = BrandIndex::from_parts(learning, brands, Vec::new(), Vec::new());
        let field_brand: Vec<Option<u32>> = examples
            .par_iter()
            .map(|e| base.find_field(&words(e.brand)).map(|f| f.brand))
            .collect();
        let aliases = learn_aliases(&base, examples, &field_brand, &learning);
        let markers = learn_markers(&base, examples, &learning);
        let mut index = BrandIndex::from_parts(learning, base.brands, aliases, markers);
        learn_categories(&mut index, examples);
        index
    }
}

/// The categories each target's claims were listed in: every training listing that the
/// index reads as the brand itself (not an accessory) adds its category, so no training
/// listing is ever a namesake (see [`BrandIndex::is_namesake`]).
fn learn_categories(index: &mut BrandIndex, examples: &[BrandExample<'_>]) {
    let n = index.brands.len();
    let shared: &BrandIndex = index;
    let categories: Vec<HashSet<String>> = examples
        .par_iter()
        .fold(
            || vec![HashSet::new(); n],
            |mut categories: Vec<HashSet<String>>, e| {
                let category = crate::reference::group_key(e.category);
                if category.is_empty() {
                    return categories;
                }
                let claimed = shared
                    .identify(e.brand, e.title, "")
                    .filter(|m| m.relation == Relation::Is)
                    .and_then(|m| shared.by_name.get(&m.name).copied());
                if let Some(i) = claimed {
                    categories[i as usize].insert(category);
                }
                categories
            },
        )
        .reduce(
            || vec![HashSet::new(); n],
            |mut a, b| {
                for (into, from) in a.iter_mut().zip(b) {
                    into.extend(from);
                }
                a
            },
        );
    for (brand, seen) in index.brands.iter_mut().zip(categories) {
        brand.categories = seen.into_iter().collect();
        brand.categories.sort();
    }
}

pub(super) fn learn_targets(
    examples: &[BrandExample<'_>],
    learning: &BrandLearning,
) -> Vec<KnownBrand> {
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
                categories: Vec::new(),
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
pub(super) fn alias_terms(words: &[Word]) -> HashSet<String> {
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

pub(super) fn learn_aliases(
    base: &BrandIndex,
    examples: &[BrandExample<'_>],
    field_brand: &[Option<u32>],
    learning: &BrandLearning,
) -> Vec<(String, u32)> {
    let counts: HashMap<String, TermCount> = examples
        .par_iter()
        .zip(field_brand)
        .fold(
            HashMap::new,
            |mut counts: HashMap<String, TermCount>, (e, brand)| {
                if e.brand.trim().is_empty() {
                    return counts;
                }
                for term in alias_terms(&words(e.title)) {
                    let count = counts.entry(term).or_default();
                    count.branded += 1;
                    if let Some(b) = brand {
                        *count.by_brand.entry(*b).or_default() += 1;
                    }
                }
                counts
            },
        )
        .reduce(HashMap::new, |mut a, b| {
            for (term, count) in b {
                let into = a.entry(term).or_default();
                into.branded += count.branded;
                for (brand, n) in count.by_brand {
                    *into.by_brand.entry(brand).or_default() += n;
                }
            }
            a
        });
    // A word of a longer name ("north" of "The North Face") is part of that name, which the
    // name matcher finds whole; on its own it is an ordinary word, not a name.
    let name_words: HashSet<String> = base
        .brands
        .iter()
        .flat_map(|b| words(&b.name))
        .map(|w| w.text)
        .collect();
    let mut aliases: Vec<(String, u32)> = counts
        .into_iter()
        .filter(|(term, _)| !base.names.contains_key(term) && !name_words.contains(term))
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

pub(super) fn learn_markers(
    base: &BrandIndex,
    examples: &[BrandExample<'_>],
    learning: &BrandLearning,
) -> Vec<String> {
    let (before, mentions, mention_counterfeits) = examples
        .par_iter()
        .fold(
            || (HashMap::<String, MarkerCount>::new(), 0usize, 0usize),
            |(mut before, mut mentions, mut mention_counterfeits), e| {
                let title = words(e.title);
                let names = base.find_names(&title, false);
                if names.is_empty() {
                    return (before, mentions, mention_counterfeits);
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
                (before, mentions, mention_counterfeits)
            },
        )
        .reduce(
            || (HashMap::new(), 0, 0),
            |(mut a, am, ac), (b, bm, bc)| {
                for (word, count) in b {
                    let into = a.entry(word).or_default();
                    into.listings += count.listings;
                    into.counterfeits += count.counterfeits;
                }
                (a, am + bm, ac + bc)
            },
        );
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
