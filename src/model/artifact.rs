//! The model directory on disk: its layout and errors, and writing it atomically (loading is
//! in `load.rs`).
//!
//! Layout: `config.json`, `model.safetensors`, `tokenizer.json`, `reference_prices.json`,
//! `brands.json`, `metrics.json` and, when training made one, `report.html`.

use super::{swap, Model, FORMAT_VERSION};
use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The [`crate::features::KnownTerms`] bitset, stored with the weights (and covered by their checksum).
pub(super) const KNOWN_TERMS_TENSOR: &str = "known_terms";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const REFERENCE_FILE: &str = "reference_prices.json";
/// The [`crate::brand::BrandIndex`]: target brands, aliases and accessory markers.
pub const BRANDS_FILE: &str = "brands.json";
pub const METRICS_FILE: &str = "metrics.json";
pub const REPORT_FILE: &str = "report.html";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{path}: model directory not found")]
    NotFound { path: PathBuf },
    #[error("{path}: missing (a model directory needs {CONFIG_FILE}, {WEIGHTS_FILE}, {TOKENIZER_FILE}, {REFERENCE_FILE} and {BRANDS_FILE})")]
    MissingFile { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: format version {found}, this knockoff reads version {FORMAT_VERSION}; retrain or use a matching release")]
    FormatVersion { path: PathBuf, found: u32 },
    #[error("{path}: corrupt weights: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: tensor `{name}` has shape {found:?}, config expects {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn sha256_file(path: &Path) -> Result<String, ArtifactError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(sha256_hex(&bytes))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ArtifactError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ArtifactError::MissingFile {
                path: path.to_path_buf(),
            }
        } else {
            ArtifactError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    serde_json::from_str(&text).map_err(|source| ArtifactError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), ArtifactError> {
    let text = serde_json::to_string_pretty(value).map_err(|source| ArtifactError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(path, text + "\n").map_err(io(path))
}

pub(super) fn corrupt(path: &Path, e: impl std::fmt::Display) -> ArtifactError {
    ArtifactError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

#[cfg(unix)]
fn set_readable(dir: &Path) -> Result<(), ArtifactError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(io(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(io(&path))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_readable(_dir: &Path) -> Result<(), ArtifactError> {
    Ok(())
}

/// Extra files written beside the model.
#[derive(Debug, Default)]
pub struct Extras<'a> {
    pub metrics: Option<&'a serde_json::Value>,
    pub report_html: Option<&'a str>,
}

impl Model {
    /// Writes the model into a temporary directory beside `dir`, then swaps it into place
    /// (see `swap.rs`), so a crash mid-write never leaves a half-written model where a good
    /// one was, nor (where the system can exchange directories) no model at all.
    pub fn save(&mut self, dir: &Path, extras: &Extras) -> Result<(), ArtifactError> {
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        // What an earlier writer killed mid-save left here: its staging directory removed,
        // or the previous model it had renamed aside put back.
        swap::clean_leftovers(dir, &parent)?;
        let staging = swap::staging_dir(&parent)?;
        let stage = staging.path();

        self.config.weights_sha256 = self.write_weights(&stage.join(WEIGHTS_FILE))?;
        self.write_featurizer(stage)?;
        if let Some(metrics) = extras.metrics {
            write_json(&stage.join(METRICS_FILE), metrics)?;
        }
        if let Some(html) = extras.report_html {
            let path = stage.join(REPORT_FILE);
            std::fs::write(&path, html).map_err(io(&path))?;
        }
        // config.json last: its checksum vouches for the weights written above.
        write_json(&stage.join(CONFIG_FILE), &self.config)?;

        // tempfile creates private (0700/0600) entries; a model is meant to be read by the
        // serving user too.
        set_readable(stage)?;
        // Durable before it is visible, and the swap durable once done.
        crate::fsutil::sync_dir_and_files(stage).map_err(io(stage))?;
        let staged = staging.keep();
        let how = swap::replace_dir(&staged, dir, &parent)?;
        crate::fsutil::sync_dir(&parent).map_err(io(&parent))?;
        tracing::debug!(path = %dir.display(), ?how, "model saved");
        Ok(())
    }

    /// Writes the embedding table (f16), the MLP and the known-terms bitset to
    /// `weights_path`; returns the file's SHA-256.
    fn write_weights(&self, weights_path: &Path) -> Result<String, ArtifactError> {
        let table = Tensor::from_slice(
            self.network
                .table
                .as_slice()
                .ok_or_else(|| ArtifactError::Invalid {
                    path: weights_path.to_path_buf(),
                    reason: "embedding table is not contiguous".into(),
                })?,
            self.network.table.dim(),
            &Device::Cpu,
        )
        .and_then(|t| t.to_dtype(DType::F16))
        .map_err(|e| corrupt(weights_path, e))?;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        tensors.insert("embedding.weight".into(), table);
        for (name, tensor) in self.network.mlp.tensors() {
            tensors.insert(name.into(), tensor);
        }
        if let Some(known) = self.featurizer.known_terms() {
            let bytes = known.to_bytes();
            let len = bytes.len();
            let tensor =
                Tensor::from_vec(bytes, len, &Device::Cpu).map_err(|e| corrupt(weights_path, e))?;
            tensors.insert(KNOWN_TERMS_TENSOR.into(), tensor);
        }
        candle_core::safetensors::save(&tensors, weights_path)
            .map_err(|e| corrupt(weights_path, e))?;
        sha256_file(weights_path)
    }

    /// Writes what the featurizer learned: tokenizer, usual prices, brands.
    fn write_featurizer(&self, stage: &Path) -> Result<(), ArtifactError> {
        let tokenizer_path = stage.join(TOKENIZER_FILE);
        self.featurizer
            .tokenizer()
            .save(&tokenizer_path, true)
            .map_err(|e| ArtifactError::Invalid {
                path: tokenizer_path.clone(),
                reason: e.to_string(),
            })?;
        write_json(&stage.join(REFERENCE_FILE), self.featurizer.references())?;
        let brands_path = stage.join(BRANDS_FILE);
        let brands = self
            .featurizer
            .brands()
            .to_json()
            .map_err(|source| ArtifactError::Json {
                path: brands_path.clone(),
                source,
            })?;
        std::fs::write(&brands_path, brands).map_err(io(&brands_path))?;
        Ok(())
    }
}
