//! Usual prices learned from genuine training listings, per brand and category, with
//! fallbacks for rare or unseen brands and categories.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Which table a reference price came from, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefLevel {
    BrandCategory,
    Brand,
    Category,
    Global,
}

impl RefLevel {
    pub const ALL: [RefLevel; 4] = [
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
    median: f64,
    count: usize,
}

/// What a lookup found: the level used and the usual price there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reference {
    pub level: RefLevel,
    pub stat: RefStat,
}

/// Reference prices keyed by normalised brand and category (see [`group_key`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct ReferencePrices {
    pub min_count: usize,
    pub global: RefStat,
    by_brand_category: HashMap<(String, String), RefStat>,
    by_brand: HashMap<String, RefStat>,
    by_category: HashMap<String, RefStat>,
}

/// On-disk shape: a flat list is readable by people and by other tools.
#[derive(Serialize, Deserialize)]
struct Stored {
    format: String,
    min_count: usize,
    global: RefStat,
    /// Empty `brand` means "any brand"; empty `category` means "any category".
    entries: Vec<Entry>,
}

impl From<Stored> for ReferencePrices {
    fn from(s: Stored) -> Self {
        let mut refs = ReferencePrices {
            min_count: s.min_count,
            global: s.global,
            by_brand_category: HashMap::new(),
            by_brand: HashMap::new(),
            by_category: HashMap::new(),
        };
        for e in s.entries {
            let stat = RefStat {
                median: e.median,
                count: e.count,
            };
            match (e.brand.is_empty(), e.category.is_empty()) {
                (false, false) => {
                    refs.by_brand_category.insert((e.brand, e.category), stat);
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
            .by_brand_category
            .into_iter()
            .map(|((brand, category), s)| Entry {
                brand,
                category,
                median: s.median,
                count: s.count,
            })
            .chain(r.by_brand.into_iter().map(|(brand, s)| Entry {
                brand,
                category: String::new(),
                median: s.median,
                count: s.count,
            }))
            .chain(r.by_category.into_iter().map(|(category, s)| Entry {
                brand: String::new(),
                category,
                median: s.median,
                count: s.count,
            }))
            .collect();
        entries.sort_by(|a, b| (&a.brand, &a.category).cmp(&(&b.brand, &b.category)));
        Stored {
            format: "knockoff-reference-prices/1".into(),
            min_count: r.min_count,
            global: r.global,
            entries,
        }
    }
}

/// Lower-cases and collapses white space so "Louis  Vuitton" and "louis vuitton" meet.
pub fn group_key(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
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

fn stats<K: std::hash::Hash + Eq>(groups: HashMap<K, Vec<f64>>, min_count: usize) -> HashMap<K, RefStat> {
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
    /// Learns usual prices from `(brand, category, base_price)` of genuine listings.
    /// Groups with fewer than `min_count` prices are left out so lookups fall back.
    pub fn fit<'a>(
        genuine: impl IntoIterator<Item = (&'a str, &'a str, f64)>,
        min_count: usize,
    ) -> ReferencePrices {
        let mut all = Vec::new();
        let mut by_bc: HashMap<(String, String), Vec<f64>> = HashMap::new();
        let mut by_b: HashMap<String, Vec<f64>> = HashMap::new();
        let mut by_c: HashMap<String, Vec<f64>> = HashMap::new();
        for (brand, category, price) in genuine {
            if !price.is_finite() || price <= 0.0 {
                continue;
            }
            let (b, c) = (group_key(brand), group_key(category));
            all.push(price);
            if !b.is_empty() && !c.is_empty() {
                by_bc.entry((b.clone(), c.clone())).or_default().push(price);
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
            by_brand_category: stats(by_bc, min_count),
            by_brand: stats(by_b, min_count),
            by_category: stats(by_c, min_count),
        }
    }

    /// The most specific usual price known for a (normalised) brand and category.
    pub fn lookup(&self, brand_key: &str, category_key: &str) -> Reference {
        let found = |level, stat: Option<&RefStat>| stat.map(|s| Reference { level, stat: *s });
        found(
            RefLevel::BrandCategory,
            self.by_brand_category
                .get(&(brand_key.to_string(), category_key.to_string())),
        )
        .or_else(|| found(RefLevel::Brand, self.by_brand.get(brand_key)))
        .or_else(|| found(RefLevel::Category, self.by_category.get(category_key)))
        .unwrap_or(Reference {
            level: RefLevel::Global,
            stat: self.global,
        })
    }

    pub fn len(&self) -> usize {
        self.by_brand_category.len() + self.by_brand.len() + self.by_category.len()
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
            rows.push(("Rolex", "watches", p));
        }
        for p in [20.0, 30.0, 40.0] {
            rows.push(("Casio", "watches", p));
        }
        rows.push(("Rare", "bags", 50.0));
        ReferencePrices::fit(rows.iter().map(|(b, c, p)| (*b, *c, *p)), 3)
    }

    #[test]
    fn lookup_prefers_the_most_specific_group() {
        let refs = fitted();
        let r = refs.lookup("rolex", "watches");
        assert_eq!(r.level, RefLevel::BrandCategory);
        assert_eq!(r.stat.median, 10000.0);
        assert_eq!(r.stat.count, 3);
    }

    #[test]
    fn rare_and_unknown_groups_fall_back() {
        let refs = fitted();
        assert_eq!(refs.lookup("rolex", "toys").level, RefLevel::Brand);
        assert_eq!(refs.lookup("newbrand", "watches").level, RefLevel::Category);
        assert_eq!(refs.lookup("watches", "").level, RefLevel::Global);
        // "Rare" has a single price: below min_count, so it is not trusted.
        assert_eq!(refs.lookup("rare", "bags").level, RefLevel::Global);
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
    fn group_key_normalises_case_and_spaces() {
        assert_eq!(group_key("  Louis   Vuitton "), "louis vuitton");
    }
}
