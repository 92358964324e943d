//! Operator overrides of a model's operating point (expected prevalence, decision thresholds):
//! checked once, the same way, for knockoff-serve (at start-up and on every reload) and
//! knockoff-score.

use crate::decision::Thresholds;
use crate::model::Model;

/// Why threshold overrides were refused, naming the flag to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error("--{flag} must be a probability between 0 and 1 (got {value})")]
    OutOfRange { flag: &'static str, value: f32 },
    #[error("--review-threshold ({review}) must not be above --block-threshold ({block})")]
    Order { review: f32, block: f32 },
    #[error("--expected-prevalence: {0}")]
    Prevalence(String),
}

/// The review and block thresholds an operator gave, each optional: the model's own
/// threshold stands where none is given.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThresholdOverrides {
    pub review: Option<f32>,
    pub block: Option<f32>,
    /// Share of counterfeits expected where the model is deployed (see
    /// [`Model::with_expected_prevalence`]); explicit thresholds apply after it.
    pub expected_prevalence: Option<f64>,
}

impl ThresholdOverrides {
    /// Checks the overrides on their own: each a probability, and review not above block
    /// when both are given. Lets a configuration be refused before any model is loaded.
    pub fn check(&self) -> Result<(), ThresholdError> {
        for (flag, value) in [
            ("review-threshold", self.review),
            ("block-threshold", self.block),
        ] {
            if let Some(value) = value {
                if !(0.0..=1.0).contains(&value) {
                    return Err(ThresholdError::OutOfRange { flag, value });
                }
            }
        }
        if let (Some(review), Some(block)) = (self.review, self.block) {
            ordered(review, block)?;
        }
        Ok(())
    }

    /// The model moved to the expected prevalence, then given the threshold overrides.
    pub fn apply_to(&self, model: Model) -> Result<Model, ThresholdError> {
        self.check()?;
        let mut model = match self.expected_prevalence {
            Some(prevalence) => model
                .with_expected_prevalence(prevalence)
                .map_err(|e| ThresholdError::Prevalence(e.to_string()))?,
            None => model,
        };
        let thresholds = self.apply(model.thresholds())?;
        model.set_thresholds(thresholds);
        Ok(model)
    }

    /// The model's thresholds with the overrides applied; refused if an override is out
    /// of range or the merged review threshold is above the merged block threshold.
    pub fn apply(&self, model: Thresholds) -> Result<Thresholds, ThresholdError> {
        self.check()?;
        let merged = Thresholds {
            review: self.review.unwrap_or(model.review),
            block: self.block.unwrap_or(model.block),
        };
        ordered(merged.review, merged.block)?;
        Ok(merged)
    }
}

fn ordered(review: f32, block: f32) -> Result<(), ThresholdError> {
    if review > block {
        return Err(ThresholdError::Order { review, block });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: Thresholds = Thresholds {
        review: 0.2,
        block: 0.8,
    };

    #[test]
    fn overrides_merge_with_model_thresholds() {
        let only_block = ThresholdOverrides {
            review: None,
            block: Some(0.9),
            expected_prevalence: None,
        };
        assert_eq!(
            only_block.apply(MODEL).unwrap(),
            Thresholds {
                review: 0.2,
                block: 0.9
            }
        );
        assert_eq!(ThresholdOverrides::default().apply(MODEL).unwrap(), MODEL);
        let crossing = ThresholdOverrides {
            review: None,
            block: Some(0.1),
            expected_prevalence: None,
        };
        assert_eq!(
            crossing.apply(MODEL),
            Err(ThresholdError::Order {
                review: 0.2,
                block: 0.1
            })
        );
    }

    /// knockoff-serve and knockoff-score used to check overrides separately; both now come
    /// here, so an out-of-range value is refused with its flag even before a model loads.
    #[test]
    fn out_of_range_and_crossed_overrides_are_refused_with_the_flag() {
        let review = ThresholdOverrides {
            review: Some(1.5),
            block: None,
            expected_prevalence: None,
        };
        assert_eq!(
            review.check(),
            Err(ThresholdError::OutOfRange {
                flag: "review-threshold",
                value: 1.5
            })
        );
        assert!(review.apply(MODEL).is_err());
        let block = ThresholdOverrides {
            review: None,
            block: Some(-0.1),
            expected_prevalence: None,
        };
        assert_eq!(
            block.apply(MODEL).unwrap_err().to_string(),
            "--block-threshold must be a probability between 0 and 1 (got -0.1)"
        );
        let crossed = ThresholdOverrides {
            review: Some(0.9),
            block: Some(0.5),
            expected_prevalence: None,
        };
        assert_eq!(
            crossed.check().unwrap_err().to_string(),
            "--review-threshold (0.9) must not be above --block-threshold (0.5)"
        );
        let nan = ThresholdOverrides {
            review: Some(f32::NAN),
            block: None,
            expected_prevalence: None,
        };
        assert!(nan.check().is_err());
    }
}
