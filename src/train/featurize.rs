//! What the network is fitted on: a featurizer learned from the fitting rows (usual prices,
//! brands, known terms) and the featurised examples, augmented with copies whose brand or
//! category is blanked or whose brand is known by registration only.

use crate::brand::{BrandExample, BrandIndex, BrandLearning};
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
    // The draws come first, in row order, so that a seed gives the same copies however
    // the work is then shared among the cores.
    let draws: Vec<Copies> = fit_rows
        .iter()
        .map(|row| Copies {
            registered: rng.random::<f64>() < options.registered_copies,
            // The brand field blanked, where the text still names the brand: the model
            // learns to read a claimed brand from the title too. Listings whose brand only
            // the field gives are not copied: a blank field and no brand in the text would
            // otherwise learn the branded rate, and unfamiliar brands (which look just like
            // that) would inherit it.
            blank_brand: !row.listing.brand.is_empty()
                && rng.random::<f64>() < options.brand_dropout,
            blank_category: !row.listing.category.is_empty()
                && rng.random::<f64>() < options.category_dropout,
        })
        .collect();
    let label_of = |row: &Row| f32::from(u8::from(row.label.unwrap_or(false)));
    let (mut features, mut labels): (Vec<Features>, Vec<f32>) = fit_rows
        .par_iter()
        .zip(&draws)
        .flat_map_iter(|(row, draw)| {
            let y = label_of(row);
            let mut out = vec![(featurizer.featurize(&row.listing), y)];
            if draw.blank_brand {
                let mut l = row.listing.clone();
                l.brand.clear();
                let still_claimed = featurizer
                    .brands()
                    .identify("", &l.title, &l.description)
                    .is_some();
                if still_claimed {
                    out.push((featurizer.featurize(&l), y));
                }
            }
            if draw.blank_category {
                let mut l = row.listing.clone();
                l.category.clear();
                out.push((featurizer.featurize(&l), y));
            }
            out
        })
        .unzip();
    let registered: Vec<(Features, f32)> = fit_rows
        .par_iter()
        .zip(&draws)
        .filter(|(_, draw)| draw.registered)
        .filter_map(|(row, _)| {
            featurizer
                .featurize_as_registered(&row.listing)
                .map(|f| (f, label_of(row)))
        })
        .collect();
    tracing::info!(
        copies = registered.len(),
        "rows also shown as registered brands"
    );
    for (f, label) in registered {
        features.push(f);
        labels.push(label);
    }
    Examples { features, labels }
}

/// Which augmented copies of one fitting row a run makes.
struct Copies {
    registered: bool,
    blank_brand: bool,
    blank_category: bool,
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
