//! The registry as scoring sees it: the model's brand index extended by the registered brands,
//! and their list prices in the model's base currency, matched to a listing by product words,
//! then brand and category, then brand.

use super::RegisteredBrand;
use crate::brand::{BrandIndex, KnownBrand};
use crate::data::currency::CurrencyRates;
use crate::reference::{group_key, RefLevel};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A product's list price, ready to match titles against.
#[derive(Debug, Clone, PartialEq)]
struct ProductPrice {
    name: String,
    /// The product name's words, normalised as listing titles are, brand words left out.
    words: Vec<String>,
    category: String,
    base_price: f64,
}

/// List prices of one registered brand.
#[derive(Debug, Clone, PartialEq)]
struct BrandPrices {
    products: Vec<ProductPrice>,
    /// Every word of the products' names, for [`RegistryView::product_words`].
    product_words: HashSet<String>,
    /// Median list price by normalised category.
    by_category: HashMap<String, f64>,
    median: f64,
}

/// The usual price a registration gives a listing: what it was matched by, and the price.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredPrice {
    /// The registered brand's name.
    pub brand: String,
    /// [`RefLevel::Product`], [`RefLevel::BrandCategory`] or [`RefLevel::Brand`].
    pub level: RefLevel,
    /// The product matched by its words (product level only).
    pub product: Option<String>,
    /// The matched category (brand+category level only).
    pub category: Option<String>,
    /// List price in the base currency (the median over the products at the coarser levels).
    pub base_price: f64,
    /// How many registered products the price rests on.
    pub products: usize,
}

/// A registry change as scoring uses it; built once per change, shared by every request.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryView {
    brands: Arc<BrandIndex>,
    prices: HashMap<String, BrandPrices>,
    /// Products left out because the model has no rate for their currency.
    skipped_products: usize,
}

/// Median of a non-empty slice (sorted in place).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

impl RegistryView {
    /// `learned` extended by `registered`, with list prices converted by `rates`. `words`
    /// normalises a product name the way listing titles are (the featurizer's pipeline).
    pub fn build(
        learned: &BrandIndex,
        registered: &[RegisteredBrand],
        rates: &CurrencyRates,
        words: impl Fn(&str) -> Vec<String>,
    ) -> RegistryView {
        let brands = learned.with_registered(registered.iter().map(|b| KnownBrand {
            name: b.name.clone(),
            listings: 0,
            counterfeits: 0,
            aliases: b.entry.aliases.clone(),
            registered: true,
            categories: Vec::new(),
        }));
        let mut prices = HashMap::with_capacity(registered.len());
        let mut skipped_products = 0;
        for brand in registered {
            let brand_words = words(&brand.name);
            let products: Vec<ProductPrice> = brand
                .entry
                .products
                .iter()
                .filter_map(|p| {
                    let code = CurrencyRates::normalise_code(&p.currency);
                    let base = rates.to_base(p.list_price, &code).filter(|b| *b > 0.0);
                    if base.is_none() {
                        skipped_products += 1;
                    }
                    Some(ProductPrice {
                        name: p.name.clone(),
                        words: words(&p.name)
                            .into_iter()
                            .filter(|w| !brand_words.contains(w))
                            .collect(),
                        category: group_key(&p.category),
                        base_price: base?,
                    })
                })
                .collect();
            if products.is_empty() {
                continue;
            }
            let mut by_category: HashMap<String, Vec<f64>> = HashMap::new();
            for p in products.iter().filter(|p| !p.category.is_empty()) {
                by_category
                    .entry(p.category.clone())
                    .or_default()
                    .push(p.base_price);
            }
            let mut all: Vec<f64> = products.iter().map(|p| p.base_price).collect();
            let product_words = products.iter().flat_map(|p| p.words.clone()).collect();
            let entry = BrandPrices {
                product_words,
                by_category: by_category
                    .into_iter()
                    .map(|(c, mut v)| (c, median(&mut v)))
                    .collect(),
                median: median(&mut all),
                products,
            };
            prices.insert(brand.name.clone(), entry);
        }
        if skipped_products > 0 {
            tracing::warn!(
                skipped_products,
                "registered products in currencies the model cannot convert are left out"
            );
        }
        RegistryView {
            brands: Arc::new(brands),
            prices,
            skipped_products,
        }
    }

    /// The brand index with the registered brands in it.
    pub fn brands(&self) -> &Arc<BrandIndex> {
        &self.brands
    }

    pub fn skipped_products(&self) -> usize {
        self.skipped_products
    }

    /// The registered list price for a listing of `brand` with normalised `title_words` in
    /// category `category_key` ([`group_key`]): the product whose name's words the title has
    /// (most of them, at least half), else the brand's products in that category, else all of
    /// the brand's products. `None` for a brand without usable prices.
    pub fn price(
        &self,
        brand: &str,
        title_words: &[&str],
        category_key: &str,
    ) -> Option<RegisteredPrice> {
        let prices = self.prices.get(brand)?;
        let best = prices
            .products
            .iter()
            .filter(|p| !p.words.is_empty())
            .map(|p| {
                let matched = p
                    .words
                    .iter()
                    .filter(|w| title_words.contains(&w.as_str()))
                    .count();
                (p, matched)
            })
            .filter(|(p, matched)| *matched > 0 && 2 * matched >= p.words.len())
            // Highest share of the name's words, then most words: "aurora tote" over "tote".
            .max_by(|(a, ma), (b, mb)| {
                let share = |m: usize, p: &ProductPrice| m as f64 / p.words.len() as f64;
                share(*ma, a)
                    .total_cmp(&share(*mb, b))
                    .then(ma.cmp(mb))
                    .then(b.base_price.total_cmp(&a.base_price))
            });
        if let Some((product, _)) = best {
            return Some(RegisteredPrice {
                brand: brand.to_string(),
                level: RefLevel::Product,
                product: Some(product.name.clone()),
                category: None,
                base_price: product.base_price,
                products: 1,
            });
        }
        if let Some(&price) = prices.by_category.get(category_key) {
            let count = prices
                .products
                .iter()
                .filter(|p| p.category == category_key)
                .count();
            return Some(RegisteredPrice {
                brand: brand.to_string(),
                level: RefLevel::BrandCategory,
                product: None,
                category: Some(category_key.to_string()),
                base_price: price,
                products: count,
            });
        }
        Some(RegisteredPrice {
            brand: brand.to_string(),
            level: RefLevel::Brand,
            product: None,
            category: None,
            base_price: prices.median,
            products: prices.products.len(),
        })
    }

    /// The normalised words of `brand`'s registered product names (`None` for a brand
    /// without products): its own vocabulary, which says nothing the model learned. Built
    /// once per registry change, not per listing.
    pub fn product_words(&self, brand: &str) -> Option<&HashSet<String>> {
        self.prices.get(brand).map(|p| &p.product_words)
    }

    /// The registered price for a listing's brand-and-category group (the coarser reference
    /// the model also compares prices with): the category's median, else the brand's.
    pub fn group_price(&self, brand: &str, category_key: &str) -> Option<f64> {
        let prices = self.prices.get(brand)?;
        Some(
            prices
                .by_category
                .get(category_key)
                .copied()
                .unwrap_or(prices.median),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{BrandEntry, RegisteredProduct};

    fn product(name: &str, category: &str, price: f64, currency: &str) -> RegisteredProduct {
        RegisteredProduct {
            name: name.into(),
            category: category.into(),
            list_price: price,
            currency: currency.into(),
        }
    }

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_lowercase).collect()
    }

    fn view() -> RegistryView {
        let brand = RegisteredBrand {
            name: "Verdanne".into(),
            entry: BrandEntry {
                aliases: vec!["维丹妮".into()],
                products: vec![
                    product("Verdanne Aurora tote", "bags", 400.0, "USD"),
                    product("Aurora wallet", "wallets", 100.0, "USD"),
                    product("Lumen scarf", "bags", 200.0, "EUR"),
                    product("Odd thing", "bags", 50.0, "XXX"),
                ],
            },
            created_at: String::new(),
            updated_at: String::new(),
        };
        RegistryView::build(
            &BrandIndex::empty(),
            &[brand],
            &CurrencyRates::default(),
            words,
        )
    }

    #[test]
    fn products_are_matched_by_their_words_then_category_then_brand() {
        let view = view();
        let p = view
            .price("Verdanne", &["verdanne", "aurora", "tote", "aaa"], "bags")
            .unwrap();
        assert_eq!(
            (p.level, p.product.as_deref(), p.base_price),
            (RefLevel::Product, Some("Verdanne Aurora tote"), 400.0)
        );
        // Both names share "aurora": the one the title has all words of wins.
        let p = view.price("Verdanne", &["aurora", "wallet"], "").unwrap();
        assert_eq!(p.product.as_deref(), Some("Aurora wallet"));
        let p = view.price("Verdanne", &["handbag"], "bags").unwrap();
        assert_eq!(p.level, RefLevel::BrandCategory);
        // 400 USD and 200 EUR (216 USD): the median of two.
        assert!((p.base_price - 308.0).abs() < 1e-9, "{}", p.base_price);
        let p = view.price("Verdanne", &["handbag"], "shoes").unwrap();
        assert_eq!((p.level, p.products), (RefLevel::Brand, 3));
        assert_eq!(view.price("Other", &["aurora"], "bags"), None);
    }

    #[test]
    fn products_in_unknown_currencies_are_left_out_and_counted() {
        let view = view();
        assert_eq!(view.skipped_products(), 1);
        let p = view.price("Verdanne", &["odd", "thing"], "").unwrap();
        assert_ne!(p.product.as_deref(), Some("Odd thing"));
    }

    #[test]
    fn registered_names_join_the_brand_index() {
        let view = view();
        let m = view.brands().identify("", "v3rdanne tote", "").unwrap();
        assert_eq!((m.name.as_str(), m.registered), ("Verdanne", true));
        assert_eq!(view.group_price("Verdanne", "wallets"), Some(100.0));
    }
}
