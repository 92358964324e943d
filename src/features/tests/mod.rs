//! Featurizer tests: tokenizing, known terms, ids and price features (brands in `brands.rs`).

use super::*;
use crate::data::currency::CurrencyRates;
use crate::data::listing::{FieldLimits, RawListing, RawPrice};
use rand::{Rng, SeedableRng};

mod brands;

fn featurizer() -> Featurizer {
    let plain = Featurizer::new(
        FeatureConfig::default(),
        standard_tokenizer(),
        ReferencePrices::empty(),
    )
    .unwrap();
    let rolex = listing("Rolex Submariner Date", "Rolex", "watches", Some(10000.0));
    let strap = listing(
        "Rolex strap for Submariner",
        "Rolex",
        "watches",
        Some(100.0),
    );
    let mut rows: Vec<_> = (0..5).map(|_| (plain.price_key(&rolex), 10000.0)).collect();
    rows.push((plain.price_key(&strap), 100.0));
    plain.with_references(ReferencePrices::fit(rows, 3))
}

fn listing(title: &str, brand: &str, category: &str, price: Option<f64>) -> Listing {
    RawListing {
        title: Some(title.into()),
        brand: Some(brand.into()),
        category: Some(category.into()),
        price: price.map(RawPrice::Number),
        currency: price.map(|_| "USD".into()),
        ..Default::default()
    }
    .validate(&CurrencyRates::default(), &FieldLimits::default())
    .unwrap()
}

fn terms(f: &Featurizer, title: &str) -> Vec<(TermKind, String)> {
    f.explain(&listing(title, "", "", None))
        .terms
        .iter()
        .map(|(_, k, t)| (k, t.to_string()))
        .collect()
}

fn has(terms: &[(TermKind, String)], kind: TermKind, text: &str) -> bool {
    terms.iter().any(|(k, t)| *k == kind && t == text)
}

#[test]
fn normalises_case_accents_and_width() {
    let f = featurizer();
    let t = terms(&f, "GUCCÌ Ｂａｇ!");
    assert!(has(&t, TermKind::TitleWord, "gucci"), "{t:?}");
    assert!(has(&t, TermKind::TitleWord, "bag"), "{t:?}");
    assert!(
        has(&t, TermKind::TitleWord, "!"),
        "punctuation is its own unit: {t:?}"
    );
}

#[test]
fn chinese_gets_character_unigrams_and_bigrams() {
    let f = featurizer();
    let t = terms(&f, "Rolex潜航者41mm");
    assert!(has(&t, TermKind::TitleWord, "rolex"), "{t:?}");
    assert!(has(&t, TermKind::TitleWord, "潜"), "{t:?}");
    assert!(has(&t, TermKind::TitleBigram, "潜航"), "{t:?}");
    assert!(has(&t, TermKind::TitleBigram, "航者"), "{t:?}");
    assert!(has(&t, TermKind::TitleWord, "41mm"), "{t:?}");
}

#[test]
fn bare_numbers_count_only_with_their_neighbours() {
    let f = featurizer();
    let grade = terms(&f, "Rolex 1:1 ２０２４");
    for number in ["1", "2024"] {
        assert!(!has(&grade, TermKind::TitleWord, number), "{grade:?}");
    }
    // The replica grade is still seen, as the bigrams around its digits.
    assert!(has(&grade, TermKind::TitleBigram, "1 :"), "{grade:?}");
    assert!(has(&grade, TermKind::TitleBigram, ": 1"), "{grade:?}");
    assert!(has(&grade, TermKind::TitleBigram, "1 2024"), "{grade:?}");
    assert!(has(&grade, TermKind::TitleWord, "rolex"), "{grade:?}");
    let leash = terms(&f, "狗绳 1.5米");
    assert!(!has(&leash, TermKind::TitleWord, "1"), "{leash:?}");
    assert!(!has(&leash, TermKind::TitleWord, "5"), "{leash:?}");
    assert!(has(&leash, TermKind::TitleBigram, "1 ."), "{leash:?}");
    assert!(has(&leash, TermKind::TitleBigram, "5 米"), "{leash:?}");
    // Words with letters keep their own feature.
    let sized = terms(&f, "41mm r0lex");
    assert!(has(&sized, TermKind::TitleWord, "41mm"), "{sized:?}");
    assert!(has(&sized, TermKind::TitleWord, "r0lex"), "{sized:?}");
    assert!(has(&sized, TermKind::TitleWord, "rolex"), "{sized:?}");
    // Descriptions alike.
    let mut described = listing("watch", "", "", None);
    described.description = "grade 1:1".into();
    let described: Vec<_> = f
        .explain(&described)
        .terms
        .iter()
        .map(|(_, k, t)| (k, t.to_string()))
        .collect();
    assert!(
        !has(&described, TermKind::DescriptionWord, "1"),
        "{described:?}"
    );
    assert!(
        has(&described, TermKind::DescriptionBigram, "1 :"),
        "{described:?}"
    );
}

#[test]
fn odd_spellings_share_features_with_the_plain_word() {
    let f = featurizer();
    let leet = terms(&f, "R0lex watch");
    assert!(has(&leet, TermKind::TitleWord, "rolex"), "{leet:?}");
    let spaced = terms(&f, "R o l e x watch");
    assert!(has(&spaced, TermKind::TitleWord, "rolex"), "{spaced:?}");
    // A misspelling still shares most character n-grams with the real name.
    let grams = |title: &str| -> std::collections::HashSet<u32> {
        f.explain(&listing(title, "", "", None))
            .terms
            .iter()
            .filter(|(_, k, _)| *k == TermKind::TitleCharGram)
            .map(|(id, _, shown)| {
                assert_eq!(shown, title, "n-grams are shown as their word");
                id
            })
            .collect()
    };
    let a = grams("rolex");
    let b = grams("rollex");
    assert!(a.intersection(&b).count() >= 4, "{a:?} vs {b:?}");
}

#[test]
fn each_words_n_grams_are_shown_as_that_word() {
    let f = featurizer();
    let explained = f.explain(&listing("rolex watch", "", "", None));
    let mut shown_as = std::collections::HashMap::new();
    for (_, kind, shown) in explained.terms.iter() {
        if kind == TermKind::TitleCharGram {
            *shown_as.entry(shown).or_insert(0) += 1;
        }
    }
    // "<rolex>" has 5 + 4 + 3 grams of 3..=5 characters, "<watch>" the same.
    assert_eq!(shown_as.get("rolex"), Some(&12), "{shown_as:?}");
    assert_eq!(shown_as.get("watch"), Some(&12), "{shown_as:?}");
    assert_eq!(shown_as.len(), 2, "{shown_as:?}");
}

/// `f` keeping only the terms of at least `min` of `titles`.
fn knowing(f: &Featurizer, titles: &[&str], min: u8) -> Featurizer {
    let mut counter = KnownTermCounter::default();
    for title in titles {
        counter.add(f, &listing(title, "", "", None));
    }
    f.clone()
        .with_known_terms(Some(Arc::new(counter.known(min))))
}

#[test]
fn unknown_terms_are_left_out() {
    let f = featurizer();
    // "mug" is in two listings, "sword" twice in one, "lamp" in none.
    let known = knowing(&f, &["mug set", "blue mug", "sword sword"], 2);
    let t = terms(&known, "blue mug lamp sword");
    assert!(has(&t, TermKind::TitleWord, "mug"), "{t:?}");
    assert!(!has(&t, TermKind::TitleWord, "blue"), "one listing: {t:?}");
    assert!(
        !has(&t, TermKind::TitleWord, "sword"),
        "counted once per listing: {t:?}"
    );
    assert!(!t.iter().any(|(_, text)| text.contains("lamp")), "{t:?}");
    // The same listing keeps every term without known terms, and loses ids with them.
    let all = f.featurize(&listing("blue mug lamp sword", "", "", None));
    let kept = known.featurize(&listing("blue mug lamp sword", "", "", None));
    assert!(kept.ids.len() < all.ids.len() && !kept.ids.is_empty());
    assert!(kept.ids.iter().all(|id| all.ids.contains(id)));
    assert_eq!(
        kept.dense, all.dense,
        "price features do not depend on terms"
    );
    assert_eq!(all.unknown, 0);
    assert_eq!(kept.ids.len() + kept.unknown as usize, all.ids.len());
    assert!(kept.known_share().is_some_and(|s| s > 0.0 && s < 1.0));
    assert_eq!(all.known_share(), Some(1.0));
    // A listing of only unknown terms has no ids at all: nothing to go on but price.
    let lamp = known.featurize(&listing("lamp", "", "", None));
    assert!(lamp.ids.is_empty());
    assert_eq!(lamp.known_share(), Some(0.0));
}

#[test]
fn a_words_kept_n_grams_are_shown_as_that_word_when_its_first_is_unknown() {
    let f = featurizer();
    // "sword" teaches "wor", "ord", "rd>", ... but not "<wo", the first gram of "word".
    let known = knowing(&f, &["big sword", "big sword", "big sword"], 3);
    let explained = known.explain(&listing("big word", "", "", None));
    let grams: Vec<&str> = explained
        .terms
        .iter()
        .filter(|(_, kind, _)| *kind == TermKind::TitleCharGram)
        .map(|(_, _, shown)| shown)
        .collect();
    assert!(grams.contains(&"word"), "{grams:?}");
    assert!(
        grams.iter().all(|g| *g == "big" || *g == "word"),
        "{grams:?}"
    );
}

#[test]
fn known_terms_survive_their_bytes_and_refuse_a_wrong_length() {
    let f = featurizer();
    let known = knowing(&f, &["mug set", "mug"], 2);
    let terms = known.known_terms().unwrap();
    assert!(!terms.is_empty());
    let bytes = terms.to_bytes();
    assert_eq!(bytes.len(), KnownTerms::BYTES);
    assert_eq!(&KnownTerms::from_bytes(&bytes).unwrap(), terms);
    let e = KnownTerms::from_bytes(&bytes[1..]).unwrap_err();
    assert!(e.to_string().contains("bytes"), "{e}");
}

#[test]
fn ids_are_deterministic_and_within_buckets() {
    let f = featurizer();
    let l = listing("Nike Air Jordan 1 复刻", "Nike", "sneakers", Some(50.0));
    let a = f.featurize(&l);
    let b = f.featurize(&l);
    assert_eq!(a, b);
    assert!(!a.ids.is_empty());
    assert!(a.ids.iter().all(|&id| id < f.config().buckets));
}

#[test]
fn max_ids_bounds_huge_descriptions() {
    let f = featurizer();
    let mut l = listing("bag", "", "", None);
    l.description = "word ".repeat(5000);
    assert_eq!(f.featurize(&l).ids.len(), f.config().max_ids);
}

#[test]
fn price_features_compare_with_the_usual_price() {
    let f = featurizer();
    let cheap = f.explain(&listing(
        "ROLEX Submariner 41mm",
        "Rolex",
        "watches",
        Some(100.0),
    ));
    let d = cheap.features.dense;
    assert_eq!(d[0], 1.0);
    assert!((d[LOG_RATIO_INDEX] - (100f32 / 10000.0).ln()).abs() < 1e-4);
    assert_eq!(d[LEVEL_INDEX], 1.0, "product reference used");
    assert_eq!(cheap.price.level, RefLevel::Product);
    assert_eq!(cheap.price.phrase, "submariner");
    assert_eq!(d[BRAND_IN_TITLE_INDEX], 1.0, "brand appears in the title");

    let other = f.explain(&listing("Rolex Daytona", "Rolex", "watches", Some(100.0)));
    assert_eq!(
        other.price.level,
        RefLevel::BrandCategory,
        "unknown model falls back"
    );

    let unknown = f
        .featurize(&listing("Teapot", "Acme", "kitchen", None))
        .dense;
    assert_eq!(unknown[0], 0.0, "missing price is flagged, not zero");
    assert_eq!(unknown[LOG_RATIO_INDEX], 0.0);
    assert_eq!(
        unknown[LEVEL_INDEX + 4],
        1.0,
        "global fallback for unseen brand and category"
    );
    assert_eq!(unknown[BRAND_MISSING_INDEX], 0.0);
    assert_eq!(unknown[BRAND_IN_TITLE_INDEX], 0.0);
}

#[test]
fn invalid_config_is_refused() {
    let config = FeatureConfig {
        buckets: 1000,
        ..Default::default()
    };
    assert!(Featurizer::new(config, standard_tokenizer(), ReferencePrices::empty()).is_err());
}

#[test]
fn tokenizer_survives_a_json_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    standard_tokenizer().save(&path, false).unwrap();
    let loaded = Featurizer::load_tokenizer(&path).unwrap();
    let refs = ReferencePrices::empty();
    let a = Featurizer::new(FeatureConfig::default(), standard_tokenizer(), refs.clone()).unwrap();
    let b = Featurizer::new(FeatureConfig::default(), loaded, refs).unwrap();
    assert!(
        b.standard_pipeline,
        "a saved standard tokenizer keeps the ASCII shortcut"
    );
    let l = listing("Ｌｏｕｉｓ Vuitton 手袋", "", "", None);
    assert_eq!(a.featurize(&l), b.featurize(&l));
}

/// Pieces per field, as owned strings, from either path.
fn pieces<const N: usize>(t: &Tokenized<N>) -> Vec<(Vec<String>, Vec<String>)> {
    t.fields()
        .iter()
        .map(|a| {
            (
                a.units.iter().map(|u| u.text().to_string()).collect(),
                a.words.iter().map(|w| w.to_string()).collect(),
            )
        })
        .collect()
}

/// Up to `max - 1` characters drawn from `alphabet`.
fn random_text(rng: &mut rand::rngs::StdRng, alphabet: &[char], max: usize) -> String {
    let len = rng.random_range(0..max);
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())])
        .collect()
}

/// Title and description of every row of the test fixture.
fn fixture_texts() -> Vec<(String, String)> {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tiny-listings.csv"
    );
    csv::Reader::from_path(fixture)
        .unwrap()
        .records()
        .map(|record| {
            let record = record.unwrap();
            (record[1].to_string(), record[2].to_string())
        })
        .collect()
}

fn assert_ascii_shortcut_is_exact(f: &Featurizer, fields: [&str; 2]) {
    let fast = f.tokenize(fields);
    assert!(
        matches!(
            fast.text,
            TokenizedText::Direct { .. } | TokenizedText::Empty
        ),
        "{fields:?} took the pipeline"
    );
    let (joined, ends) = join_fields(fields);
    if joined.is_empty() {
        return;
    }
    let slow = f.tokenize_with_pipeline(joined, ends);
    assert_eq!(pieces(&fast), pieces(&slow), "{fields:?}");
}

#[test]
fn ascii_shortcut_matches_the_tokenizers_pipeline() {
    let f = featurizer();
    assert!(f.standard_pipeline);
    let mut checked = 0;
    for (title, description) in fixture_texts() {
        if title.is_ascii() && description.is_ascii() {
            assert_ascii_shortcut_is_exact(&f, [&title, &description]);
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} ASCII rows in the fixture");
    // Every ASCII character, in random mixes with runs of spaces and punctuation.
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let alphabet: Vec<char> = (0u8..128)
        .map(char::from)
        .chain("  aZ9-.".chars())
        .collect();
    for _ in 0..2000 {
        let title = random_text(&mut rng, &alphabet, 40);
        let description = random_text(&mut rng, &alphabet, 80);
        assert_ascii_shortcut_is_exact(&f, [&title, &description]);
    }
}

#[test]
fn other_tokenizers_always_take_the_pipeline() {
    let mut cased = standard_tokenizer();
    let normalizer = NormalizerSequence::new(vec![NFKD.into(), StripAccents.into()]);
    let _ = cased.with_normalizer(Some(normalizer));
    let f = Featurizer::new(FeatureConfig::default(), cased, ReferencePrices::empty()).unwrap();
    assert!(!f.standard_pipeline);
    let tokenized = f.tokenize(["GUCCI Bag", ""]);
    assert!(matches!(tokenized.text, TokenizedText::Pipeline(_)));
    let [title, _] = tokenized.fields();
    assert_eq!(
        title.words,
        vec!["GUCCI", "Bag"],
        "no lower-casing in this pipeline"
    );
}

#[test]
fn mixed_text_gets_the_pieces_of_the_whole_pipeline() {
    let f = featurizer();
    let check = |fields: [&str; 2]| {
        let (joined, ends) = join_fields(fields);
        if joined.is_empty() {
            return;
        }
        let fast = f.tokenize(fields);
        assert!(matches!(fast.text, TokenizedText::Direct { .. }));
        let slow = f.tokenize_with_pipeline(joined, ends);
        assert_eq!(pieces(&fast), pieces(&slow), "{fields:?}");
    };
    let mut mixed = 0;
    for (title, description) in fixture_texts() {
        check([&title, &description]);
        mixed += usize::from(!(title.is_ascii() && description.is_ascii()));
    }
    assert!(mixed > 50, "only {mixed} non-ASCII rows in the fixture");
    check(["Guccì bag", "Ｌｏｕｉｓ Vuitton 手袋"]);
    // Random mixes of ASCII, other white space, CJK, precomposed and combining accents,
    // compatibility forms (full width, ligatures, circled and squared letters), letters
    // whose lower case is longer, and punctuation of several scripts.
    let alphabet: Vec<char> = concat!(
        "aZ9 -.:/",
        "\u{a0}\u{3000}\u{2003}\u{1680}\u{85}\u{202f}\t\n",
        "手袋狗绳米가나ひカ",
        "éÉñ\u{301}\u{308}\u{327}",
        "ＬｏＡ１ﬁﬀ⑵㎏①ⅻ",
        "İΣßǅ",
        "「」、。！？¿¡–—…€£",
        "🔥💯✨",
        "\u{fdfa}\u{200b}"
    )
    .chars()
    .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    for _ in 0..3000 {
        let title = random_text(&mut rng, &alphabet, 30);
        let description = random_text(&mut rng, &alphabet, 60);
        check([&title, &description]);
    }
}

#[test]
fn a_tokenizer_file_cut_anywhere_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.json");
    standard_tokenizer().save(&whole, true).unwrap();
    let text = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.json");
    // Every cut point: some of `tokenizers`' own deserialisers panic on a truncated file.
    for end in 0..text.len() {
        std::fs::write(&cut, &text[..end]).unwrap();
        let error = Featurizer::load_tokenizer(&cut).unwrap_err();
        assert!(matches!(error, FeatureError::Tokenizer(_)), "cut at {end}");
    }
    assert!(Featurizer::load_tokenizer(&whole).is_ok());
}
