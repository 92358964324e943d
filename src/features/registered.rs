//! Registered brands in featurisation: the registry view in use, and training copies of
//! branded listings that look as a newly registered brand does.

use super::*;
use std::collections::HashSet;

/// The registry view in use; a clone starts with the view its original had then.
#[derive(Default)]
pub(super) struct RegistrySlot(pub(super) ArcSwapOption<RegistryView>);

impl Clone for RegistrySlot {
    fn clone(&self) -> Self {
        RegistrySlot(ArcSwapOption::new(self.0.load_full()))
    }
}

/// The listing's text without the brand it claims: no brand field, and neither the brand's
/// name nor the text that matched it in title or description.
pub(super) fn without_brand(listing: &Listing, found: &BrandMatch) -> Listing {
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
    masked
}

/// `listing` without the white-space separated words of its title and description that
/// are in `words` (compared lower-cased, without surrounding punctuation): a registered
/// brand's product names, which are its own and say nothing the model learned.
pub(super) fn without_words(mut listing: Listing, words: &HashSet<String>) -> Listing {
    if words.is_empty() {
        return listing;
    }
    let keep = |text: &str| -> String {
        text.split_whitespace()
            .filter(|token| {
                let core = token.trim_matches(|c: char| !c.is_alphanumeric());
                !words.contains(core.to_lowercase().as_str())
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    listing.title = keep(&listing.title);
    listing.description = keep(&listing.description);
    listing
}

/// `text` without any occurrence of `needle`, compared ignoring case (each replaced by
/// a space). Compared character by character, as a character may lower-case to several
/// ("İ"): cuts always fall between the original text's characters.
pub(super) fn remove_ignoring_case(text: &str, needle: &str) -> String {
    let needle: Vec<char> = needle.trim().to_lowercase().chars().collect();
    if needle.is_empty() {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut k = 0;
    while k < chars.len() {
        match match_len_ignoring_case(&chars[k..], &needle) {
            Some(len) => {
                out.push(' ');
                k += len;
            }
            None => {
                out.push(chars[k]);
                k += 1;
            }
        }
    }
    out
}

/// How many of `chars` spell `needle` (lower-case) from the start, ignoring case.
fn match_len_ignoring_case(chars: &[char], needle: &[char]) -> Option<usize> {
    let mut n = 0;
    for (used, &c) in chars.iter().enumerate() {
        for lower in c.to_lowercase() {
            if needle.get(n) != Some(&lower) {
                return None;
            }
            n += 1;
        }
        if n == needle.len() {
            return Some(used + 1);
        }
    }
    None
}

impl Featurizer {
    /// The listing as it would look if its brand were known by registration only: the same
    /// price and brand features, but none of the brand's own terms (its name in the field
    /// and text is unknown to the model, as a newly registered name is). `None` when the
    /// listing claims no known brand. Training shows the model such copies so that it judges
    /// registered brands by price and wording, not by a name it has never seen.
    ///
    /// The product's words stay (a registered brand's product names go at scoring): copies
    /// without them were measured to review more genuine listings of a registered brand
    /// (BENCHMARKS.md, "Brand registry").
    pub fn featurize_as_registered(&self, listing: &Listing) -> Option<Features> {
        let full = self.featurize(listing);
        let found = full.brand.as_ref().filter(|b| b.relation == Relation::Is)?;
        let text_only = self.featurize(&without_brand(listing, found));
        Some(Features {
            ids: text_only.ids,
            dense: full.dense,
            unknown: text_only.unknown,
            brand: full.brand,
            registered_price: false,
            reviewed: None,
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
}
