//! Loading a model directory: every file read, checked against `config.json`, and the
//! assembled model probed before anyone scores with it.

use super::artifact::{
    corrupt, io, read_json, sha256_file, ArtifactError, BRANDS_FILE, CONFIG_FILE,
    KNOWN_TERMS_TENSOR, REFERENCE_FILE, TOKENIZER_FILE, WEIGHTS_FILE,
};
use super::network::{DenseScaler, Mlp, Network};
use super::{Model, ModelConfig, FORMAT_VERSION};
use crate::brand::BrandIndex;
use crate::features::{Featurizer, KnownTerms, DENSE_FEATURES, DENSE_LEN};
use crate::reference::ReferencePrices;
use candle_core::{DType, Device, Tensor};
use ndarray::Array2;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl Model {
    /// Loads and validates a model directory: files present, format version, checksums,
    /// tensor shapes, and a finite score on a probe listing.
    ///
    /// While a save that could not exchange directories atomically has the previous model
    /// renamed aside (or its writer died then), that previous model is loaded instead.
    pub fn load(dir: &Path) -> Result<Model, ArtifactError> {
        if dir.is_dir() {
            return Self::load_dir(dir);
        }
        let Some(aside) = super::swap::interrupted_save(dir) else {
            return Err(ArtifactError::NotFound {
                path: dir.to_path_buf(),
            });
        };
        tracing::warn!(path = %dir.display(), from = %aside.display(),
            "model directory missing mid-save; loading the previous model from beside it");
        match Self::load_dir(&aside) {
            // The save finished meanwhile and removed the copy: the new model is in place.
            Err(_) if dir.is_dir() => Self::load_dir(dir),
            loaded => loaded,
        }
    }

    fn load_dir(dir: &Path) -> Result<Model, ArtifactError> {
        let (config, config_path) = read_config(dir)?;
        check_dense_features(&config, &config_path)?;
        let weights = read_weights(&dir.join(WEIGHTS_FILE), &config)?;
        let tokenizer = read_tokenizer(&dir.join(TOKENIZER_FILE))?;
        let references: ReferencePrices = read_json(&dir.join(REFERENCE_FILE))?;
        let brands = read_brands(&dir.join(BRANDS_FILE))?;
        let featurizer = Featurizer::new(config.features.clone(), tokenizer, references)
            .map_err(|e| ArtifactError::Invalid {
                path: config_path.clone(),
                reason: e.to_string(),
            })?
            .with_known_terms(weights.known_terms)
            .with_brands(Arc::new(brands));
        let model = Model {
            network: Network {
                config: config.network,
                table: weights.table,
                scaler: config.dense_scaler.clone(),
                mlp: weights.mlp,
            },
            featurizer,
            config,
        };
        model.probe().map_err(|reason| ArtifactError::Invalid {
            path: dir.to_path_buf(),
            reason,
        })?;
        Ok(model)
    }

    /// Scores a synthetic listing: a model that cannot produce a finite probability is refused.
    fn probe(&self) -> Result<(), String> {
        let listing = crate::data::listing::Listing {
            id: "probe".into(),
            title: "probe listing 探针".into(),
            description: String::new(),
            price: None,
            brand: String::new(),
            category: String::new(),
        };
        let scores = self.score(&[listing]).map_err(|e| e.to_string())?;
        match scores.first() {
            Some(s) if s.probability.is_finite() => Ok(()),
            _ => Err("model produces a non-finite score (corrupt weights?)".into()),
        }
    }
}

fn read_brands(path: &Path) -> Result<BrandIndex, ArtifactError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ArtifactError::MissingFile {
                path: path.to_path_buf(),
            }
        } else {
            io(path)(source)
        }
    })?;
    BrandIndex::from_json(&text).map_err(|e| ArtifactError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Reads `config.json`, checking its format version before any field (an old or future
/// layout gets a version error, not a confusing field error).
fn read_config(dir: &Path) -> Result<(ModelConfig, PathBuf), ArtifactError> {
    let config_path = dir.join(CONFIG_FILE);
    // Read the version first so an old or future layout gets a version error, not a
    // confusing field error.
    let raw: serde_json::Value = read_json(&config_path)?;
    let found = raw
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0) as u32;
    if found != FORMAT_VERSION {
        return Err(ArtifactError::FormatVersion {
            path: config_path,
            found,
        });
    }
    let config: ModelConfig =
        serde_json::from_value(raw).map_err(|source| ArtifactError::Json {
            path: config_path.clone(),
            source,
        })?;

    Ok((config, config_path))
}

/// The dense features the model was trained with must be the ones this build computes.
fn check_dense_features(config: &ModelConfig, config_path: &Path) -> Result<(), ArtifactError> {
    let expected: Vec<String> = DENSE_FEATURES.iter().map(|s| s.to_string()).collect();
    if config.dense_features != expected {
        return Err(ArtifactError::Invalid {
            path: config_path.to_path_buf(),
            reason: format!(
                "model was trained with price features {:?}; this knockoff computes {:?}: retrain",
                config.dense_features, expected
            ),
        });
    }
    let scaler: &DenseScaler = &config.dense_scaler;
    if scaler.mean.len() != DENSE_LEN || scaler.scale.len() != DENSE_LEN {
        return Err(ArtifactError::Invalid {
            path: config_path.to_path_buf(),
            reason: format!("dense_scaler must have {DENSE_LEN} entries"),
        });
    }

    Ok(())
}

/// The network's tensors and the known-terms bitset, read from the weights file.
struct Weights {
    table: Array2<f32>,
    mlp: Mlp,
    known_terms: Option<Arc<KnownTerms>>,
}

/// Reads the weights file: checksum against `config.json`, every tensor's shape.
fn read_weights(weights_path: &Path, config: &ModelConfig) -> Result<Weights, ArtifactError> {
    if !weights_path.is_file() {
        return Err(ArtifactError::MissingFile {
            path: weights_path.to_path_buf(),
        });
    }
    let digest = sha256_file(weights_path)?;
    if digest != config.weights_sha256 {
        return Err(corrupt(
            weights_path,
            format!(
                "checksum {digest} does not match config.json ({})",
                config.weights_sha256
            ),
        ));
    }
    let tensors = candle_core::safetensors::load(weights_path, &Device::Cpu)
        .map_err(|e| corrupt(weights_path, e))?;
    let net = &config.network;
    let expect = |name: &str, shape: &[usize]| -> Result<Tensor, ArtifactError> {
        let t = tensors
            .get(name)
            .ok_or_else(|| corrupt(weights_path, format!("tensor `{name}` is missing")))?;
        if t.dims() != shape {
            return Err(ArtifactError::Shape {
                path: weights_path.to_path_buf(),
                name: name.into(),
                found: t.dims().to_vec(),
                expected: shape.to_vec(),
            });
        }
        t.to_dtype(DType::F32).map_err(|e| corrupt(weights_path, e))
    };
    let buckets = config.features.buckets as usize;
    let table = expect("embedding.weight", &[buckets, net.embedding_dim])?;
    let mlp = Mlp::from_tensors(
        expect("hidden.weight", &[net.hidden, net.input_dim()])?,
        expect("hidden.bias", &[net.hidden])?,
        expect("output.weight", &[1, net.hidden])?,
        expect("output.bias", &[1])?,
    )
    .map_err(|e| corrupt(weights_path, e))?;
    let table_values = table
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| corrupt(weights_path, e))?;
    let table = Array2::from_shape_vec((buckets, net.embedding_dim), table_values)
        .map_err(|e| corrupt(weights_path, e))?;

    let known_terms = read_known_terms(weights_path, config, &tensors)?;
    Ok(Weights {
        table,
        mlp,
        known_terms,
    })
}

/// The known-terms bitset: present exactly when `config.json` filters terms.
fn read_known_terms(
    weights_path: &Path,
    config: &ModelConfig,
    tensors: &HashMap<String, Tensor>,
) -> Result<Option<Arc<KnownTerms>>, ArtifactError> {
    let known_terms = match (
        config.features.known_term_min_listings,
        tensors.get(KNOWN_TERMS_TENSOR),
    ) {
        (0, None) => None,
        (0, Some(_)) => {
            return Err(corrupt(
                weights_path,
                format!("tensor `{KNOWN_TERMS_TENSOR}` is present but config.json keeps every term (known_term_min_listings 0)"),
            ))
        }
        (_, None) => {
            return Err(corrupt(
                weights_path,
                format!("tensor `{KNOWN_TERMS_TENSOR}` is missing"),
            ))
        }
        (_, Some(t)) => {
            if t.dtype() != DType::U8 {
                return Err(corrupt(
                    weights_path,
                    format!("tensor `{KNOWN_TERMS_TENSOR}` is {:?}, expected U8", t.dtype()),
                ));
            }
            if t.dims() != [KnownTerms::BYTES] {
                return Err(ArtifactError::Shape {
                    path: weights_path.to_path_buf(),
                    name: KNOWN_TERMS_TENSOR.into(),
                    found: t.dims().to_vec(),
                    expected: vec![KnownTerms::BYTES],
                });
            }
            let bytes = t.to_vec1::<u8>().map_err(|e| corrupt(weights_path, e))?;
            let known = KnownTerms::from_bytes(&bytes).map_err(|e| corrupt(weights_path, e))?;
            Some(Arc::new(known))
        }
    };
    Ok(known_terms)
}

/// Reads the tokenizer file the model was trained with.
fn read_tokenizer(tokenizer_path: &Path) -> Result<tokenizers::Tokenizer, ArtifactError> {
    if !tokenizer_path.is_file() {
        return Err(ArtifactError::MissingFile {
            path: tokenizer_path.to_path_buf(),
        });
    }
    let tokenizer =
        Featurizer::load_tokenizer(tokenizer_path).map_err(|e| ArtifactError::Invalid {
            path: tokenizer_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(tokenizer)
}
