//! Batch scoring, file to file: streams rows, scores them on all cores, writes one output row
//! per input row in input order (with an `error` column for rows that cannot be scored), and
//! keeps what the evaluation and prevalence reports need in summaries of a fixed size.
//!
//! [`sink`] writes the scores (CSV, JSON Lines, Parquet); [`summary`] is the run summary
//! that `--summary-out` writes and `--merge` adds up.

pub mod sink;
pub mod summary;

use crate::brand::BrandMatch;
use crate::data::listing::Listing;
use crate::data::reader::{RawRow, ReadError, RowError, RowReader};
use crate::decision::Decision;
use crate::eval::prevalence::{ScoredRow, MAX_GROUPS};
use crate::features::Features;
use crate::model::{Model, ModelError, Score};
use rayon::prelude::*;
use sink::Sink;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use summary::RunSummary;

pub use sink::{check_output, SCORES_COLUMNS};

/// Rows read and scored together; big enough to keep both cores busy.
const CHUNK_ROWS: usize = 8192;
/// Rows per network call inside a chunk.
const MODEL_BATCH: usize = 512;
/// Row errors kept for the run summary printed at the end; all are counted, and every
/// one is in the output's `error` column.
pub const KEPT_ERRORS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unknown output type; use .csv, .jsonl or .parquet")]
    OutputFormat { path: PathBuf },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The outcome of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    Scored {
        id: String,
        probability: f32,
        decision: Decision,
        /// The known brand the listing claims or fits.
        brand: Option<BrandMatch>,
    },
    Failed {
        id: String,
        error: String,
    },
}

/// What a scoring run saw, for summaries and reports. Its size does not grow with the
/// input, except for the labelled rows' probability, label and category index (9 bytes a
/// labelled row), kept for exact evaluation metrics.
#[derive(Debug)]
pub struct ScoreSummary {
    pub rows: usize,
    /// Rows that could not be scored.
    pub error_count: usize,
    /// The first [`KEPT_ERRORS`] of them.
    pub errors: Vec<RowError>,
    /// Counts, histograms and per-group tallies for prevalence and the report.
    pub run: RunSummary,
    /// The scored rows that carry a label.
    pub labelled: Labelled,
    /// Category of each labelled row, as an index into `categories`.
    labelled_categories: Vec<u32>,
    categories: Vec<String>,
    category_index: HashMap<String, u32>,
}

/// The scored rows that carry a label: `probabilities[i]` was scored for `labels[i]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labelled {
    pub probabilities: Vec<f32>,
    pub labels: Vec<bool>,
}

impl ScoreSummary {
    fn new(run: RunSummary) -> ScoreSummary {
        ScoreSummary {
            rows: 0,
            error_count: 0,
            errors: Vec::new(),
            run,
            labelled: Labelled::default(),
            labelled_categories: Vec::new(),
            categories: Vec::new(),
            category_index: HashMap::new(),
        }
    }

    /// Rows scored.
    pub fn scored(&self) -> u64 {
        self.run.scored
    }

    fn record(&mut self, row: ChunkRow) {
        if let Some(scored) = row.scored {
            self.run.record(&scored);
            if let Some(label) = scored.label {
                let category = scored.category.as_deref().unwrap_or("");
                let index = match self.category_index.get(category) {
                    Some(&i) => i,
                    None => {
                        let i = u32::try_from(self.categories.len()).unwrap_or(u32::MAX);
                        self.categories.push(category.to_string());
                        self.category_index.insert(category.to_string(), i);
                        i
                    }
                };
                self.labelled.probabilities.push(scored.probability);
                self.labelled.labels.push(label);
                self.labelled_categories.push(index);
            }
        }
        if let Some(error) = row.error {
            self.error_count += 1;
            self.run.errors += 1;
            if self.errors.len() < KEPT_ERRORS {
                self.errors.push(error);
            }
        }
    }

    /// Probabilities and labels of scored rows that carry a label.
    pub fn labelled(&self) -> &Labelled {
        &self.labelled
    }

    /// The category of each labelled row, as an index for [`ScoreSummary::category_name`]
    /// (four bytes a row, not a string).
    pub fn categories_of_labelled(&self) -> &[u32] {
        &self.labelled_categories
    }

    /// The category an index of [`ScoreSummary::categories_of_labelled`] stands for (""
    /// when the row has none).
    pub fn category_name(&self, index: u32) -> &str {
        self.categories
            .get(index as usize)
            .map_or("", String::as_str)
    }
}

/// A validated row: the listing, its label if any, and its features.
struct Validated {
    listing: Listing,
    label: Option<bool>,
    features: Features,
}

/// One row's result: what to write, what reports need (if scored), and why it failed (if not).
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRow {
    pub outcome: RowOutcome,
    pub scored: Option<ScoredRow>,
    pub error: Option<RowError>,
}

impl ChunkRow {
    fn scored(
        listing: Listing,
        label: Option<bool>,
        brand: Option<BrandMatch>,
        score: &Score,
    ) -> ChunkRow {
        let row = scored_row(&listing, label, score);
        ChunkRow {
            outcome: RowOutcome::Scored {
                id: listing.id,
                probability: score.probability,
                decision: score.decision,
                brand,
            },
            scored: Some(row),
            error: None,
        }
    }

    fn failed(error: RowError) -> ChunkRow {
        ChunkRow {
            outcome: RowOutcome::Failed {
                id: error.id.clone().unwrap_or_default(),
                error: error.to_string(),
            },
            scored: None,
            error: Some(error),
        }
    }
}

/// The one place batch scoring turns a scored listing into what the reports need.
pub fn scored_row(listing: &Listing, label: Option<bool>, score: &Score) -> ScoredRow {
    ScoredRow::new(listing, score.probability, score.decision, label)
}

/// Validates and scores one chunk of read rows in parallel, keeping order.
pub fn score_chunk(
    model: &Model,
    file: &str,
    chunk: Vec<Result<RawRow, RowError>>,
) -> Result<Vec<ChunkRow>, ModelError> {
    let validated: Vec<Result<Validated, RowError>> = chunk
        .into_par_iter()
        .map(|item| {
            let row = item?.validate(file, model.rates(), model.limits(), false)?;
            let features = model.featurize_one(&row.listing);
            Ok(Validated {
                listing: row.listing,
                label: row.label,
                features,
            })
        })
        .collect();
    let ok: Vec<&Features> = validated
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|v| &v.features))
        .collect();
    let scores: Vec<Score> = ok
        .par_chunks(MODEL_BATCH)
        .map(|batch| model.score_features(batch))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    if scores.len() != ok.len() {
        return Err(ModelError::ScoreCount {
            expected: ok.len(),
            got: scores.len(),
        });
    }
    // Each valid row's place among the scores; the rows are then built on all cores (their
    // report fields copied, their features dropped), not on the thread that writes them.
    let mut next = 0;
    let score_at: Vec<usize> = validated
        .iter()
        .map(|r| {
            let at = next;
            next += usize::from(r.is_ok());
            at
        })
        .collect();
    Ok(validated
        .into_par_iter()
        .zip(score_at)
        .map(|(item, at)| match item {
            Ok(row) => ChunkRow::scored(row.listing, row.label, row.features.brand, &scores[at]),
            Err(error) => ChunkRow::failed(error),
        })
        .collect())
}

/// Settings of a scoring run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Named groups per dimension (brand, category, currency) in the prevalence summary;
    /// rows of further values are counted under `(other)`.
    pub max_groups: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            max_groups: MAX_GROUPS,
        }
    }
}

/// [`score_file_with`] with default options.
pub fn score_file(
    model: &Model,
    input: &Path,
    output: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<ScoreSummary, BatchError> {
    score_file_with(model, input, output, &BatchOptions::default(), progress)
}

/// Scores `input` into `output`. Reading runs on its own thread while chunks are scored
/// on the rayon pool, so parsing overlaps with featurisation. Memory stays flat: rows are
/// written as they are scored and only fixed-size summaries are kept.
pub fn score_file_with(
    model: &Model,
    input: &Path,
    output: &Path,
    options: &BatchOptions,
    progress: &indicatif::ProgressBar,
) -> Result<ScoreSummary, BatchError> {
    let reader = RowReader::open(input)?;
    let file = input.display().to_string();
    let mut sink = Sink::create(output)?;
    let write_error = |source: std::io::Error| BatchError::Write {
        path: output.to_path_buf(),
        source,
    };
    let (sender, receiver) = sync_channel::<Vec<Result<RawRow, RowError>>>(2);
    let mut summary = ScoreSummary::new(RunSummary::new(model, input, options.max_groups));
    std::thread::scope(|scope| -> Result<(), BatchError> {
        scope.spawn(move || {
            let mut chunk = Vec::with_capacity(CHUNK_ROWS);
            for item in reader {
                chunk.push(item);
                if chunk.len() == CHUNK_ROWS {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_ROWS));
                    if sender.send(full).is_err() {
                        return;
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = sender.send(chunk);
            }
        });
        for chunk in receiver {
            let n = chunk.len();
            for row in score_chunk(model, &file, chunk)? {
                sink.write(&row.outcome).map_err(write_error)?;
                summary.record(row);
            }
            summary.rows += n;
            summary.run.rows += n as u64;
            progress.inc(n as u64);
        }
        Ok(())
    })?;
    sink.finish(output).map_err(write_error)?;
    Ok(summary)
}
