//! Brands in features: learned brands claimed or named, registered brands priced by their list
//! price, and the copies training shows as registered.

use super::*;

/// The test featurizer knowing Rolex as a counterfeiting target.
fn with_rolex(f: Featurizer) -> Featurizer {
    use crate::brand::{BrandExample, BrandLearning};
    let rows: Vec<BrandExample> = (0..40)
        .map(|i| BrandExample {
            brand: "Rolex",
            title: "Rolex Submariner Date",
            category: "watches",
            counterfeit: i % 2 == 0,
        })
        .collect();
    f.with_brands(Arc::new(BrandIndex::fit(&rows, BrandLearning::default())))
}

fn verdanne() -> RegisteredBrand {
    use crate::registry::{BrandEntry, RegisteredProduct};
    RegisteredBrand {
        name: "Verdanne".into(),
        entry: BrandEntry {
            aliases: vec!["维丹妮".into()],
            products: vec![RegisteredProduct {
                name: "Aurora tote".into(),
                category: "bags".into(),
                list_price: 400.0,
                currency: "USD".into(),
            }],
        },
        created_at: String::new(),
        updated_at: String::new(),
    }
}

#[test]
fn a_registered_brand_is_claimed_and_priced_by_its_list_price() {
    let f = with_rolex(featurizer());
    let fake = listing("V3rdanne Aurora tote", "", "bags", Some(40.0));
    let before = f.clone();
    assert_eq!(f.featurize(&fake).brand, None, "unknown before registering");
    f.use_registry(&[verdanne()], &CurrencyRates::default());
    let explained = f.explain(&fake);
    let found = explained.features.brand.clone().unwrap();
    assert_eq!((found.name.as_str(), found.registered), ("Verdanne", true));
    assert_eq!(explained.features.dense[CLAIMS_BRAND_INDEX], 1.0);
    let price = explained.price.registered.clone().unwrap();
    assert_eq!(
        (price.level, price.product.as_deref(), price.base_price),
        (RefLevel::Product, Some("Aurora tote"), 400.0)
    );
    assert_eq!(explained.price.usual_price, 400.0);
    let ratio = explained.features.dense[LOG_RATIO_INDEX];
    assert!((ratio - (0.1f32).ln()).abs() < 1e-5, "{ratio}");
    // Learned brands still come first, and a clone made before keeps no registry.
    assert!(
        !f.featurize(&listing("Rolex Submariner", "", "", None))
            .brand
            .unwrap()
            .registered
    );
    assert_eq!(before.featurize(&fake).brand, None);
    // The brand field naming it counts as a selected brand named in the title.
    let genuine = f.featurize(&listing(
        "Verdanne Aurora tote",
        "Verdanne",
        "bags",
        Some(400.0),
    ));
    assert_eq!(genuine.dense[BRAND_MISSING_INDEX], 0.0);
    assert_eq!(genuine.dense[BRAND_IN_TITLE_INDEX], 1.0);
    assert_eq!(genuine.dense[LOG_RATIO_INDEX], 0.0);
}

#[test]
fn a_registered_brands_product_names_are_no_terms_but_still_find_its_price() {
    let f = with_rolex(featurizer());
    f.use_registry(&[verdanne()], &CurrencyRates::default());
    // "aurora" and "tote" are the brand's own words: what the model learned of them from
    // other brands' listings must not judge this one. The product is still matched.
    let fake = f.explain(&listing(
        "Verdanne Aurora, tote aaa",
        "",
        "bags",
        Some(40.0),
    ));
    let price = fake.price.registered.clone().unwrap();
    assert_eq!(price.product.as_deref(), Some("Aurora tote"));
    let bare = f.featurize(&listing("aaa", "", "bags", Some(40.0)));
    assert_eq!(fake.features.ids, bare.ids);
    assert_eq!(fake.features.unknown, bare.unknown);
    // Other brands' listings keep those words.
    let other = f.featurize(&listing("Rolex Aurora tote", "", "bags", Some(40.0)));
    let rolex = f.featurize(&listing("Rolex", "", "bags", Some(40.0)));
    assert!(other.ids.len() > rolex.ids.len());
}

#[test]
fn as_registered_copies_keep_price_and_brand_features_without_the_brand_terms() {
    let f = with_rolex(featurizer());
    let l = listing("ROLEX Submariner Date aaa", "Rolex", "watches", Some(500.0));
    let full = f.featurize(&l);
    let copy = f.featurize_as_registered(&l).unwrap();
    assert_eq!(copy.dense, full.dense);
    assert_eq!(copy.brand, full.brand);
    let without = f.featurize(&listing("Submariner Date aaa", "", "watches", Some(500.0)));
    assert_eq!(
        copy.ids, without.ids,
        "no term of the brand's name or field"
    );
    assert_eq!(
        copy.unknown, without.unknown,
        "the brand's terms are absent, as at scoring, not unknown"
    );
    assert_eq!(
        f.featurize_as_registered(&listing("plain towel", "", "", None)),
        None
    );
}

#[test]
fn a_claim_in_disguise_is_a_feature_of_its_own() {
    let f = with_rolex(featurizer());
    let disguised = |title: &str, brand: &str| {
        f.featurize(&listing(title, brand, "watches", Some(100.0)))
            .dense[DISGUISED_INDEX]
    };
    for title in [
        "R0lex Submariner",
        "R O L E X Submariner",
        "ＲＯＬＥＸ Submariner",
    ] {
        assert_eq!(disguised(title, ""), 1.0, "{title}");
        assert_eq!(disguised(title, "Rolex"), 1.0, "{title} with the field");
    }
    assert_eq!(disguised("Rolex Submariner", "Rolex"), 0.0);
    assert_eq!(disguised("plain towel", ""), 0.0);
    // Registered brands are disguised as learned ones are; the copy training shows as
    // registered keeps the flag, without the disguised name's own terms.
    f.use_registry(&[verdanne()], &CurrencyRates::default());
    let fake = listing("V E R D A N N E Aurora tote", "", "bags", Some(40.0));
    assert_eq!(f.featurize(&fake).dense[DISGUISED_INDEX], 1.0);
    let copy = f
        .featurize_as_registered(&listing("r0lex Submariner", "", "watches", Some(9.0)))
        .unwrap();
    assert_eq!(copy.dense[DISGUISED_INDEX], 1.0);
}

#[test]
fn removal_ignores_case_and_never_splits_characters() {
    assert_eq!(
        remove_ignoring_case("ROLEX watch rolex", "Rolex"),
        "  watch  "
    );
    // Text with other scripts or emoji loses the name in any case too.
    assert_eq!(
        remove_ignoring_case("İstanbul Rolex ✨ ROLEX", "rolex"),
        "İstanbul   ✨  "
    );
    assert_eq!(
        remove_ignoring_case("Verdanne 邮差包 verdANNE", "Verdanne"),
        "  邮差包  "
    );
    assert_eq!(remove_ignoring_case("ÉCLAT écla", "éclat"), "  écla");
    assert_eq!(remove_ignoring_case("劳力士 watch", "劳力士"), "  watch");
    assert_eq!(remove_ignoring_case("abc", " "), "abc");
}

#[test]
fn only_a_written_name_is_evidence_of_a_claim() {
    let f = with_rolex(featurizer());
    let named = f.featurize(&listing("Rolex Submariner automatic", "", "watches", None));
    assert!(named.evidence().claims_known_brand);
    // "submariner" went only with Rolex in training, so it points to the brand...
    let alias = f.featurize(&listing("Submariner automatic 40mm", "", "watches", None));
    let found = alias.brand.clone().unwrap();
    assert_eq!(
        (found.name.as_str(), found.how),
        ("Rolex", crate::brand::MatchKind::Alias)
    );
    // ...but a wider catalogue uses such words for other makers: it is no claim to be Rolex.
    assert!(!alias.evidence().claims_known_brand);
}

#[test]
fn a_learned_brand_named_where_it_never_sells_is_a_namesake_read_as_an_unknown_brand() {
    use crate::brand::{BrandExample, BrandLearning, NAMESAKE_MIN_LISTINGS};
    use crate::reference::Vocabulary;
    let base = featurizer();
    // Prices known for watches (Rolex) and for toys.
    let toy = listing("wooden train set", "", "toys", Some(20.0));
    let rolex = listing("Rolex Submariner Date", "Rolex", "watches", Some(10000.0));
    let mut rows: Vec<_> = (0..5).map(|_| (base.price_key(&rolex), 10000.0)).collect();
    rows.extend((0..5).map(|_| (base.price_key(&toy), 20.0)));
    let vocabulary = Vocabulary {
        brands: ["rolex".to_string()].into(),
        categories: ["watches".to_string(), "toys".to_string()].into(),
    };
    let base = base.with_references(ReferencePrices::fit(rows, 3).with_vocabulary(vocabulary));
    let fit = |n: usize| {
        let rows: Vec<BrandExample> = (0..n)
            .map(|i| BrandExample {
                brand: "Rolex",
                title: "Rolex Submariner Date",
                category: "Watches",
                counterfeit: i % 2 == 0,
            })
            .collect();
        base.clone()
            .with_brands(Arc::new(BrandIndex::fit(&rows, BrandLearning::default())))
    };
    let f = fit(NAMESAKE_MIN_LISTINGS);
    assert_eq!(f.brands().brands()[0].categories, ["watches"]);
    let namesake = listing("Rolex toy watch, kids", "Rolex", "toys", Some(3.0));
    let features = f.featurize(&namesake);
    let found = features.brand.clone().unwrap();
    assert_eq!(
        (found.name.as_str(), found.relation),
        ("Rolex", Relation::Namesake)
    );
    assert!(!features.evidence().claims_known_brand);
    // Read exactly as an unknown brand's listing, without the name.
    let unknown = f.featurize(&listing("toy watch, kids", "", "toys", Some(3.0)));
    assert_eq!(features.ids, unknown.ids);
    assert_eq!(features.dense, unknown.dense);
    // In its own category, in one the model does not know, or for a brand with fewer
    // listings: a claim as before.
    let fewer = fit(NAMESAKE_MIN_LISTINGS - 1);
    for (category, f) in [("watches", &f), ("garden", &f), ("toys", &fewer)] {
        let l = listing("Rolex toy watch, kids", "Rolex", category, Some(3.0));
        let found = f.featurize(&l).brand.unwrap();
        assert_eq!(found.relation, Relation::Is, "{category}");
    }
}
