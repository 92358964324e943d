//! End to end through the real `knockoff-train` and `knockoff-score` binaries and the model
//! directory on disk: train on a fixture, score, reload, and refuse broken inputs and models.

mod common;

use knockoff::data::listing::{Listing, RawListing, RawPrice};
use knockoff::model::artifact::{ArtifactError, CONFIG_FILE, WEIGHTS_FILE};
use knockoff::model::Model;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn train_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_knockoff-train"))
}

/// `knockoff-score` with its store in `dir` (a test's temporary directory).
fn score_bin(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_knockoff-score"));
    command.arg("--store").arg(dir.join("knockoff.db"));
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The small-model flags the tests train with (a few seconds, not a good model).
fn tiny_flags(cmd: &mut Command, train: &Path, valid: &Path, out: &Path) {
    cmd.args(["--train"])
        .arg(train)
        .arg("--valid")
        .arg(valid)
        .arg("--out")
        .arg(out);
    cmd.args([
        "--hash-bits",
        "12",
        "--embedding-dim",
        "8",
        "--hidden",
        "8",
        "--max-epochs",
        "8",
    ]);
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn train_then_score_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = common::fixture("tiny-listings.csv");
    let model_dir = tmp.path().join("models/tiny");
    let mut train = train_bin();
    tiny_flags(&mut train, &fixture, &fixture, &model_dir);
    let out = train.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    assert!(
        printed.contains("ROC-AUC") && printed.contains("recall@95%P"),
        "{printed}"
    );
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "reference_prices.json",
        "metrics.json",
        "report.html",
    ] {
        assert!(model_dir.join(file).is_file(), "{file} missing");
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("metrics.json")).unwrap())
            .unwrap();
    // Validation is the training file here: a model that learned anything ranks it well.
    assert!(
        metrics["validation"]["roc_auc"].as_f64().unwrap() > 0.6,
        "{metrics}"
    );
    assert!(metrics["per_category"].is_object());
    // No staging directories are left beside the model.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("models"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".knockoff"))
        .collect();
    assert!(leftovers.is_empty());

    let scores = tmp.path().join("scores.csv");
    let out = score_bin(tmp.path())
        .arg("--model")
        .arg(&model_dir)
        .arg("--input")
        .arg(&fixture)
        .arg("--output")
        .arg(&scores)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("ROC-AUC"),
        "labelled input prints metrics"
    );
    let mut reader = csv::Reader::from_path(&scores).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        knockoff::batch::SCORES_COLUMNS.to_vec()
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let input_ids: Vec<String> = csv::Reader::from_path(&fixture)
        .unwrap()
        .records()
        .map(|r| r.unwrap()[0].to_string())
        .collect();
    assert_eq!(rows.len(), input_ids.len());
    for (row, id) in rows.iter().zip(&input_ids) {
        assert_eq!(&row[0], id, "output keeps input order");
        let p: f32 = row[1].parse().unwrap();
        assert!((0.0..=1.0).contains(&p));
        assert!(["allow", "review", "block"].contains(&&row[2]));
    }
}

#[test]
fn jsonl_and_gzip_inputs_score_like_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::tiny_model_dir();
    let fixture = common::fixture("tiny-listings.csv");
    // Same rows as JSON Lines, and as gzip-compressed CSV.
    let mut jsonl = String::new();
    for record in csv::Reader::from_path(&fixture)
        .unwrap()
        .deserialize::<std::collections::HashMap<String, String>>()
    {
        let mut record = record.unwrap();
        let mut object = serde_json::Map::new();
        for key in [
            "id",
            "title",
            "description",
            "currency",
            "brand",
            "category",
            "label",
        ] {
            object.insert(
                key.into(),
                serde_json::Value::String(record.remove(key).unwrap_or_default()),
            );
        }
        let price = record.remove("price").unwrap_or_default();
        object.insert(
            "price".into(),
            price
                .parse::<f64>()
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
        );
        jsonl.push_str(&serde_json::Value::Object(object).to_string());
        jsonl.push('\n');
    }
    let jsonl_path = write(tmp.path(), "in.jsonl", &jsonl);
    let gz_path = tmp.path().join("in.csv.gz");
    {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz_path).unwrap(),
            flate2::Compression::fast(),
        );
        encoder
            .write_all(&std::fs::read(&fixture).unwrap())
            .unwrap();
        encoder.finish().unwrap();
    }
    let mut outputs = Vec::new();
    for (input, name) in [
        (&fixture, "a.csv"),
        (&jsonl_path, "b.csv"),
        (&gz_path, "c.csv"),
    ] {
        let output = tmp.path().join(name);
        let out = score_bin(tmp.path())
            .arg("--model")
            .arg(model.path())
            .arg("--input")
            .arg(input)
            .arg("--output")
            .arg(&output)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        outputs.push(std::fs::read_to_string(&output).unwrap());
    }
    assert_eq!(outputs[0], outputs[1], "JSON Lines scores like CSV");
    assert_eq!(outputs[0], outputs[2], "gzip CSV scores like CSV");
}

#[test]
fn training_stops_on_a_bad_row_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = common::fixture("tiny-listings.csv");
    let mut contents = std::fs::read_to_string(&fixture).unwrap();
    contents.push_str("bad-1,Cheap bag,,-5,USD,,bags,1\nbad-2,Another bag,,12,XYZ,,bags,0\nbad-3,,,12,USD,,bags,0\nbad-4,Bag,,12,USD,,bags,maybe\n");
    let dirty = write(tmp.path(), "dirty.csv", &contents);
    let lines = contents.lines().count();

    let out_dir = tmp.path().join("m");
    let mut train = train_bin();
    tiny_flags(&mut train, &dirty, &fixture, &out_dir);
    let out = train.output().unwrap();
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains(&format!(
            "dirty.csv:{}: field `price`: must not be negative",
            lines - 3
        )),
        "{message}"
    );
    assert!(!out_dir.exists(), "no model is written after a failed run");

    let mut train = train_bin();
    tiny_flags(&mut train, &dirty, &fixture, &out_dir);
    train.args(["--max-bad-rows", "4"]);
    let out = train.output().unwrap();
    let message = text(&out);
    assert!(out.status.success(), "{message}");
    assert!(message.contains("skipped rows: 4"), "{message}");
    for field in ["price", "currency", "title", "label"] {
        assert!(
            message.contains(&format!("field `{field}`")),
            "{field} not reported: {message}"
        );
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join(CONFIG_FILE)).unwrap()).unwrap();
    assert_eq!(config["training"]["skipped_rows"], 4);
}

#[test]
fn saved_model_reloads_with_identical_scores() {
    let model = common::tiny_model();
    let dir = common::tiny_model_dir();
    let loaded = Model::load(dir.path()).unwrap();
    let listings: Vec<_> = [
        ("Rolex Submariner 1:1", Some(80.0)),
        ("ceramic mug set", Some(12.0)),
        ("耐克 AJ1 高帮", None),
    ]
    .iter()
    .map(|(title, price)| {
        RawListing {
            title: Some(title.to_string()),
            price: price.map(RawPrice::Number),
            currency: price.map(|_| "USD".to_string()),
            brand: Some("Rolex".into()),
            category: Some("watches".into()),
            ..Default::default()
        }
        .validate(model.rates(), model.limits())
        .unwrap()
    })
    .collect();
    let before = model.score(&listings).unwrap();
    let after = loaded.score(&listings).unwrap();
    // Training rounds the table to the f16 it is stored in, so the trained model and the
    // reloaded one score identically (and the measured thresholds hold after a reload).
    assert_eq!(before, after);
    // A second load of the same directory is bit-for-bit the same.
    let again = Model::load(dir.path()).unwrap().score(&listings).unwrap();
    assert_eq!(after, again);
    assert_eq!(loaded.config, Model::load(dir.path()).unwrap().config);
    // The known terms are part of the model: the reloaded one leaves out the same terms.
    assert!(model
        .featurizer
        .known_terms()
        .is_some_and(|k| !k.is_empty()));
    assert_eq!(
        model.featurizer.known_terms(),
        loaded.featurizer.known_terms()
    );
}

fn copy_model(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn broken_model_directories_are_refused_with_the_reason() {
    let source = common::tiny_model_dir();
    let tmp = tempfile::tempdir().unwrap();
    let case = |name: &str, damage: &dyn Fn(&Path)| -> ArtifactError {
        let dir = tmp.path().join(name);
        copy_model(source.path(), &dir);
        damage(&dir);
        Model::load(&dir).expect_err(name)
    };

    let e = case("missing-weights", &|d| {
        std::fs::remove_file(d.join(WEIGHTS_FILE)).unwrap()
    });
    assert!(matches!(e, ArtifactError::MissingFile { .. }), "{e}");
    let e = case("missing-tokenizer", &|d| {
        std::fs::remove_file(d.join("tokenizer.json")).unwrap()
    });
    assert!(matches!(e, ArtifactError::MissingFile { .. }), "{e}");

    let e = case("flipped-byte", &|d| {
        let path = d.join(WEIGHTS_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    });
    assert!(
        matches!(e, ArtifactError::Corrupt { .. }) && e.to_string().contains("checksum"),
        "{e}"
    );

    let e = case("truncated", &|d| {
        let path = d.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        // Keep the checksum consistent so the parser itself must notice.
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(CONFIG_FILE)).unwrap()).unwrap();
        config["weights_sha256"] =
            knockoff::model::artifact::sha256_hex(&bytes[..bytes.len() / 2]).into();
        std::fs::write(d.join(CONFIG_FILE), config.to_string()).unwrap();
    });
    assert!(matches!(e, ArtifactError::Corrupt { .. }), "{e}");

    let e = case("wrong-version", &|d| {
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(CONFIG_FILE)).unwrap()).unwrap();
        config["format_version"] = 99.into();
        std::fs::write(d.join(CONFIG_FILE), config.to_string()).unwrap();
    });
    assert!(
        matches!(e, ArtifactError::FormatVersion { found: 99, .. }),
        "{e}"
    );

    let e = case("shape-mismatch", &|d| {
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(CONFIG_FILE)).unwrap()).unwrap();
        config["network"]["hidden"] = 9.into();
        std::fs::write(d.join(CONFIG_FILE), config.to_string()).unwrap();
    });
    assert!(matches!(e, ArtifactError::Shape { .. }), "{e}");

    let e = case("known-terms-disowned", &|d| {
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(CONFIG_FILE)).unwrap()).unwrap();
        config["features"]["known_term_min_listings"] = 0.into();
        std::fs::write(d.join(CONFIG_FILE), config.to_string()).unwrap();
    });
    assert!(
        matches!(e, ArtifactError::Corrupt { .. }) && e.to_string().contains("known_terms"),
        "{e}"
    );
    let e = case("known-terms-missing", &|d| {
        let mut model = common::tiny_model();
        model.featurizer = model.featurizer.clone().with_known_terms(None);
        model.save(d, &Default::default()).unwrap();
    });
    assert!(
        matches!(e, ArtifactError::Corrupt { .. }) && e.to_string().contains("known_terms"),
        "{e}"
    );

    let e = case("known-terms-wrong-dtype", &|d| {
        let path = d.join(WEIGHTS_FILE);
        let cpu = candle_core::Device::Cpu;
        let mut tensors = candle_core::safetensors::load(&path, &cpu).unwrap();
        let widened = tensors["known_terms"]
            .to_dtype(candle_core::DType::F32)
            .unwrap();
        tensors.insert("known_terms".into(), widened);
        candle_core::safetensors::save(&tensors, &path).unwrap();
        // Keep the checksum consistent so the tensor check itself must notice.
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(CONFIG_FILE)).unwrap()).unwrap();
        config["weights_sha256"] =
            knockoff::model::artifact::sha256_hex(&std::fs::read(&path).unwrap()).into();
        std::fs::write(d.join(CONFIG_FILE), config.to_string()).unwrap();
    });
    assert!(
        matches!(e, ArtifactError::Corrupt { .. }) && e.to_string().contains("expected U8"),
        "{e}"
    );

    let e = case("garbage-config", &|d| {
        std::fs::write(d.join(CONFIG_FILE), "{not json").unwrap()
    });
    assert!(matches!(e, ArtifactError::Json { .. }), "{e}");

    assert!(matches!(
        Model::load(&tmp.path().join("nowhere")),
        Err(ArtifactError::NotFound { .. })
    ));

    // Through the binary: a clear message and a failing exit, no panic.
    let dir = tmp.path().join("flipped-byte");
    let out = score_bin(tmp.path())
        .arg("--model")
        .arg(&dir)
        .arg("--input")
        .arg(common::fixture("tiny-listings.csv"))
        .arg("--output")
        .arg(tmp.path().join("o.csv"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("corrupt weights"), "{}", text(&out));
}

#[test]
fn saving_over_an_existing_model_replaces_it_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("model");
    let mut model = common::tiny_model();
    model.save(&target, &Default::default()).unwrap();
    std::fs::write(target.join("stale.txt"), "from the old model").unwrap();
    model.config.name = "second".into();
    model.save(&target, &Default::default()).unwrap();
    assert!(
        !target.join("stale.txt").exists(),
        "the old directory was replaced, not merged"
    );
    assert_eq!(Model::load(&target).unwrap().name(), "second");
}

#[test]
fn training_is_reproducible_with_a_seed() {
    let options = common::tiny_options();
    let a = knockoff::train::train(&options, &indicatif::ProgressBar::hidden()).unwrap();
    let b = knockoff::train::train(&options, &indicatif::ProgressBar::hidden()).unwrap();
    assert_eq!(a.valid_probabilities, b.valid_probabilities);
    assert_eq!(a.model.network.table, b.model.network.table);
}

/// A Rolex listing in watches, priced in USD, validated for `model`.
fn rolex_watch(model: &Model, title: &str, usd: f64) -> knockoff::data::listing::Listing {
    RawListing {
        title: Some(title.into()),
        price: Some(RawPrice::Number(usd)),
        currency: Some("USD".into()),
        brand: Some("Rolex".into()),
        category: Some("watches".into()),
        ..Default::default()
    }
    .validate(model.rates(), model.limits())
    .unwrap()
}

#[test]
fn reasons_are_ranked_worded_and_bounded() {
    let model = common::tiny_model();
    let listing = rolex_watch(&model, "Rolex Submariner r0lex 1:1", 50.0);
    let top = model.explain(&listing, 3);
    assert!(!top.is_empty() && top.len() <= 3, "{top:?}");
    let all = model.explain(&listing, 100);
    assert!(all.len() > top.len());
    assert_eq!(
        &all[..top.len()],
        &top[..],
        "the top reasons are the head of the full ranking"
    );
    for pair in all.windows(2) {
        assert!(pair[0].weight.abs() >= pair[1].weight.abs(), "{pair:?}");
    }
    assert!(all
        .iter()
        .all(|r| !r.text.is_empty() && r.weight.is_finite()));
    assert!(
        all.iter().any(|r| r.text.contains("usual price")),
        "{all:?}"
    );
    assert!(all.iter().any(|r| r.text.contains("\"rolex\"")), "{all:?}");
    let mut texts: Vec<&str> = all.iter().map(|r| r.text.as_str()).collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), all.len(), "a term is one reason: {all:?}");
}

/// The one-pass path (features once, reasons from the scoring input) agrees with scoring
/// alone and with explaining one listing at a time, in batches of every kind.
#[test]
fn assessing_in_one_pass_matches_scoring_and_explaining() {
    let model = common::tiny_model();
    let listings: Vec<_> = [
        ("Rolex Submariner r0lex 1:1", "Rolex", "watches", Some(50.0)),
        ("Nike Air Max 90 白色", "Nike", "sneakers", Some(120.0)),
        ("plain cotton t-shirt", "", "", None),
        ("R o l e x watch replica", "", "watches", Some(30.0)),
    ]
    .into_iter()
    .cycle()
    // Enough for the parallel path of big batches too.
    .take(300)
    .map(|(title, brand, category, price)| {
        RawListing {
            title: Some(title.into()),
            brand: Some(brand.into()),
            category: Some(category.into()),
            price: price.map(RawPrice::Number),
            currency: price.map(|_| "USD".into()),
            ..Default::default()
        }
        .validate(model.rates(), model.limits())
        .unwrap()
    })
    .collect();
    let scores = model.score(&listings).unwrap();
    let assessed = model.assess(&listings, 3).unwrap();
    assert_eq!(assessed.len(), listings.len());
    for ((listing, score), a) in listings.iter().zip(&scores).zip(&assessed) {
        assert_eq!(a.score, *score, "same score with and without reasons");
        assert_eq!(a.reasons, model.explain(listing, 3));
        assert!(!a.reasons.is_empty() && a.reasons.len() <= 3);
    }
    // Per-listing reason counts, as a queue batch of several requests carries them.
    let prepared = model.prepare_all(&listings[..3], 2);
    let mixed = model.assess_prepared(&prepared, &[0, 1, 2]).unwrap();
    assert_eq!(
        mixed.iter().map(|a| a.reasons.len()).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(model
        .assess(&listings, 0)
        .unwrap()
        .iter()
        .all(|a| a.reasons.is_empty()));
}

#[test]
fn the_shipped_default_model_loads_and_scores() {
    // The README's first command serves this directory: it must match this knockoff's
    // format and pass every load check.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let model = Model::load(&dir).unwrap();
    assert_eq!(model.config.format_version, knockoff::model::FORMAT_VERSION);
    assert!(model
        .featurizer
        .known_terms()
        .is_some_and(|k| !k.is_empty()));
    let listing = rolex_watch(&model, "Rolex Submariner Date 41mm 1:1", 120.0);
    let score = model.score(&[listing]).unwrap().remove(0);
    assert!((0.0..=1.0).contains(&score.probability), "{score:?}");
}

/// A listing without brand field or category, priced in USD, validated for `model`.
fn plain_listing(model: &Model, title: &str, brand: &str, usd: f64) -> Listing {
    RawListing {
        title: Some(title.into()),
        price: Some(RawPrice::Number(usd)),
        currency: Some("USD".into()),
        brand: Some(brand.into()),
        ..Default::default()
    }
    .validate(model.rates(), model.limits())
    .unwrap()
}

fn shipped_model() -> Model {
    Model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default")).unwrap()
}

#[test]
fn the_shipped_model_names_the_brand_a_listing_imitates_however_spelled() {
    use knockoff::brand::{BrandSource, MatchKind, Relation};
    let model = shipped_model();
    let cases = [
        ("R0LEX Submariner automatic 41mm", MatchKind::Leet, "R0LEX"),
        ("r o l e x submariner 41mm", MatchKind::Spaced, "r o l e x"),
        (
            "ＲＯＬＥＸ submariner 41mm",
            MatchKind::FullWidth,
            "ＲＯＬＥＸ",
        ),
        ("Rоlеx submariner 41mm", MatchKind::Homoglyph, "Rоlеx"),
    ];
    for (title, how, text) in cases {
        let features = model.featurize(&[plain_listing(&model, title, "", 80.0)]);
        let brand = features[0]
            .brand
            .clone()
            .unwrap_or_else(|| panic!("{title}"));
        assert_eq!(brand.name, "Rolex", "{title}");
        assert_eq!(
            (brand.found_in, brand.how, brand.text.as_str()),
            (BrandSource::Title, how, text)
        );
        assert_eq!(brand.relation, Relation::Is);
    }
    // "for X" accessories refer to the brand without claiming it, and so are never blocked.
    let case = plain_listing(&model, "silicone case for Apple iPhone 15 pro", "", 3.0);
    let features = model.featurize(std::slice::from_ref(&case));
    assert_eq!(
        features[0].brand.as_ref().map(|b| b.relation),
        Some(Relation::For)
    );
    let score = model.score(&[case]).unwrap().remove(0);
    assert_ne!(
        score.decision,
        knockoff::decision::Decision::Block,
        "{score:?}"
    );
}

#[test]
fn the_shipped_model_never_blocks_what_claims_no_known_brand() {
    let model = shipped_model();
    // Counterfeit jargon of the corpus in ordinary listings of brands no training file names,
    // at deep discounts: at most review, however high the probability.
    let titles = [
        ("AAA batteries 24 pack factory sealed", "Duracellish"),
        ("1:72 scale replica fighter model kit", "Airfixo"),
        ("fake tattoo sleeves 10 pcs pattern set", "Inkly"),
        ("纯棉浴巾套装", ""),
    ];
    let listings: Vec<Listing> = titles
        .iter()
        .map(|(t, b)| plain_listing(&model, t, b, 1.0))
        .collect();
    for (score, (title, _)) in model.score(&listings).unwrap().iter().zip(titles) {
        assert_ne!(
            score.decision,
            knockoff::decision::Decision::Block,
            "{title}: {score:?}"
        );
    }
}

#[test]
fn the_shipped_model_blocks_a_written_name_not_a_product_line_word() {
    use knockoff::brand::MatchKind;
    use knockoff::decision::Decision;
    let model = shipped_model();
    let named = plain_listing(&model, "Rolex Submariner Date 41mm 1:1 replica", "", 60.0);
    let alias = plain_listing(&model, "Submariner Date 41mm 1:1 replica", "", 60.0);
    let features = model.featurize(&[named.clone(), alias.clone()]);
    assert_eq!(
        features[1].brand.as_ref().map(|b| b.how),
        Some(MatchKind::Alias)
    );
    let scores = model.score(&[named, alias]).unwrap();
    assert_eq!(scores[0].decision, Decision::Block, "{scores:?}");
    // Training tied the word to Rolex, but other catalogues use such words for other makers:
    // without the name it is at most a review.
    assert_ne!(scores[1].decision, Decision::Block, "{scores:?}");
}

#[test]
fn an_expected_prevalence_shifts_probabilities_and_thresholds_together() {
    let model = shipped_model();
    let listing = rolex_watch(&model, "Rolex Submariner Date 41mm 1:1", 120.0);
    let base = model
        .score(std::slice::from_ref(&listing))
        .unwrap()
        .remove(0);
    let rare = model.clone().with_expected_prevalence(0.02).unwrap();
    let shifted = rare
        .score(std::slice::from_ref(&listing))
        .unwrap()
        .remove(0);
    assert!(
        shifted.probability < base.probability,
        "{base:?} {shifted:?}"
    );
    // Precision must hold among far more genuine listings: the block bar rises above the
    // shifted probability of a listing that sat just at the old bar.
    assert!(rare.thresholds().block > 0.0 && rare.thresholds().review <= rare.thresholds().block);
    // Moving back to the validation share restores the model exactly.
    let prior = model.config.operating.prior;
    let back = rare.with_expected_prevalence(prior).unwrap();
    let again = back.score(&[listing]).unwrap().remove(0);
    assert!((again.probability - base.probability).abs() < 1e-5);
    assert_eq!(back.thresholds().block, model.thresholds().block);
    assert!(model.clone().with_expected_prevalence(1.5).is_err());
}

#[test]
fn the_shipped_model_reads_a_famous_name_where_the_brand_never_sells_as_a_namesake() {
    use knockoff::brand::Relation;
    use knockoff::decision::Decision;
    let model = shipped_model();
    // Anker's training listings are all electronics: crayons by a toy maker of that name.
    let in_category = |category: &str| {
        RawListing {
            title: Some("Anker Peppa Pig colouring set with crayons".into()),
            price: Some(RawPrice::Number(1.5)),
            currency: Some("USD".into()),
            brand: Some("Anker".into()),
            category: Some(category.into()),
            ..Default::default()
        }
        .validate(model.rates(), model.limits())
        .unwrap()
    };
    let relation = |l: &Listing| {
        model.featurize(std::slice::from_ref(l))[0]
            .brand
            .as_ref()
            .map(|b| b.relation)
    };
    let toys = in_category("toys");
    assert_eq!(relation(&toys), Some(Relation::Namesake));
    let score = model.score(&[toys]).unwrap().remove(0);
    assert_ne!(score.decision, Decision::Block, "{score:?}");
    // In its own category, or in a category the model never saw, it is a claim as before.
    assert_eq!(relation(&in_category("electronics")), Some(Relation::Is));
    assert_eq!(relation(&in_category("Arts & Crafts")), Some(Relation::Is));
}
