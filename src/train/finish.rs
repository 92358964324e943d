//! From a fitted network to a servable model: Platt calibration on the held-out share, the
//! operating point (thresholds and evidence rule) chosen on validation, the evaluation that
//! ships with the model, and its configuration.

use crate::decision::{Decision, EvidenceRule, Thresholds};
use crate::eval::calibration::PlattCalibration;
use crate::eval::evaluation::{self, Evaluation};
use crate::eval::math::logit;
use crate::eval::prevalence::QuantificationStats;
use crate::features::Features;
use crate::model::network::Network;
use crate::model::operating::{OperatingStats, Targets};
use crate::model::{ModelConfig, ThresholdTargets, TrainingInfo, FORMAT_VERSION};
use std::collections::BTreeMap;

use super::data::{labels_of, TrainingData};
use super::fit::{logits_of, Fitted};
use super::metrics::{unfamiliar_report, DecisionFigures, UnfamiliarReport};
use super::options::TrainOptions;
use super::{file_sha256, TrainError};

/// The featurised sets a fitted network is judged on.
pub(super) struct JudgedSets<'a> {
    pub calibration: &'a [Features],
    pub valid: &'a [Features],
    pub valid_labels: &'a [bool],
    pub unfamiliar: &'a [Features],
}

/// What calibration and validation make of a fitted network.
pub(super) struct Judgement {
    pub calibration: PlattCalibration,
    pub valid_probabilities: Vec<f32>,
    pub operating: Operating,
    pub validation: Evaluation,
    pub per_category: BTreeMap<String, Evaluation>,
    pub quantification: QuantificationStats,
    pub unfamiliar: Option<UnfamiliarReport>,
}

/// Calibrates `network` on the calibration rows, chooses the operating point on validation
/// and evaluates the decisions there (and on unfamiliar listings when brands are held out).
pub(super) fn judge(
    options: &TrainOptions,
    network: &Network,
    data: &TrainingData,
    sets: &JudgedSets,
) -> Result<Judgement, TrainError> {
    let calibration_logits = logits_of(network, sets.calibration)?;
    let calibration = PlattCalibration::fit(&calibration_logits, &labels_of(&data.calibration));
    let probabilities = |features: &[Features]| -> Result<Vec<f32>, TrainError> {
        Ok(logits_of(network, features)?
            .into_iter()
            .map(|l| calibration.apply(l))
            .collect())
    };
    let valid_probabilities = probabilities(sets.valid)?;
    let operating =
        choose_operating_point(options, &valid_probabilities, sets.valid, sets.valid_labels)?;
    let thresholds = &operating.thresholds;
    let validation = evaluation::evaluate(&valid_probabilities, sets.valid_labels, thresholds);
    let categories: Vec<&str> = data
        .valid
        .iter()
        .map(|r| r.listing.category.as_str())
        .collect();
    let per_category = evaluation::evaluate_by_group(
        &valid_probabilities,
        sets.valid_labels,
        &categories,
        thresholds,
        options.min_group_rows,
    )
    .into_iter()
    .map(|(category, e)| (category.to_owned(), e))
    .collect();
    let quantification =
        QuantificationStats::from_validation(&valid_probabilities, sets.valid_labels, thresholds);
    let unfamiliar = if options.holdout.is_active() {
        let decisions: Vec<Decision> = probabilities(sets.unfamiliar)?
            .iter()
            .zip(sets.unfamiliar)
            .map(|(&p, f)| operating.rule.decide(thresholds, p, f.evidence()))
            .collect();
        Some(unfamiliar_report(
            &options.holdout,
            &data.unfamiliar,
            &decisions,
        ))
    } else {
        None
    };
    Ok(Judgement {
        calibration,
        valid_probabilities,
        operating,
        validation,
        per_category,
        quantification,
        unfamiliar,
    })
}

/// The model's configuration: what it was trained on and how, and everything scoring needs
/// beside the weights. `weights_sha256` is filled in when the model is saved.
pub(super) fn model_config(
    options: &TrainOptions,
    data: &TrainingData,
    fitted: &Fitted,
    judgement: &Judgement,
) -> Result<ModelConfig, TrainError> {
    let train_sha256 = file_sha256(&options.train)?;
    let created = chrono::Utc::now();
    let version = format!("{}-{}", created.format("%Y%m%d.%H%M%S"), &train_sha256[..8]);
    let operating = &judgement.operating;
    Ok(ModelConfig {
        format_version: FORMAT_VERSION,
        name: options.name.clone(),
        version,
        created_at: created.to_rfc3339(),
        features: options.features.clone(),
        network: fitted.network.config,
        dense_features: crate::features::DENSE_FEATURES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        dense_scaler: fitted.network.scaler.clone(),
        currency: options.rates.clone(),
        limits: options.limits,
        thresholds: operating.thresholds,
        evidence_rule: operating.rule,
        threshold_targets: ThresholdTargets {
            block_precision: options.block_precision,
            review_recall: options.review_recall,
            weak_review_precision: options.weak_review_precision,
        },
        calibration: judgement.calibration,
        quantification: judgement.quantification.clone(),
        expected_prevalence: operating.stats.prior,
        operating: operating.stats.clone(),
        training: TrainingInfo {
            train_file: options.train.display().to_string(),
            train_sha256,
            valid_file: options.valid.display().to_string(),
            valid_sha256: file_sha256(&options.valid)?,
            train_rows: data.fit.len(),
            calibration_rows: data.calibration.len(),
            valid_rows: data.valid.len(),
            skipped_rows: data.skipped.len(),
            seed: options.seed,
            epochs_run: fitted.epochs.len(),
            best_epoch: fitted.best_epoch,
            hyperparameters: options.hyperparameters(data.reviews.map(|r| r.weight)),
        },
        weights_sha256: String::new(),
        reviewed: data.verdicts.clone(),
    })
}

/// The log price ratio (to the usual price of the brand) below which only a share `quantile`
/// of genuine validation listings that claim a known brand are priced: above it, a listing of
/// a registered brand is priced as genuine ones are. `None` without such listings.
fn registered_price_floor(features: &[Features], labels: &[bool], quantile: f64) -> Option<f32> {
    let mut ratios: Vec<f32> = features
        .iter()
        .zip(labels)
        .filter(|(f, &counterfeit)| !counterfeit && f.evidence().claims_known_brand)
        .filter_map(|(f, _)| f.brand_log_price_ratio())
        .collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f32::total_cmp);
    let index = ((ratios.len() as f64 * quantile) as usize).min(ratios.len() - 1);
    Some(ratios[index])
}

/// What the served decisions rest on, chosen on validation.
pub(super) struct Operating {
    pub stats: OperatingStats,
    pub thresholds: Thresholds,
    pub rule: EvidenceRule,
    /// How those decisions do on validation.
    pub figures: DecisionFigures,
}

/// Validation histograms by class and evidence, the thresholds and evidence rule they give
/// for the options' targets at the validation share, and the decisions' figures.
fn choose_operating_point(
    options: &TrainOptions,
    probabilities: &[f32],
    features: &[Features],
    labels: &[bool],
) -> Result<Operating, TrainError> {
    let probe = EvidenceRule {
        min_known_share: options.min_known_share,
        weak_review: 1.0,
        registered_price_floor: registered_price_floor(
            features,
            labels,
            options.registered_floor_quantile,
        ),
    };
    let strong: Vec<bool> = features
        .iter()
        .map(|f| probe.is_strong(f.evidence()))
        .collect();
    let logits: Vec<f32> = probabilities
        .iter()
        .map(|&p| logit(f64::from(p).clamp(1e-9, 1.0 - 1e-9)) as f32)
        .collect();
    let stats = OperatingStats::from_validation(&logits, labels, &strong);
    let targets = Targets {
        block_precision: options.block_precision,
        review_recall: options.review_recall,
        weak_review_precision: options.weak_review_precision,
    };
    let point = stats
        .operating_point(targets, None)
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let (thresholds, rule) = (point.thresholds, point.evidence_rule(probe));
    if thresholds.review >= thresholds.block {
        tracing::warn!(
            review = thresholds.review,
            block = thresholds.block,
            "the recall target is already met at the block threshold: no review band"
        );
    }
    let decisions: Vec<Decision> = probabilities
        .iter()
        .zip(features)
        .map(|(&p, f)| rule.decide(&thresholds, p, f.evidence()))
        .collect();
    Ok(Operating {
        stats,
        thresholds,
        rule,
        figures: DecisionFigures::new(&decisions, labels, &strong),
    })
}
