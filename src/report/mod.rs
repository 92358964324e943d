//! Reports of a scored sample: the input they are drawn from ([`ReportInput`], built by
//! [`build`]), rendered as one self-contained HTML page ([`html`]) or as JSON ([`json`]),
//! and written whole or not at all ([`write_report`]).

mod audit;
pub mod build;
mod charts;
pub mod html;
pub mod json;
mod tables;
mod text;

#[cfg(test)]
mod testutil;

use std::path::{Path, PathBuf};

use crate::decision::Thresholds;
use crate::eval::audit::AuditReport;
use crate::eval::calibration::ReliabilityBin;
use crate::eval::evaluation::Evaluation;
use crate::eval::nan_serde::nan_as_null;
use crate::eval::prevalence::PrevalenceReport;
use crate::eval::ranking::CurvePoint;

pub use html::{headline_sentence, render_html};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "cannot write a report to {}: extension {extension} is not supported \
         (use .html, .htm or .json)",
        .path.display()
    )]
    UnsupportedExtension { path: PathBuf, extension: String },
    #[error("drawing chart {chart}: {message}")]
    Chart {
        chart: &'static str,
        message: String,
    },
    #[error("serialising report JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("writing report {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A ROC or precision-recall curve and the area under it (AUC or average precision).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub points: Vec<CurvePoint>,
    pub area: f64,
}

/// Bins of the score histogram in reports.
pub const HISTOGRAM_BINS: usize = 20;

/// Listing counts in equal-width probability bins over [0, 1].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScoreHistogram {
    pub counts: Vec<u64>,
}

impl ScoreHistogram {
    /// Bins finite probabilities (clamped to [0, 1]; 1.0 lands in the last bin).
    pub fn from_probabilities(probs: &[f32], bins: usize) -> Self {
        let mut counts = vec![0u64; bins.max(1)];
        for &p in probs {
            Self::count_into(&mut counts, p);
        }
        ScoreHistogram { counts }
    }

    /// Counts one probability into equal-width bins `counts` (non-finite ones are skipped).
    pub fn count_into(counts: &mut [u64], p: f32) {
        let bins = counts.len();
        if bins == 0 || !p.is_finite() {
            return;
        }
        let x = f64::from(p.clamp(0.0, 1.0)) * bins as f64;
        // Clamped to the last index before the cast, so it can neither wrap nor overflow.
        counts[x.floor().clamp(0.0, (bins - 1) as f64) as usize] += 1;
    }
}

/// The key figures of a labelled sample, shown as a table under the evaluation charts (and
/// under `evaluation` in the JSON report; undefined figures are `null`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct KeyFigures {
    pub labelled_listings: usize,
    pub counterfeit: usize,
    #[serde(serialize_with = "nan_as_null::serialize")]
    pub roc_auc: f64,
    #[serde(serialize_with = "nan_as_null::serialize")]
    pub pr_auc: f64,
    #[serde(serialize_with = "nan_as_null::serialize")]
    pub recall_at_95_precision: f64,
    #[serde(serialize_with = "nan_as_null::serialize")]
    pub expected_calibration_error: f64,
    #[serde(serialize_with = "nan_as_null::serialize")]
    pub brier_score: f64,
}

impl From<&Evaluation> for KeyFigures {
    fn from(e: &Evaluation) -> Self {
        KeyFigures {
            labelled_listings: e.rows,
            counterfeit: e.positives,
            roc_auc: e.roc_auc,
            pr_auc: e.pr_auc,
            recall_at_95_precision: e.recall_at_95_precision,
            expected_calibration_error: e.expected_calibration_error,
            brier_score: e.brier_score,
        }
    }
}

/// Everything the page shows. The labelled-evaluation parts are optional: a sample without
/// labels gets no ROC, PR or reliability chart rather than empty ones.
#[derive(Debug, Clone)]
pub struct ReportInput {
    pub title: String,
    pub model_name: String,
    pub model_version: String,
    pub generated_at: String,
    pub prevalence: PrevalenceReport,
    pub scores: ScoreHistogram,
    /// Drawn on the score histogram when given.
    pub thresholds: Option<Thresholds>,
    pub roc: Option<Curve>,
    pub pr: Option<Curve>,
    /// Non-empty reliability bins: mean predicted probability, observed counterfeit rate,
    /// listings.
    pub reliability: Option<Vec<ReliabilityBin>>,
    pub metrics: Option<KeyFigures>,
    /// An audited sample's estimate; when given it is already the headline of `prevalence`.
    pub audit: Option<AuditReport>,
}

impl ReportInput {
    fn has_evaluation(&self) -> bool {
        self.roc.is_some()
            || self.pr.is_some()
            || self.reliability.is_some()
            || self.metrics.is_some()
    }
}

/// What [`write_report`] writes, chosen by the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Json,
}

impl ReportFormat {
    /// `.html`/`.htm` → HTML, `.json` → JSON (case-insensitive); anything else is an error
    /// naming the extension, so a CLI can reject a bad path before doing any work.
    pub fn from_path(path: &Path) -> Result<Self, ReportError> {
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("html") | Some("htm") => Ok(ReportFormat::Html),
            Some("json") => Ok(ReportFormat::Json),
            other => Err(ReportError::UnsupportedExtension {
                path: path.to_path_buf(),
                extension: other.map_or_else(|| "(none)".to_string(), |e| format!(".{e}")),
            }),
        }
    }
}

/// Writes the HTML page or the [`PrevalenceReport`] JSON, by extension. The file appears
/// whole or not at all (see [`crate::fsutil::write_atomically`]): a reader never sees half a
/// report and a failed run leaves the old one.
pub fn write_report(path: impl AsRef<Path>, input: &ReportInput) -> Result<(), ReportError> {
    let path = path.as_ref();
    let contents = match ReportFormat::from_path(path)? {
        ReportFormat::Html => render_html(input)?,
        ReportFormat::Json => json::render_json(input)?,
    };
    crate::fsutil::write_atomically(path, contents.as_bytes(), ".knockoff-report-").map_err(
        |source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::testutil::input;
    use super::*;

    #[test]
    fn json_report_has_the_agreed_shape_and_is_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prevalence.JSON");
        let input = input(true);
        write_report(&path, &input).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(json["headline_method_reason"].is_string());
        let overall = &json["overall"];
        assert_eq!(overall["listings"], 400);
        assert!(overall["flagged"]["block"].is_u64() && overall["flagged"]["review"].is_u64());
        for key in ["estimate", "ci_low", "ci_high", "method"] {
            assert!(
                !overall["prevalence"][key].is_null(),
                "overall.prevalence.{key}"
            );
        }
        let groups = json["groups"].as_array().unwrap();
        let tiny = groups.iter().find(|g| g["value"] == "Tiny").unwrap();
        assert_eq!(
            (tiny["by"].as_str(), tiny["listings"].as_u64()),
            (Some("brand"), Some(1))
        );
        assert!(tiny["prevalence"].is_null() && tiny["too_small"] == true);
        assert!(groups
            .iter()
            .any(|g| g["by"] == "currency" && g["value"] == "(none)"));
        let evaluation = &json["evaluation"];
        assert_eq!(
            (
                evaluation["labelled_listings"].as_u64(),
                evaluation["roc_auc"].as_f64()
            ),
            (Some(400), Some(0.91))
        );
        assert_eq!(evaluation["roc"].as_array().unwrap().len(), 4);
        assert_eq!(evaluation["pr"][2]["y"], 0.3);
        assert_eq!(evaluation["reliability"].as_array().unwrap().len(), 3);
        // Without labels there is no evaluation, rather than an empty one.
        let unlabelled = json::render_json(&super::testutil::input(false)).unwrap();
        assert!(!unlabelled.contains("\"evaluation\""), "{unlabelled}");

        // Overwrite with HTML next to it: no temporary files are left behind.
        write_report(dir.path().join("report.htm"), &input).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["prevalence.JSON", "report.htm"]);
    }

    #[test]
    fn unknown_extension_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let input = input(false);
        let err = write_report(dir.path().join("report.pdf"), &input).unwrap_err();
        assert!(matches!(err, ReportError::UnsupportedExtension { .. }));
        assert!(err.to_string().contains(".pdf"), "{err}");
        let err = write_report(dir.path().join("report"), &input).unwrap_err();
        assert!(err.to_string().contains("(none)"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(
            ReportFormat::from_path(Path::new("a.HTML")).unwrap(),
            ReportFormat::Html
        );
    }

    #[test]
    #[ignore = "writes a preview page: cargo test --lib report -- --ignored"]
    fn write_preview_page() {
        let path = std::env::temp_dir().join("knockoff-report-preview.html");
        write_report(&path, &input(true)).unwrap();
        println!("{}", path.display());
    }

    #[test]
    fn histogram_bins_clamp_and_skip_nan() {
        let h = ScoreHistogram::from_probabilities(&[0.0, 0.05, 0.5, 1.0, f32::NAN, 7.0], 10);
        assert_eq!(h.counts, [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
    }
}
