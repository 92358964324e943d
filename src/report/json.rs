//! The report as JSON: the [`PrevalenceReport`], the audit (when there is one) under
//! `"audit"`, and the labelled evaluation (when the rows carry both labels) under
//! `"evaluation"`; pretty-printed, with a final newline.

use serde::Serialize;

use super::{Curve, KeyFigures, ReportError, ReportInput};
use crate::eval::audit::AuditReport;
use crate::eval::calibration::ReliabilityBin;
use crate::eval::prevalence::PrevalenceReport;
use crate::eval::ranking::CurvePoint;

#[derive(Serialize)]
struct ReportJson<'a> {
    #[serde(flatten)]
    prevalence: &'a PrevalenceReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<&'a AuditReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evaluation: Option<EvaluationJson<'a>>,
}

/// The key figures, then the chart data: ROC (`x` false-positive rate, `y` recall), PR
/// (`x` recall, `y` precision) and the non-empty reliability bins.
#[derive(Serialize)]
struct EvaluationJson<'a> {
    #[serde(flatten)]
    figures: &'a KeyFigures,
    roc: &'a [CurvePoint],
    pr: &'a [CurvePoint],
    reliability: &'a [ReliabilityBin],
}

impl<'a> EvaluationJson<'a> {
    fn of(input: &'a ReportInput) -> Option<EvaluationJson<'a>> {
        let points = |curve: &'a Option<Curve>| curve.as_ref().map_or(&[][..], |c| &c.points);
        Some(EvaluationJson {
            figures: input.metrics.as_ref()?,
            roc: points(&input.roc),
            pr: points(&input.pr),
            reliability: input.reliability.as_deref().unwrap_or_default(),
        })
    }
}

pub fn render_json(input: &ReportInput) -> Result<String, ReportError> {
    let mut json = serde_json::to_string_pretty(&ReportJson {
        prevalence: &input.prevalence,
        audit: input.audit.as_ref(),
        evaluation: EvaluationJson::of(input),
    })?;
    json.push('\n');
    Ok(json)
}
