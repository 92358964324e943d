//! Property tests in place of a fuzzer (cargo-fuzz needs nightly; these run on stable in
//! `cargo test`): the CSV and JSON Lines readers on arbitrary and mutated bytes, the v1 and
//! v2 request bodies through the in-process router (never a 5xx, never a panic, always a
//! JSON answer), the feature pipeline and the model on arbitrary Unicode, and the model
//! loader on corrupted copies of a model directory (refused with an error or loaded whole,
//! never a panic). Every seed in `tests/fuzz-seeds/` runs first and seeds the mutations.
//!
//! Case counts are small so `cargo test` stays fast; `PROPTEST_CASES=20000 cargo test
//! --test fuzz` runs a longer campaign.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use knockoff::data::currency::CurrencyRates;
use knockoff::data::listing::{FieldLimits, RawListing};
use knockoff::data::reader::{Format, RowReader};
use knockoff::http::{router, AppState, ServerConfig};
use knockoff::model::Model;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tower::ServiceExt;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The seed inputs of one kind (`csv`, `jsonl`, `v1`, `v2`).
fn seeds(kind: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-seeds")
        .join(kind);
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// A seed of `kind` with a few bytes flipped, dropped, duplicated or the tail cut off.
fn mutated(kind: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(kind);
    (
        0..seeds.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..4u8), 1..8),
    )
        .prop_map(move |(i, edits)| {
            let mut bytes = seeds[i].1.clone();
            for (at, value, op) in edits {
                if bytes.is_empty() {
                    break;
                }
                let at = at.index(bytes.len());
                match op {
                    0 => bytes[at] = value,
                    1 => {
                        bytes.remove(at);
                    }
                    2 => bytes.insert(at, bytes[at]),
                    _ => bytes.truncate(at),
                }
            }
            bytes
        })
}

// ---------------------------------------------------------------- readers

/// Reads every row of `bytes` and validates it; errors must name a line.
fn read_all(bytes: &[u8], format: Format) {
    let rates = CurrencyRates::default();
    let limits = FieldLimits::default();
    let reader = match RowReader::from_reader(
        Box::new(std::io::Cursor::new(bytes.to_vec())),
        format,
        "fuzz",
    ) {
        Ok(reader) => reader,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    for row in reader.take(10_000) {
        match row.and_then(|raw| raw.validate("fuzz", &rates, &limits, false)) {
            Ok(row) => assert!(!row.listing.title.is_empty()),
            Err(e) => assert!(e.to_string().contains("fuzz:"), "{e}"),
        }
    }
}

#[test]
fn reader_seeds_are_read_without_panics() {
    for (path, bytes) in seeds("csv") {
        eprintln!("{}", path.display());
        read_all(&bytes, Format::Csv);
    }
    for (path, bytes) in seeds("jsonl") {
        eprintln!("{}", path.display());
        read_all(&bytes, Format::JsonLines);
    }
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn the_csv_reader_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        read_all(&bytes, Format::Csv);
    }

    #[test]
    fn the_csv_reader_takes_mutated_files(bytes in mutated("csv")) {
        read_all(&bytes, Format::Csv);
    }

    #[test]
    fn the_jsonl_reader_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        read_all(&bytes, Format::JsonLines);
    }

    #[test]
    fn the_jsonl_reader_takes_mutated_files(bytes in mutated("jsonl")) {
        read_all(&bytes, Format::JsonLines);
    }
}

// ---------------------------------------------------------------- features and model

fn tiny() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(common::tiny_model)
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn any_unicode_listing_scores_to_a_probability(
        title in "\\PC{1,120}",
        description in any::<String>(),
        brand in "\\PC{0,20}",
        category in "\\PC{0,20}",
        price in prop_oneof![any::<f64>().prop_map(|p| p.abs()), Just(0.0), Just(f64::MAX)],
    ) {
        let raw: RawListing = serde_json::from_value(serde_json::json!({
            "title": title, "description": description, "brand": brand,
            "category": category, "price": price, "currency": "USD",
        })).unwrap();
        let model = tiny();
        let Ok(listing) = raw.validate(model.rates(), model.limits()) else {
            return Ok(()); // refused with a reason: fine
        };
        let scores = model.score(std::slice::from_ref(&listing)).unwrap();
        let p = scores[0].probability;
        prop_assert!((0.0..=1.0).contains(&p), "{p}");
        let reasons = model.explain(&listing, 3);
        prop_assert!(reasons.iter().all(|r| r.weight.is_finite()));
    }
}

// ---------------------------------------------------------------- request bodies

struct Server {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    _dir: tempfile::TempDir,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = common::tiny_model_dir();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = ServerConfig::new(dir.path());
        config.max_body_bytes = 64 * 1024;
        let app = runtime.block_on(async {
            let state = AppState::new(config, Model::load(dir.path()).unwrap()).unwrap();
            router(state)
        });
        Server {
            runtime,
            app,
            _dir: dir,
        }
    })
}

/// Posts `body` to `route`; the answer must be a JSON document with a client-error or OK
/// status, never a 5xx.
fn post(route: &str, body: Vec<u8>) -> Result<(), TestCaseError> {
    let server = server();
    let request = Request::builder()
        .method(Method::POST)
        .uri(route)
        .header("content-type", "application/json")
        .body(Body::from(body.clone()))
        .unwrap();
    let (status, answer) = server.runtime.block_on(async {
        let response = server.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    });
    prop_assert!(
        [
            StatusCode::OK,
            StatusCode::BAD_REQUEST,
            StatusCode::NOT_FOUND,
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNPROCESSABLE_ENTITY
        ]
        .contains(&status),
        "{route} answered {status} to {:?}: {}",
        String::from_utf8_lossy(&body),
        String::from_utf8_lossy(&answer)
    );
    let json: serde_json::Value = serde_json::from_slice(&answer)
        .map_err(|e| TestCaseError::fail(format!("{status} answer is not JSON: {e}")))?;
    prop_assert!(
        status == StatusCode::OK || json["error"].is_string(),
        "{json}"
    );
    Ok(())
}

const V1: &str = "/v1/score";
const V2: &str = "/v2/models/tiny/infer";

#[test]
fn request_seeds_get_answers_not_errors() {
    for (kind, route) in [("v1", V1), ("v2", V2)] {
        for (path, bytes) in seeds(kind) {
            post(route, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

/// Arbitrary JSON, biased to the keys the routes read.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let key = prop_oneof![
        Just("title".to_string()),
        Just("price".to_string()),
        Just("currency".to_string()),
        Just("listings".to_string()),
        Just("inputs".to_string()),
        Just("name".to_string()),
        Just("shape".to_string()),
        Just("datatype".to_string()),
        Just("data".to_string()),
        "\\PC{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,30}".prop_map(Value::String),
        prop_oneof![Just("BYTES"), Just("FP64"), Just("FP32"), Just("USD")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn mutated_v1_bodies_are_answered(body in mutated("v1")) {
        post(V1, body)?;
    }

    #[test]
    fn mutated_v2_bodies_are_answered(body in mutated("v2")) {
        post(V2, body)?;
    }

    #[test]
    fn arbitrary_json_is_answered(value in json_value(), v2 in any::<bool>()) {
        post(if v2 { V2 } else { V1 }, value.to_string().into_bytes())?;
    }
}

// ---------------------------------------------------------------- model loader

/// Copies the model directory `from` into a fresh temporary directory.
fn copy_model(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

/// How a file of a model directory is damaged.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Flips one bit of the byte at `at` (modulo the length).
    Flip {
        at: usize,
        bit: u8,
    },
    /// Keeps the first `at` (modulo the length) bytes.
    Truncate(usize),
    Empty,
    Remove,
}

fn damage(path: &Path, how: Damage) {
    let mut bytes = std::fs::read(path).unwrap();
    match how {
        Damage::Flip { at, bit } if !bytes.is_empty() => {
            let at = at % bytes.len();
            bytes[at] ^= 1 << (bit % 8);
        }
        Damage::Flip { .. } => {}
        Damage::Truncate(at) => bytes.truncate(at % bytes.len().max(1)),
        Damage::Empty => bytes.clear(),
        Damage::Remove => return std::fs::remove_file(path).unwrap(),
    }
    std::fs::write(path, bytes).unwrap();
}

/// Loads a damaged model: an error, or a model that still scores (the byte hit something
/// the loader does not read, such as the report, or a digit of a number); never a panic.
fn load_damaged(dir: &Path) -> Result<(), String> {
    let outcome = std::panic::catch_unwind(|| Model::load(dir));
    match outcome {
        Err(_) => Err(format!("Model::load panicked on {}", dir.display())),
        Ok(Err(e)) if e.to_string().is_empty() => Err("empty error".into()),
        Ok(Err(_)) => Ok(()),
        Ok(Ok(model)) => {
            let raw: RawListing = serde_json::from_value(
                serde_json::json!({"title": "Rolex Submariner 1:1", "price": 45, "currency": "USD"}),
            )
            .unwrap();
            let listing = raw
                .validate(model.rates(), model.limits())
                .map_err(|e| e.message)?;
            let scores = model.score(&[listing]).map_err(|e| e.to_string())?;
            let p = scores[0].probability;
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!("a damaged model loaded and scored {p}"))
            }
        }
    }
}

fn damages() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(at, bit)| Damage::Flip { at, bit }),
        2 => any::<usize>().prop_map(Damage::Truncate),
        1 => Just(Damage::Empty),
        1 => Just(Damage::Remove),
    ]
}

const MODEL_FILES: [&str; 7] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "reference_prices.json",
    "brands.json",
    "metrics.json",
    "report.html",
];

proptest! {
    #![proptest_config(config(60))]

    #[test]
    fn a_damaged_tiny_model_is_refused_or_whole(file in 0..MODEL_FILES.len(), how in damages()) {
        let source = common::tiny_model_dir();
        let dir = copy_model(source.path());
        let path = dir.path().join(MODEL_FILES[file]);
        if path.exists() {
            damage(&path, how);
            load_damaged(dir.path()).map_err(TestCaseError::fail)?;
        }
    }
}

/// The shipped model, each file damaged each way once (a bounded sweep: loading it takes a
/// good part of a second).
#[test]
fn the_shipped_model_damaged_file_by_file_is_refused_or_whole() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    for file in MODEL_FILES {
        for how in [
            Damage::Flip { at: 7919, bit: 3 },
            Damage::Truncate(usize::MAX / 3),
            Damage::Remove,
        ] {
            let dir = copy_model(&shipped);
            damage(&dir.path().join(file), how);
            load_damaged(dir.path()).unwrap_or_else(|e| panic!("{file} {how:?}: {e}"));
        }
    }
}
