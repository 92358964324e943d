//! `brands.json`: the learned index on disk, readable by people and other tools.

use super::*;

/// On-disk shape of `brands.json`.
#[derive(Serialize, Deserialize)]
struct Stored {
    format: String,
    learning: BrandLearning,
    brands: Vec<KnownBrand>,
    /// Learned alias term → brand name.
    aliases: std::collections::BTreeMap<String, String>,
    markers: Vec<String>,
}

impl BrandIndex {
    pub fn to_json(&self) -> serde_json::Result<String> {
        let stored = Stored {
            format: BRANDS_FORMAT.to_string(),
            learning: self.learning,
            brands: self
                .brands
                .iter()
                .filter(|b| !b.registered)
                .cloned()
                .collect(),
            aliases: self
                .aliases()
                .map(|(t, b)| (t.to_string(), b.to_string()))
                .collect(),
            markers: {
                let mut m: Vec<String> = self.markers.iter().cloned().collect();
                m.sort();
                m
            },
        };
        serde_json::to_string_pretty(&stored)
    }

    pub fn from_json(text: &str) -> Result<BrandIndex, BrandError> {
        let stored: Stored =
            serde_json::from_str(text).map_err(|e| BrandError::Invalid(e.to_string()))?;
        if stored.format != BRANDS_FORMAT {
            return Err(BrandError::Format {
                found: stored.format,
            });
        }
        let by_name: HashMap<&str, u32> = stored
            .brands
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.as_str(), i as u32))
            .collect();
        let mut aliases = Vec::with_capacity(stored.aliases.len());
        for (term, brand) in &stored.aliases {
            let Some(&b) = by_name.get(brand.as_str()) else {
                return Err(BrandError::Invalid(format!(
                    "alias `{term}` names brand `{brand}`, which is not in the list"
                )));
            };
            aliases.push((term.clone(), b));
        }
        Ok(BrandIndex::from_parts(
            stored.learning,
            stored.brands,
            aliases,
            stored.markers,
        ))
    }
}
