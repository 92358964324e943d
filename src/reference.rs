//! Usual prices learned from genuine training listings, per brand and category, with
//! fallbacks for rare or unseen brands and categories.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

/// Usual prices by a key of joined parts (see [`joined_key`]): looked up on every listing
/// scored, so the key is one string (one allocation per lookup) and the hash a fast one.
type StatsByKey = HashMap<String, RefStat, Xxh3DefaultBuilder>;

/// Separates the parts of a joined key. Brand and category keys ([`group_key`]) and
/// pre-tokenised title words never contain a line break, so the join cannot be ambiguous.
const KEY_SEPARATOR: char = '\n';

fn joined_key(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(KEY_SEPARATOR);
        }
        key.push_str(part);
    }
    key
}

fn split_key<const N: usize>(key: String) -> [String; N] {
    let mut parts = key.splitn(N, KEY_SEPARATOR).map(str::to_string);
    std::array::from_fn(|_| parts.next().unwrap_or_default())
}

/// Which table a reference price came from, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefLevel {
    /// Same brand, category and leading title words: the usual price of this product.
    Product,
    BrandCategory,
    Brand,
    Category,
    Global,
}

impl RefLevel {
    pub const ALL: [RefLevel; 5] = [
        RefLevel::Product,
        RefLevel::BrandCategory,
        RefLevel::Brand,
        RefLevel::Category,
        RefLevel::Global,
    ];
}

/// The usual (median) base-currency price of a group and how many listings it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RefStat {
    pub median: f64,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    brand: String,
    category: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    product: String,
    median: f64,
    count: usize,
}

/// What a lookup found: the level used and the usual price there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reference<'a> {
    pub level: RefLevel,
    pub stat: RefStat,
    /// The leading title words a product-level reference was found for.
    pub phrase: &'a str,
}

/// Reference prices keyed by normalised brand and category (see [`group_key`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct ReferencePrices {
    pub min_count: usize,
    pub global: RefStat,
    /// By brand, category and product phrase.
    by_product: StatsByKey,
    /// By brand and category.
    by_brand_category: StatsByKey,
    by_brand: StatsByKey,
    by_category: StatsByKey,
    /// Brands and categories seen often enough in training to mean something to the model;
    /// `None` (no vocabulary learned) treats every value as known.
    vocabulary: Option<Vocabulary>,
}

/// Field values the model has learned about, by normalised key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    pub brands: HashSet<String>,
    pub categories: HashSet<String>,
}

impl Vocabulary {
    /// Keeps the values that occur at least `min_count` times.
    pub fn fit<'a>(
        values: impl IntoIterator<Item = (&'a str, &'a str)>,
        min_count: usize,
    ) -> Vocabulary {
        let mut brands: HashMap<String, usize> = HashMap::new();
        let mut categories: HashMap<String, usize> = HashMap::new();
        for (brand, category) in values {
            *brands.entry(group_key(brand)).or_default() += 1;
            *categories.entry(group_key(category)).or_default() += 1;
        }
        let keep = |m: HashMap<String, usize>| -> HashSet<String> {
            m.into_iter()
                .filter(|(k, n)| !k.is_empty() && *n >= min_count)
                .map(|(k, _)| k)
                .collect()
        };
        Vocabulary {
            brands: keep(brands),
            categories: keep(categories),
        }
    }
}

/// On-disk shape: a flat list is readable by people and by other tools.
#[derive(Serialize, Deserialize)]
struct Stored {
    format: String,
    min_count: usize,
    global: RefStat,
    /// Empty `brand` means "any brand"; empty `category` means "any category".
    entries: Vec<Entry>,
    #[serde(default)]
    known_brands: Option<Vec<String>>,
    #[serde(default)]
    known_categories: Option<Vec<String>>,
}

impl From<Stored> for ReferencePrices {
    fn from(s: Stored) -> Self {
        let mut refs = ReferencePrices {
            min_count: s.min_count,
            global: s.global,
            by_product: StatsByKey::default(),
            by_brand_category: StatsByKey::default(),
            by_brand: StatsByKey::default(),
            by_category: StatsByKey::default(),
            vocabulary: match (s.known_brands, s.known_categories) {
                (Some(brands), Some(categories)) => Some(Vocabulary {
                    brands: brands.into_iter().collect(),
                    categories: categories.into_iter().collect(),
                }),
                _ => None,
            },
        };
        for e in s.entries {
            let stat = RefStat {
                median: e.median,
                count: e.count,
            };
            if !e.product.is_empty() {
                refs.by_product
                    .insert(joined_key(&[&e.brand, &e.category, &e.product]), stat);
                continue;
            }
            match (e.brand.is_empty(), e.category.is_empty()) {
                (false, false) => {
                    refs.by_brand_category
                        .insert(joined_key(&[&e.brand, &e.category]), stat);
                }
                (false, true) => {
                    refs.by_brand.insert(e.brand, stat);
                }
                (true, false) => {
                    refs.by_category.insert(e.category, stat);
                }
                (true, true) => {}
            }
        }
        refs
    }
}

impl From<ReferencePrices> for Stored {
    fn from(r: ReferencePrices) -> Self {
        let mut entries: Vec<Entry> = r
            .by_product
            .into_iter()
            .map(|(key, s)| {
                let [brand, category, product] = split_key(key);
                Entry {
                    brand,
                    category,
                    product,
                    median: s.median,
                    count: s.count,
                }
            })
            .chain(r.by_brand_category.into_iter().map(|(key, s)| {
                let [brand, category] = split_key(key);
                Entry {
                    brand,
                    category,
                    product: String::new(),
                    median: s.median,
                    count: s.count,
                }
            }))
            .chain(r.by_brand.into_iter().map(|(brand, s)| Entry {
                brand,
                category: String::new(),
                product: String::new(),
                median: s.median,
                count: s.count,
            }))
            .chain(r.by_category.into_iter().map(|(category, s)| Entry {
                brand: String::new(),
                category,
                product: String::new(),
                median: s.median,
                count: s.count,
            }))
            .collect();
        entries.sort_by(|a, b| {
            (&a.brand, &a.category, &a.product).cmp(&(&b.brand, &b.category, &b.product))
        });
        let sorted = |set: HashSet<String>| -> Vec<String> {
            let mut v: Vec<String> = set.into_iter().collect();
            v.sort();
            v
        };
        let (known_brands, known_categories) = match r.vocabulary {
            Some(v) => (Some(sorted(v.brands)), Some(sorted(v.categories))),
            None => (None, None),
        };
        Stored {
            format: "knockoff-reference-prices/2".into(),
            min_count: r.min_count,
            global: r.global,
            entries,
            known_brands,
            known_categories,
        }
    }
}

/// What a listing's usual price is looked up by: normalised brand and category, and its
/// leading title words (one, two and three of them) that are not the brand's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceKey {
    pub brand: String,
    pub category: String,
    pub phrases: Vec<String>,
}

impl ReferencePrices {
    pub fn empty() -> ReferencePrices {
        ReferencePrices::fit(std::iter::empty(), 1)
    }
}

/// Lower-cases and collapses white space so "Louis  Vuitton" and "louis vuitton" meet.
pub fn group_key(text: &str) -> String {
    let mut key = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !key.is_empty() {
            key.push(' ');
        }
        if word.is_ascii() {
            key.extend(word.bytes().map(|b| char::from(b.to_ascii_lowercase())));
        } else {
            // `str::to_lowercase` knows context rules (a word-final Σ becomes ς).
            key.push_str(&word.to_lowercase());
        }
    }
    key
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn stats(groups: HashMap<String, Vec<f64>>, min_count: usize) -> StatsByKey {
    groups
        .into_iter()
        .filter(|(_, v)| v.len() >= min_count)
        .map(|(k, mut v)| {
            let count = v.len();
            (
                k,
                RefStat {
                    median: median(&mut v),
                    count,
                },
            )
        })
        .collect()
}

impl ReferencePrices {
    /// Learns usual prices from the [`PriceKey`]s and base prices of genuine listings.
    /// Groups with fewer than `min_count` prices are left out so lookups fall back.
    pub fn fit(
        genuine: impl IntoIterator<Item = (PriceKey, f64)>,
        min_count: usize,
    ) -> ReferencePrices {
        let mut all = Vec::new();
        let mut by_p: HashMap<String, Vec<f64>> = HashMap::new();
        let mut by_bc: HashMap<String, Vec<f64>> = HashMap::new();
        let mut by_b: HashMap<String, Vec<f64>> = HashMap::new();
        let mut by_c: HashMap<String, Vec<f64>> = HashMap::new();
        for (key, price) in genuine {
            if !price.is_finite() || price <= 0.0 {
                continue;
            }
            let PriceKey {
                brand: b,
                category: c,
                phrases,
            } = key;
            all.push(price);
            for phrase in phrases {
                by_p.entry(joined_key(&[&b, &c, &phrase]))
                    .or_default()
                    .push(price);
            }
            if !b.is_empty() && !c.is_empty() {
                by_bc.entry(joined_key(&[&b, &c])).or_default().push(price);
            }
            if !b.is_empty() {
                by_b.entry(b).or_default().push(price);
            }
            if !c.is_empty() {
                by_c.entry(c).or_default().push(price);
            }
        }
        let count = all.len();
        let global = RefStat {
            median: if count == 0 { 1.0 } else { median(&mut all) },
            count,
        };
        ReferencePrices {
            min_count,
            global,
            by_product: stats(by_p, min_count),
            by_brand_category: stats(by_bc, min_count),
            by_brand: stats(by_b, min_count),
            by_category: stats(by_c, min_count),
            vocabulary: None,
        }
    }

    pub fn with_vocabulary(mut self, vocabulary: Vocabulary) -> ReferencePrices {
        self.vocabulary = Some(vocabulary);
        self
    }

    /// Whether the model learned about this (normalised) brand; unknown ones are treated
    /// like a missing brand, so an unfamiliar name is never read as evidence.
    pub fn knows_brand(&self, brand_key: &str) -> bool {
        self.vocabulary
            .as_ref()
            .is_none_or(|v| v.brands.contains(brand_key))
    }

    /// Normalised names of the brands in the vocabulary (none when there is no vocabulary).
    pub fn known_brands(&self) -> impl Iterator<Item = &str> {
        self.vocabulary
            .iter()
            .flat_map(|v| v.brands.iter().map(String::as_str))
    }

    pub fn knows_category(&self, category_key: &str) -> bool {
        self.vocabulary
            .as_ref()
            .is_none_or(|v| v.categories.contains(category_key))
    }

    /// The most specific usual price known for a listing's key: the longest known product
    /// phrase first, then brand and category, brand, category, and all listings.
    pub fn lookup<'k>(&self, key: &'k PriceKey) -> Reference<'k> {
        let mut product_key = joined_key(&[&key.brand, &key.category, ""]);
        let prefix = product_key.len();
        for phrase in key.phrases.iter().rev() {
            product_key.truncate(prefix);
            product_key.push_str(phrase);
            if let Some(stat) = self.by_product.get(&product_key) {
                return Reference {
                    level: RefLevel::Product,
                    stat: *stat,
                    phrase,
                };
            }
        }
        self.lookup_group(&key.brand, &key.category)
    }

    /// Like [`ReferencePrices::lookup`] but ignoring product phrases.
    pub fn lookup_group(&self, brand_key: &str, category_key: &str) -> Reference<'static> {
        let found = |level, stat: Option<&RefStat>| {
            stat.map(|s| Reference {
                level,
                stat: *s,
                phrase: "",
            })
        };
        found(
            RefLevel::BrandCategory,
            self.by_brand_category
                .get(&joined_key(&[brand_key, category_key])),
        )
        .or_else(|| found(RefLevel::Brand, self.by_brand.get(brand_key)))
        .or_else(|| found(RefLevel::Category, self.by_category.get(category_key)))
        .unwrap_or(Reference {
            level: RefLevel::Global,
            stat: self.global,
            phrase: "",
        })
    }

    pub fn len(&self) -> usize {
        self.by_product.len()
            + self.by_brand_category.len()
            + self.by_brand.len()
            + self.by_category.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fitted() -> ReferencePrices {
        let mut rows = Vec::new();
        for p in [9000.0, 10000.0, 11000.0] {
            rows.push((key("Rolex", "watches", &["daytona"]), p));
        }
        for p in [20.0, 30.0, 40.0] {
            rows.push((key("Casio", "watches", &["g-shock"]), p));
        }
        rows.push((key("Rare", "bags", &[]), 50.0));
        ReferencePrices::fit(rows, 3)
    }

    fn key(brand: &str, category: &str, phrases: &[&str]) -> PriceKey {
        PriceKey {
            brand: group_key(brand),
            category: group_key(category),
            phrases: phrases.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn lookup_prefers_the_most_specific_group() {
        let refs = fitted();
        let k = key("rolex", "watches", &["daytona", "daytona black"]);
        let r = refs.lookup(&k);
        assert_eq!((r.level, r.phrase), (RefLevel::Product, "daytona"));
        assert_eq!(r.stat.median, 10000.0);
        let r = refs.lookup_group("rolex", "watches");
        assert_eq!(r.level, RefLevel::BrandCategory);
        assert_eq!(r.stat.median, 10000.0);
        assert_eq!(r.stat.count, 3);
    }

    #[test]
    fn rare_and_unknown_groups_fall_back() {
        let refs = fitted();
        assert_eq!(
            refs.lookup(&key("rolex", "watches", &["submariner"])).level,
            RefLevel::BrandCategory
        );
        assert_eq!(refs.lookup_group("rolex", "toys").level, RefLevel::Brand);
        assert_eq!(
            refs.lookup_group("newbrand", "watches").level,
            RefLevel::Category
        );
        assert_eq!(refs.lookup_group("watches", "").level, RefLevel::Global);
        // "Rare" has a single price: below min_count, so it is not trusted.
        assert_eq!(refs.lookup_group("rare", "bags").level, RefLevel::Global);
        assert_eq!(refs.global.count, 7);
    }

    #[test]
    fn json_round_trip_preserves_lookups() {
        let refs = fitted();
        let json = serde_json::to_string(&refs).unwrap();
        let back: ReferencePrices = serde_json::from_str(&json).unwrap();
        assert_eq!(back, refs);
        assert!(json.contains("\"brand\":\"rolex\""));
    }

    #[test]
    fn vocabulary_keeps_frequent_values_and_survives_json() {
        let rows = [
            ("Nike", "sneakers"),
            ("nike", "sneakers"),
            ("Rare", "sneakers"),
        ];
        let refs = fitted().with_vocabulary(Vocabulary::fit(rows.iter().copied(), 2));
        assert!(refs.knows_brand("nike"));
        assert!(!refs.knows_brand("rare"));
        assert!(refs.knows_category("sneakers"));
        assert!(!refs.knows_category("pets"));
        let back: ReferencePrices =
            serde_json::from_str(&serde_json::to_string(&refs).unwrap()).unwrap();
        assert_eq!(back, refs);
        assert!(
            fitted().knows_brand("anything"),
            "no vocabulary: everything counts as known"
        );
    }

    #[test]
    fn group_key_normalises_case_and_spaces() {
        assert_eq!(group_key("  Louis   Vuitton "), "louis vuitton");
        assert_eq!(
            group_key("ΟΔΟΣ  Ｎｉｋｅ"),
            "οδος ｎｉｋｅ",
            "as str::to_lowercase per word"
        );
    }
}
