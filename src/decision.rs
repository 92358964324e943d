//! The three outcomes a score maps to, and the two thresholds that separate them.

use serde::{Deserialize, Serialize};

/// What a trust-and-safety pipeline should do with a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Review,
    Block,
}

impl Decision {
    pub const ALL: [Decision; 3] = [Decision::Allow, Decision::Review, Decision::Block];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Review => "review",
            Decision::Block => "block",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Calibrated-probability cut-offs: `block` at or above `block`, `review` at or above
/// `review`, `allow` below. Chosen on validation data by training; overridable by users.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub review: f32,
    pub block: f32,
}

impl Thresholds {
    pub fn decide(&self, probability: f32) -> Decision {
        if probability >= self.block {
            Decision::Block
        } else if probability >= self.review {
            Decision::Review
        } else {
            Decision::Allow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decide_uses_inclusive_lower_bounds() {
        let t = Thresholds {
            review: 0.2,
            block: 0.8,
        };
        assert_eq!(t.decide(0.1), Decision::Allow);
        assert_eq!(t.decide(0.2), Decision::Review);
        assert_eq!(t.decide(0.79), Decision::Review);
        assert_eq!(t.decide(0.8), Decision::Block);
        assert_eq!(t.decide(1.0), Decision::Block);
    }

    #[test]
    fn decision_serialises_lowercase() {
        assert_eq!(
            serde_json::to_string(&Decision::Block).unwrap(),
            "\"block\""
        );
        assert_eq!(Decision::Review.to_string(), "review");
    }
}
