//! The rows a run learns from, split: training and validation files loaded, reviews
//! merged in, unfamiliar brands and categories held out, a calibration share set aside.

use crate::data::reader::{load_rows, Row, RowError};
use crate::data::reviews::{merge, Merged, ReviewUse};
use crate::model::verdicts::ReviewVerdicts;
use crate::store::reviews::load_reviews;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::options::TrainOptions;
use super::TrainError;

/// A run's rows, each set for one use.
pub(super) struct TrainingData {
    /// Rows the network is fitted on (reviewed listings among them, repeated).
    pub fit: Vec<Row>,
    /// Rows set aside to calibrate probabilities.
    pub calibration: Vec<Row>,
    /// Validation rows: early stopping, thresholds and the evaluation.
    pub valid: Vec<Row>,
    /// Validation rows of held-out brands and categories.
    pub unfamiliar: Vec<Row>,
    /// Rows refused in either file.
    pub skipped: Vec<RowError>,
    /// Reviews used, when `--reviews` was given.
    pub reviews: Option<ReviewUse>,
    /// Reviewers' verdicts the model keeps.
    pub verdicts: ReviewVerdicts,
}

impl TrainingData {
    /// Loads the options' files (at most `max_bad_rows` bad rows in all) and reviews, and
    /// splits them. Each set must hold both classes.
    pub fn load(options: &TrainOptions) -> Result<TrainingData, TrainError> {
        let loaded_train = load_rows(
            &options.train,
            &options.rates,
            &options.limits,
            true,
            options.max_bad_rows,
        )?;
        let remaining = options
            .max_bad_rows
            .saturating_sub(loaded_train.skipped.len());
        let loaded_valid = load_rows(
            &options.valid,
            &options.rates,
            &options.limits,
            true,
            remaining,
        )?;
        let mut skipped = loaded_train.skipped;
        skipped.extend(loaded_valid.skipped);
        let (merged, verdicts) = match &options.reviews {
            Some(path) => {
                let reviews = load_reviews(path, &options.rates, &options.limits)?;
                let verdicts = ReviewVerdicts::from_reviews(&reviews);
                let mut merged = merge(loaded_train.rows, reviews, options.review_weight);
                merged.usage.verdicts = verdicts.len();
                (merged, verdicts)
            }
            None => (
                Merged {
                    rows: loaded_train.rows,
                    ..Merged::default()
                },
                ReviewVerdicts::default(),
            ),
        };
        let holds_out = |r: &Row| options.holdout.holds_out(&r.listing, options.seed);
        let (train_rows, excluded): (Vec<Row>, Vec<Row>) =
            merged.rows.into_iter().partition(|r| !holds_out(r));
        let (valid, unfamiliar): (Vec<Row>, Vec<Row>) =
            loaded_valid.rows.into_iter().partition(|r| !holds_out(r));
        if !excluded.is_empty() {
            tracing::info!(
                rows = excluded.len(),
                "training rows held out as unfamiliar brands/categories"
            );
        }
        let (mut fit, calibration) =
            split_holdout(train_rows, options.calibration_share, options.seed);
        // Reviewed listings are fitted on, never calibrated or validated on.
        fit.extend(merged.reviewed);
        for (what, rows) in [
            ("training", &fit),
            ("calibration", &calibration),
            ("validation", &valid),
        ] {
            let positives = rows.iter().filter(|r| r.label == Some(true)).count();
            if positives == 0 || positives == rows.len() {
                return Err(TrainError::Data(format!(
                    "the {what} set has {} rows of which {positives} counterfeit: both classes are needed",
                    rows.len()
                )));
            }
        }
        Ok(TrainingData {
            fit,
            calibration,
            valid,
            unfamiliar,
            skipped,
            reviews: options.reviews.is_some().then_some(merged.usage),
            verdicts,
        })
    }
}

/// Splits `rows` at random (seeded): a share `share` held out, the rest kept.
fn split_holdout(rows: Vec<Row>, share: f64, seed: u64) -> (Vec<Row>, Vec<Row>) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xca11_b8a7);
    let (mut fit, mut held) = (Vec::new(), Vec::new());
    for row in rows {
        if rng.random::<f64>() < share {
            held.push(row);
        } else {
            fit.push(row);
        }
    }
    (fit, held)
}

/// The rows' labels (an unlabelled row counts as genuine).
pub(super) fn labels_of(rows: &[Row]) -> Vec<bool> {
    rows.iter().map(|r| r.label.unwrap_or(false)).collect()
}
