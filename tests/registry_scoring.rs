//! The shipped model with a registered brand no training file names: its fakes are found by
//! name (however disguised) and judged against its registered list prices, from the moment it
//! is registered, and its genuine listings at list price are left alone.

use knockoff::data::listing::{FieldLimits, Listing, RawListing, RawPrice};
use knockoff::decision::Decision;
use knockoff::model::Model;
use knockoff::registry::{BrandEntry, RegisteredBrand, RegisteredProduct};
use std::path::Path;

fn verdanne() -> RegisteredBrand {
    let product = |name: &str, category: &str, price: f64| RegisteredProduct {
        name: name.into(),
        category: category.into(),
        list_price: price,
        currency: "EUR".into(),
    };
    RegisteredBrand {
        name: "Verdanne".into(),
        entry: BrandEntry {
            aliases: vec!["维丹妮".into()],
            products: vec![
                product("Aurora tote", "bags", 420.0),
                product("Meridian wallet", "bags", 180.0),
                product("Solstice scarf", "apparel", 95.0),
            ],
        },
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn listing(model: &Model, title: &str, brand: &str, price: f64) -> Listing {
    RawListing {
        title: Some(title.into()),
        brand: Some(brand.into()),
        category: Some("bags".into()),
        price: Some(RawPrice::Number(price)),
        currency: Some("EUR".into()),
        ..Default::default()
    }
    .validate(model.rates(), &FieldLimits::default())
    .unwrap()
}

fn decide(model: &Model, listings: &[Listing]) -> Vec<(Decision, Vec<String>)> {
    let prepared = model.prepare_all(listings, 5);
    model
        .assess_prepared(&prepared, &vec![5; listings.len()])
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.score.decision,
                a.reasons.into_iter().map(|r| r.text).collect(),
            )
        })
        .collect()
}

#[test]
fn a_registered_brand_is_protected_at_once_and_its_genuine_listings_are_not_blocked() {
    let model = Model::load(Path::new("models/default")).unwrap();
    let fakes: Vec<Listing> = [
        ("V3rdanne Aurora tote 1:1 mirror quality", ""),
        ("维丹妮 Aurora tote 一比一 原单", ""),
        ("V E R D A N N E Aurora tote AAA replica", "Generic"),
    ]
    .iter()
    .map(|(title, brand)| listing(&model, title, brand, 42.0))
    .collect();
    let genuine = vec![
        listing(&model, "Verdanne Aurora tote", "Verdanne", 420.0),
        listing(&model, "Verdanne Aurora tote black", "Verdanne", 399.0),
    ];
    let before = decide(&model, &fakes);
    assert!(
        before.iter().all(|(d, _)| *d != Decision::Block),
        "unregistered, no fake may be blocked: {before:?}"
    );

    model.use_registry(&[verdanne()]);
    let after = decide(&model, &fakes);
    for ((decision, reasons), fake) in after.iter().zip(&fakes) {
        assert_eq!(*decision, Decision::Block, "{}: {reasons:?}", fake.title);
    }
    assert!(
        after.iter().any(|(_, reasons)| reasons
            .iter()
            .any(|r| r.contains("Verdanne's registered list price for Aurora tote"))),
        "{after:?}"
    );
    for ((decision, reasons), l) in decide(&model, &genuine).iter().zip(&genuine) {
        assert_ne!(*decision, Decision::Block, "{}: {reasons:?}", l.title);
    }
}

#[test]
fn a_disguised_name_under_list_price_is_blocked_without_any_coded_word() {
    let model = Model::load(Path::new("models/default")).unwrap();
    model.use_registry(&[verdanne()]);
    // A name written in disguise and a price far under the registered list price, nothing
    // else: the disguise is what the model learned from the training listings that do it.
    let fakes = vec![
        listing(&model, "V3rd4nn3 Aurora tote", "", 60.0),
        listing(&model, "Ｖｅｒｄａｎｎｅ Meridian wallet brown", "", 30.0),
        listing(&model, "Vеrdаnnе Aurora tote grey", "Verdanne", 90.0),
    ];
    for ((decision, reasons), fake) in decide(&model, &fakes).iter().zip(&fakes) {
        assert_eq!(*decision, Decision::Block, "{}: {reasons:?}", fake.title);
        assert!(
            reasons
                .iter()
                .any(|r| r.starts_with("disguises the name of Verdanne: title has")),
            "{}: {reasons:?}",
            fake.title
        );
    }
    // The brand's own name, in any script around it, is no disguise and no learned term.
    let genuine = vec![
        listing(&model, "Verdanne Aurora tote ✨", "Verdanne", 410.0),
        listing(&model, "Verdanne Meridian wallet 黑色", "Verdanne", 175.0),
    ];
    for ((decision, reasons), l) in decide(&model, &genuine).iter().zip(&genuine) {
        assert_eq!(*decision, Decision::Allow, "{}: {reasons:?}", l.title);
        assert!(
            !reasons.iter().any(|r| r.contains("\"verdanne\"")),
            "{}: the unlearned name scored: {reasons:?}",
            l.title
        );
    }
}
