//! Batch scoring, file to file: streams rows, scores them on all cores, writes one output row
//! per input row in input order (with an `error` column for rows that cannot be scored), and
//! collects what the evaluation and prevalence reports need.

use crate::brand::BrandMatch;
use crate::data::listing::Listing;
use crate::data::reader::{RawRow, ReadError, RowError, RowReader};
use crate::decision::Decision;
use crate::eval::prevalence::ScoredRow;
use crate::features::Features;
use crate::model::{Model, ModelError, Score};
use rayon::prelude::*;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use tempfile::NamedTempFile;

/// Rows read and scored together; big enough to keep both cores busy.
const CHUNK_ROWS: usize = 8192;
/// Rows per network call inside a chunk.
const MODEL_BATCH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unknown output type; use .csv or .jsonl")]
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

/// What a scoring run saw, for summaries and reports.
#[derive(Debug, Default)]
pub struct ScoreSummary {
    pub rows: usize,
    pub errors: Vec<RowError>,
    /// One entry per scored row, in input order.
    pub scored: Vec<ScoredRow>,
}

/// The scored rows that carry a label: `probabilities[i]` was scored for `labels[i]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labelled {
    pub probabilities: Vec<f32>,
    pub labels: Vec<bool>,
}

impl ScoreSummary {
    /// Probabilities and labels of scored rows that carry a label.
    pub fn labelled(&self) -> Labelled {
        let (probabilities, labels) = self
            .scored
            .iter()
            .filter_map(|r| r.label.map(|l| (r.probability, l)))
            .unzip();
        Labelled {
            probabilities,
            labels,
        }
    }

    pub fn categories_of_labelled(&self) -> Vec<&str> {
        self.scored
            .iter()
            .filter(|r| r.label.is_some())
            .map(|r| r.category.as_deref().unwrap_or(""))
            .collect()
    }
}

/// Columns of `scores.csv`: the brand columns are empty when no known brand is named.
pub const SCORES_COLUMNS: [&str; 8] = [
    "id",
    "probability",
    "decision",
    "brand",
    "brand_found_in",
    "brand_how",
    "brand_relation",
    "error",
];

/// The brand columns' texts (empty when no brand was identified).
fn brand_cells(brand: Option<&BrandMatch>) -> [&str; 4] {
    match brand {
        None => [""; 4],
        Some(b) => [
            b.name.as_str(),
            b.found_in.as_str(),
            b.how.as_str(),
            b.relation.as_str(),
        ],
    }
}

#[derive(Clone, Copy)]
enum OutputFormat {
    Csv,
    JsonLines,
}

/// Scores are written into a temporary file beside the output and renamed over it only
/// when complete ([`Sink::finish`]): an interrupted run or a full disk never leaves half a
/// scores file under the output's name.
enum Sink {
    Csv(Box<csv::Writer<BufWriter<NamedTempFile>>>),
    Json(BufWriter<NamedTempFile>),
}

impl Sink {
    fn create(path: &Path) -> Result<Sink, BatchError> {
        let name = path.to_string_lossy().to_ascii_lowercase();
        let format = if name.ends_with(".csv") {
            OutputFormat::Csv
        } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            OutputFormat::JsonLines
        } else {
            return Err(BatchError::OutputFormat {
                path: path.to_path_buf(),
            });
        };
        let file = crate::fsutil::staged_file(path, ".knockoff-scores-").map_err(|source| {
            BatchError::Write {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let writer = BufWriter::with_capacity(1 << 20, file);
        Ok(match format {
            OutputFormat::Csv => {
                let mut w = csv::Writer::from_writer(writer);
                w.write_record(SCORES_COLUMNS)
                    .map_err(|e| BatchError::Write {
                        path: path.to_path_buf(),
                        source: e.into(),
                    })?;
                Sink::Csv(Box::new(w))
            }
            OutputFormat::JsonLines => Sink::Json(writer),
        })
    }

    fn write(&mut self, outcome: &RowOutcome) -> std::io::Result<()> {
        match (self, outcome) {
            (
                Sink::Csv(w),
                RowOutcome::Scored {
                    id,
                    probability,
                    decision,
                    brand,
                },
            ) => {
                let p = format!("{probability:.6}");
                let [name, found_in, how, relation] = brand_cells(brand.as_ref());
                w.write_record([
                    id.as_str(),
                    &p,
                    decision.as_str(),
                    name,
                    found_in,
                    how,
                    relation,
                    "",
                ])
                .map_err(Into::into)
            }
            (Sink::Csv(w), RowOutcome::Failed { id, error }) => w
                .write_record([id.as_str(), "", "", "", "", "", "", error.as_str()])
                .map_err(Into::into),
            (
                Sink::Json(w),
                RowOutcome::Scored {
                    id,
                    probability,
                    decision,
                    brand,
                },
            ) => {
                let line = serde_json::json!({"id": id, "probability": probability, "decision": decision, "brand": brand});
                writeln!(w, "{line}")
            }
            (Sink::Json(w), RowOutcome::Failed { id, error }) => {
                let line = serde_json::json!({"id": id, "probability": null, "decision": null, "error": error});
                writeln!(w, "{line}")
            }
        }
    }

    /// Flushes the scores and puts them in place under `path`.
    fn finish(self, path: &Path) -> std::io::Result<()> {
        let buffered = match self {
            Sink::Csv(w) => w.into_inner().map_err(|e| e.into_error())?,
            Sink::Json(w) => w,
        };
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        crate::fsutil::publish(file, path)
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
    let mut scores = scores.into_iter();
    let mut out = Vec::with_capacity(validated.len());
    for item in validated {
        match item {
            Ok(row) => {
                let Some(score) = scores.next() else {
                    break;
                };
                out.push(ChunkRow::scored(
                    row.listing,
                    row.label,
                    row.features.brand,
                    &score,
                ));
            }
            Err(error) => out.push(ChunkRow::failed(error)),
        }
    }
    Ok(out)
}

/// Scores `input` into `output`. Reading runs on its own thread while chunks are scored
/// on the rayon pool, so parsing overlaps with featurisation.
pub fn score_file(
    model: &Model,
    input: &Path,
    output: &Path,
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
    let mut summary = ScoreSummary::default();
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
                summary.scored.extend(row.scored);
                summary.errors.extend(row.error);
            }
            summary.rows += n;
            progress.inc(n as u64);
        }
        Ok(())
    })?;
    sink.finish(output).map_err(write_error)?;
    Ok(summary)
}
