//! Audited prevalence: a stratified random sample of scored listings for people to label
//! ([`design`], written by [`file`]), and the design-based estimate of the counterfeit share
//! from their labels ([`estimate`], [`combine`]), which holds whatever the model gets wrong.

pub mod combine;
pub mod design;
pub mod estimate;
pub mod file;
pub mod population;

pub use combine::{audit_report, AuditGroup, AuditReport, MIN_AUDIT_GROUP_LABELS, MIN_LABELLED};
pub use design::{draw, Draw, Pick, Stratum};
pub use estimate::{domain_estimate, AuditInterval, SampleUnit, StratumSample};
pub use population::{scored_rows, Population, ScoredId, Unit};

use crate::data::reader::ReadError;

/// What can go wrong drawing or reading an audit; every row problem names its file and line.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("no scored listings to audit")]
    EmptyPopulation,
    #[error("--audit-sample must be at least 1")]
    EmptySample,
    #[error("the scores file changed while the audit was drawn from it")]
    Changed,
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{file}:{line}: {message}")]
    Row {
        file: String,
        line: u64,
        message: String,
    },
    #[error(
        "{labelled} of {rows} audit rows are labelled ({unlabelled} empty); at least {needed} \
         labelled rows are needed, and every stratum needs one ({missing})"
    )]
    TooFewLabels {
        rows: usize,
        labelled: usize,
        unlabelled: usize,
        needed: usize,
        missing: String,
    },
}

impl AuditError {
    pub(crate) fn row(file: &str, line: u64, message: impl Into<String>) -> AuditError {
        AuditError::Row {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn file(path: &std::path::Path, message: impl ToString) -> AuditError {
        AuditError::File {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
}
