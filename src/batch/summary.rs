//! The summary of a scoring run that `--summary-out` writes and `--merge` adds up: counts,
//! score histograms and per-group tallies of a fixed size, with the model they came from,
//! so shards scored anywhere combine into the report of one run over all their rows.

use crate::decision::Thresholds;
use crate::eval::binned::LabelledBins;
use crate::eval::prevalence::{
    BootstrapConfig, PrevalenceReport, PrevalenceTally, QuantificationStats, ScoredRow,
};
use crate::model::Model;
use crate::report::{ReportInput, ScoreHistogram, HISTOGRAM_BINS};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the summary file's layout; parts of another version are refused.
pub const SUMMARY_FORMAT_VERSION: u32 = 2;
/// What the `format` field of a summary file says.
pub const SUMMARY_FORMAT: &str = "knockoff-score-summary";

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a knockoff-score summary: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{path}: summary format {found}, this knockoff-score reads format {SUMMARY_FORMAT_VERSION}"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("{path}: {message}; parts to merge must come from the same model and settings")]
    Mismatch { path: PathBuf, message: String },
    #[error("--merge needs at least one summary file")]
    Nothing,
}

/// Everything a report needs from a scoring run, in a size that does not grow with rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub format: String,
    pub format_version: u32,
    pub model_name: String,
    pub model_version: String,
    /// The decision thresholds the rows were scored with.
    pub thresholds: Thresholds,
    /// What the prevalence estimators know about the model (from its validation data).
    pub quantification: QuantificationStats,
    /// The input files summarised (several after a merge).
    pub inputs: Vec<String>,
    /// Rows read, rows scored, rows that could not be scored.
    pub rows: u64,
    pub scored: u64,
    pub errors: u64,
    /// Scored listings in equal-width probability bins (the report's score histogram).
    pub scores: Vec<u64>,
    pub prevalence: PrevalenceTally,
    /// The labelled rows' probabilities per label in fine bins: the report's evaluation
    /// (ROC, precision-recall, reliability, key figures) comes from these.
    pub labelled: LabelledBins,
}

impl RunSummary {
    /// An empty summary for rows scored by `model`, with at most `max_groups` named groups
    /// per dimension.
    pub fn new(model: &Model, input: &Path, max_groups: usize) -> RunSummary {
        let quantification = model.config.quantification.clone();
        RunSummary {
            format: SUMMARY_FORMAT.to_string(),
            format_version: SUMMARY_FORMAT_VERSION,
            model_name: model.name().to_string(),
            model_version: model.version().to_string(),
            thresholds: model.thresholds(),
            prevalence: PrevalenceTally::new(quantification.review_threshold, max_groups),
            quantification,
            inputs: vec![input.display().to_string()],
            rows: 0,
            scored: 0,
            errors: 0,
            scores: vec![0; HISTOGRAM_BINS],
            labelled: LabelledBins::new(model.thresholds()),
        }
    }

    /// Counts one scored row.
    pub fn record(&mut self, row: &ScoredRow) {
        self.scored += 1;
        ScoreHistogram::count_into(&mut self.scores, row.probability);
        self.prevalence.record(row);
        if let Some(label) = row.label {
            self.labelled.add(row.probability, label);
        }
    }

    /// Reads summary files and adds them up; a part from another model, thresholds or
    /// format is refused with its file name.
    pub fn merge_files(paths: &[PathBuf]) -> Result<RunSummary, SummaryError> {
        let mut parts = paths.iter();
        let first = parts.next().ok_or(SummaryError::Nothing)?;
        let mut total = RunSummary::read(first)?;
        for path in parts {
            let part = RunSummary::read(path)?;
            total
                .merge(&part)
                .map_err(|message| SummaryError::Mismatch {
                    path: path.clone(),
                    message: format!("{message} (first part: {})", first.display()),
                })?;
        }
        Ok(total)
    }

    /// Adds `other` to this summary, or says why they cannot be added.
    pub fn merge(&mut self, other: &RunSummary) -> Result<(), String> {
        if (&other.model_name, &other.model_version) != (&self.model_name, &self.model_version) {
            return Err(format!(
                "scored by model {} version {}, not {} version {}",
                other.model_name, other.model_version, self.model_name, self.model_version
            ));
        }
        if other.thresholds != self.thresholds {
            return Err(format!(
                "scored with thresholds {:?}, not {:?}",
                other.thresholds, self.thresholds
            ));
        }
        if other.quantification != self.quantification
            || other.prevalence.review_threshold != self.prevalence.review_threshold
        {
            return Err("scored with other quantification statistics".to_string());
        }
        if other.scores.len() != self.scores.len() {
            return Err(format!(
                "has {} score histogram bins, not {}",
                other.scores.len(),
                self.scores.len()
            ));
        }
        self.inputs.extend(other.inputs.iter().cloned());
        self.rows += other.rows;
        self.scored += other.scored;
        self.errors += other.errors;
        for (mine, theirs) in self.scores.iter_mut().zip(&other.scores) {
            *mine += theirs;
        }
        self.labelled.merge(&other.labelled)?;
        self.prevalence.merge(&other.prevalence);
        Ok(())
    }

    pub fn read(path: &Path) -> Result<RunSummary, SummaryError> {
        let text = std::fs::read(path).map_err(|source| SummaryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let summary: RunSummary =
            serde_json::from_slice(&text).map_err(|source| SummaryError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        if summary.format != SUMMARY_FORMAT || summary.format_version != SUMMARY_FORMAT_VERSION {
            return Err(SummaryError::Version {
                path: path.to_path_buf(),
                found: summary.format_version,
            });
        }
        Ok(summary)
    }

    /// Writes the summary as JSON, whole or not at all.
    pub fn write(&self, path: &Path) -> Result<(), SummaryError> {
        let io = |source| SummaryError::Io {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec(self).map_err(|e| io(std::io::Error::other(e)))?;
        crate::fsutil::write_atomically(path, &json, ".knockoff-summary-").map_err(io)
    }

    /// The report of the summarised rows: prevalence overall and per group, the score
    /// histogram and thresholds, and when the rows carry both labels the evaluation from
    /// [`LabelledBins`] (so one run and a merge of its shards report the same figures).
    pub fn report_input(&self, title: &str, min_group_rows: usize) -> ReportInput {
        let mut input = ReportInput {
            title: title.to_string(),
            model_name: self.model_name.clone(),
            model_version: self.model_version.clone(),
            generated_at: chrono::Utc::now().to_rfc3339(),
            prevalence: PrevalenceReport::from_tally(
                &self.prevalence,
                &self.quantification,
                min_group_rows,
                &BootstrapConfig::default(),
            ),
            scores: ScoreHistogram {
                counts: self.scores.clone(),
            },
            thresholds: Some(self.thresholds),
            roc: None,
            pr: None,
            reliability: None,
            metrics: None,
            audit: None,
        };
        input.add_binned_evaluation(&self.labelled);
        input
    }
}
