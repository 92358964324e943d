//! The three outcomes a score maps to: the thresholds that separate them, and the evidence a
//! listing needs before its probability may block it.

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

/// What a listing offers beyond its probability: whether it claims a brand the model knows
/// (not an accessory for one), and how much of its text the model knows.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Evidence {
    pub claims_known_brand: bool,
    /// Share of the listing's terms the model learned (`None`: it has no terms).
    pub known_share: Option<f32>,
    /// Log ratio of the price to the list price its brand registered, when one applies.
    pub registered_log_ratio: Option<f32>,
    /// A reviewer's verdict on this very listing (`true`: counterfeit), which decides it.
    pub reviewed: Option<bool>,
}

/// When the evidence is too weak to block: a listing that claims no known brand, or whose
/// terms the model mostly does not know, is at most reviewed, and only when its probability
/// reaches `weak_review` (chosen on validation so such reviews are as sure as blocks).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRule {
    /// Below this share of known terms a listing is unfamiliar: never blocked.
    pub min_known_share: f32,
    /// Probability at which a weak-evidence listing is reviewed.
    pub weak_review: f32,
    /// Log price ratio to the usual price of its brand above which a listing of a registered
    /// brand is priced like a genuine one: the model, which never saw the brand, cannot block
    /// it then. Learned in training: a low quantile of genuine branded listings' ratios.
    /// `None` (models before the registry): no such rule.
    #[serde(default)]
    pub registered_price_floor: Option<f32>,
}

impl EvidenceRule {
    /// Whether the evidence is strong enough for the usual thresholds (and so for `block`).
    ///
    /// A listing that names a registered brand and is priced under the floor rests on what
    /// the rights holder registered (its name and list price), not on the model knowing
    /// the words around them: unfamiliar text does not weaken it.
    pub fn is_strong(&self, evidence: Evidence) -> bool {
        let registered_side = evidence
            .registered_log_ratio
            .zip(self.registered_price_floor)
            .map(|(ratio, floor)| ratio >= floor);
        let priced_as_registered = registered_side == Some(true);
        let under_registered_price = registered_side == Some(false);
        let familiar = evidence
            .known_share
            .is_some_and(|share| share >= self.min_known_share);
        evidence.claims_known_brand && !priced_as_registered && (familiar || under_registered_price)
    }

    pub fn decide(
        &self,
        thresholds: &Thresholds,
        probability: f32,
        evidence: Evidence,
    ) -> Decision {
        if let Some(counterfeit) = evidence.reviewed {
            return if counterfeit {
                Decision::Block
            } else {
                Decision::Allow
            };
        }
        if self.is_strong(evidence) {
            thresholds.decide(probability)
        } else if probability >= self.weak_review.max(thresholds.review) {
            Decision::Review
        } else {
            Decision::Allow
        }
    }
}

/// Parses an expected share of counterfeits: a number strictly between 0 and 1.
pub fn parse_prevalence(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(format!(
            "must be a share strictly between 0 and 1 (e.g. 0.03 for 3%), got {text}"
        ))
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
    fn weak_evidence_is_never_blocked_and_reviewed_only_when_sure() {
        let t = Thresholds {
            review: 0.2,
            block: 0.8,
        };
        let rule = EvidenceRule {
            min_known_share: 0.5,
            weak_review: 0.9,
            registered_price_floor: Some(-1.5),
        };
        let strong = Evidence {
            claims_known_brand: true,
            known_share: Some(0.9),
            registered_log_ratio: None,
            reviewed: None,
        };
        assert_eq!(rule.decide(&t, 0.85, strong), Decision::Block);
        assert_eq!(rule.decide(&t, 0.3, strong), Decision::Review);
        let unbranded = Evidence {
            claims_known_brand: false,
            ..strong
        };
        let unfamiliar = Evidence {
            known_share: Some(0.2),
            ..strong
        };
        let no_terms = Evidence {
            known_share: None,
            ..strong
        };
        // A registered brand's listing priced as genuine ones are (here a third of its list
        // price or more) cannot be blocked; a much cheaper one can.
        let registered_at_list = Evidence {
            registered_log_ratio: Some(0.0),
            ..strong
        };
        let registered_cheap = Evidence {
            registered_log_ratio: Some(-2.0),
            ..strong
        };
        assert_eq!(rule.decide(&t, 0.85, registered_cheap), Decision::Block);
        // Under its registered price, a listing naming the brand may be blocked whatever
        // words surround the name; unbranded or at list price, unfamiliar text stays weak.
        let registered_cheap_unfamiliar = Evidence {
            known_share: Some(0.2),
            ..registered_cheap
        };
        assert_eq!(
            rule.decide(&t, 0.85, registered_cheap_unfamiliar),
            Decision::Block
        );
        let unfamiliar_at_list = Evidence {
            known_share: Some(0.2),
            ..registered_at_list
        };
        let cheap_unfamiliar_unnamed = Evidence {
            claims_known_brand: false,
            ..registered_cheap_unfamiliar
        };
        for weak in [unfamiliar_at_list, cheap_unfamiliar_unnamed] {
            assert_eq!(rule.decide(&t, 0.85, weak), Decision::Allow, "{weak:?}");
        }
        let no_floor = EvidenceRule {
            registered_price_floor: None,
            ..rule
        };
        assert_eq!(
            no_floor.decide(&t, 0.85, registered_at_list),
            Decision::Block
        );
        for weak in [unbranded, unfamiliar, no_terms, registered_at_list] {
            assert_eq!(rule.decide(&t, 1.0, weak), Decision::Review, "{weak:?}");
            assert_eq!(rule.decide(&t, 0.85, weak), Decision::Allow, "{weak:?}");
        }
        // A reviewer's verdict on the listing decides it, whatever the probability.
        for evidence in [strong, unbranded, unfamiliar, registered_at_list] {
            let counterfeit = Evidence {
                reviewed: Some(true),
                ..evidence
            };
            let genuine = Evidence {
                reviewed: Some(false),
                ..evidence
            };
            assert_eq!(rule.decide(&t, 0.01, counterfeit), Decision::Block);
            assert_eq!(rule.decide(&t, 0.99, genuine), Decision::Allow);
        }
    }

    #[test]
    fn prevalence_must_be_a_share() {
        assert_eq!(parse_prevalence("0.03"), Ok(0.03));
        for bad in ["0", "1", "-0.1", "3%", "nan", "inf", ""] {
            assert!(parse_prevalence(bad).is_err(), "{bad}");
        }
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
