//! Shared integration-test helpers: a tiny model trained once per test binary from
//! `tests/fixtures/tiny-listings.csv` (300 real listings), so tests never depend on what
//! `models/default` holds.
//!
//! Use: `mod common;` then `let dir = common::tiny_model_dir();` and load `dir.path()`.
#![allow(dead_code)]

pub mod parquet;
pub mod server;

use indicatif::ProgressBar;
use knockoff::brand::BrandLearning;
use knockoff::features::FeatureConfig;
use knockoff::model::artifact::Extras;
use knockoff::model::network::NetworkConfig;
use knockoff::model::Model;
use knockoff::train::{train, TrainOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The name the tiny model reports.
pub const TINY_MODEL_NAME: &str = "tiny";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Settings small enough to train in about a second; the same file serves as training
/// and validation data (the point is a valid artifact, not a good model).
pub fn tiny_options() -> TrainOptions {
    let data = fixture("tiny-listings.csv");
    TrainOptions {
        train: data.clone(),
        valid: data,
        name: TINY_MODEL_NAME.into(),
        max_epochs: 2,
        features: FeatureConfig {
            buckets: 1 << 12,
            ..FeatureConfig::default()
        },
        network: NetworkConfig {
            embedding_dim: 8,
            hidden: 8,
        },
        // The fixture has a dozen listings a brand: learn its brands from a few.
        brand_learning: BrandLearning {
            min_listings: 5,
            min_counterfeits: 2,
            alias_min_listings: 3,
            marker_min_listings: 3,
            ..BrandLearning::default()
        },
        ..TrainOptions::default()
    }
}

/// The tiny model, trained on first use and cloned afterwards.
pub fn tiny_model() -> Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            train(&tiny_options(), &ProgressBar::hidden())
                .expect("training the tiny test model")
                .model
        })
        .clone()
}

/// A fresh temporary model directory holding the tiny model (deleted when dropped).
pub fn tiny_model_dir() -> tempfile::TempDir {
    tiny_model_dir_named(TINY_MODEL_NAME, None)
}

/// Like [`tiny_model_dir`], with another name (and version, if given) in its config: the
/// same weights under a distinguishable identity, e.g. to check which model answered.
pub fn tiny_model_dir_named(name: &str, version: Option<&str>) -> tempfile::TempDir {
    let mut model = tiny_model();
    model.config.name = name.to_string();
    if let Some(version) = version {
        model.config.version = version.to_string();
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    // `save` replaces the (empty) directory atomically; the TempDir still owns the path.
    model
        .save(dir.path(), &Extras::default())
        .expect("saving the tiny test model");
    dir
}

/// The tiny model made to decide `review` for every listing (review threshold 0, block
/// threshold 1, weak-evidence reviews from 0): for tests of the review queue.
pub fn all_review_model() -> Model {
    let mut model = tiny_model();
    model.set_thresholds(knockoff::decision::Thresholds {
        review: 0.0,
        block: 1.0,
    });
    model.config.evidence_rule.weak_review = 0.0;
    model
}

/// [`all_review_model`] in a fresh temporary model directory, for the real binaries.
pub fn all_review_model_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    all_review_model()
        .save(dir.path(), &Extras::default())
        .expect("saving the all-review test model");
    dir
}

/// A minimal HTTP/1.1 client: one request per connection, whole answer read.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Runs the real `knockoff-score` with `args`, ignoring any `KNOCKOFF_*` settings of the
/// caller's environment (clap reads them as defaults), with a temporary store unless
/// `args` name one.
pub fn run_knockoff_score(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let store = tempfile::tempdir().expect("temporary store directory");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_knockoff-score"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KNOCKOFF_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .env("KNOCKOFF_STORE", store.path().join("knockoff.db"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("running knockoff-score")
}
