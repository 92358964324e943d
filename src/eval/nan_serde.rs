//! Serde helpers for the undefined and the infinite: NaN ⇄ `null` for metrics, +inf ⇄
//! `null` for curve thresholds (JSON has neither).

/// `#[serde(with)]` helper: NaN ⇄ `null`.
///
/// serde_json already writes a non-finite `f64` as `null` but refuses to read `null` into
/// an `f64`, so reports with an undefined metric would not load back. Keeping the field an
/// `f64` (instead of `Option<f64>`) keeps arithmetic on reports simple; NaN already means
/// "undefined" everywhere in this module.
pub mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_nan() {
            serializer.serialize_none()
        } else {
            serializer.serialize_some(value)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
    }
}

/// `#[serde(with)]` helper for curve thresholds: `+inf` ⇄ `null`.
///
/// The first point of every curve stands for "nothing predicted positive", which only an
/// infinite threshold expresses; JSON has no infinity.
pub mod inf_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f32, serializer: S) -> Result<S::Ok, S::Error> {
        if *value == f32::INFINITY {
            serializer.serialize_none()
        } else {
            serializer.serialize_some(value)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f32, D::Error> {
        Ok(Option::<f32>::deserialize(deserializer)?.unwrap_or(f32::INFINITY))
    }
}
