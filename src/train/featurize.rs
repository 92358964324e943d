//! What the network is fitted on: a featurizer learned from the fitting rows (usual prices,
//! brands, known terms) and the featurised examples, augmented with copies whose brand or
//! category is blanked or whose brand is known by registration only.

use crate::brand::{BrandExample, BrandIndex, BrandLearning};
use crate::data::listing::Listing;
use crate::data::reader::Row;
use crate::features::{standard_tokenizer, Features, Featurizer, KnownTermCounter, KnownTerms};
use crate::reference::{PriceKey, ReferencePrices, Vocabulary};
use rand::rngs::StdRng;
use rand::Rng;
use rayon::prelude::*;
use std::sync::Arc;

use super::options::TrainOptions;
use super::TrainError;

/// Featurised training examples and their labels (0 or 1), index for index.
pub(super) struct Examples {
    pub features: Vec<Features>,
    pub labels: Vec<f32>,
}

/// The featurizer of a run: usual prices from the genuine fitting rows, the brands and the
/// known terms of the fitting rows.
pub(super) fn fit_featurizer(
    options: &TrainOptions,
    fit_rows: &[Row],
) -> Result<Featurizer, TrainError> {
    // Usual prices come from the genuine listings the network trains on, nothing else.
    let featurizer = Featurizer::new(
        options.features.clone(),
        standard_tokenizer(),
        ReferencePrices::empty(),
    )?;
    let priced: Vec<(PriceKey, f64)> = fit_rows
        .par_iter()
        .filter(|r| r.label == Some(false))
        .filter_map(|r| {
            r.listing
                .price
                .as_ref()
                .map(|p| (featurizer.price_key(&r.listing), p.base_amount))
        })
        .collect();
    let vocabulary = Vocabulary::fit(
        fit_rows
            .iter()
            .map(|r| (r.listing.brand.as_str(), r.listing.category.as_str())),
        options.reference_min_count,
    );
    let featurizer = featurizer.with_references(
        ReferencePrices::fit(priced, options.reference_min_count).with_vocabulary(vocabulary),
    );
    let brands = learn_brands(fit_rows, options.brand_learning);
    let featurizer = featurizer.with_brands(Arc::new(brands));
    Ok(match options.features.known_term_min_listings {
        0 => featurizer,
        min_listings => {
            let known = learn_known_terms(&featurizer, fit_rows, min_listings);
            tracing::info!(terms = known.len(), min_listings, "learned the known terms");
            featurizer.with_known_terms(Some(Arc::new(known)))
        }
    })
}

/// The fitting rows featurised, with augmented copies drawn by `rng`: the brand field
/// blanked, the category blanked, or the brand known by registration only.
pub(super) fn augmented_examples(
    options: &TrainOptions,
    featurizer: &Featurizer,
    fit_rows: &[Row],
    rng: &mut StdRng,
) -> Examples {
    let mut examples: Vec<(Listing, bool)> = Vec::with_capacity(fit_rows.len() * 11 / 10);
    let mut as_registered: Vec<(&Listing, bool)> = Vec::new();
    for row in fit_rows {
        let label = row.label.unwrap_or(false);
        examples.push((row.listing.clone(), label));
        if rng.random::<f64>() < options.registered_copies {
            as_registered.push((&row.listing, label));
        }
        // The brand field blanked, where the text still names the brand: the model learns to
        // read a claimed brand from the title too. Listings whose brand only the field gives
        // are not copied: a blank field and no brand in the text would otherwise learn the
        // branded rate, and unfamiliar brands (which look just like that) would inherit it.
        if !row.listing.brand.is_empty() && rng.random::<f64>() < options.brand_dropout {
            let mut l = row.listing.clone();
            l.brand.clear();
            let still_claimed = featurizer
                .brands()
                .identify("", &l.title, &l.description)
                .is_some();
            if still_claimed {
                examples.push((l, label));
            }
        }
        if !row.listing.category.is_empty() && rng.random::<f64>() < options.category_dropout {
            let mut l = row.listing.clone();
            l.category.clear();
            examples.push((l, label));
        }
    }
    let mut features: Vec<Features> = examples
        .par_iter()
        .map(|(l, _)| featurizer.featurize(l))
        .collect();
    let mut labels: Vec<f32> = examples
        .iter()
        .map(|(_, y)| f32::from(u8::from(*y)))
        .collect();
    let registered: Vec<(Features, bool)> = as_registered
        .par_iter()
        .filter_map(|(l, y)| featurizer.featurize_as_registered(l).map(|f| (f, *y)))
        .collect();
    tracing::info!(
        copies = registered.len(),
        "rows also shown as registered brands"
    );
    for (f, label) in registered {
        features.push(f);
        labels.push(f32::from(u8::from(label)));
    }
    Examples { features, labels }
}

/// The rows featurised as they will be scored, on all cores.
pub(super) fn featurize_rows(featurizer: &Featurizer, rows: &[Row]) -> Vec<Features> {
    rows.par_iter()
        .map(|r| featurizer.featurize(&r.listing))
        .collect()
}

/// The terms of at least `min_listings` training listings, counted on all cores (one
/// counter per core: each is 16 MiB).
fn learn_known_terms(featurizer: &Featurizer, rows: &[Row], min_listings: u8) -> KnownTerms {
    let chunk = rows.len().div_ceil(rayon::current_num_threads()).max(1);
    rows.par_chunks(chunk)
        .map(|chunk| {
            let mut counter = KnownTermCounter::default();
            for row in chunk {
                counter.add(featurizer, &row.listing);
            }
            counter
        })
        .reduce_with(KnownTermCounter::merge)
        .unwrap_or_default()
        .known(min_listings)
}

/// Target brands, aliases and accessory markers of the rows the network trains on.
fn learn_brands(rows: &[Row], learning: BrandLearning) -> BrandIndex {
    let examples: Vec<BrandExample> = rows
        .iter()
        .map(|r| BrandExample {
            brand: &r.listing.brand,
            title: &r.listing.title,
            category: &r.listing.category,
            counterfeit: r.label == Some(true),
        })
        .collect();
    let brands = BrandIndex::fit(&examples, learning);
    tracing::info!(
        brands = brands.len(),
        aliases = brands.aliases().count(),
        markers = brands.markers().count(),
        "learned the brands"
    );
    brands
}
