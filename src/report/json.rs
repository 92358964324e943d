//! The report as JSON: the [`PrevalenceReport`] with the audit (when there is one) under
//! `"audit"`, pretty-printed, with a final newline.

use serde::Serialize;

use super::ReportError;
use crate::eval::audit::AuditReport;
use crate::eval::prevalence::PrevalenceReport;

#[derive(Serialize)]
struct ReportJson<'a> {
    #[serde(flatten)]
    prevalence: &'a PrevalenceReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<&'a AuditReport>,
}

pub fn render_json(
    report: &PrevalenceReport,
    audit: Option<&AuditReport>,
) -> Result<String, ReportError> {
    let mut json = serde_json::to_string_pretty(&ReportJson {
        prevalence: report,
        audit,
    })?;
    json.push('\n');
    Ok(json)
}
