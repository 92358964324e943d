//! The report as JSON: the [`PrevalenceReport`], pretty-printed, with a final newline.

use super::ReportError;
use crate::eval::prevalence::PrevalenceReport;

pub fn render_json(report: &PrevalenceReport) -> Result<String, ReportError> {
    let mut json = serde_json::to_string_pretty(report)?;
    json.push('\n');
    Ok(json)
}
