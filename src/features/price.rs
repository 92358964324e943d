//! Price features: the key a usual price is learned and looked up by, and the basis a
//! listing's price is compared with.

use super::*;

/// The usual price a listing's price features rest on.
pub(super) struct PriceBasis {
    pub(super) level: RefLevel,
    pub(super) stat: RefStat,
    /// Title words of a product-level learned reference (only when explaining).
    pub(super) phrase: String,
    pub(super) base_price: Option<f64>,
    pub(super) registered: Option<RegisteredPrice>,
}

/// Everything about a listing's price and brand that becomes dense features.
pub(super) struct PriceSide {
    pub(super) basis: PriceBasis,
    /// The usual price of the listing's brand and category group.
    pub(super) group_median: f64,
    pub(super) brand_missing: bool,
    /// The selected brand's name is in the title.
    pub(super) named: bool,
    pub(super) identified: Option<BrandMatch>,
}

impl PriceSide {
    /// The dense features, in [`DENSE_FEATURES`] order.
    pub(super) fn dense(&self) -> [f32; DENSE_LEN] {
        let mut dense = [0f32; DENSE_LEN];
        let log_ratio = |price: f64, usual: f64| -> f32 {
            ((price.max(0.01) / usual.max(0.01)).ln() as f32)
                .clamp(-MAX_ABS_LOG_RATIO, MAX_ABS_LOG_RATIO)
        };
        let level = self.basis.level;
        if let Some(price) = self.basis.base_price {
            dense[0] = 1.0;
            dense[1] = (price.max(0.0) + 1.0).ln() as f32;
            // Against all listings a price says nothing about this kind of item: a cheap dog
            // leash is not a cheap Rolex. Unknown groups get no ratio, only the flag.
            if level != RefLevel::Global {
                dense[LOG_RATIO_INDEX] = log_ratio(price, self.basis.stat.median);
                dense[GROUP_RATIO_INDEX] = log_ratio(price, self.group_median);
            }
        }
        let level_index = RefLevel::ALL
            .iter()
            .position(|l| *l == level)
            .unwrap_or(RefLevel::ALL.len() - 1);
        dense[LEVEL_INDEX + level_index] = 1.0;
        dense[BRAND_MISSING_INDEX] = f32::from(self.brand_missing);
        dense[BRAND_IN_TITLE_INDEX] = f32::from(self.named);
        if let Some(found) = &self.identified {
            let index = match found.relation {
                Relation::Is => Some(CLAIMS_BRAND_INDEX),
                Relation::For => Some(ACCESSORY_INDEX),
                Relation::Namesake => None,
            };
            if let Some(index) = index {
                dense[index] = 1.0;
            }
            if found.relation == Relation::Is && found.how.is_disguise() {
                dense[DISGUISED_INDEX] = 1.0;
            }
        }
        dense
    }
}

/// What a listing's usual price is looked up by: its normalised title words, and brand and
/// category normalised (see [`Featurizer::known_fields`]).
pub(super) struct PriceLookup<'a> {
    pub(super) title_words: &'a [&'a str],
    pub(super) brand: String,
    pub(super) category: String,
    /// Whether the product phrase is wanted (for reasons).
    pub(super) explaining: bool,
}

/// Whether `words` has `phrase` as consecutive words.
fn has_phrase<S: AsRef<str>>(words: &[&str], phrase: &[S]) -> bool {
    !phrase.is_empty()
        && words
            .windows(phrase.len())
            .any(|w| w.iter().zip(phrase).all(|(a, b)| *a == b.as_ref()))
}

impl Featurizer {
    /// Normalised words of a brand; known brands are looked up, not re-tokenised.
    pub(super) fn brand_words(&self, brand_key: &str) -> Cow<'_, [String]> {
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
    pub(super) fn known_fields(&self, listing: &Listing) -> (String, String) {
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
    pub(super) fn price_key_from(
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

    /// The usual price a listing is compared with (learned, or registered for a registered
    /// brand it claims), with the brand it claims or fits (`identified`).
    pub(super) fn price_side(
        &self,
        listing: &Listing,
        key: PriceLookup,
        identified: Option<BrandMatch>,
        view: Option<&RegistryView>,
    ) -> PriceSide {
        let brand_words = self.brand_words(&key.brand);
        let named = has_phrase(key.title_words, &brand_words);
        let price_key =
            Self::price_key_from(key.title_words, &brand_words, key.brand, key.category);
        let reference = self.references.lookup(&price_key);
        let basis = PriceBasis {
            level: reference.level,
            stat: reference.stat,
            phrase: if key.explaining {
                reference.phrase.to_string()
            } else {
                String::new()
            },
            base_price: listing
                .price
                .as_ref()
                .map(|p| p.base_amount)
                .filter(|p| p.is_finite()),
            registered: None,
        };
        let mut side = PriceSide {
            basis,
            group_median: self
                .references
                .lookup_group(&price_key.brand, &price_key.category)
                .stat
                .median,
            brand_missing: price_key.brand.is_empty(),
            named,
            identified,
        };
        if let Some(view) = view {
            self.use_registered_price(&mut side, view, listing);
        }
        side
    }

    /// A registered brand's own list prices are the usual prices of its products; its
    /// name in the brand field counts as a selected brand.
    fn use_registered_price(&self, side: &mut PriceSide, view: &RegistryView, listing: &Listing) {
        let Some(found) = side
            .identified
            .as_ref()
            .filter(|b| b.registered && b.relation == Relation::Is)
        else {
            return;
        };
        let category_key = group_key(&listing.category);
        // The text scored goes without the brand's name and product names: its products
        // and name are looked for in the title as written.
        let title = self.words_of(&listing.title);
        let title: Vec<&str> = title.iter().map(String::as_str).collect();
        let Some(price) = view.price(&found.name, &title, &category_key) else {
            return;
        };
        side.group_median = view
            .group_price(&found.name, &category_key)
            .unwrap_or(price.base_price);
        if found.found_in == BrandSource::Field {
            side.brand_missing = false;
            side.named = has_phrase(&title, &self.words_of(&found.name));
        }
        side.basis.level = price.level;
        side.basis.stat = RefStat {
            median: price.base_price,
            count: price.products,
        };
        side.basis.registered = Some(price);
    }
}
