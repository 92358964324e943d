//! Reasons in words: which terms, price and brand features pushed a listing's score, ranked
//! and described for a reviewer (and a kept reviewer's verdict, first).

use super::{Model, Reason, MAX_REASONS};
use crate::brand::Relation;
use crate::features::{ExplainedFeatures, TermKind, DENSE_FEATURES, LOG_RATIO_INDEX};
use crate::model::network::dot;
use crate::reference::RefLevel;
use xxhash_rust::xxh3::xxh3_64;

impl Model {
    /// Reasons for one explained listing, strongest first, at most `top`.
    ///
    /// Attribution is gradient × input at the listing's own input, which is exact per linear
    /// piece of the ReLU network: each n-gram contributes its share of the mean embedding.
    pub(super) fn reasons(
        &self,
        explained: &ExplainedFeatures,
        input: &[f32],
        top: usize,
    ) -> Vec<Reason> {
        if top == 0 {
            return Vec::new();
        }
        let dim = self.network.config.embedding_dim;
        let gradient = self.network.mlp.input_gradient(input);
        let pushes = self.term_pushes(explained, &gradient[..dim]);
        // Rank first and word only the winners: formatting every term of every listing
        // would cost more than scoring it.
        enum Source<'a> {
            Term(TermKind, &'a str),
            Dense(usize),
        }
        let mut candidates: Vec<(f32, Source)> = pushes
            .into_iter()
            .map(|(_, kind, term, weight)| (weight, Source::Term(kind, term)))
            .collect();
        for (k, name) in DENSE_FEATURES.iter().enumerate() {
            let describable = k == LOG_RATIO_INDEX
                || describe_brand(name, explained, 0.0).is_some()
                || describe_dense(name, explained.features.dense[k]).is_some();
            if describable {
                candidates.push((gradient[dim + k] * input[dim + k], Source::Dense(k)));
            }
        }
        candidates.retain(|(w, _)| w.is_finite() && w.abs() > 1e-4);
        // Strongest first; equally strong ones in text order, so the answer never depends
        // on how the selection below happened to partition them.
        let mut ranked: Vec<(f32, usize, Source)> = candidates
            .into_iter()
            .enumerate()
            .map(|(i, (w, source))| (w, i, source))
            .collect();
        let stronger = |a: &(f32, usize, Source), b: &(f32, usize, Source)| {
            b.0.abs().total_cmp(&a.0.abs()).then(a.1.cmp(&b.1))
        };
        let top = top.min(MAX_REASONS);
        if ranked.len() > top {
            ranked.select_nth_unstable_by(top, stronger);
            ranked.truncate(top);
        }
        ranked.sort_unstable_by(stronger);
        ranked
            .into_iter()
            .map(|(weight, _, source)| Reason {
                text: match source {
                    Source::Term(kind, term) => describe_term(kind, term),
                    Source::Dense(k) if k == LOG_RATIO_INDEX => {
                        describe_price(&explained.price, &self.config.currency.base)
                    }
                    Source::Dense(k) => describe_brand(DENSE_FEATURES[k], explained, weight)
                        .or_else(|| describe_dense(DENSE_FEATURES[k], explained.features.dense[k]))
                        .unwrap_or_default(),
                },
                weight,
            })
            .collect()
    }

    /// Each term's push on the log-odds (its embedding row · the gradient, shared over the
    /// listing's terms), a word's character n-grams and repeats added to the word. Each
    /// entry carries a hash of its text so that grouping equal terms compares integers.
    fn term_pushes<'a>(
        &self,
        explained: &'a ExplainedFeatures,
        gradient: &[f32],
    ) -> Vec<(u64, TermKind, &'a str, f32)> {
        let n = explained.features.ids.len().max(1) as f32;
        // A word's character n-grams and the word itself are one reason for a reviewer,
        // and a repeated term is one reason: add their pushes up. Each entry carries a hash
        // of its text so that grouping equal terms compares integers, not strings.
        let mut pushes: Vec<(u64, TermKind, &str, f32)> = Vec::with_capacity(64);
        for (id, kind, term) in explained.terms.iter() {
            let row = self.network.table.row(id as usize);
            let push = match row.as_slice() {
                Some(row) => dot(row, gradient),
                None => row.iter().zip(gradient).map(|(e, g)| e * g).sum(),
            } / n;
            let kind = if kind == TermKind::TitleCharGram {
                TermKind::TitleWord
            } else {
                kind
            };
            // A word's n-grams follow it and share its text in the arena: merging them
            // here leaves far fewer entries for the sort below.
            match pushes.last_mut() {
                Some(last) if last.1 == kind && std::ptr::eq(last.2, term) => last.3 += push,
                _ => pushes.push((xxh3_64(term.as_bytes()), kind, term, push)),
            }
        }
        // Equal hashes fall back to comparing kind and text, so a collision never merges
        // two different terms.
        pushes.sort_unstable_by(|a, b| (a.0, a.1 as u8, a.2).cmp(&(b.0, b.1 as u8, b.2)));
        pushes.dedup_by(|later, kept| {
            let same = later.1 == kept.1 && later.2 == kept.2;
            if same {
                kept.3 += later.3;
            }
            same
        });
        pushes
    }
}

fn describe_term(kind: TermKind, term: &str) -> String {
    match kind {
        TermKind::TitleWord => format!("title has the word \"{term}\""),
        TermKind::TitleBigram => format!("title has \"{term}\""),
        TermKind::TitleCharGram => format!("title has a word spelled like \"{term}\""),
        TermKind::DescriptionWord => format!("description has the word \"{term}\""),
        TermKind::DescriptionBigram => format!("description has \"{term}\""),
        TermKind::Brand => format!("brand is \"{term}\""),
        TermKind::Category => format!("category is \"{term}\""),
        TermKind::BrandCategory => format!("brand and category are \"{term}\""),
    }
}

fn describe_price(price: &crate::features::PriceContext, currency: &str) -> String {
    let Some(base) = price.base_price else {
        return "no price given".to_string();
    };
    if let Some(registered) = &price.registered {
        return describe_registered_price(registered, base, currency);
    }
    // A product or brand+category reference may rest on a missing brand or category.
    let fields = [price.brand.trim(), price.category.trim()]
        .into_iter()
        .filter(|f| !f.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let group = match price.level {
        RefLevel::Product if fields.is_empty() => format!("\"{}\"", price.phrase),
        RefLevel::Product => format!("\"{}\" in {fields}", price.phrase),
        RefLevel::BrandCategory => fields,
        RefLevel::Brand => price.brand.clone(),
        RefLevel::Category => price.category.clone(),
        RefLevel::Global => "all listings".to_string(),
    };
    let ratio = base / price.usual_price.max(0.01);
    let share = if ratio < 0.995 {
        format!("{:.0}% of", (ratio * 100.0).max(0.0))
    } else if ratio <= 1.005 {
        "about".to_string()
    } else {
        format!("{ratio:.1}× ")
    };
    let share = share.trim_end();
    format!(
        "price is {share} the usual price for {group} (usual ≈ {:.2} {currency}, here {:.2} {currency})",
        price.usual_price, base
    )
}

/// "price is 9% of Verdanne's registered list price for Aurora tote (...)".
fn describe_registered_price(
    registered: &crate::registry::RegisteredPrice,
    base: f64,
    currency: &str,
) -> String {
    let what = match (&registered.product, &registered.category) {
        (Some(product), _) => format!("{}'s registered list price for {product}", registered.brand),
        (None, Some(category)) => format!(
            "the median of {}'s registered list prices in {category}",
            registered.brand
        ),
        (None, None) => format!(
            "the median of {}'s registered list prices",
            registered.brand
        ),
    };
    let ratio = base / registered.base_price.max(0.01);
    format!(
        "price is {:.0}% of {what} (list ≈ {:.2} {currency}, here {:.2} {currency})",
        (ratio * 100.0).max(0.0),
        registered.base_price,
        base
    )
}

/// The identified brand as a reason: "imitates Rolex: title has \"r0lex\", ...".
fn describe_brand(name: &str, explained: &ExplainedFeatures, weight: f32) -> Option<String> {
    let brand = explained.features.brand.as_ref()?;
    let verb = match (name, brand.relation) {
        ("claims_known_brand", Relation::Is) if weight > 0.0 => "imitates",
        ("claims_known_brand", Relation::Is) => "claims to be",
        ("accessory_for_known_brand", Relation::For) => "is an accessory for",
        ("brand_disguised", Relation::Is) if brand.how.is_disguise() => "disguises the name of",
        _ => return None,
    };
    Some(format!("{verb} {}", brand.describe()))
}

fn describe_dense(name: &str, value: f32) -> Option<String> {
    let on = value > 0.5;
    match name {
        "has_price" if !on => Some("no price given".into()),
        "brand_missing" if on => Some("no brand selected".into()),
        "brand_in_title" if on => Some("the selected brand is named in the title".into()),
        "reference_global" if on => Some("brand and category are unfamiliar to the model".into()),
        _ => None,
    }
}

/// The reason a kept verdict gives: it decides the listing, so it comes first, and it
/// has no weight on the log-odds (the probability stays the model's own).
pub(super) fn verdict_reason(verdict: crate::data::reviews::Verdict) -> Reason {
    let label = if verdict.counterfeit {
        "counterfeit"
    } else {
        "genuine"
    };
    Reason {
        text: format!(
            "a reviewer decided this same listing {label} on {}",
            verdict.reviewed_at.date_naive()
        ),
        weight: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::PriceContext;

    fn context(level: RefLevel, brand: &str, category: &str) -> PriceContext {
        PriceContext {
            base_price: Some(2.0),
            level,
            usual_price: 10.0,
            usual_count: 40,
            phrase: "dog leash".into(),
            brand: brand.into(),
            category: category.into(),
            registered: None,
        }
    }

    #[test]
    fn price_reasons_name_the_group_without_gaps_for_missing_fields() {
        let text = describe_price(&context(RefLevel::Product, "", "pets"), "USD");
        assert!(
            text.contains("usual price for \"dog leash\" in pets (usual"),
            "{text}"
        );
        let text = describe_price(&context(RefLevel::Product, "Acme", "pets"), "USD");
        assert!(text.contains("\"dog leash\" in Acme pets ("), "{text}");
        let text = describe_price(&context(RefLevel::Product, "", ""), "USD");
        assert!(text.contains("for \"dog leash\" (usual"), "{text}");
        let text = describe_price(&context(RefLevel::BrandCategory, "Acme", "pets"), "USD");
        assert!(
            text.starts_with("price is 20% of the usual price for Acme pets ("),
            "{text}"
        );
        assert!(!text.contains("  "), "{text}");
    }
}
