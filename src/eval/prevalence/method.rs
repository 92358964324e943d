//! The prevalence estimators by name: the closed set a report's `method` is one of.

use serde::{Deserialize, Serialize};

/// A prevalence estimator; its code is what report JSON shows as `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Classify and count: share of listings at or above the review threshold.
    Cc,
    /// Probabilistic classify and count: mean calibrated probability.
    Pcc,
    /// Adjusted classify and count: `(cc - fpr) / (tpr - fpr)`.
    Acc,
    /// Probabilistic ACC: PCC adjusted by the class-conditional mean probabilities.
    Pacc,
    /// EM prior adjustment (Saerens, Latinne & Decaestecker 2002).
    Em,
    /// Design-based: a labelled stratified random sample (see [`crate::eval::audit`]).
    Audit,
}

impl Method {
    /// The model-based estimators every report computes from scores alone.
    pub const ALL: [Method; 5] = [
        Method::Cc,
        Method::Pcc,
        Method::Acc,
        Method::Pacc,
        Method::Em,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Cc => "cc",
            Method::Pcc => "pcc",
            Method::Acc => "acc",
            Method::Pacc => "pacc",
            Method::Em => "em",
            Method::Audit => "audit",
        }
    }

    /// Name for people reading a report.
    pub fn label(self) -> &'static str {
        match self {
            Method::Cc => "share flagged (classify and count)",
            Method::Pcc => "mean probability (probabilistic classify and count)",
            Method::Acc => "adjusted classify and count",
            Method::Pacc => "probabilistic adjusted classify and count",
            Method::Em => "EM prior adjustment (Saerens et al. 2002)",
            Method::Audit => "audited sample (stratified estimator over labelled listings)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shows_the_code() {
        for method in Method::ALL.into_iter().chain([Method::Audit]) {
            let json = serde_json::to_string(&method).unwrap();
            assert_eq!(json, format!("\"{}\"", method.as_str()));
            assert_eq!(serde_json::from_str::<Method>(&json).unwrap(), method);
        }
    }
}
